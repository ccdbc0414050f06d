//! Autostop: which command a cluster's head agent runs when it has been idle long enough, and
//! setting or cancelling it (`sky autostop`, a launch's `-i`/`--down`).
//!
//! Clouds whose VMs stop (or delete themselves) on a guest OS shutdown get a hook that needs no
//! cloud credentials on the cluster: the head shuts its workers down over SSH, then itself
//! (`guest_halt_hook`). What the shutdown does is the instance's own setting, made here with the
//! client's credentials when autostop is set (`Provider::prepare_autostop`). Clouds where a
//! guest shutdown does not end billing (Azure) give the head a cloud identity instead, granted
//! what the setting needs by `prepare_autostop`, and their own hook (`Provider::autostop_hook`).
//!
//! What this module does not do: count idleness or fire the command; the head's agent does both
//! (`sky-agent`'s `check_autostop`).

use super::{Sky, SkyError};
use crate::events::{Event, EventSink};
use crate::jobs::AutostopSetting;
use crate::jobs::client::AgentClient;
use crate::jobs::wire::{AutostopHook, NodeSpec};
use crate::provision::{ClusterInfo, Provider};
use crate::ssh::session::quote;
use crate::state::{Autostop, ClusterRecord, ClusterStatus};

impl Sky {
    /// Sets (or with `None` cancels) a cluster's autostop; the head agent enforces it.
    pub async fn autostop(
        &self,
        name: &str,
        setting: Option<Autostop>,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        let _lock = self.lock(name, sink).await?;
        let rec = self.require(name)?;
        if rec.status != ClusterStatus::Up {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: format!("autostop needs an UP cluster (`sky start {name}` first)"),
            });
        }
        if let Some(a) = setting
            && let Some(reason) = self.autostop_refusal(&rec, a)?
        {
            return Err(SkyError::InvalidRequest(reason));
        }
        let client = self.agent_of(&rec).await?;
        self.apply_autostop(&rec, &client, setting).await?;
        let _ = client.close().await;
        Ok(())
    }

    /// Why `rec` cannot autostop as `setting` asks, or `None` when its head has a command to run
    /// when idle that does what it asks.
    fn autostop_refusal(
        &self,
        rec: &ClusterRecord,
        setting: Autostop,
    ) -> Result<Option<String>, SkyError> {
        let Some(info) = &rec.handle else {
            return Ok(Some(autostop_unavailable_message(rec)));
        };
        let provider = self.provider_to_act_on(rec)?.clone();
        if provider.autostop_hook(&rec.name, info).is_some() {
            return Ok(None);
        }
        if head_is_here(info) {
            return Ok(self.options.sky_program.is_none().then(|| {
                "autostop needs the path of the sky program; this front end did not give one".into()
            }));
        }
        let spot = rec.launchable.as_ref().is_some_and(|l| l.use_spot);
        let shutdown = provider.guest_shutdown(spot);
        let name = &rec.name;
        let cloud = provider.cloud().display_name();
        Ok(match (setting.down, shutdown.stops, shutdown.deletes) {
            (false, true, _) | (true, _, true) => None,
            (false, false, true) => Some(format!(
                "autostop is not set on '{name}': its {cloud} spot instances cannot be stopped, \
                 only terminated; use `sky autostop {name} -i {} --down`",
                setting.idle_minutes
            )),
            (true, true, false) => Some(format!(
                "autostop --down is not set on '{name}': a {cloud} node that shuts itself down \
                 stops but cannot delete itself, and Sky does not yet give the cluster an \
                 identity allowed to delete it; use `sky autostop {name} -i {}` (stop when \
                 idle, which ends compute billing) and `sky down {name}` later",
                setting.idle_minutes
            )),
            _ => Some(autostop_unavailable_message(rec)),
        })
    }

    /// Tells the head agent the setting (or its cancellation) and records it.
    async fn apply_autostop(
        &self,
        rec: &ClusterRecord,
        client: &AgentClient,
        setting: Option<Autostop>,
    ) -> Result<(), SkyError> {
        let name = rec.name.as_str();
        // The instances' own shutdown behaviour first: a head that shut down before it was set
        // would stop where `--down` was asked (or delete where it no longer is).
        if !rec.handle.as_ref().is_some_and(head_is_here) {
            let provider = self.provider_to_act_on(rec)?.clone();
            provider
                .prepare_autostop(name, setting.map(|a| a.down))
                .await
                .map_err(|source| SkyError::Provider {
                    cluster: name.into(),
                    source,
                })?;
        }
        let sent = match setting {
            Some(a) => {
                client
                    .set_autostop(AutostopSetting {
                        idle_minutes: a.idle_minutes,
                        down: a.down,
                    })
                    .await
            }
            None => client.cancel_autostop().await,
        };
        sent.map_err(|source| SkyError::Agent {
            cluster: name.into(),
            source,
        })?;
        self.db()?.set_autostop(name, setting, self.clock.now())?;
        Ok(())
    }

    /// What the head's agent runs when autostop fires: the provider's own command; else, when the
    /// head runs on this machine, this front end's `sky stop|down`; else, on a cloud whose VMs
    /// stop on a guest shutdown, the head shutting down `nodes` (the agent's node list, head
    /// first). Otherwise none: running this machine's program on a remote head would do nothing,
    /// and the cluster would bill on while its autostop looked set.
    pub(super) fn autostop_hook_for(
        &self,
        provider: &dyn Provider,
        name: &str,
        info: &ClusterInfo,
        spot: bool,
        nodes: &[NodeSpec],
    ) -> Option<AutostopHook> {
        if let Some(hook) = provider.autostop_hook(name, info) {
            return Some(hook);
        }
        if head_is_here(info) {
            return self.local_autostop_hook(name);
        }
        let shutdown = provider.guest_shutdown(spot);
        (shutdown.stops || shutdown.deletes).then(|| guest_halt_hook(nodes))
    }

    fn local_autostop_hook(&self, name: &str) -> Option<AutostopHook> {
        let program = self.options.sky_program.as_ref()?.display().to_string();
        // The hook runs from the agent, whose environment may differ: pin SKY_HOME explicitly.
        let home = format!("SKY_HOME={}", self.paths.sky_home().display());
        let argv = |verb: &str| {
            vec![
                "/usr/bin/env".to_owned(),
                home.clone(),
                program.clone(),
                verb.to_owned(),
                name.to_owned(),
                "-y".to_owned(),
            ]
        };
        Some(AutostopHook {
            stop: argv("stop"),
            down: argv("down"),
        })
    }

    /// Before anything is created: says, for each cloud the task may land on, when its account
    /// forbids what autostop needs there (the launch then runs without it on that cloud).
    pub(super) async fn autostop_preflight(
        &self,
        task: &crate::task::Task,
        setting: Autostop,
        sink: &dyn EventSink,
    ) {
        let clouds = self.options.allowed_clouds.iter().filter(|c| {
            task.resources
                .options
                .iter()
                .any(|r| r.placement.cloud.is_none_or(|pinned| pinned == **c))
        });
        for cloud in clouds {
            let Some(provider) = self.registry.get(*cloud) else {
                continue;
            };
            if !provider.check().enabled {
                continue;
            }
            if let Some(why) = provider.autostop_preflight(setting.down).await {
                sink.emit(Event::Note {
                    message: format!(
                        "autostop cannot be set on {} in this account: {why}; if this launch \
                         lands there, it runs without autostop",
                        cloud.display_name()
                    ),
                });
            }
        }
    }

    /// A launch's autostop, set once the task's setup is done; on a cluster that cannot autostop,
    /// a note saying so instead (the launch itself goes on).
    pub(super) async fn set_launch_autostop(
        &self,
        rec: &ClusterRecord,
        client: &AgentClient,
        setting: Autostop,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if let Some(reason) = self.autostop_refusal(rec, setting)? {
            sink.emit(Event::Note { message: reason });
            return Ok(());
        }
        match self.apply_autostop(rec, client, Some(setting)).await {
            // The cloud would not let the cluster act for itself (an account that forbids
            // granting roles): the task still runs, and the user is told autostop is off.
            Err(SkyError::Provider { source, .. }) => {
                sink.emit(Event::Note {
                    message: format!("autostop is not set on '{}': {source}", rec.name),
                });
                Ok(())
            }
            other => other,
        }
    }
}

/// Whether the cluster's head runs on this machine (the local cloud), where this front end's own
/// program can stop it.
fn head_is_here(info: &ClusterInfo) -> bool {
    info.nodes.first().is_some_and(|n| n.local_dir.is_some())
}

/// The head's autostop without cloud credentials: each worker shut down over the head's SSH (the
/// keys `grant_worker_access` placed there), all at once, then the head itself. What a shutdown
/// does (stop, or delete) is the instance's own setting. A worker that cannot be reached is named
/// in the agent's autostop log; `sky status --refresh` then shows the cluster partly stopped.
fn guest_halt_hook(nodes: &[NodeSpec]) -> AutostopHook {
    // `sudo -n` on cloud images (passwordless for the login user); plain `shutdown` where the
    // login may halt the machine itself. /usr/sbin is not on a non-login PATH.
    let halt =
        "PATH=\"$PATH:/usr/sbin:/sbin\"; sudo -n shutdown -h now 2>/dev/null || shutdown -h now";
    // Give the agent a moment to record that autostop fired before it is ended.
    let mut script = String::from("sleep 1\n");
    for (rank, node) in nodes.iter().enumerate() {
        let Some(ssh) = &node.ssh else { continue };
        script.push_str(&format!(
            "ssh -i {key} -p {port} -o BatchMode=yes -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o LogLevel=ERROR \
             -o UserKnownHostsFile={known} {login} {halt} \
             || echo {failed} >&2 &\n",
            key = quote(&ssh.identity_file.display().to_string()),
            port = ssh.port,
            known = quote(&ssh.known_hosts.display().to_string()),
            login = quote(&format!("{}@{}", ssh.user, ssh.host)),
            halt = quote(halt),
            failed = quote(&format!(
                "sky: could not shut down worker {rank} ({})",
                ssh.host
            )),
        ));
    }
    script.push_str("wait\n");
    script.push_str(halt);
    script.push('\n');
    let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
    AutostopHook {
        stop: argv.clone(),
        down: argv,
    }
}

/// Why a cluster cannot autostop, and what to do instead.
fn autostop_unavailable_message(rec: &ClusterRecord) -> String {
    let cloud = rec
        .launchable
        .as_ref()
        .map_or_else(|| "this".to_owned(), |l| l.cloud.display_name().to_owned());
    let name = &rec.name;
    format!(
        "autostop is not set on '{name}': {cloud} clusters cannot stop themselves yet (a guest \
         shutdown does not end their billing, and Sky does not yet give the cluster an identity \
         allowed to stop it); stop it with `sky stop {name}` or `sky down {name}` when it is done"
    )
}
