//! `ssh CLUSTER` and `sky status --ip/--endpoints`: how a person reaches a cluster from outside
//! Sky. The files are [`crate::ssh::client_config`]'s; this decides when they are written (each
//! time Sky has reached the nodes, so their host keys are pinned, and whenever a refresh sees
//! them UP), when they go (with the record), and when the `Include` line in `~/.ssh/config` is
//! added: unasked only under [`SshInclude::AddWithNotice`] (the CLI) and only for the default Sky
//! home, since a home named by `SKY_HOME` is a sandbox (a test, a script) that must not change
//! the user's own files.

use std::path::PathBuf;

use serde::Serialize;

use super::{Sky, SkyError};
use crate::cloud::CloudId;
use crate::events::{Event, EventSink};
use crate::ssh::client_config::{self, IncludeState};
use crate::ssh::known_hosts::KnownHosts;
use crate::state::{ClusterRecord, ClusterStatus};

/// Whether a launch may add the `Include` line to `~/.ssh/config` without asking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SshInclude {
    /// Add it (once; never after the user removed it) and say so: the CLI, as SkyPilot does.
    AddWithNotice,
    /// Only when asked ([`Sky::set_ssh_include`]): the desktop app asks for consent first.
    #[default]
    AskFirst,
}

/// Where `ssh` finds Sky's clusters, and whether it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshIncludeView {
    pub state: IncludeState,
    /// The user's OpenSSH config (`~/.ssh/config`).
    pub user_config: PathBuf,
    /// The directory of per-cluster configs the `Include` line names.
    pub cluster_configs: PathBuf,
}

/// How to reach one cluster from a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshAccessView {
    pub cluster: String,
    /// The head's address (public when it has one).
    pub head_ip: String,
    /// `ssh` host names, head first (`CLUSTER`, `CLUSTER-worker1`, ...); empty for clusters
    /// with no SSH (the local cloud).
    pub hosts: Vec<String>,
    /// The task's ports on the head as `ip:port` (ranges as `ip:first-last`).
    pub endpoints: Vec<String>,
    /// The cluster's OpenSSH config, when it has one.
    pub config_file: Option<PathBuf>,
    /// Why the cluster has no `ssh` hosts, when it has none.
    pub no_ssh: Option<String>,
}

fn user_home() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
}

/// The user's home, for `~/.ssh`, or why there is none.
fn require_user_home() -> Result<PathBuf, SkyError> {
    user_home().ok_or_else(|| {
        SkyError::InvalidRequest("this user has no home directory for ~/.ssh".into())
    })
}

impl Sky {
    /// Writes the OpenSSH config of `rec` when its nodes are reached over SSH; failures are
    /// logged, never fatal (`ssh CLUSTER` is a convenience beside Sky's own connection).
    pub(super) fn write_ssh_config(&self, rec: &ClusterRecord) {
        let (Some(l), Some(info)) = (&rec.launchable, &rec.handle) else {
            return;
        };
        let Some(provider) = self.registry.get(l.cloud) else {
            return;
        };
        match provider.ssh_targets(&rec.name, info) {
            None => {}
            Some(Err(e)) => tracing::debug!(cluster = %rec.name, "no ssh config: {e}"),
            Some(Ok(targets)) => {
                if let Err(e) = client_config::write(&self.paths.sky_home(), &rec.name, &targets) {
                    tracing::warn!(cluster = %rec.name, "cannot write the ssh config: {e}");
                }
            }
        }
    }

    /// After a launch reached `rec`'s nodes (which wrote its config, see `agent_of`): under
    /// [`SshInclude::AddWithNotice`] the `Include` line, with a note either way that says how
    /// to log in.
    pub(super) fn offer_ssh(&self, rec: &ClusterRecord, sink: &dyn EventSink) {
        let home = self.paths.sky_home();
        if !client_config::path(&home, &rec.name).is_file() {
            return;
        }
        let Some(user) = user_home() else { return };
        let name = &rec.name;
        let message = match client_config::include_state(&home, &user) {
            IncludeState::Included => format!("log in with `ssh {name}`"),
            IncludeState::Declined => format!(
                "log in with `ssh -F {} {name}` (or `sky config ssh --on` for plain `ssh {name}`)",
                client_config::path(&home, name).display()
            ),
            IncludeState::Absent
                if self.options.ssh_include == SshInclude::AddWithNotice
                    && self.paths.uses_default_home() =>
            {
                match client_config::add_include(&home, &user) {
                    Ok(_) => format!(
                        "log in with `ssh {name}`: Sky added an `Include` of its cluster configs \
                         at the top of {} (`sky config ssh --off` removes it)",
                        client_config::user_config(&user).display()
                    ),
                    Err(e) => format!("cannot add Sky's clusters to your ssh config: {e}"),
                }
            }
            IncludeState::Absent => format!(
                "log in with `ssh -F {} {name}`; `sky config ssh --on` makes plain `ssh {name}` \
                 work",
                client_config::path(&home, name).display()
            ),
        };
        sink.emit(Event::Note { message });
    }

    /// Removes what `ssh CLUSTER` needed once the record of `name` is gone: its config and its
    /// pinned host keys (a later cluster of the name, on a recycled address, starts fresh).
    pub(super) fn forget_ssh(&self, name: &str) {
        let home = self.paths.sky_home();
        client_config::remove(&home, name);
        KnownHosts::for_cluster(&home, name).forget();
    }

    /// Whether `~/.ssh/config` includes Sky's cluster configs.
    pub fn ssh_include(&self) -> Result<SshIncludeView, SkyError> {
        let home = self.paths.sky_home();
        let user = require_user_home()?;
        Ok(SshIncludeView {
            state: client_config::include_state(&home, &user),
            user_config: client_config::user_config(&user),
            cluster_configs: client_config::dir(&home),
        })
    }

    /// `sky config ssh --on/--off` and the app's switch: adds or removes the `Include` line
    /// (removing also keeps Sky from adding it again unasked). Every UP cluster's config is
    /// written first, so `ssh CLUSTER` works right after `--on`.
    pub fn set_ssh_include(&self, on: bool) -> Result<SshIncludeView, SkyError> {
        let home = self.paths.sky_home();
        let user = require_user_home()?;
        let result = if on {
            for rec in self.records(&[])? {
                if rec.status == ClusterStatus::Up {
                    self.write_ssh_config(&rec);
                }
            }
            client_config::add_include(&home, &user)
        } else {
            client_config::remove_include(&home, &user)
        };
        result.map_err(|e| SkyError::InvalidRequest(e.to_string()))?;
        self.ssh_include()
    }

    /// `sky status --ip/--endpoints NAME`: the head's address, the `ssh` host names and the
    /// task's ports, from the record (no provider is asked).
    pub fn ssh_access(&self, name: &str) -> Result<SshAccessView, SkyError> {
        let rec = self
            .records(&[name.to_owned()])?
            .into_iter()
            .next()
            .ok_or_else(|| crate::state::StateError::NotFound(name.to_owned()))?;
        let head = rec
            .handle
            .as_ref()
            .and_then(|info| info.head())
            .ok_or_else(|| SkyError::WrongStatus {
                cluster: rec.name.clone(),
                status: rec.status,
                hint: "it has no nodes recorded".into(),
            })?;
        let head_ip = head
            .external_ip
            .clone()
            .unwrap_or_else(|| head.internal_ip.clone());
        let ports = match (&rec.resources, &rec.launchable) {
            (Some(choice), Some(l)) => super::fit::option_for(choice, l)
                .map(|r| r.ports.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let endpoints = ports
            .iter()
            .map(|p| {
                if p.start == p.end {
                    format!("{head_ip}:{}", p.start)
                } else {
                    format!("{head_ip}:{}-{}", p.start, p.end)
                }
            })
            .collect();
        let config = client_config::path(&self.paths.sky_home(), &rec.name);
        let local = rec
            .launchable
            .as_ref()
            .is_some_and(|l| l.cloud == CloudId::Local);
        let nodes = rec.handle.as_ref().map_or(0, |i| i.nodes.len());
        let (hosts, no_ssh) = if local {
            let dir = head
                .local_dir
                .as_ref()
                .map_or_else(String::new, |d| format!(" (the head is {})", d.display()));
            (
                Vec::new(),
                Some(format!(
                    "the local cloud runs on this machine: its nodes are directories, not \
                     machines, so there is nothing to ssh into{dir}; use `sky exec {}` or a \
                     shell there",
                    rec.name
                )),
            )
        } else if config.is_file() {
            (client_config::host_names(&rec.name, nodes), None)
        } else {
            (
                Vec::new(),
                Some(format!(
                    "Sky has not reached the nodes since they came up; `sky exec {} true` does, \
                     and writes the ssh config",
                    rec.name
                )),
            )
        };
        Ok(SshAccessView {
            cluster: rec.name.clone(),
            head_ip,
            hosts,
            endpoints,
            config_file: config.is_file().then_some(config),
            no_ssh,
        })
    }
}
