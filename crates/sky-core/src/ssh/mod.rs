//! SSH to remote nodes, for every provider whose nodes are reachable by SSH (the `ssh` node-pool
//! cloud today, the clouds' VMs next): the user's key ([`keys`]), host keys per cluster
//! ([`known_hosts`]), one russh connection per node with many channels ([`session`]), workdir
//! upload as a streamed tar ([`sync`], [`archive`]), node pools ([`pools`]), each cluster's own
//! directory on its nodes ([`node_dir`]), connection reuse within a process ([`cache`]), OpenSSH
//! configs for `ssh CLUSTER` ([`client_config`]) and
//! the cluster-level entry point [`RemoteCluster`]
//! ([`remote`]): install and reach the head's `sky-agent`, give it access to the workers, sync
//! workdirs, release the nodes.
//!
//! What this module does not do: create machines (providers do), run jobs (the head's agent
//! does, reaching workers with its own SSH), or decide which node is the head (rank 0 is).

pub mod archive;
pub mod cache;
pub mod client_config;
pub mod keys;
pub mod known_hosts;
pub mod node_dir;
pub mod pools;
pub mod remote;
pub mod session;
pub mod sync;
pub mod vms;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use remote::RemoteCluster;
pub use session::SshSession;

/// How to reach one node: address, port, login and key, optionally through a jump host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// A private key file; `None` means Sky's own key (`$SKY_HOME/ssh/sky-key`).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// A bastion to tunnel through (a direct-tcpip channel on the jump host's connection).
    #[serde(default)]
    pub jump: Option<Box<SshTarget>>,
    /// A command whose stdin and stdout are the connection, as OpenSSH's `ProxyCommand`
    /// (`ssh_proxy_command` in config.yaml); `%h`, `%p` and `%r` are this target's address,
    /// port and login, `%%` a percent sign.
    #[serde(default)]
    pub proxy_command: Option<String>,
}

impl SshTarget {
    /// The proxy command with OpenSSH's `%h`, `%p`, `%r` and `%%` replaced for this target.
    pub fn proxy_command_line(&self) -> Option<String> {
        let template = self.proxy_command.as_deref()?;
        let mut out = String::with_capacity(template.len() + 16);
        let mut chars = template.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('h') => out.push_str(&self.host),
                Some('p') => out.push_str(&self.port.to_string()),
                Some('r') => out.push_str(&self.user),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        Some(out)
    }

    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> SshTarget {
        SshTarget {
            host: host.into(),
            port,
            user: user.into(),
            identity_file: None,
            jump: None,
            proxy_command: None,
        }
    }
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// How patient connecting is. The defaults wait up to 2 minutes for a fresh VM's sshd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Give up on a node after retrying this long.
    pub total_wait: Duration,
    /// One attempt (TCP + key exchange + auth) may take this long.
    pub attempt_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            total_wait: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(15),
        }
    }
}

impl ConnectOptions {
    /// The defaults, with `total_wait` overridden by `SKY_SSH_CONNECT_TIMEOUT_SECS` when set
    /// (tests and slow networks).
    pub fn from_env() -> ConnectOptions {
        let mut opts = ConnectOptions::default();
        if let Some(secs) = std::env::var("SKY_SSH_CONNECT_TIMEOUT_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            opts.total_wait = Duration::from_secs(secs);
            opts.attempt_timeout = opts.attempt_timeout.min(Duration::from_secs(secs.max(1)));
        }
        opts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSH key {path}: {message}")]
    Key { path: String, message: String },
    #[error(
        "host key of {host} changed: recorded {recorded}, presented {presented} (if the machine was \
         really replaced, remove its line from {file})"
    )]
    HostKeyMismatch {
        host: String,
        recorded: String,
        presented: String,
        file: String,
    },
    #[error("{target} is unreachable after {attempts} attempts over {secs} s: {last}")]
    Unreachable {
        target: String,
        attempts: u32,
        secs: u64,
        last: String,
    },
    #[error("{target}: {message}")]
    Protocol { target: String, message: String },
    #[error("{target}: `{command}` exited with {code}: {stderr}")]
    Remote {
        target: String,
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("{target}: SFTP {path}: {message}")]
    Sftp {
        target: String,
        path: String,
        message: String,
    },
    #[error("{0}")]
    Local(String),
}

#[cfg(test)]
mod tests {
    use super::SshTarget;

    #[test]
    fn proxy_commands_expand_as_openssh_expands_them() {
        let mut t = SshTarget::new("10.0.0.5", 2222, "ubuntu");
        assert_eq!(t.proxy_command_line(), None);
        t.proxy_command = Some("ssh -W %h:%p %r@bastion # 100%% %x %".into());
        assert_eq!(
            t.proxy_command_line().as_deref(),
            Some("ssh -W 10.0.0.5:2222 ubuntu@bastion # 100% %x %")
        );
    }
}
