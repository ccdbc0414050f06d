//! Whose `state.db` is this? Sky's and SkyPilot's share a file name and a `clusters` table, so
//! the answer comes from what only one of them has: Sky's application id in the header (written
//! since this version), else Sky's schema (a `user_version`, the `cluster_events` and
//! `up_intervals` tables, `clusters.cluster_id`/`handle_json`) with none of SkyPilot's tables or
//! columns (`users`, `ssh_keys`, `clusters.handle`, `clusters.cluster_hash`, ...). Anything that
//! is not clearly one is `Unknown`, and callers leave it alone.
//!
//! Reading never changes the file: the database is opened read-only, and a WAL database whose
//! shared-memory file is absent is simply not readable that way (then it is `Unknown`).

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::APPLICATION_ID;

/// Who wrote a `state.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbOwner {
    Sky,
    SkyPilot,
    /// Neither provably; the reason says what was found.
    Unknown(String),
}

/// Tables SkyPilot's `state.db` has and Sky's never had.
const SKYPILOT_TABLES: &[&str] = &[
    "config",
    "storage",
    "users",
    "ssh_keys",
    "cluster_yaml",
    "system_config",
    "alembic_version",
];
/// Columns of SkyPilot's `clusters` table that Sky's never had.
const SKYPILOT_CLUSTER_COLUMNS: &[&str] = &["handle", "cluster_hash", "owner", "to_down"];
/// What every Sky state database has had since its first schema version.
const SKY_TABLES: &[&str] = &[
    "clusters",
    "cluster_events",
    "cluster_history",
    "up_intervals",
];
const SKY_CLUSTER_COLUMNS: &[&str] = &["cluster_id", "handle_json", "status_updated_at"];

/// The application id in an SQLite file's header, `None` when the file is absent, short or not
/// SQLite. Reads 100 bytes; SQLite keeps the id big-endian at offset 68.
pub(crate) fn header_application_id(path: &Path) -> Option<i32> {
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).ok()?;
    file.read_exact(&mut header).ok()?;
    if &header[..16] != b"SQLite format 3\0" {
        return None;
    }
    Some(i32::from_be_bytes([
        header[68], header[69], header[70], header[71],
    ]))
}

/// Decides who wrote the database at `path` without modifying it.
pub fn state_db_owner(path: &Path) -> DbOwner {
    match header_application_id(path) {
        None => return DbOwner::Unknown("not an SQLite database".into()),
        Some(APPLICATION_ID) => return DbOwner::Sky,
        Some(0) => {}
        Some(other) => return DbOwner::Unknown(format!("application id {other:#x} is not Sky's")),
    }
    match read_schema(path) {
        Ok(schema) => classify(&schema),
        Err(e) => DbOwner::Unknown(format!("unreadable: {e}")),
    }
}

struct Schema {
    user_version: i64,
    tables: Vec<String>,
    cluster_columns: Vec<String>,
}

fn read_schema(path: &Path) -> rusqlite::Result<Schema> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let user_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let tables = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('clusters')")?;
    let cluster_columns = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Schema {
        user_version,
        tables,
        cluster_columns,
    })
}

fn classify(schema: &Schema) -> DbOwner {
    let has_table = |t: &str| schema.tables.iter().any(|n| n == t);
    let has_column = |c: &str| schema.cluster_columns.iter().any(|n| n == c);
    let skypilot_marks: Vec<&str> = SKYPILOT_TABLES
        .iter()
        .copied()
        .filter(|t| has_table(t))
        .chain(
            SKYPILOT_CLUSTER_COLUMNS
                .iter()
                .copied()
                .filter(|c| has_column(c)),
        )
        .collect();
    let sky_shape = schema.user_version >= 1
        && SKY_TABLES.iter().all(|t| has_table(t))
        && SKY_CLUSTER_COLUMNS.iter().all(|c| has_column(c));
    match (sky_shape, skypilot_marks.is_empty()) {
        (true, true) => DbOwner::Sky,
        (false, false) => DbOwner::SkyPilot,
        (true, false) => DbOwner::Unknown(format!(
            "Sky's schema mixed with SkyPilot's ({})",
            skypilot_marks.join(", ")
        )),
        (false, true) => DbOwner::Unknown(format!(
            "neither Sky's nor SkyPilot's schema (tables: {})",
            if schema.tables.is_empty() {
                "none".to_owned()
            } else {
                schema.tables.join(", ")
            }
        )),
    }
}

/// Writes Sky's application id into a database already proven Sky's, and checkpoints the WAL so
/// the id reaches the main file's header (which is what [`header_application_id`] reads).
pub(crate) fn stamp(path: &Path) -> rusqlite::Result<()> {
    if header_application_id(path) == Some(APPLICATION_ID) {
        return Ok(());
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}
