//! Autostop: which command a cluster's head agent runs when it has been idle long enough, and
//! setting or cancelling it (`sky autostop`, a launch's `-i`/`--down`).
//!
//! What this module does not do: count idleness or fire the command; the head's agent does both
//! (`sky-agent`'s `check_autostop`).

use super::{Sky, SkyError};
use crate::events::{Event, EventSink};
use crate::jobs::AutostopSetting;
use crate::jobs::client::AgentClient;
use crate::jobs::wire::AutostopHook;
use crate::provision::{ClusterInfo, Provider};
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
        if setting.is_some()
            && let Some(reason) = self.autostop_refusal(&rec)?
        {
            return Err(SkyError::InvalidRequest(reason));
        }
        let client = self.agent_of(&rec).await?;
        self.apply_autostop(name, &client, setting).await?;
        let _ = client.close().await;
        Ok(())
    }

    /// Why `rec` cannot autostop, or `None` when its head has a command to run when idle.
    fn autostop_refusal(&self, rec: &ClusterRecord) -> Result<Option<String>, SkyError> {
        let Some(info) = &rec.handle else {
            return Ok(Some(autostop_unavailable_message(rec)));
        };
        let provider = self.provider_to_act_on(rec)?.clone();
        if self
            .autostop_hook_for(provider.as_ref(), &rec.name, info)
            .is_some()
        {
            return Ok(None);
        }
        Ok(Some(if head_is_here(info) {
            "autostop needs the path of the sky program; this front end did not give one".into()
        } else {
            autostop_unavailable_message(rec)
        }))
    }

    /// Tells the head agent the setting (or its cancellation) and records it.
    async fn apply_autostop(
        &self,
        name: &str,
        client: &AgentClient,
        setting: Option<Autostop>,
    ) -> Result<(), SkyError> {
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

    /// What the head's agent runs when autostop fires: the provider's own command, else, when the
    /// head runs on this machine, this front end's `sky stop|down`. A remote head without the
    /// provider's command has none: running this machine's program there would do nothing, and
    /// the cluster would bill on while its autostop looked set.
    pub(super) fn autostop_hook_for(
        &self,
        provider: &dyn Provider,
        name: &str,
        info: &ClusterInfo,
    ) -> Option<AutostopHook> {
        provider.autostop_hook(name).or_else(|| {
            head_is_here(info)
                .then(|| self.local_autostop_hook(name))
                .flatten()
        })
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

    /// A launch's autostop, set once the task's setup is done; on a cluster that cannot autostop,
    /// a note saying so instead (the launch itself goes on).
    pub(super) async fn set_launch_autostop(
        &self,
        rec: &ClusterRecord,
        client: &AgentClient,
        setting: Autostop,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if let Some(reason) = self.autostop_refusal(rec)? {
            sink.emit(Event::Note { message: reason });
            return Ok(());
        }
        self.apply_autostop(&rec.name, client, Some(setting)).await
    }
}

/// Whether the cluster's head runs on this machine (the local cloud), where this front end's own
/// program can stop it.
fn head_is_here(info: &ClusterInfo) -> bool {
    info.nodes.first().is_some_and(|n| n.local_dir.is_some())
}

/// Why a cluster cannot autostop, and what to do instead.
fn autostop_unavailable_message(rec: &ClusterRecord) -> String {
    let cloud = rec
        .launchable
        .as_ref()
        .map_or_else(|| "this".to_owned(), |l| l.cloud.display_name().to_owned());
    let name = &rec.name;
    format!(
        "autostop is not set on '{name}': {cloud} clusters cannot stop themselves yet (their head \
         would need cloud credentials, which Sky keeps on this machine only); stop it with \
         `sky stop {name}` or `sky down {name}` when it is done"
    )
}
