//! How the agent starts and signals a process on node k of its cluster: the [`NodeRuntime`] trait,
//! and [`LocalRuntime`] for nodes that are directories on this machine (the local cloud).
//!
//! A remote-host runtime (SSH to worker nodes) implements the same trait later; the daemon only
//! ever talks to the trait. Not here: deciding what to run or when (the daemon) and environment
//! construction ([`crate::env`]).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sky_core::jobs::WORKDIR_NAME;
use sky_core::jobs::wire::NodeSpec;
use tokio::process::{Child, Command};

/// What to run on one node.
#[derive(Debug)]
pub struct ProcessSpec<'a> {
    /// Shell text for `bash -c`.
    pub script: &'a str,
    /// Added to the allow-listed base environment (`sky_core::jobs::inherit::for_jobs`); may
    /// hold secrets, so never logged.
    pub env: &'a [(String, String)],
    /// Both stdout and stderr are appended here (on the head node).
    pub log: &'a Path,
}

pub trait NodeRuntime: Send + Sync + std::fmt::Debug {
    /// Start the process on `node` as the leader of a new process group. The returned child's
    /// exit is the process's exit; its pid is the group id used by [`NodeRuntime::signal_group`].
    fn spawn(&self, node: &NodeSpec, spec: &ProcessSpec<'_>) -> std::io::Result<Child>;

    /// Signal every process of group `pgid` on `node`. `Ok(false)`: the group is already gone.
    /// `signal: None` only checks whether the group still exists.
    fn signal_group(
        &self,
        node: &NodeSpec,
        pgid: u32,
        signal: Option<Signal>,
    ) -> std::io::Result<bool>;
}

/// Nodes are directories on this machine; processes are children of the agent.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalRuntime;

/// Where jobs start on a node: the synced workdir when there is one, else the node directory.
pub fn working_dir(node_dir: &Path) -> PathBuf {
    let workdir = node_dir.join(WORKDIR_NAME);
    if workdir.is_dir() {
        workdir
    } else {
        node_dir.to_path_buf()
    }
}

impl NodeRuntime for LocalRuntime {
    fn spawn(&self, node: &NodeSpec, spec: &ProcessSpec<'_>) -> std::io::Result<Child> {
        if let Some(parent) = spec.log.parent() {
            crate::private::create_dir_all(parent)?;
        }
        std::fs::create_dir_all(&node.dir)?;
        let log = crate::private::open_append(spec.log)?;
        let err = log.try_clone()?;
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(spec.script)
            .current_dir(working_dir(&node.dir))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            // Its own group: cancel signals the whole tree, and signals aimed at the agent's
            // group (a terminal's Ctrl-C) do not reach jobs.
            .process_group(0)
            // Jobs outlive a daemon that is stopped or dies; restart recovery deals with them.
            .kill_on_drop(false);
        // A job starts from the allow-listed base (PATH, HOME, locale, ...), never the daemon's
        // whole environment, then gets its own variables.
        cmd.env_clear()
            .envs(sky_core::jobs::inherit::for_jobs(std::env::vars_os()));
        for (k, v) in spec.env {
            cmd.env(k, v);
        }
        cmd.spawn()
    }

    fn signal_group(
        &self,
        _node: &NodeSpec,
        pgid: u32,
        signal: Option<Signal>,
    ) -> std::io::Result<bool> {
        let Ok(raw) = i32::try_from(pgid) else {
            return Ok(false);
        };
        // Group 0/1 would mean "our own group" or init: never signal those.
        if raw <= 1 {
            return Ok(false);
        }
        match killpg(Pid::from_raw(raw), signal) {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(e) => Err(std::io::Error::from(e)),
        }
    }
}

/// A process's exit as a shell would report it: the code, or 128 + the signal number.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}
