//! Worker nodes over SSH, from the head: [`HostRuntime`] runs processes of nodes without `ssh`
//! settings locally (the head itself, every local-cloud node) with [`LocalRuntime`], and those of
//! remote workers through the `ssh` binary on the head, with the key and known-hosts file the
//! client placed there (see `sky_core::ssh::RemoteCluster::grant_worker_access`).
//!
//! A remote process is a local `ssh` child (its own process group, whose pid is the "group id"
//! the daemon tracks) running a small script on the worker: it exports the environment (sent on
//! stdin, never on a command line), starts the job under `setsid` so it leads its own group
//! there, records that group and its leader's start time in `<node dir>/procs/<local pid>` (the
//! cluster's own directory on the worker, see `sky_core::ssh::node_dir`) and waits for it.
//! Signals go over a second short `ssh` to `kill -- -<group>`, sent only while the group's leader
//! has the recorded start time (a recycled pid is never signalled); when the worker cannot be
//! reached the local `ssh` is signalled instead, so the job still ends. Keepalives make a dead worker end its `ssh` with 255
//! within ~10 s, which the daemon reports as a lost node.
//!
//! Commands to one worker share one connection (OpenSSH's ControlMaster, the socket next to the
//! worker keys in the cluster's directory on the head), so setup, each job's ranks and signals do not pay a key exchange
//! each. What this module does not do: install anything on workers or copy files to them (the
//! client does).

use std::process::Stdio;

use nix::sys::signal::Signal;
use sky_core::jobs::wire::{NodeSpec, NodeSsh};
use sky_core::ssh::node_dir::START_TIME_FN;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::runtime::{LocalRuntime, NodeRuntime, ProcessSpec};

/// Exit code of `ssh` itself when the connection failed or dropped.
pub const SSH_LOST: i32 = 255;

/// The daemon's runtime: local or SSH per node.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostRuntime {
    local: LocalRuntime,
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn ssh_command(ssh: &NodeSsh) -> std::process::Command {
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-i")
        .arg(&ssh.identity_file)
        .arg("-p")
        .arg(ssh.port.to_string())
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=3",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", ssh.known_hosts.display()));
    if let Some(path) = control_path(ssh) {
        // A new connection costs ~0.4 s of key exchange on each side (measured on loopback);
        // multiplexed ranks, setup and signals on one connection per worker cost ~10 ms. The
        // master detaches into its own session (OpenSSH's ControlPersist), so signalling a rank's
        // group never reaches it, and it exits 60 s after its last use.
        cmd.args(["-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o"])
            .arg(format!("ControlPath={path}"));
    }
    cmd.arg(format!("{}@{}", ssh.user, ssh.host));
    cmd
}

/// Where the connection to a worker is shared: next to the known-hosts file (the private `ssh`
/// directory of the cluster's directory on the head). `None` when the path could be too long for
/// a Unix socket (104 bytes on some systems, and OpenSSH adds a temporary suffix while creating
/// it): each command then connects on its own, as before.
fn control_path(ssh: &NodeSsh) -> Option<String> {
    let dir = ssh.known_hosts.parent()?.to_str()?;
    // One socket per worker login, named by a short hash of it instead of OpenSSH's 40-character
    // `%C`: the per-cluster directory is deeper than the old shared one, and with `%C` a home
    // like `/tmp/.tmpXXXXXX/home-0` already passed the limit.
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{}@{}:{}", ssh.user, ssh.host, ssh.port).bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    // The temporary name OpenSSH uses while creating the socket adds 17 characters.
    (dir.len() + "/cm-".len() + 8 + 17 < 104).then(|| format!("{dir}/cm-{h:08x}"))
}

/// The worker-side wrapper, fed to `bash -s`: environment first, then the job under its own
/// session, its group and the leader's start time recorded in `procs` under the key the head
/// passes (`SKY_PROC_KEY`).
fn wrapper(procs: &str, spec: &ProcessSpec<'_>) -> String {
    let mut text = String::new();
    for (k, v) in spec.env {
        // Names come from the task and Sky; skip anything a shell could not export.
        if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            text.push_str(&format!("export {k}={}\n", quote(v)));
        }
    }
    // The job's group leader is `setsid` itself (a background job of a non-interactive shell
    // leads no group, so setsid execs in place): its pid is the group's id, and its start time
    // does not change at exec.
    text.push_str(&format!(
        r#"procs={procs}
mkdir -p "$procs"
{START_TIME_FN}
cd "$HOME/sky_workdir" 2>/dev/null || cd "$HOME"
setsid /bin/bash -c {script} </dev/null &
pid=$!
echo "$pid $(start_time "$pid")" > "$procs/$SKY_PROC_KEY"
wait "$pid"
code=$?
rm -f "$procs/$SKY_PROC_KEY"
exit "$code"
"#,
        procs = quote(procs),
        script = quote(spec.script)
    ));
    text
}

impl HostRuntime {
    fn spawn_remote(&self, ssh: &NodeSsh, spec: &ProcessSpec<'_>) -> std::io::Result<Child> {
        let procs = procs_dir(ssh)?;
        if let Some(parent) = spec.log.parent() {
            crate::private::create_dir_all(parent)?;
        }
        if let Some(parent) = ssh.known_hosts.parent() {
            crate::private::create_dir_all(parent)?;
        }
        let log = crate::private::open_append(spec.log)?;
        let err = log.try_clone()?;
        // `exec` makes the local bash's pid ($$, expanded here) the ssh's pid: the key under which
        // the worker records the job's group, known to us as the child's id.
        let ssh_line = shell_line(&ssh_command(ssh));
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(format!(
                "exec {ssh_line} \"SKY_PROC_KEY=$$ exec /bin/bash -s\""
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn()?;
        let script = wrapper(&procs, spec);
        if let Some(mut stdin) = child.stdin.take() {
            // Closing stdin after the script is what lets the worker's `bash -s` run it to the end.
            tokio::spawn(async move {
                if let Err(e) = stdin.write_all(script.as_bytes()).await {
                    tracing::warn!(error = %e, "could not send the job script to a worker");
                }
            });
        }
        Ok(child)
    }

    /// `kill -s SIG -- -group` (a form both dash and bash take) on the worker, only while the
    /// group's leader is the process that was recorded (same start time); `None` when the worker
    /// could not be reached.
    fn signal_remote(&self, ssh: &NodeSsh, key: u32, signal: Signal) -> Option<bool> {
        let procs = procs_dir(ssh).ok()?;
        let script = format!(
            r#"{START_TIME_FN}
f={file}; [ -f "$f" ] || exit 3; read -r pg st < "$f" || exit 3
[ -n "$st" ] && [ "$(start_time "$pg")" = "$st" ] || exit 3
kill -s {sig} -- "-$pg" 2>/dev/null || exit 3"#,
            file = quote(&format!("{procs}/{key}")),
            sig = signal.as_str().trim_start_matches("SIG")
        );
        let out = ssh_command(ssh)
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        match out.code() {
            Some(0) => Some(true),
            Some(3) => Some(false),
            _ => None,
        }
    }
}

/// Where a worker's job groups are recorded: the cluster's directory there.
fn procs_dir(ssh: &NodeSsh) -> std::io::Result<String> {
    let dir = ssh.node_dir.to_str().unwrap_or_default();
    if dir.is_empty() {
        return Err(std::io::Error::other(format!(
            "worker {}@{}:{} has no cluster directory in the agent's config (configured by an \
             older client); launch the cluster again",
            ssh.user, ssh.host, ssh.port
        )));
    }
    Ok(format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        sky_core::ssh::node_dir::PROCS
    ))
}

/// A command as one shell line (each argument quoted).
fn shell_line(cmd: &std::process::Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

impl NodeRuntime for HostRuntime {
    fn spawn(&self, node: &NodeSpec, spec: &ProcessSpec<'_>) -> std::io::Result<Child> {
        match &node.ssh {
            None => self.local.spawn(node, spec),
            Some(ssh) => self.spawn_remote(ssh, spec),
        }
    }

    fn signal_group(
        &self,
        node: &NodeSpec,
        pgid: u32,
        signal: Option<Signal>,
    ) -> std::io::Result<bool> {
        let Some(ssh) = &node.ssh else {
            return self.local.signal_group(node, pgid, signal);
        };
        match signal {
            // The local ssh lives exactly as long as the worker's group leader: checking it is
            // cheap and needs no round trip.
            None => self.local.signal_group(node, pgid, None),
            Some(sig) => match self.signal_remote(ssh, pgid, sig) {
                Some(true) => Ok(true),
                // Gone on the worker, or the worker is unreachable: end the local ssh too, so the
                // daemon sees the rank end.
                Some(false) | None => self.local.signal_group(node, pgid, Some(sig)),
            },
        }
    }
}

/// A job's rank on a worker ended with `code`: a message naming the node when that means the
/// node was lost or the job killed there, for the job's record.
pub fn describe_exit(node: &NodeSpec, rank: u32, code: i32) -> Option<String> {
    let name = match &node.ssh {
        Some(ssh) => format!("node {} ({}:{})", node.ip, ssh.host, ssh.port),
        None => format!("node {}", node.ip),
    };
    if node.ssh.is_some() && code == SSH_LOST {
        return Some(format!(
            "rank {rank} lost its connection to {name}: the node died or became unreachable"
        ));
    }
    if code > 128 && code < 128 + 65 {
        return Some(format!(
            "rank {rank} on {name} was killed by signal {}",
            code - 128
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_wrapper_exports_env_quoted_and_never_puts_it_on_the_ssh_line() {
        let env = vec![
            ("SKY_NODE_RANK".to_owned(), "1".to_owned()),
            ("TOKEN".to_owned(), "it's secret".to_owned()),
            ("bad name".to_owned(), "x".to_owned()),
        ];
        let log = Path::new("/tmp/x.log");
        let spec = ProcessSpec {
            script: "echo 'hi'",
            env: &env,
            log,
        };
        let text = wrapper("/h/.sky-nodes/c-1/procs", &spec);
        assert!(text.contains("export TOKEN='it'\\''s secret'\n"), "{text}");
        assert!(!text.contains("bad name"));
        assert!(
            text.contains(r#"setsid /bin/bash -c 'echo '\''hi'\''' </dev/null &"#),
            "{text}"
        );
        let ssh = NodeSsh {
            host: "10.0.0.2".into(),
            port: 2222,
            user: "u".into(),
            identity_file: "/h/.sky-nodes/c-1/ssh/node-1.key".into(),
            known_hosts: "/h/.sky-nodes/c-1/ssh/known_hosts".into(),
            node_dir: "/w/.sky-nodes/c-1".into(),
        };
        let line = shell_line(&ssh_command(&ssh));
        assert!(
            line.contains("'u@10.0.0.2'") && line.contains("'2222'"),
            "{line}"
        );
        assert!(!line.contains("secret"));
        assert!(
            line.contains("'ControlPath=/h/.sky-nodes/c-1/ssh/cm-"),
            "{line}"
        );
        assert_eq!(procs_dir(&ssh).expect("dir"), "/w/.sky-nodes/c-1/procs");
        assert!(text.contains("procs='/h/.sky-nodes/c-1/procs'"), "{text}");
        let deep = NodeSsh {
            known_hosts: format!("/{}/known_hosts", "d".repeat(80)).into(),
            ..ssh
        };
        assert_eq!(control_path(&deep), None, "too long for a socket path");
    }

    #[test]
    fn lost_nodes_and_kills_are_named() {
        let node = NodeSpec {
            ip: "10.0.0.2".into(),
            dir: "/h".into(),
            ssh: Some(NodeSsh {
                host: "10.0.0.2".into(),
                port: 22,
                user: "u".into(),
                identity_file: "/k".into(),
                known_hosts: "/kh".into(),
                node_dir: "/w".into(),
            }),
        };
        let lost = describe_exit(&node, 1, 255).expect("lost");
        assert!(
            lost.contains("10.0.0.2:22") && lost.contains("unreachable"),
            "{lost}"
        );
        let killed = describe_exit(&node, 1, 137).expect("killed");
        assert!(killed.contains("signal 9"), "{killed}");
        assert_eq!(describe_exit(&node, 1, 1), None);
    }
}
