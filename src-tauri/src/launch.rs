//! Launching from the window: turns the page's task and chosen candidate into a `sky-core` launch,
//! forwards its progress events through a `tauri::ipc::Channel`, and cancels it on request.
//!
//! Cancellation uses a `tokio_util` `CancellationToken` that `Sky::launch_cancellable` checks at
//! safe points between stages (never inside a provider call), so a cancel can never strand a node:
//! before provisioning nothing is created, after it the cluster this launch created is torn down,
//! once the job is submitted the job is cancelled through the agent. What this module does not do:
//! rank candidates (the optimizer did, on the comparison page) or follow logs after the launch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sky_core::CloudId;
use sky_core::api::{LaunchOptions, RunOutcome, Sky};
use sky_core::events::{Event, EventSink};
use sky_core::resources::{ResourceChoice, Resources};
use sky_core::task::Task;
use tauri::ipc::Channel;
use tokio_util::sync::CancellationToken;

use crate::error::{UiError, UiResult};

/// The comparison row the user picked; `None` in a request lets the launch choose.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Pick {
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub use_spot: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LaunchRequest {
    /// Chosen by the page, so it can cancel before the command returns.
    pub launch_id: String,
    pub yaml: String,
    pub cluster: Option<String>,
    pub pick: Option<Pick>,
}

/// A launch in flight: its token and, once submitted, the job to cancel.
#[derive(Default)]
struct Running {
    cancel: CancellationToken,
    job: Mutex<Option<(String, u64)>>,
}

/// Launches in flight by the page's launch id.
#[derive(Default)]
pub struct Launches(Mutex<HashMap<String, Arc<Running>>>);

impl Launches {
    fn start(&self, id: &str) -> UiResult<Arc<Running>> {
        let mut map = self.0.lock().map_err(|_| poisoned())?;
        if map.contains_key(id) {
            return Err(UiError::new(
                sky_core::ErrorCode::InvalidTask,
                format!("launch id '{id}' is already running"),
            ));
        }
        let running = Arc::new(Running::default());
        map.insert(id.to_owned(), running.clone());
        Ok(running)
    }

    fn finish(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    /// Whether launch `id` is still running (cancel asks before opening the facade).
    pub fn is_running(&self, id: &str) -> bool {
        self.0.lock().is_ok_and(|m| m.contains_key(id))
    }

    fn get(&self, id: &str) -> UiResult<Option<Arc<Running>>> {
        Ok(self.0.lock().map_err(|_| poisoned())?.get(id).cloned())
    }
}

fn poisoned() -> UiError {
    UiError::new(sky_core::ErrorCode::Internal, "launch registry poisoned")
}

/// Forwards every event to the page and remembers the submitted job for a later cancel.
struct ChannelSink<'a> {
    channel: &'a Channel<Event>,
    running: &'a Running,
}

impl EventSink for ChannelSink<'_> {
    fn emit(&self, event: Event) {
        if let Event::JobSubmitted { cluster, job_id } = &event
            && let Ok(mut job) = self.running.job.lock()
        {
            *job = Some((cluster.clone(), *job_id));
        }
        // A closed page must not stop the launch half-way: the cluster would be left INIT.
        if let Err(e) = self.channel.send(event) {
            tracing::debug!(error = %e, "launch progress channel closed");
        }
    }
}

/// Where the launch goes: the pick when its cloud is enabled, otherwise the local cloud (with a
/// note saying why), so the app launches without any cloud account.
pub fn place(task: &mut Task, pick: Option<&Pick>, enabled: &[CloudId]) -> Option<String> {
    match pick {
        Some(p) if enabled.contains(&p.cloud) => {
            let base = task.resources.options.first().cloned().unwrap_or_default();
            let mut option = Resources {
                instance_type: Some(p.instance_type.clone()),
                use_spot: p.use_spot,
                ..base
            };
            option.placement.cloud = Some(p.cloud);
            option.placement.region = Some(p.region.clone());
            option.placement.zone = p.zone.clone();
            task.resources = ResourceChoice {
                options: vec![option],
                ..ResourceChoice::default()
            };
            None
        }
        _ if enabled.iter().any(|c| *c != CloudId::Local) && pick.is_none() => None,
        _ => {
            let mut option = Resources::default();
            option.placement.cloud = Some(CloudId::Local);
            task.resources = ResourceChoice {
                options: vec![option],
                ..ResourceChoice::default()
            };
            Some(match pick {
                Some(p) => format!(
                    "{} is not enabled (see Credentials): launching on the local cloud instead of {} in {}",
                    p.cloud.display_name(),
                    p.instance_type,
                    p.region
                ),
                None => "no cloud account is enabled: launching on the local cloud".to_owned(),
            })
        }
    }
}

/// Runs one launch to its end, streaming events; the registry entry lives as long as the launch.
pub async fn launch(
    sky: &Sky,
    launches: &Launches,
    task: Task,
    request: &LaunchRequest,
    channel: &Channel<Event>,
) -> UiResult<RunOutcome> {
    let running = launches.start(&request.launch_id)?;
    let result = run(sky, task, request, channel, &running).await;
    launches.finish(&request.launch_id);
    result
}

async fn run(
    sky: &Sky,
    mut task: Task,
    request: &LaunchRequest,
    channel: &Channel<Event>,
    running: &Running,
) -> UiResult<RunOutcome> {
    let enabled: Vec<CloudId> = sky
        .check()
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| c.cloud)
        .collect();
    let sink = ChannelSink { channel, running };
    if let Some(message) = place(&mut task, request.pick.as_ref(), &enabled) {
        sink.emit(Event::Note { message });
    }
    let opts = LaunchOptions {
        cluster_name: request.cluster.clone().filter(|c| !c.trim().is_empty()),
        ..LaunchOptions::default()
    };
    // Fix the name first (it may be generated) so the page can show and manage the cluster.
    let preview = sky.preview_launch(&task, &opts)?;
    let opts = LaunchOptions {
        cluster_name: Some(preview.cluster),
        ..opts
    };
    Ok(sky
        .launch_cancellable(&task, &opts, &sink, &running.cancel)
        .await?)
}

/// Cancels launch `id`; `false` when no such launch is running (it already ended).
pub async fn cancel(sky: &Sky, launches: &Launches, id: &str) -> UiResult<bool> {
    let Some(running) = launches.get(id)? else {
        return Ok(false);
    };
    // Token first: a job submitted after this read is cancelled by the launch itself.
    running.cancel.cancel();
    let job = running.job.lock().map_err(|_| poisoned())?.clone();
    if let Some((cluster, job)) = job {
        let client = sky.agent(&cluster).await?;
        let result = client.cancel(Some(&[sky_core::jobs::JobId(job)])).await;
        let _ = client.close().await;
        result.map_err(|e| UiError::new(e.code(), format!("cluster '{cluster}': {e}")))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        let vocab = sky_core::task::StaticVocabulary::default();
        sky_core::task::parse_chain("run: echo hi\nresources:\n  cpus: 4+\n", "t.yaml", &vocab)
            .expect("task")
            .remove(0)
    }

    fn pick(cloud: CloudId) -> Pick {
        Pick {
            cloud,
            region: "us-central1".into(),
            zone: None,
            instance_type: "n2-standard-4".into(),
            use_spot: true,
        }
    }

    #[test]
    fn a_pick_on_an_enabled_cloud_is_pinned_exactly() {
        let mut t = task();
        let note = place(
            &mut t,
            Some(&pick(CloudId::Gcp)),
            &[CloudId::Gcp, CloudId::Local],
        );
        assert_eq!(note, None);
        let [option] = t.resources.options.as_slice() else {
            panic!("one option: {:?}", t.resources.options);
        };
        assert_eq!(option.placement.cloud, Some(CloudId::Gcp));
        assert_eq!(option.placement.region.as_deref(), Some("us-central1"));
        assert_eq!(option.instance_type.as_deref(), Some("n2-standard-4"));
        assert!(option.use_spot);
        // What the task asked for stays, so the provider still checks it.
        assert!(option.cpus.is_some());
    }

    #[test]
    fn a_pick_on_a_cloud_without_an_account_runs_locally_and_says_why() {
        let mut t = task();
        let note = place(&mut t, Some(&pick(CloudId::Gcp)), &[CloudId::Local]).expect("note");
        assert_eq!(
            note,
            "GCP is not enabled (see Credentials): launching on the local cloud instead of n2-standard-4 in us-central1"
        );
        assert_eq!(t.resources.options.len(), 1);
        assert_eq!(t.resources.options[0].placement.cloud, Some(CloudId::Local));
        assert!(t.resources.options[0].cpus.is_none());
    }

    #[test]
    fn without_a_pick_the_task_is_left_to_the_enabled_clouds() {
        let mut t = task();
        let before = t.resources.clone();
        assert_eq!(place(&mut t, None, &[CloudId::Aws, CloudId::Local]), None);
        assert_eq!(t.resources, before);
        let note = place(&mut t, None, &[CloudId::Local]).expect("note");
        assert!(note.contains("local cloud"), "{note}");
    }
}
