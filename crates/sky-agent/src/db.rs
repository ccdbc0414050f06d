//! The agent's job database: one SQLite file in its home (WAL), forward-only numbered migrations
//! checked against `PRAGMA user_version`.
//!
//! Secrets are never stored: a job only records *whether* it had any, so that a restarted agent
//! knows a pending job lost them. This module decides nothing about state transitions; the
//! daemon does.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use sky_core::jobs::wire::ClusterConfig;
use sky_core::jobs::{AutostopSetting, JobDemand, JobId, JobRecord, JobSpec, JobStatus};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("job database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "job database {path} has schema version {found}, newer than this agent knows ({known}); use a newer sky-agent"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("creating the job database {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("job database holds an unreadable {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// Each entry moves the schema from version i to i+1. Never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON of a typed struct, see Db::get_meta
);
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT,
    status       TEXT NOT NULL CHECK (status IN
                   ('PENDING','RUNNING','SUCCEEDED','FAILED','FAILED_DRIVER','CANCELLED')),
    exit_code    INTEGER,
    message      TEXT,
    submitted_at REAL NOT NULL,
    started_at   REAL,
    ended_at     REAL,
    num_nodes    INTEGER NOT NULL,
    cpus         REAL NOT NULL,
    accelerators TEXT NOT NULL,      -- JSON object name -> count per node
    run          TEXT NOT NULL,
    envs         TEXT NOT NULL,      -- JSON object of non-secret envs
    has_secrets  INTEGER NOT NULL,
    nodes        TEXT NOT NULL,      -- JSON array of cluster node ranks, by job rank
    task_id      TEXT NOT NULL,
    log_dir      TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE job_procs (
    job_id    INTEGER NOT NULL REFERENCES jobs(id),
    rank      INTEGER NOT NULL,      -- job rank
    pid       INTEGER NOT NULL,      -- also the process group id
    exit_code INTEGER,
    PRIMARY KEY (job_id, rank)
);
"#,
    r#"
-- "<boot id>:<start ticks>" of the rank's process (crate::procid): recovery signals a recorded
-- group only while its leader is still that process. NULL: unknown, never signalled.
ALTER TABLE job_procs ADD COLUMN identity TEXT;
"#,
];

const META_CONFIG: &str = "cluster_config";
const META_AUTOSTOP: &str = "autostop";

pub struct Db {
    conn: Connection,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

const JOB_COLUMNS: &str = "id, name, status, exit_code, message, submitted_at, started_at, \
     ended_at, num_nodes, cpus, accelerators, run, envs, nodes, task_id, log_dir";

impl Db {
    /// Opens (creating and migrating if needed) the job database, retried whole while SQLite
    /// answers "busy": on a fresh file the WAL switch can fail at once without calling the busy
    /// handler when another opener is at it too.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Self::open_once(path) {
                Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Db, DbError> {
        // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the main
        // file's mode, so the job commands and envs in all three stay private.
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| DbError::Create {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        let mut conn = Connection::open(path)?;
        // First, so that even switching the journal mode waits for a concurrent opener.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The version is read and the migrations applied in one `BEGIN IMMEDIATE` transaction:
        // two openers of a fresh file (a daemon racing an `rpc` that started it) take turns, and
        // the second finds the schema made instead of creating its tables again.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(DbError::TooNew {
                path: path.display().to_string(),
                found,
                known,
            });
        }
        for sql in MIGRATIONS.iter().skip(found as usize) {
            tx.execute_batch(sql)?;
        }
        if found < known {
            tx.pragma_update(None, "user_version", known)?;
        }
        tx.commit()?;
        Ok(Db { conn })
    }

    /// Insert a PENDING job; `log_dir_for` names its log directory from its id.
    pub fn insert_job(
        &mut self,
        spec: &JobSpec,
        submitted_at: f64,
        task_id_for: impl Fn(JobId) -> String,
        log_dir_for: impl Fn(JobId) -> String,
    ) -> Result<JobId, DbError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO jobs (name, status, submitted_at, num_nodes, cpus, accelerators, run, \
             envs, has_secrets, nodes, task_id, log_dir) \
             VALUES (?1, 'PENDING', ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', '', '')",
            params![
                spec.name,
                submitted_at,
                spec.num_nodes,
                spec.demand.cpus,
                to_json(&spec.demand.accelerators),
                spec.run,
                to_json(&spec.envs),
                !spec.secrets.is_empty(),
            ],
        )?;
        let id = JobId(tx.last_insert_rowid() as u64);
        tx.execute(
            "UPDATE jobs SET task_id = ?2, log_dir = ?3 WHERE id = ?1",
            params![id.0 as i64, task_id_for(id), log_dir_for(id)],
        )?;
        tx.commit()?;
        Ok(id)
    }

    pub fn job(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
        let row = self
            .conn
            .query_row(&sql, [id.0 as i64], read_job)
            .optional()?;
        row.transpose()
    }

    /// Jobs in submission order, optionally only those in `statuses`.
    pub fn jobs(&self, statuses: &[JobStatus]) -> Result<Vec<JobRecord>, DbError> {
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs");
        if !statuses.is_empty() {
            let list: Vec<String> = statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" WHERE status IN ({})", list.join(",")));
        }
        sql.push_str(" ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], read_job)?;
        let mut jobs = Vec::new();
        for row in rows {
            jobs.push(row??);
        }
        Ok(jobs)
    }

    pub fn latest_job(&self) -> Result<Option<JobId>, DbError> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM jobs", [], |r| r.get(0))?;
        Ok(id.map(|i| JobId(i as u64)))
    }

    pub fn has_secrets(&self, id: JobId) -> Result<bool, DbError> {
        Ok(self.conn.query_row(
            "SELECT has_secrets FROM jobs WHERE id = ?1",
            [id.0 as i64],
            |r| r.get(0),
        )?)
    }

    /// PENDING → RUNNING, with the node placement and each rank's process (group) id.
    pub fn mark_running(
        &mut self,
        id: JobId,
        nodes: &[u32],
        started_at: f64,
        pids: &[(u32, u32, Option<String>)],
    ) -> Result<(), DbError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE jobs SET status = 'RUNNING', started_at = ?2, nodes = ?3 \
             WHERE id = ?1 AND status = 'PENDING'",
            params![id.0 as i64, started_at, to_json(&nodes)],
        )?;
        for (rank, pid, identity) in pids {
            tx.execute(
                "INSERT OR REPLACE INTO job_procs (job_id, rank, pid, identity) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![id.0 as i64, rank, pid, identity],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn record_exit(&self, id: JobId, rank: u32, code: i32) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE job_procs SET exit_code = ?3 WHERE job_id = ?1 AND rank = ?2",
            params![id.0 as i64, rank, code],
        )?;
        Ok(())
    }

    /// Process group ids of a job's ranks and their leaders' identities, by job rank.
    pub fn procs(&self, id: JobId) -> Result<Vec<(u32, u32, Option<String>)>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT rank, pid, identity FROM job_procs WHERE job_id = ?1 ORDER BY rank")?;
        let rows = stmt.query_map([id.0 as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Move a non-terminal job to a terminal status. A job already terminal is left alone, so a
    /// late exit cannot overwrite CANCELLED.
    pub fn finish(
        &self,
        id: JobId,
        status: JobStatus,
        exit_code: Option<i32>,
        message: Option<&str>,
        ended_at: f64,
    ) -> Result<bool, DbError> {
        debug_assert!(status.is_terminal());
        let changed = self.conn.execute(
            "UPDATE jobs SET status = ?2, exit_code = ?3, message = ?4, ended_at = ?5 \
             WHERE id = ?1 AND status IN ('PENDING','RUNNING')",
            params![id.0 as i64, status.as_str(), exit_code, message, ended_at],
        )?;
        Ok(changed > 0)
    }

    pub fn config(&self) -> Result<Option<ClusterConfig>, DbError> {
        self.get_meta(META_CONFIG, "cluster config")
    }

    pub fn set_config(&self, config: &ClusterConfig) -> Result<(), DbError> {
        self.set_meta(META_CONFIG, &to_json(config))
    }

    pub fn autostop(&self) -> Result<Option<AutostopSetting>, DbError> {
        self.get_meta(META_AUTOSTOP, "autostop setting")
    }

    pub fn set_autostop(&self, setting: Option<AutostopSetting>) -> Result<(), DbError> {
        match setting {
            Some(s) => self.set_meta(META_AUTOSTOP, &to_json(&s)),
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = ?1", [META_AUTOSTOP])?;
                Ok(())
            }
        }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<Option<T>, DbError> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        value
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| DbError::Corrupt {
                    what,
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Maps of strings and numbers always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn read_job(row: &Row<'_>) -> rusqlite::Result<Result<JobRecord, DbError>> {
    let status: String = row.get(2)?;
    let accelerators: String = row.get(10)?;
    let envs: String = row.get(12)?;
    let nodes: String = row.get(13)?;
    let id: i64 = row.get(0)?;
    let build = || -> Result<JobRecord, DbError> {
        Ok(JobRecord {
            id: JobId(id as u64),
            name: row.get(1)?,
            status: JobStatus::parse(&status).ok_or_else(|| DbError::Corrupt {
                what: "job status",
                detail: status.clone(),
            })?,
            exit_code: row.get(3)?,
            message: row.get(4)?,
            submitted_at: row.get(5)?,
            started_at: row.get(6)?,
            ended_at: row.get(7)?,
            num_nodes: row.get(8)?,
            demand: JobDemand {
                cpus: row.get(9)?,
                accelerators: from_json::<BTreeMap<String, f64>>(&accelerators, "accelerators")?,
            },
            nodes: from_json(&nodes, "node list")?,
            run: row.get(11)?,
            envs: from_json(&envs, "envs")?,
            task_id: row.get(14)?,
            log_dir: row.get(15)?,
        })
    };
    Ok(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_opens_of_a_fresh_file_all_succeed() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("jobs.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Db::open(&path).map(|_| ())
                    })
                })
                .collect();
            for opener in openers {
                opener
                    .join()
                    .expect("no panic")
                    .expect("every open succeeds");
            }
            let conn = Connection::open(&path).expect("raw");
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("version");
            assert_eq!(version, MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn migrates_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jobs.db");
        {
            let mut db = Db::open(&path).expect("open");
            let mut spec = JobSpec::command("echo hi");
            spec.secrets.0.insert("TOKEN".into(), "s3cret-value".into());
            let id = db
                .insert_job(&spec, 1.5, |id| format!("t-{id}"), |id| format!("/l/{id}"))
                .expect("insert");
            let job = db.job(id).expect("read").expect("exists");
            assert_eq!(job.status, JobStatus::Pending);
            assert_eq!(job.task_id, "t-1");
            assert!(db.has_secrets(id).expect("flag"));
            assert!(
                db.finish(id, JobStatus::Cancelled, None, None, 2.0)
                    .expect("finish")
            );
            assert!(
                !db.finish(id, JobStatus::Failed, Some(1), None, 3.0)
                    .expect("again")
            );
        }
        let bytes = std::fs::read(&path).expect("read db");
        assert!(!String::from_utf8_lossy(&bytes).contains("s3cret-value"));
        {
            let conn = Connection::open(&path).expect("raw");
            conn.pragma_update(None, "user_version", 99).expect("bump");
        }
        let err = Db::open(&path).expect_err("too new");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
