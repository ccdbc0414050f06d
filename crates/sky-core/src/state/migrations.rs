//! Numbered, forward-only schema migrations of the state database, tracked in SQLite's
//! `user_version`. A database newer than this build is refused rather than guessed at, and so is
//! one that is not Sky's (another application id, or tables without a Sky schema version).
//!
//! Rule: never edit a migration that has shipped; add the next one. What this module does not do:
//! down-migrations (restore a backup instead) or data fixes outside a migration.

use rusqlite::{Connection, TransactionBehavior};

use crate::home::APPLICATION_ID;

use super::StateError;

/// Index `i` upgrades the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: clusters, their event history, and what cost reports need after a cluster is gone.
    r#"
    CREATE TABLE clusters (
        name                    TEXT PRIMARY KEY NOT NULL,
        -- One launch of this name; survives in cluster_history after the record is gone.
        cluster_id              TEXT NOT NULL UNIQUE,
        status                  TEXT NOT NULL CHECK (status IN ('INIT', 'UP', 'STOPPED')),
        num_nodes               INTEGER NOT NULL CHECK (num_nodes >= 1),
        -- Where it landed; NULL until provisioning picked a candidate.
        cloud                   TEXT,
        region                  TEXT,
        zone                    TEXT,
        instance_type           TEXT,
        use_spot                INTEGER NOT NULL DEFAULT 0,
        vcpus                   REAL,
        memory_gib              REAL,
        accelerator_name        TEXT,
        accelerator_count       REAL,
        -- USD per hour for one node.
        hourly_price            REAL,
        -- Versioned JSON: {"version":1,"nodes":[...]}.
        handle_json             TEXT,
        -- Versioned JSON: {"version":1,"resources":{...}} (the task's request).
        resources_json          TEXT,
        launched_at             INTEGER NOT NULL,
        last_use_at             INTEGER NOT NULL,
        last_use_command        TEXT NOT NULL DEFAULT '',
        status_updated_at       INTEGER NOT NULL,
        autostop_idle_minutes   INTEGER,
        autostop_down           INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE TABLE cluster_events (
        id          INTEGER PRIMARY KEY,
        cluster_id  TEXT NOT NULL,
        name        TEXT NOT NULL,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        message     TEXT NOT NULL
    ) STRICT;
    CREATE INDEX cluster_events_by_name ON cluster_events (name, at);

    CREATE TABLE cluster_history (
        cluster_id      TEXT PRIMARY KEY NOT NULL,
        name            TEXT NOT NULL,
        num_nodes       INTEGER NOT NULL,
        cloud           TEXT NOT NULL,
        region          TEXT NOT NULL,
        zone            TEXT,
        instance_type   TEXT NOT NULL,
        use_spot        INTEGER NOT NULL,
        hourly_price    REAL NOT NULL,
        launched_at     INTEGER NOT NULL,
        terminated_at   INTEGER
    ) STRICT;

    -- Periods when the nodes were running (billed): opened when nodes are provisioned or resumed,
    -- closed on stop or teardown.
    CREATE TABLE up_intervals (
        id          INTEGER PRIMARY KEY,
        cluster_id  TEXT NOT NULL REFERENCES cluster_history (cluster_id),
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER
    ) STRICT;
    CREATE INDEX up_intervals_by_cluster ON up_intervals (cluster_id);
    "#,
    // 2: cluster names are unique regardless of case, because the places a name lands are not
    // case-sensitive everywhere (Azure resource groups; files on macOS and Windows). The index
    // makes the check atomic: of two processes creating `Dev` and `dev`, one insert fails. Homes
    // that already hold such a pair keep both records (marked `name_clash`, outside the index)
    // rather than fail to open; only new names are held to the rule.
    r#"
    ALTER TABLE clusters ADD COLUMN name_clash INTEGER NOT NULL DEFAULT 0;
    UPDATE clusters SET name_clash = 1 WHERE EXISTS (
        SELECT 1 FROM clusters AS older
        WHERE older.name = clusters.name COLLATE NOCASE AND older.rowid < clusters.rowid
    );
    CREATE UNIQUE INDEX clusters_name_nocase ON clusters (name COLLATE NOCASE)
        WHERE name_clash = 0;
    "#,
    // 3: ownership. `home` holds this Sky home's owner id, drawn once here (SQLite's randomblob
    // is seeded from the OS), which tags everything the home creates in a cloud. Each cluster
    // keeps every create attempt's launch id and destination (versioned JSON, written before
    // the create call), and why the last refresh could not check it (NULL: it could).
    r#"
    CREATE TABLE home (
        key     TEXT PRIMARY KEY NOT NULL,
        value   TEXT NOT NULL
    ) STRICT;
    INSERT INTO home (key, value) VALUES ('owner_id', lower(hex(randomblob(8))));
    ALTER TABLE clusters ADD COLUMN launch_attempts_json TEXT;
    ALTER TABLE clusters ADD COLUMN unchecked_reason TEXT;
    -- Clusters a cloud holds from before these tags: their resources carry no owner id, so
    -- nothing proves which are this home's (see `ClusterRecord::pre_ownership`).
    ALTER TABLE clusters ADD COLUMN pre_ownership INTEGER NOT NULL DEFAULT 0;
    UPDATE clusters SET pre_ownership = 1 WHERE cloud IS NULL OR cloud IN ('aws', 'gcp', 'azure');
    "#,
    // 4: buckets Sky created for storage objects, and which clusters use them (by name: the
    // links of a cluster go with its record at `down`). `persistent` is the last launch's word:
    // a `persistent: false` bucket is deleted when its last user goes down. Not named `storage`:
    // that is SkyPilot's table, and telling the two databases apart relies on it.
    r#"
    CREATE TABLE buckets (
        name            TEXT PRIMARY KEY NOT NULL,
        store           TEXT NOT NULL,
        region          TEXT NOT NULL,
        persistent      INTEGER NOT NULL,
        sources_json    TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        last_used_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE bucket_users (
        bucket      TEXT NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
        cluster     TEXT NOT NULL,
        PRIMARY KEY (bucket, cluster)
    ) STRICT;
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Refuses a database that is not Sky's: another application's id, or tables without a Sky
/// schema version. Reads only, so it may run before anything (even the journal mode) is changed.
pub fn check_owner(conn: &Connection, path_for_messages: &str) -> Result<(), StateError> {
    // The tables are read before the header: outside a transaction, another process's first
    // migration may commit between two reads, and tables seen first guarantee that the version
    // read next includes them (read the other way round, a fresh home looked foreign).
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let not_sky = |reason: String| StateError::NotSky {
        path: path_for_messages.to_owned(),
        reason,
    };
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(not_sky(format!(
            "its application id is {application_id:#x}, Sky's is {APPLICATION_ID:#x}"
        )));
    }
    if current == 0 && !tables.is_empty() {
        // SkyPilot's state.db is the usual one: same file name, its own `clusters` table.
        return Err(not_sky(format!(
            "it has tables ({}) but no Sky schema version (SkyPilot's state.db looks like this)",
            tables.join(", ")
        )));
    }
    Ok(())
}

/// Brings `conn` to [`latest_version`], or refuses a newer database or one that is not Sky's.
///
/// The version is read and every migration applied inside one `BEGIN IMMEDIATE` transaction:
/// processes opening a fresh home at once take the write lock in turn (waiting on the busy
/// timeout), and each later one finds the schema already there instead of creating it again.
pub fn migrate(conn: &mut Connection, path_for_messages: &str) -> Result<(), StateError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_owner(&tx, path_for_messages)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let application_id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StateError::TooNew {
            path: path_for_messages.to_owned(),
            found: current,
            supported: latest,
        });
    }
    for sql in MIGRATIONS.iter().skip(current as usize) {
        tx.execute_batch(sql)?;
    }
    if current < latest {
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {latest}"))?;
        tracing::debug!(from = current, to = latest, "migrated state database");
    }
    if application_id == 0 {
        // Databases of earlier versions get the id too, so ownership is provable from the header.
        tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
    }
    tx.commit()?;
    Ok(())
}
