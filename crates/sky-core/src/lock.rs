//! Per-cluster file locks under `$SKY_HOME/locks/`, so two launches (or a launch and a down) of one
//! cluster name serialise while different clusters proceed in parallel.
//!
//! The lock is an OS advisory lock on `<locks>/<cluster>.lock` (std's `File::lock`), so it is
//! released by the kernel when the holder dies, including on `kill -9`: a crashed CLI never leaves
//! a cluster locked. What this module does not do: lock the state database (SQLite does that) or
//! decide how long to wait (callers pass the timeout).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct ClusterLock {
    // Dropping the file closes the descriptor, which releases the lock.
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "cluster '{cluster}' is busy: another sky command holds {path} (waited {waited_secs} s)"
    )]
    Busy {
        cluster: String,
        path: PathBuf,
        waited_secs: u64,
    },
    #[error("cannot create lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How often a waiting process re-tries; short enough to feel immediate, long enough to be idle.
const POLL: Duration = Duration::from_millis(100);

impl ClusterLock {
    /// Takes the lock of `cluster`, calling `on_wait` once if another process holds it, and giving
    /// up with [`LockError::Busy`] after `timeout` (a zero timeout fails at once).
    pub fn acquire(
        locks_dir: &Path,
        cluster: &str,
        timeout: Duration,
        on_wait: impl FnOnce(),
    ) -> Result<ClusterLock, LockError> {
        let path = locks_dir.join(format!("{cluster}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(locks_dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ClusterLock { _file: file, path }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            if started.elapsed() >= timeout {
                return Err(LockError::Busy {
                    cluster: cluster.to_owned(),
                    path,
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            if let Some(f) = on_wait.take() {
                f();
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_cluster_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ClusterLock::acquire(dir.path(), "c1", Duration::ZERO, || {}).expect("free");
        let mut waited = false;
        let second = ClusterLock::acquire(dir.path(), "c1", Duration::ZERO, || waited = true);
        assert!(matches!(second, Err(LockError::Busy { ref cluster, .. }) if cluster == "c1"));
        assert!(!waited, "a zero timeout gives up without announcing a wait");
        // A different cluster is independent.
        ClusterLock::acquire(dir.path(), "c2", Duration::ZERO, || {}).expect("other cluster");
        drop(first);
        ClusterLock::acquire(dir.path(), "c1", Duration::ZERO, || {}).expect("released");
    }

    #[test]
    fn waiter_is_told_and_gets_the_lock_when_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ClusterLock::acquire(dir.path(), "c", Duration::ZERO, || {}).expect("free");
        let locks = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            ClusterLock::acquire(&locks, "c", Duration::from_secs(30), || {
                tx.send(()).expect("main thread listens");
            })
            .map(|_| ())
        });
        rx.recv().expect("waiter announced that it waits");
        drop(first);
        waiter
            .join()
            .expect("no panic")
            .expect("lock obtained after release");
    }
}
