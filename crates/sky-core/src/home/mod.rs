//! Where Sky's home is by default, and how it stays apart from SkyPilot's `~/.sky`.
//!
//! Sky's default home is the platform's per-user application data directory
//! (`directories::ProjectDirs::from("dev", "sky", "sky").data_local_dir()`):
//! - Linux and other Unixes: `$XDG_DATA_HOME/sky`, i.e. `~/.local/share/sky`;
//! - macOS: `~/Library/Application Support/dev.sky.sky`;
//! - Windows: `%LOCALAPPDATA%\sky\sky\data` (local, not roaming: the database, keys and local
//!   clusters belong to this machine).
//!
//! Everything (state database, `config.yaml`, `ssh_node_pools.yaml`, keys, catalogs, local
//! clusters) lives in that one home, so `SKY_HOME` stays the single override.
//!
//! `~/.sky` is SkyPilot's home; earlier Sky versions used it too. Sky never writes there, with
//! one exception: an earlier Sky home that is *provably* Sky's ([`state_db_owner`]) is moved to
//! the new home once ([`migrate_legacy_home`]), or, when it cannot be moved yet, kept in use where
//! it is, with a notice. SkyPilot's `config.yaml` and `ssh_node_pools.yaml` reach Sky only
//! through the explicit [`import_skypilot`].
//!
//! What this module does not do: print (it returns what happened; front ends say it), or deal
//! with remote nodes' `~/.sky` directories (`ssh::remote` owns those).

mod import;
mod owner;

use std::path::{Path, PathBuf};

pub use import::{ImportError, ImportReport, ImportedFile, import_skypilot};
pub use owner::{DbOwner, state_db_owner};

use crate::config::Paths;

/// `PRAGMA application_id` of every state database Sky writes ("Sky1"), so that ownership can be
/// proven from the file's header without guessing from its schema.
pub const APPLICATION_ID: i32 = 0x536B_7931;

/// The state database's file name in a home.
pub const STATE_DB: &str = "state.db";

/// What an earlier Sky home may hold: only these entries (all written by Sky) may be moved.
/// Anything else in the directory (SkyPilot's `generated/`, `spot_jobs.db`, ...) means the
/// directory is shared, and it is left as it is.
const SKY_ENTRIES: &[&str] = &[
    "state.db",
    "state.db-wal",
    "state.db-shm",
    "state.db-journal",
    "config.yaml",
    "ssh_node_pools.yaml",
    "catalogs",
    "locks",
    "local",
    "ssh",
    "aws",
    "gcp",
    "azure",
];

/// The platform's default Sky home; `None` when the user's home directory is unknown.
pub fn default_home() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "sky", "sky").map(|d| d.data_local_dir().to_path_buf())
}

/// `~/.sky`: SkyPilot's home, and earlier Sky versions' default.
pub fn legacy_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".sky"))
}

/// Whether `dir` exists and holds anything (an empty directory counts as absent, so a home
/// directory created by something else does not hide an earlier home that should move there).
pub(crate) fn is_populated(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The default home as the process should use it now: the new home, except while an earlier
/// Sky home in `~/.sky` stays in use (it could not be moved yet, see [`LegacyHome::Kept`]). That
/// case is told apart by the application id in the state database's header, which only Sky
/// writes, so this costs a stat and a 100-byte read, never an SQLite open.
pub(crate) fn resolve_default() -> PathBuf {
    let Some(new_home) = default_home() else {
        // No home directory at all (no HOME and no passwd entry): a directory named after Sky
        // under the current one, never SkyPilot's `.sky`.
        tracing::warn!("no home directory known; Sky's home is ./sky-home (set SKY_HOME)");
        return PathBuf::from("sky-home");
    };
    match legacy_home() {
        Some(legacy) => resolve_between(&legacy, new_home),
        None => new_home,
    }
}

/// [`resolve_default`] between two given directories.
pub(crate) fn resolve_between(legacy: &Path, new_home: PathBuf) -> PathBuf {
    if !is_populated(&new_home)
        && owner::header_application_id(&legacy.join(STATE_DB)) == Some(APPLICATION_ID)
    {
        return legacy.to_path_buf();
    }
    new_home
}

/// What [`migrate_legacy_home`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyHome {
    /// The earlier home was moved to `to`; it happens once.
    Moved { from: PathBuf, to: PathBuf },
    /// The earlier home is Sky's but could not be moved now; Sky keeps using it where it is.
    Kept { path: PathBuf, reason: String },
    /// `~/.sky` belongs to SkyPilot (or to something that is not provably Sky's) and holds files
    /// `sky config import-skypilot` could copy; nothing was touched.
    SkyPilotFound { path: PathBuf, files: Vec<String> },
}

impl LegacyHome {
    /// The one line a front end shows.
    pub fn message(&self) -> String {
        match self {
            LegacyHome::Moved { from, to } => format!(
                "moved Sky's home from {} (an earlier version's place, shared with SkyPilot) to {}",
                from.display(),
                to.display()
            ),
            LegacyHome::Kept { path, reason } => format!(
                "Sky's home stays in {} for now (an earlier version's place): {reason}",
                path.display()
            ),
            LegacyHome::SkyPilotFound { path, files } => format!(
                "SkyPilot's home {} is left untouched; `sky config import-skypilot` copies its {} into Sky's home",
                path.display(),
                files.join(" and ")
            ),
        }
    }
}

/// An I/O failure while looking at the earlier home.
#[derive(Debug, thiserror::Error)]
#[error("earlier Sky home {path}: {source}")]
pub struct HomeError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Moves an earlier Sky home from `~/.sky` to the default home, once: only when `paths` uses the
/// default home (no `SKY_HOME`), the new home is absent or empty, `~/.sky/state.db` is provably
/// Sky's, and `~/.sky` holds nothing but Sky's files. Returns `None` when there is nothing to
/// say. The move is one `rename`, so racing first runs agree: the loser finds the source gone.
///
/// Kept in place (and still used) instead: a home holding other programs' files (moving Sky's
/// part would split it), one with local clusters (their agents run from paths inside it, and
/// their autostop hooks name it), and one on another file system than the new home.
pub fn migrate_legacy_home(paths: &Paths) -> Result<Option<LegacyHome>, HomeError> {
    if !paths.uses_default_home() {
        return Ok(None);
    }
    let (Some(new_home), Some(legacy)) = (default_home(), legacy_home()) else {
        return Ok(None);
    };
    migrate_between(&legacy, &new_home)
}

/// [`migrate_legacy_home`] between two given directories.
pub(crate) fn migrate_between(
    legacy: &Path,
    new_home: &Path,
) -> Result<Option<LegacyHome>, HomeError> {
    let (legacy, new_home) = (legacy.to_path_buf(), new_home.to_path_buf());
    if new_home == legacy || is_populated(&new_home) {
        return Ok(None);
    }
    let db = legacy.join(STATE_DB);
    if !db.is_file() {
        return Ok(None);
    }
    match state_db_owner(&db) {
        DbOwner::Sky => {}
        DbOwner::SkyPilot | DbOwner::Unknown(_) => {
            let files: Vec<String> = import::SKYPILOT_FILES
                .iter()
                .filter(|f| legacy.join(f).is_file())
                .map(|f| (*f).to_owned())
                .collect();
            return Ok((!files.is_empty()).then_some(LegacyHome::SkyPilotFound {
                path: legacy,
                files,
            }));
        }
    }
    let io = |source| HomeError {
        path: legacy.clone(),
        source,
    };
    // From now on the header says whose it is, so `resolve_default` keeps using it if it stays.
    owner::stamp(&db).map_err(|e| io(std::io::Error::other(e.to_string())))?;

    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(&legacy).map_err(io)? {
        let name = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !SKY_ENTRIES.contains(&name.as_str()) {
            foreign.push(name);
        }
    }
    foreign.sort();
    if !foreign.is_empty() {
        return Ok(Some(LegacyHome::Kept {
            path: legacy,
            reason: format!(
                "it also holds files Sky did not write ({}); move Sky's files to {} yourself, or set SKY_HOME",
                foreign.join(", "),
                new_home.display()
            ),
        }));
    }
    if is_populated(&legacy.join("local")) {
        return Ok(Some(LegacyHome::Kept {
            path: legacy,
            reason: format!(
                "local clusters run from it; it moves to {} on the first run after they are down",
                new_home.display()
            ),
        }));
    }
    if let Some(parent) = new_home.parent() {
        std::fs::create_dir_all(parent).map_err(|source| HomeError {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    // An empty directory in the way (created by something else) is replaced; if it is no longer
    // empty, another process got there first and the rename below says so.
    let _ = std::fs::remove_dir(&new_home);
    match std::fs::rename(&legacy, &new_home) {
        Ok(()) => Ok(Some(LegacyHome::Moved {
            from: legacy,
            to: new_home,
        })),
        // Another first run moved it a moment ago.
        Err(_) if !legacy.exists() && is_populated(&new_home) => Ok(None),
        Err(e) => Ok(Some(LegacyHome::Kept {
            reason: format!(
                "moving it to {} failed ({e}); move it yourself, or set SKY_HOME",
                new_home.display()
            ),
            path: legacy,
        })),
    }
}

#[cfg(test)]
mod tests;
