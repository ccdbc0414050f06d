//! The cluster state database (`$SKY_HOME/state.db`): which clusters exist, where, in what status,
//! what happened to them, and for how long they ran (for cost reports, kept after teardown).
//!
//! SQLite in WAL mode, so `sky status` can read while a launch writes. Every status change goes
//! through [`check_transition`]; records are written before a provider is touched, so a crash
//! leaves a record that `sky status --refresh` can reconcile. What this module does not do: talk to
//! providers or decide policy (the `Sky` facade does).

mod migrations;
pub mod status;
mod storage;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::clock::UnixSeconds;
use crate::cloud::CloudId;
use crate::provision::owner::LaunchAttempt;
use crate::provision::{ClusterInfo, Launchable};
use crate::resources::ResourceChoice;

pub use migrations::latest_version;

/// The state database's file name in a Sky home.
pub const STATE_DB_FILE: &str = "state.db";
pub use status::{ClusterStatus, IllegalTransition, check_transition};
pub use storage::StorageRecord;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state database {path} has schema version {found}, newer than this sky supports ({supported}); upgrade sky or point SKY_HOME elsewhere"
    )]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "{path} is not Sky's state database ({reason}); Sky leaves it alone: point SKY_HOME elsewhere"
    )]
    NotSky { path: String, reason: String },
    #[error("cannot open state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cluster '{0}' not found")]
    NotFound(String),
    #[error("cluster '{0}' already exists")]
    AlreadyExists(String),
    #[error(
        "a cluster '{existing}' already exists, so '{requested}' cannot be used; names are compared case-insensitively because Azure resource groups and macOS files are"
    )]
    NameTaken { requested: String, existing: String },
    #[error("cluster '{name}': {source}")]
    Transition {
        name: String,
        source: IllegalTransition,
    },
    #[error("cluster '{name}': stored {column} is not valid: {message}")]
    Corrupt {
        name: String,
        column: &'static str,
        message: String,
    },
    #[error("storage '{name}': stored record is not valid: {message}")]
    CorruptStorage { name: String, message: String },
}

/// Stop (or tear down) a cluster after it has been idle this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autostop {
    pub idle_minutes: u32,
    pub down: bool,
}

/// One row of `clusters`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    pub name: String,
    pub cluster_id: String,
    pub status: ClusterStatus,
    pub num_nodes: u32,
    /// Where the cluster landed; `None` while a first launch has not yet found a placement.
    pub launchable: Option<Launchable>,
    pub handle: Option<ClusterInfo>,
    pub resources: Option<ResourceChoice>,
    pub launched_at: UnixSeconds,
    pub last_use_at: UnixSeconds,
    pub last_use_command: String,
    pub status_updated_at: UnixSeconds,
    pub autostop: Option<Autostop>,
    /// Every create attempt of this launch (oldest first), recorded before its create call.
    pub launch_attempts: Vec<LaunchAttempt>,
    /// Why the last `status --refresh` could not check this cluster's clouds (no credentials,
    /// an unreachable or refusing API); `None` when it could.
    pub unchecked: Option<String>,
    /// Launched on a cloud by a Sky version before ownership tags (state migration 3): its
    /// resources carry no owner id, so Sky cannot prove which are its own and acts on none of
    /// them (see `Sky::provider_to_act_on`); its nodes are still reached by their recorded
    /// addresses.
    pub pre_ownership: bool,
}

/// A line of a cluster's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterEvent {
    pub at: UnixSeconds,
    pub kind: String,
    pub message: String,
}

/// What a cost report needs of one launch, alive or gone.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRecord {
    pub cluster_id: String,
    pub name: String,
    pub num_nodes: u32,
    pub cloud: CloudId,
    pub region: String,
    pub instance_type: String,
    pub use_spot: bool,
    pub hourly_price: f64,
    pub launched_at: UnixSeconds,
    pub terminated_at: Option<UnixSeconds>,
    /// (start, end) with `end = None` while still running.
    pub intervals: Vec<(UnixSeconds, Option<UnixSeconds>)>,
}

#[derive(Serialize, Deserialize)]
struct VersionedResources {
    version: u32,
    resources: ResourceChoice,
}

const RESOURCES_JSON_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct VersionedAttempts {
    version: u32,
    attempts: Vec<LaunchAttempt>,
}

const ATTEMPTS_JSON_VERSION: u32 = 1;

pub struct StateStore {
    conn: Connection,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

const CLUSTER_COLUMNS: &str = "name, cluster_id, status, num_nodes, cloud, region, zone, instance_type, use_spot, \
     vcpus, memory_gib, accelerator_name, accelerator_count, hourly_price, handle_json, resources_json, \
     launched_at, last_use_at, last_use_command, status_updated_at, autostop_idle_minutes, autostop_down, \
     launch_attempts_json, unchecked_reason, pre_ownership";

impl StateError {
    fn is_busy(&self) -> bool {
        let sql = match self {
            StateError::Sql(e) | StateError::Open { source: e, .. } => e,
            _ => return false,
        };
        matches!(sql, rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }
}

impl StateStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    ///
    /// Retried whole while SQLite answers "busy": on a fresh file, switching to WAL and the first
    /// reads of a WAL another process is just creating can fail at once without calling the busy
    /// handler, so several processes opening a new home together (the app and a CLI at first
    /// start, a script launching in parallel) would otherwise fail at random.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::open_once(path) {
                Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path) -> Result<StateStore, StateError> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StateError::Open {
                path: shown.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|source| StateError::Open {
            path: shown.clone(),
            source,
        })?;
        // Concurrent sky processes (a launch and a status, or several first opens of a new home)
        // wait for each other briefly instead of failing with "database is locked".
        conn.busy_timeout(Duration::from_secs(10))?;
        // Refuse a foreign database before changing anything in it, even its journal mode.
        migrations::check_owner(&conn, &shown)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn, &shown)?;
        Ok(StateStore { conn })
    }

    pub fn open_in_memory() -> Result<StateStore, StateError> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn, ":memory:")?;
        Ok(StateStore { conn })
    }

    /// The connection, for tests that write a state older code left behind.
    #[cfg(test)]
    pub(crate) fn raw_connection(&self) -> &Connection {
        &self.conn
    }

    /// This Sky home's owner id (see [`crate::provision::owner`]), drawn once by migration 3.
    pub fn owner_id(&self) -> Result<String, StateError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM home WHERE key = 'owner_id'", [], |r| {
                r.get(0)
            })?)
    }

    /// Appends a create attempt to the cluster's record; called before the create request, so a
    /// crash during it leaves the launch id to find the nodes by.
    pub fn add_launch_attempt(
        &mut self,
        name: &str,
        attempt: &LaunchAttempt,
        now: UnixSeconds,
    ) -> Result<(), StateError> {
        let rec = self.require(name)?;
        let mut attempts = rec.launch_attempts.clone();
        attempts.push(attempt.clone());
        let json = serde_json::to_string(&VersionedAttempts {
            version: ATTEMPTS_JSON_VERSION,
            attempts,
        })
        .map_err(|e| StateError::Corrupt {
            name: name.to_owned(),
            column: "launch_attempts_json",
            message: e.to_string(),
        })?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE clusters SET launch_attempts_json = ?2 WHERE name = ?1",
            params![name, json],
        )?;
        let place = match &attempt.zone {
            Some(z) => format!("{}/{}/{z}", attempt.cloud.as_str(), attempt.region),
            None => format!("{}/{}", attempt.cloud.as_str(), attempt.region),
        };
        insert_event(
            &tx,
            &rec.cluster_id,
            name,
            now,
            "launch-attempt",
            &format!("creating in {place} as launch {}", attempt.launch_id),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records why the cluster could not be checked (`None`: it was checked).
    /// Marks (or clears) a record as launched before ownership tags: clearing is for a
    /// cluster whose nodes were re-tagged as this home's (`Provider::claim_pre_ownership`);
    /// marking is what migration 3 does, for tests that stand in for it.
    pub fn set_pre_ownership(&mut self, name: &str, pre: bool) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE clusters SET pre_ownership = ?2 WHERE name = ?1",
            params![name, pre],
        )?;
        Ok(())
    }

    pub fn set_unchecked(&mut self, name: &str, why: Option<&str>) -> Result<(), StateError> {
        let n = self.conn.execute(
            "UPDATE clusters SET unchecked_reason = ?2 WHERE name = ?1",
            params![name, why],
        )?;
        if n == 0 {
            return Err(StateError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<Option<ClusterRecord>, StateError> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = ?1");
        let row = self
            .conn
            .query_row(&sql, [name], RawCluster::from_row)
            .optional()?;
        row.map(RawCluster::decode).transpose()
    }

    /// The name of the recorded cluster that `name` would clash with, compared case-insensitively
    /// (`Dev` for `dev`), so a front end can refuse before taking locks or writing anything; the
    /// insert in [`StateStore::create`] is what makes the rule hold under races.
    pub fn name_in_use(&self, name: &str) -> Result<Option<String>, StateError> {
        same_name_any_case(&self.conn, name)
    }

    pub fn require(&self, name: &str) -> Result<ClusterRecord, StateError> {
        self.get(name)?
            .ok_or_else(|| StateError::NotFound(name.to_owned()))
    }

    /// Every cluster, by name.
    pub fn list(&self) -> Result<Vec<ClusterRecord>, StateError> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], RawCluster::from_row)?;
        rows.map(|r| r.map_err(StateError::from).and_then(RawCluster::decode))
            .collect()
    }

    /// Records a new cluster in INIT, before any provider is asked for anything.
    pub fn create(
        &mut self,
        name: &str,
        num_nodes: u32,
        resources: Option<&ResourceChoice>,
        command: &str,
        now: UnixSeconds,
    ) -> Result<ClusterRecord, StateError> {
        check(name, None, Some(ClusterStatus::Init))?;
        let tx = self.conn.transaction()?;
        let cluster_id = insert_cluster(&tx, name, num_nodes, resources, command, now)?;
        insert_event(
            &tx,
            &cluster_id,
            name,
            now,
            "created",
            &format!("recorded by `{command}`"),
        )?;
        tx.commit()?;
        self.require(name)
    }

    /// Records where the cluster's nodes now run (a fresh launch or a resume), and opens a
    /// billing interval.
    pub fn set_provisioned(
        &mut self,
        name: &str,
        launchable: &Launchable,
        info: &ClusterInfo,
        now: UnixSeconds,
    ) -> Result<(), StateError> {
        let rec = self.require(name)?;
        check(name, Some(rec.status), Some(ClusterStatus::Init))?;
        let tx = self.conn.transaction()?;
        record_placement(&tx, &rec, launchable, info, now)?;
        open_interval(&tx, &rec.cluster_id, now)?;
        let msg = format!(
            "{} x {} provisioned in {}",
            rec.num_nodes,
            launchable.instance_type,
            place_of(launchable)
        );
        insert_event(&tx, &rec.cluster_id, name, now, "provisioned", &msg)?;
        tx.commit()?;
        Ok(())
    }

    /// Records, in one transaction, a cluster found in the cloud that no record here knew (an
    /// orphan): it arrives UP (billing from now, since earlier time is unknown to this database)
    /// or STOPPED, never half-written.
    pub fn adopt(
        &mut self,
        name: &str,
        launchable: &Launchable,
        info: &ClusterInfo,
        stopped: bool,
        command: &str,
        now: UnixSeconds,
    ) -> Result<ClusterRecord, StateError> {
        let num_nodes = u32::try_from(info.nodes.len()).unwrap_or(u32::MAX);
        let tx = self.conn.transaction()?;
        let cluster_id = insert_cluster(&tx, name, num_nodes, None, command, now)?;
        let rec = ClusterRecord {
            name: name.to_owned(),
            cluster_id: cluster_id.clone(),
            status: ClusterStatus::Init,
            num_nodes,
            launchable: None,
            handle: None,
            resources: None,
            launched_at: now,
            last_use_at: now,
            last_use_command: command.to_owned(),
            status_updated_at: now,
            autostop: None,
            launch_attempts: Vec::new(),
            unchecked: None,
            pre_ownership: false,
        };
        record_placement(&tx, &rec, launchable, info, now)?;
        let status = if stopped {
            ClusterStatus::Stopped
        } else {
            open_interval(&tx, &cluster_id, now)?;
            ClusterStatus::Up
        };
        check(name, Some(ClusterStatus::Init), Some(status))?;
        tx.execute(
            "UPDATE clusters SET status = ?2 WHERE name = ?1",
            params![name, status.as_str()],
        )?;
        let msg = format!(
            "adopted by `{command}`: {num_nodes} x {} found {} in {}, launched outside this Sky home",
            launchable.instance_type,
            status.as_str(),
            place_of(launchable)
        );
        insert_event(&tx, &cluster_id, name, now, "adopted", &msg)?;
        tx.commit()?;
        self.require(name)
    }

    /// Moves a cluster to `to`, enforcing the transition table; leaving the running states closes
    /// the billing interval.
    pub fn set_status(
        &mut self,
        name: &str,
        to: ClusterStatus,
        now: UnixSeconds,
        why: &str,
    ) -> Result<(), StateError> {
        let rec = self.require(name)?;
        check(name, Some(rec.status), Some(to))?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE clusters SET status = ?2, status_updated_at = ?3 WHERE name = ?1",
            params![name, to.as_str(), now],
        )?;
        if to == ClusterStatus::Stopped {
            close_interval(&tx, &rec.cluster_id, now)?;
        }
        if rec.status != to {
            insert_event(&tx, &rec.cluster_id, name, now, to.as_str(), why)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes the record (the cluster is gone), keeping its history and intervals for cost reports.
    pub fn remove(&mut self, name: &str, now: UnixSeconds, why: &str) -> Result<(), StateError> {
        let rec = self.require(name)?;
        check(name, Some(rec.status), None)?;
        let tx = self.conn.transaction()?;
        close_interval(&tx, &rec.cluster_id, now)?;
        tx.execute(
            "UPDATE cluster_history SET terminated_at = ?2 WHERE cluster_id = ?1",
            params![rec.cluster_id, now],
        )?;
        tx.execute("DELETE FROM clusters WHERE name = ?1", [name])?;
        insert_event(&tx, &rec.cluster_id, name, now, "terminated", why)?;
        tx.commit()?;
        Ok(())
    }

    /// Notes that the cluster was used (a launch, an exec), which resets its idle time.
    pub fn touch(&mut self, name: &str, command: &str, now: UnixSeconds) -> Result<(), StateError> {
        let n = self.conn.execute(
            "UPDATE clusters SET last_use_at = ?2, last_use_command = ?3 WHERE name = ?1",
            params![name, now, command],
        )?;
        if n == 0 {
            Err(StateError::NotFound(name.to_owned()))
        } else {
            Ok(())
        }
    }

    pub fn set_autostop(
        &mut self,
        name: &str,
        autostop: Option<Autostop>,
        now: UnixSeconds,
    ) -> Result<(), StateError> {
        let rec = self.require(name)?;
        let (idle, down) = match autostop {
            Some(a) => (Some(i64::from(a.idle_minutes)), a.down),
            None => (None, false),
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE clusters SET autostop_idle_minutes = ?2, autostop_down = ?3 WHERE name = ?1",
            params![name, idle, down],
        )?;
        let msg = match autostop {
            Some(a) => format!(
                "autostop after {} idle minutes ({})",
                a.idle_minutes,
                if a.down { "down" } else { "stop" }
            ),
            None => "autostop cancelled".to_owned(),
        };
        insert_event(&tx, &rec.cluster_id, name, now, "autostop", &msg)?;
        tx.commit()?;
        Ok(())
    }

    pub fn add_event(
        &mut self,
        name: &str,
        kind: &str,
        message: &str,
        now: UnixSeconds,
    ) -> Result<(), StateError> {
        let rec = self.require(name)?;
        insert_event(&self.conn, &rec.cluster_id, name, now, kind, message)?;
        Ok(())
    }

    /// The history of every launch that used `name`, oldest first (kept after teardown).
    pub fn events(&self, name: &str) -> Result<Vec<ClusterEvent>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, message FROM cluster_events WHERE name = ?1 ORDER BY at, id",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok(ClusterEvent {
                at: r.get(0)?,
                kind: r.get(1)?,
                message: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every launch that ever got nodes, alive or gone, oldest first.
    pub fn cost_records(&self) -> Result<Vec<CostRecord>, StateError> {
        let mut intervals: std::collections::HashMap<
            String,
            Vec<(UnixSeconds, Option<UnixSeconds>)>,
        > = Default::default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT cluster_id, started_at, ended_at FROM up_intervals ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (id, start, end) = row?;
            intervals.entry(id).or_default().push((start, end));
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT cluster_id, name, num_nodes, cloud, region, instance_type, use_spot, hourly_price, launched_at, \
             terminated_at FROM cluster_history ORDER BY launched_at, cluster_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, f64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                cluster_id,
                name,
                num_nodes,
                cloud,
                region,
                instance_type,
                use_spot,
                hourly_price,
                launched_at,
                terminated_at,
            ) = row?;
            let cloud =
                cloud
                    .parse()
                    .map_err(|e: crate::cloud::UnknownCloud| StateError::Corrupt {
                        name: name.clone(),
                        column: "cloud",
                        message: e.to_string(),
                    })?;
            let intervals = intervals.remove(&cluster_id).unwrap_or_default();
            out.push(CostRecord {
                cluster_id,
                name,
                num_nodes,
                cloud,
                region,
                instance_type,
                use_spot,
                hourly_price,
                launched_at,
                terminated_at,
                intervals,
            });
        }
        Ok(out)
    }
}

fn check(
    name: &str,
    from: Option<ClusterStatus>,
    to: Option<ClusterStatus>,
) -> Result<(), StateError> {
    check_transition(from, to).map_err(|source| StateError::Transition {
        name: name.to_owned(),
        source,
    })
}

/// Inserts a new INIT row; its cluster id. A taken name is `AlreadyExists`.
fn insert_cluster(
    tx: &Connection,
    name: &str,
    num_nodes: u32,
    resources: Option<&ResourceChoice>,
    command: &str,
    now: UnixSeconds,
) -> Result<String, StateError> {
    let resources_json = resources
        .map(|r| {
            serde_json::to_string(&VersionedResources {
                version: RESOURCES_JSON_VERSION,
                resources: r.clone(),
            })
        })
        .transpose()
        .map_err(|e| StateError::Corrupt {
            name: name.to_owned(),
            column: "resources_json",
            message: e.to_string(),
        })?;
    let cluster_id = format!("{name}-{now}-{}", std::process::id());
    let inserted = tx.execute(
        "INSERT INTO clusters (name, cluster_id, status, num_nodes, resources_json, launched_at, last_use_at, \
         last_use_command, status_updated_at) VALUES (?1, ?2, 'INIT', ?3, ?4, ?5, ?5, ?6, ?5) ON CONFLICT DO NOTHING",
        params![name, cluster_id, num_nodes, resources_json, now, command],
    )?;
    if inserted == 0 {
        return Err(match same_name_any_case(tx, name)? {
            Some(existing) if existing != name => StateError::NameTaken {
                requested: name.to_owned(),
                existing,
            },
            _ => StateError::AlreadyExists(name.to_owned()),
        });
    }
    Ok(cluster_id)
}

/// The recorded cluster whose name equals `name` ignoring ASCII case (the exact name first).
fn same_name_any_case(conn: &Connection, name: &str) -> Result<Option<String>, StateError> {
    Ok(conn
        .query_row(
            "SELECT name FROM clusters WHERE name = ?1 COLLATE NOCASE ORDER BY name = ?1 DESC LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

/// Writes where `rec`'s nodes run into its row and its history (for cost reports).
fn record_placement(
    tx: &Connection,
    rec: &ClusterRecord,
    launchable: &Launchable,
    info: &ClusterInfo,
    now: UnixSeconds,
) -> Result<(), StateError> {
    let handle = serde_json::to_string(info).map_err(|e| StateError::Corrupt {
        name: rec.name.clone(),
        column: "handle_json",
        message: e.to_string(),
    })?;
    let (acc_name, acc_count) = launchable.accelerators.clone().unzip();
    tx.execute(
        "UPDATE clusters SET status = 'INIT', cloud = ?2, region = ?3, zone = ?4, instance_type = ?5, use_spot = ?6, \
         vcpus = ?7, memory_gib = ?8, accelerator_name = ?9, accelerator_count = ?10, hourly_price = ?11, \
         handle_json = ?12, status_updated_at = ?13 WHERE name = ?1",
        params![
            rec.name,
            launchable.cloud.as_str(),
            launchable.region,
            launchable.zone,
            launchable.instance_type,
            launchable.use_spot,
            launchable.vcpus,
            launchable.memory_gib,
            acc_name,
            acc_count,
            launchable.hourly_price,
            handle,
            now
        ],
    )?;
    tx.execute(
        "INSERT INTO cluster_history (cluster_id, name, num_nodes, cloud, region, zone, instance_type, use_spot, \
         hourly_price, launched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (cluster_id) DO UPDATE SET \
         cloud = excluded.cloud, region = excluded.region, zone = excluded.zone, instance_type = excluded.instance_type, \
         use_spot = excluded.use_spot, hourly_price = excluded.hourly_price",
        params![
            rec.cluster_id,
            rec.name,
            rec.num_nodes,
            launchable.cloud.as_str(),
            launchable.region,
            launchable.zone,
            launchable.instance_type,
            launchable.use_spot,
            launchable.hourly_price,
            rec.launched_at
        ],
    )?;
    Ok(())
}

/// `aws/us-east-1/us-east-1a`, for history lines.
fn place_of(l: &Launchable) -> String {
    match &l.zone {
        Some(z) => format!("{}/{}/{z}", l.cloud.as_str(), l.region),
        None => format!("{}/{}", l.cloud.as_str(), l.region),
    }
}

fn insert_event(
    conn: &Connection,
    cluster_id: &str,
    name: &str,
    at: UnixSeconds,
    kind: &str,
    message: &str,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO cluster_events (cluster_id, name, at, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![cluster_id, name, at, kind, message],
    )?;
    Ok(())
}

fn open_interval(
    conn: &Connection,
    cluster_id: &str,
    now: UnixSeconds,
) -> Result<(), rusqlite::Error> {
    let open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM up_intervals WHERE cluster_id = ?1 AND ended_at IS NULL",
        [cluster_id],
        |r| r.get(0),
    )?;
    if open == 0 {
        conn.execute(
            "INSERT INTO up_intervals (cluster_id, started_at) VALUES (?1, ?2)",
            params![cluster_id, now],
        )?;
    }
    Ok(())
}

fn close_interval(
    conn: &Connection,
    cluster_id: &str,
    now: UnixSeconds,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "UPDATE up_intervals SET ended_at = MAX(started_at, ?2) WHERE cluster_id = ?1 AND ended_at IS NULL",
        params![cluster_id, now],
    )?;
    Ok(())
}

/// A row as stored, before the JSON and enum columns are decoded.
struct RawCluster {
    name: String,
    cluster_id: String,
    status: String,
    num_nodes: u32,
    cloud: Option<String>,
    region: Option<String>,
    zone: Option<String>,
    instance_type: Option<String>,
    use_spot: bool,
    vcpus: Option<f64>,
    memory_gib: Option<f64>,
    accelerator_name: Option<String>,
    accelerator_count: Option<f64>,
    hourly_price: Option<f64>,
    handle_json: Option<String>,
    resources_json: Option<String>,
    launched_at: i64,
    last_use_at: i64,
    last_use_command: String,
    status_updated_at: i64,
    autostop_idle_minutes: Option<i64>,
    autostop_down: bool,
    launch_attempts_json: Option<String>,
    unchecked_reason: Option<String>,
    pre_ownership: bool,
}

impl RawCluster {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawCluster> {
        Ok(RawCluster {
            name: r.get(0)?,
            cluster_id: r.get(1)?,
            status: r.get(2)?,
            num_nodes: r.get(3)?,
            cloud: r.get(4)?,
            region: r.get(5)?,
            zone: r.get(6)?,
            instance_type: r.get(7)?,
            use_spot: r.get(8)?,
            vcpus: r.get(9)?,
            memory_gib: r.get(10)?,
            accelerator_name: r.get(11)?,
            accelerator_count: r.get(12)?,
            hourly_price: r.get(13)?,
            handle_json: r.get(14)?,
            resources_json: r.get(15)?,
            launched_at: r.get(16)?,
            last_use_at: r.get(17)?,
            last_use_command: r.get(18)?,
            status_updated_at: r.get(19)?,
            autostop_idle_minutes: r.get(20)?,
            autostop_down: r.get(21)?,
            launch_attempts_json: r.get(22)?,
            unchecked_reason: r.get(23)?,
            pre_ownership: r.get(24)?,
        })
    }

    fn decode(self) -> Result<ClusterRecord, StateError> {
        let name = self.name;
        let corrupt = |column: &'static str, message: String| StateError::Corrupt {
            name: name.clone(),
            column,
            message,
        };
        let status = self
            .status
            .parse()
            .map_err(|e: status::UnknownStatus| corrupt("status", e.to_string()))?;
        let launchable = match (self.cloud, self.region, self.instance_type) {
            (Some(cloud), Some(region), Some(instance_type)) => Some(Launchable {
                cloud: cloud
                    .parse()
                    .map_err(|e: crate::cloud::UnknownCloud| corrupt("cloud", e.to_string()))?,
                region,
                zone: self.zone,
                instance_type,
                use_spot: self.use_spot,
                vcpus: self.vcpus.unwrap_or_default(),
                memory_gib: self.memory_gib.unwrap_or_default(),
                accelerators: self.accelerator_name.zip(self.accelerator_count),
                hourly_price: self.hourly_price.unwrap_or_default(),
            }),
            _ => None,
        };
        let handle: Option<ClusterInfo> = self
            .handle_json
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| corrupt("handle_json", e.to_string()))?;
        if let Some(h) = &handle
            && h.version > crate::provision::CLUSTER_INFO_VERSION
        {
            return Err(corrupt(
                "handle_json",
                format!("version {} is newer than this sky understands", h.version),
            ));
        }
        let resources = self
            .resources_json
            .map(|j| serde_json::from_str::<VersionedResources>(&j))
            .transpose()
            .map_err(|e| corrupt("resources_json", e.to_string()))?
            .map(|v| v.resources);
        let launch_attempts = self
            .launch_attempts_json
            .map(|j| serde_json::from_str::<VersionedAttempts>(&j))
            .transpose()
            .map_err(|e| corrupt("launch_attempts_json", e.to_string()))?
            .map(|v| v.attempts)
            .unwrap_or_default();
        Ok(ClusterRecord {
            name,
            cluster_id: self.cluster_id,
            status,
            num_nodes: self.num_nodes,
            launchable,
            handle,
            resources,
            launched_at: self.launched_at,
            last_use_at: self.last_use_at,
            last_use_command: self.last_use_command,
            status_updated_at: self.status_updated_at,
            autostop: self.autostop_idle_minutes.map(|s| Autostop {
                idle_minutes: u32::try_from(s).unwrap_or_default(),
                down: self.autostop_down,
            }),
            launch_attempts,
            unchecked: self.unchecked_reason,
            pre_ownership: self.pre_ownership,
        })
    }
}

#[cfg(test)]
mod tests;
