//! The layout of an agent's home directory (`--home DIR`), in one place so `rpc` and `daemon`
//! agree on it. Creates nothing, except the socket's private directory
//! ([`Home::prepare_socket`]).

use std::path::{Path, PathBuf};

use sky_core::jobs::JobId;

/// Unix socket paths are limited to ~108 bytes; stay well below.
const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: &Path) -> Home {
        Home {
            dir: dir.to_path_buf(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("jobs.db")
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join("agent.lock")
    }

    pub fn pid(&self) -> PathBuf {
        self.dir.join("agent.pid")
    }

    pub fn agent_log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn job_logs(&self, job: JobId) -> PathBuf {
        self.logs().join(job.to_string())
    }

    /// The daemon's socket: in the home when the path is short enough, else in a private
    /// per-user directory of the temp dir (`sky-agent-<uid>`, 0700, owner checked by
    /// [`Home::prepare_socket`]) under a name derived from the home (deep cluster paths would
    /// otherwise fail to bind).
    pub fn socket(&self) -> PathBuf {
        let inside = self.dir.join("agent.sock");
        if inside.as_os_str().len() < MAX_SOCKET_PATH {
            return inside;
        }
        let canonical = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        short_socket_dir().join(format!(
            "{:016x}.sock",
            fnv1a(canonical.as_os_str().as_encoded_bytes())
        ))
    }

    /// The socket's path, after making sure its directory is private to this user (created
    /// 0700 if missing; another owner or a symlink is refused). Both the daemon (before binding)
    /// and `rpc` (before connecting) call it, so neither talks through a directory another user
    /// controls.
    pub fn prepare_socket(&self) -> std::io::Result<PathBuf> {
        let socket = self.socket();
        if let Some(dir) = socket.parent() {
            crate::private::ensure_private_dir(dir)?;
        }
        Ok(socket)
    }
}

/// `$TMPDIR/sky-agent-<uid>`: per user, so two users' agents never share it.
fn short_socket_dir() -> PathBuf {
    std::env::temp_dir().join(format!("sky-agent-{}", nix::unistd::geteuid().as_raw()))
}

/// A stable hash (unlike `DefaultHasher`, whose output may change between Rust releases while an
/// old daemon still listens).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_homes_get_a_short_socket() {
        let short = Home::new(Path::new("/tmp/a"));
        assert_eq!(short.socket(), Path::new("/tmp/a/agent.sock"));
        let long = Home::new(&PathBuf::from(format!("/tmp/{}", "x".repeat(120))));
        let sock = long.socket();
        assert!(
            sock.as_os_str().len() < MAX_SOCKET_PATH,
            "{}",
            sock.display()
        );
        assert_eq!(sock, long.socket(), "must be stable");
        assert!(
            sock.parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("sky-agent-")),
            "{}",
            sock.display()
        );
    }
}
