//! `launch`, `exec` and `start` through the facade: plan, record, provision with failover, set up
//! the head agent, sync the workdir and (launch only, as SkyPilot) the local `file_mounts`, run
//! `setup`, submit the job and follow its logs.
//!
//! Order matters for crash safety: the record exists (INIT) before any provider call, nodes are
//! recorded as soon as they exist, and UP is written only once the agent is configured. What this
//! module does not do: rank catalog offers (the optimizer does) or schedule jobs (the agent does).

use super::fit::{fits, option_for};
use super::views::RunOutcome;
use super::{Sky, SkyError, stage};
use crate::cloud::CloudId;
use crate::events::{Event, EventSink, Stage};
use crate::jobs::NodeCapacity;
use crate::jobs::wire::ClusterConfig;
use crate::provision::failover::{self, Blocklist, FailoverError, FailoverOptions};
use crate::provision::{
    ClusterInfo, LaunchAttempt, Launchable, NodeSettings, Provider, ProvisionError,
    ProvisionErrorKind, ProvisionRequest, owner,
};
use crate::state::{Autostop, ClusterRecord, ClusterStatus};
use crate::task::{AutostopRequest, Task};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
    /// `-c NAME`; a name is generated when absent.
    pub cluster_name: Option<String>,
    /// Submit the job and return without following its logs.
    pub detach_run: bool,
    /// Tear the cluster down once the job ends (with `detach_run`: the agent does it when idle).
    pub down: bool,
    /// Autostop after this many idle minutes.
    pub idle_minutes: Option<u32>,
    pub retry_until_up: bool,
}

/// What a launch is about to do, for the user to confirm before anything happens.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPreview {
    pub cluster: String,
    /// The cluster that will be reused (or restarted), if the name exists.
    pub existing: Option<super::ClusterView>,
    /// Candidates best first; empty when an existing cluster is reused.
    pub candidates: Vec<Launchable>,
}

impl Sky {
    /// The disk, ports and image the task asks for on `l` (from the resources alternative `l`
    /// was chosen for; the default ones when none matches, e.g. a provider's own offer), with
    /// config.yaml's labels under the task's and gVNIC from the task's `config:` or config.yaml.
    fn node_settings(&self, task: &Task, l: &Launchable) -> NodeSettings {
        let mut settings = option_for(&task.resources, l)
            .map(|r| NodeSettings::for_region(r, &l.region))
            .unwrap_or_default();
        let defaults = &self.options.nodes;
        if let Some(labels) = defaults.labels.get(&l.cloud) {
            for (key, value) in labels {
                settings
                    .labels
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        settings.gvnic = l.cloud == CloudId::Gcp
            && task
                .config
                .gcp_enable_gvnic
                .unwrap_or(defaults.gcp_enable_gvnic);
        settings
    }

    /// Picks the cluster name and shows what `launch` would do; changes nothing.
    pub fn preview_launch(
        &self,
        task: &Task,
        opts: &LaunchOptions,
    ) -> Result<LaunchPreview, SkyError> {
        let cluster = match &opts.cluster_name {
            Some(n) => n.clone(),
            None => self.generate_name(),
        };
        self.check_new_name(&cluster)?;
        check_workdir(&cluster, task)?;
        let existing = self.db()?.get(&cluster)?;
        if let Some(rec) = &existing {
            self.check_fits(task, rec)?;
        }
        let candidates = match &existing {
            Some(rec) if rec.launchable.is_some() => Vec::new(),
            _ => self.candidates(task)?,
        };
        Ok(LaunchPreview {
            cluster,
            existing: existing.as_ref().map(super::ClusterView::from),
            candidates,
        })
    }

    /// Launches `task` (see the module docs for the steps) and, unless detached, follows the job.
    pub async fn launch(
        &self,
        task: &Task,
        opts: &LaunchOptions,
        sink: &dyn EventSink,
    ) -> Result<RunOutcome, SkyError> {
        self.launch_cancellable(task, opts, sink, &CancellationToken::new())
            .await
    }

    /// [`Sky::launch`] that stops soon after `cancel` fires, never abandoning a provider's create
    /// call: before anything exists; during failover (between attempts, or while nodes boot:
    /// they are terminated); during setup (killed on every node by the agent); then a cluster
    /// this launch created is torn down, a reused one left as it is. Once the job is submitted it
    /// is cancelled and the cluster stays UP with a consistent record.
    pub async fn launch_cancellable(
        &self,
        task: &Task,
        opts: &LaunchOptions,
        sink: &dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, SkyError> {
        let name = match &opts.cluster_name {
            Some(n) => n.clone(),
            None => self.generate_name(),
        };
        self.check_new_name(&name)?;
        check_secrets(task)?;
        check_workdir(&name, task)?;
        let wanted_autostop = launch_autostop(task, opts, self.options.default_autostop);
        if let Some(setting) = wanted_autostop {
            self.autostop_preflight(task, setting, sink).await;
        }
        let mut mounts = self.plan_file_mounts(task, &name).await?;
        let lock = self.lock(&name, sink).await?;
        if cancel.is_cancelled() {
            return Err(SkyError::Cancelled {
                cluster: name,
                torn_down: false,
                stopped_again: false,
            });
        }
        self.create_buckets(task, &name, &mut mounts, sink).await?;
        let existing = self.db()?.get(&name)?;
        let creates = existing
            .as_ref()
            .is_none_or(|r| r.status == ClusterStatus::Init);
        // A cancel puts a cluster this launch restarted back to STOPPED, as it found it.
        let resumes = existing
            .as_ref()
            .is_some_and(|r| r.status == ClusterStatus::Stopped);
        let rec = match existing {
            Some(rec) => {
                self.check_fits(task, &rec)?;
                match (rec.status, rec.launchable.is_some()) {
                    (ClusterStatus::Up, _) => {
                        sink.emit(Event::Reusing {
                            cluster: name.clone(),
                            status: rec.status,
                        });
                        rec
                    }
                    (ClusterStatus::Stopped, _) => {
                        sink.emit(Event::Reusing {
                            cluster: name.clone(),
                            status: rec.status,
                        });
                        self.resume(&rec, sink, cancel).await?
                    }
                    (ClusterStatus::Init, true) => {
                        sink.emit(Event::Reusing {
                            cluster: name.clone(),
                            status: rec.status,
                        });
                        self.reprovision(&rec, task, sink).await?
                    }
                    (ClusterStatus::Init, false) => {
                        // An earlier launch of this record was interrupted: what its attempts
                        // created goes first, or it would bill on with no record pointing at it.
                        self.clean_interrupted_attempts(&rec, sink).await?;
                        self.provision_new(task, &name, opts, sink, cancel).await?
                    }
                }
            }
            None => {
                self.db()?.create(
                    &name,
                    task.num_nodes,
                    Some(&task.resources),
                    "sky launch",
                    self.clock.now(),
                )?;
                self.provision_new(task, &name, opts, sink, cancel).await?
            }
        };
        if cancel.is_cancelled() {
            drop(lock);
            return self.cancelled(&name, creates, resumes, sink).await;
        }
        if let Some(l) = &rec.launchable
            && matches!(l.cloud, CloudId::Local | CloudId::Ssh)
            && task.resources.options.iter().any(|r| !r.labels.is_empty())
        {
            sink.emit(Event::Note {
                message: format!(
                    "resources.labels are not applied on the {} cloud: it creates no cloud \
                     resources to label",
                    l.cloud
                ),
            });
        }
        let client = self.agent_of(&rec).await?;
        self.offer_ssh(&rec, sink);
        let agent_err = |source| SkyError::Agent {
            cluster: name.clone(),
            source,
        };
        // Syncs only copy files, so a cancel may drop them mid-way: a created cluster is torn
        // down next, and a reused one gets the whole workdir again on its next launch.
        let synced = unless_cancelled(cancel, async {
            self.sync_workdir(task, &rec, sink).await?;
            self.sync_file_mounts(task, &rec, &mounts, sink).await
        })
        .await?;
        if synced.is_none() {
            let _ = client.close().await;
            drop(lock);
            return self.cancelled(&name, creates, resumes, sink).await;
        }
        if let Some(failed) = self.run_setup(task, &rec, &client, sink, cancel).await? {
            let _ = client.close().await;
            drop(lock);
            return self.finish(&name, failed, opts, sink).await;
        }
        if cancel.is_cancelled() {
            let _ = client.close().await;
            drop(lock);
            return self.cancelled(&name, creates, resumes, sink).await;
        }
        if let Some(setting) = wanted_autostop {
            self.set_launch_autostop(&rec, &client, setting, sink)
                .await?;
        }
        let job = self.submit(task, &rec, &client, "sky launch", sink).await?;
        if let (true, Some(job)) = (cancel.is_cancelled(), job) {
            // Following then reports the job CANCELLED, as a later cancel from outside would.
            client.cancel(Some(&[job])).await.map_err(agent_err)?;
        }
        // Following logs must not keep other commands (queue, cancel, stop) off the cluster.
        drop(lock);
        let outcome = self
            .follow(&name, job, rec.num_nodes, opts.detach_run, &client, sink)
            .await?;
        let _ = client.close().await;
        self.finish(&name, outcome, opts, sink).await
    }

    /// Runs `task` on an existing UP cluster: workdir sync and job submission, no setup.
    pub async fn exec(
        &self,
        name: &str,
        task: &Task,
        detach_run: bool,
        sink: &dyn EventSink,
    ) -> Result<RunOutcome, SkyError> {
        check_secrets(task)?;
        check_workdir(name, task)?;
        let lock = self.lock(name, sink).await?;
        let rec = self.require(name)?;
        if rec.status != ClusterStatus::Up {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: format!(
                    "exec needs an UP cluster (`sky start {name}` or `sky launch -c {name}`)"
                ),
            });
        }
        self.check_fits(task, &rec)?;
        let client = self.agent_of(&rec).await?;
        self.sync_workdir(task, &rec, sink).await?;
        let job = self.submit(task, &rec, &client, "sky exec", sink).await?;
        drop(lock);
        let outcome = self
            .follow(name, job, rec.num_nodes, detach_run, &client, sink)
            .await?;
        let _ = client.close().await;
        Ok(outcome)
    }

    /// Restarts a STOPPED (or half-started INIT) cluster on its recorded placement; returns the
    /// updated record, UP.
    /// Restarts a stopped cluster's nodes and brings its agent up. The start request is never
    /// abandoned (like a create, it could land after we gave up on it); a `cancel` seen once it
    /// returns stops the nodes again and records the cluster STOPPED, as it was.
    pub(super) async fn resume(
        &self,
        rec: &ClusterRecord,
        sink: &dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<ClusterRecord, SkyError> {
        let name = rec.name.as_str();
        let provider = self.provider_to_act_on(rec)?.clone();
        let Some(launchable) = rec.launchable.clone() else {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: "it has no recorded placement".into(),
            });
        };
        if rec.status != ClusterStatus::Init {
            self.db()?
                .set_status(name, ClusterStatus::Init, self.clock.now(), "starting")?;
            sink.emit(Event::ClusterStatus {
                cluster: name.into(),
                status: Some(ClusterStatus::Init),
            });
        }
        let req = ProvisionRequest {
            cluster_name: name.into(),
            num_nodes: rec.num_nodes,
            launchable: launchable.clone(),
            resume_stopped: true,
            // Restarting keeps the disks and firewall rules the nodes were created with.
            settings: NodeSettings::default(),
            launch_id: self.record_attempt(name, &launchable)?,
        };
        let provider_err = |source| SkyError::Provider {
            cluster: name.into(),
            source,
        };
        let started = stage(sink, name, Stage::Start, async {
            provider.run_instances(&req).await?;
            provider.wait_instances(name).await
        })
        .await;
        let info = match started {
            Ok(info) => info,
            // The placement is the cluster's (its disks live there), so there is nothing to fail
            // over to: put it back as it was, STOPPED, and say why it could not start.
            Err(source) if source.kind != ProvisionErrorKind::Fatal => {
                return Err(self
                    .back_to_stopped(name, provider.as_ref(), source, sink)
                    .await);
            }
            Err(source) => return Err(provider_err(source)),
        };
        self.db()?
            .set_provisioned(name, &launchable, &info, self.clock.now())?;
        if cancel.is_cancelled() {
            self.stop_nodes(
                name,
                provider.as_ref(),
                "launch cancelled while starting",
                sink,
            )
            .await?;
            return Err(SkyError::Cancelled {
                cluster: name.into(),
                torn_down: false,
                stopped_again: true,
            });
        }
        self.bring_up_or_say_what_is_left(name, sink).await
    }

    /// After a failed start: stops whatever nodes did start (some may have, on a multi-node
    /// cluster) and records the cluster STOPPED with the reason; the error to return.
    async fn back_to_stopped(
        &self,
        name: &str,
        provider: &dyn Provider,
        source: ProvisionError,
        sink: &dyn EventSink,
    ) -> SkyError {
        let why = format!("start failed: {}", source.message);
        let stopped_again = match self.stop_nodes(name, provider, &why, sink).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(cluster = name, error = %e, "stopping again after a failed start");
                false
            }
        };
        SkyError::StartFailed {
            cluster: name.into(),
            source,
            stopped_again,
        }
    }

    /// An INIT cluster whose nodes were recorded: provision the same placement again (creating
    /// what is missing), as an interrupted launch would have.
    async fn reprovision(
        &self,
        rec: &ClusterRecord,
        task: &Task,
        sink: &dyn EventSink,
    ) -> Result<ClusterRecord, SkyError> {
        let name = rec.name.as_str();
        let provider = self.provider_to_act_on(rec)?.clone();
        let Some(launchable) = rec.launchable.clone() else {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: "it has no recorded placement".into(),
            });
        };
        let req = ProvisionRequest {
            cluster_name: name.into(),
            num_nodes: rec.num_nodes,
            launchable: launchable.clone(),
            resume_stopped: false,
            settings: self.node_settings(task, &launchable),
            launch_id: self.record_attempt(name, &launchable)?,
        };
        let info = stage(sink, name, Stage::Provision, async {
            provider.run_instances(&req).await?;
            provider.wait_instances(name).await
        })
        .await
        .map_err(|source| SkyError::Provider {
            cluster: name.into(),
            source,
        })?;
        self.db()?
            .set_provisioned(name, &launchable, &info, self.clock.now())?;
        self.bring_up_or_say_what_is_left(name, sink).await
    }

    /// A cluster with an INIT record and no nodes: plan, then fail over until one placement works.
    async fn provision_new(
        &self,
        task: &Task,
        name: &str,
        opts: &LaunchOptions,
        sink: &dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<ClusterRecord, SkyError> {
        let candidates = match self
            .candidates(task)
            .and_then(|c| super::mounts::placeable(task, c))
        {
            Ok(c) => c,
            Err(e) => {
                self.remove_record(name, "launch failed: no feasible resources")?;
                return Err(e);
            }
        };
        sink.emit(Event::Plan {
            cluster: name.into(),
            num_nodes: task.num_nodes,
            candidates: candidates.clone(),
        });
        let options = FailoverOptions {
            retry_until_up: opts.retry_until_up,
            ..FailoverOptions::default()
        };
        let mut blocklist = Blocklist::default();
        sink.emit(Event::StageStarted {
            cluster: name.into(),
            stage: Stage::Provision,
        });
        let result = failover::provision_cancellable(
            &self.registry,
            name,
            task.num_nodes,
            &candidates,
            &mut blocklist,
            options,
            sink,
            &|l: &Launchable| self.node_settings(task, l),
            &|attempt: &LaunchAttempt| {
                let mut db = self
                    .db()
                    .map_err(|e| ProvisionError::fatal(e.to_string()))?;
                db.add_launch_attempt(name, attempt, self.clock.now())
                    .map_err(|e| {
                        ProvisionError::fatal(format!("cannot record the launch attempt: {e}"))
                    })
            },
            cancel,
        )
        .await;
        let (launchable, info): (Launchable, ClusterInfo) = match result {
            Ok(ok) => ok,
            Err(FailoverError::Cancelled { .. }) => {
                // Failover terminated what it was creating: nothing is left to describe.
                self.remove_record(name, "launch cancelled while provisioning")?;
                self.release_buckets_noting(name, sink).await;
                return Err(SkyError::Cancelled {
                    cluster: name.into(),
                    torn_down: true,
                    stopped_again: false,
                });
            }
            Err(source) => {
                let leaked = matches!(&source, FailoverError::Fatal { error, .. } if error.kind == ProvisionErrorKind::Fatal && error.message.contains("cleaning up failed"));
                if !leaked {
                    // Failover terminated whatever it created: the record has nothing to describe.
                    self.remove_record(name, "launch failed: provisioning failed")?;
                    self.release_buckets_noting(name, sink).await;
                }
                return Err(SkyError::Failover {
                    cluster: name.into(),
                    source,
                });
            }
        };
        sink.emit(Event::StageFinished {
            cluster: name.into(),
            stage: Stage::Provision,
        });
        self.db()?
            .set_provisioned(name, &launchable, &info, self.clock.now())?;
        self.bring_up_or_say_what_is_left(name, sink).await
    }

    /// A fresh launch id for a create (or start) call on `launchable`, written to `name`'s
    /// record before the call is made.
    fn record_attempt(&self, name: &str, launchable: &Launchable) -> Result<String, SkyError> {
        let launch_id = owner::new_launch_id().map_err(|source| SkyError::Provider {
            cluster: name.into(),
            source,
        })?;
        let attempt = LaunchAttempt {
            launch_id: launch_id.clone(),
            cloud: launchable.cloud,
            region: launchable.region.clone(),
            zone: launchable.zone.clone(),
        };
        self.db()?
            .add_launch_attempt(name, &attempt, self.clock.now())?;
        Ok(launch_id)
    }

    /// [`Self::bring_up`] on nodes this command just created or started. If that fails, the nodes
    /// are kept (to retry on, or to look at) but they bill, so the user is told so and how to end it.
    async fn bring_up_or_say_what_is_left(
        &self,
        name: &str,
        sink: &dyn EventSink,
    ) -> Result<ClusterRecord, SkyError> {
        let result = self.bring_up(name, sink).await;
        if result.is_err() {
            sink.emit(Event::Note {
                message: format!(
                    "cluster '{name}' keeps its nodes running (and billing) in INIT: `sky launch -c \
                     {name} ...` tries again on them, `sky down {name}` terminates them"
                ),
            });
        }
        result
    }

    /// Configures the head agent with the cluster's nodes and marks the cluster UP.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn bring_up(&self, name: &str, sink: &dyn EventSink) -> Result<ClusterRecord, SkyError> {
        let rec = self.require(name)?;
        let (Some(l), Some(info)) = (&rec.launchable, &rec.handle) else {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: "it has no recorded nodes".into(),
            });
        };
        let provider = self.provider_to_act_on(&rec)?.clone();
        // Remote providers give the head's agent its way to the workers here (SSH keys, homes).
        let nodes =
            provider
                .agent_nodes(name, info)
                .await
                .map_err(|source| SkyError::Provider {
                    cluster: name.into(),
                    source,
                })?;
        let autostop_hook =
            self.autostop_hook_for(provider.as_ref(), name, info, l.use_spot, &nodes);
        let config = ClusterConfig {
            cluster_name: name.into(),
            cloud: l.cloud.as_str().into(),
            region: Some(l.region.clone()),
            zone: l.zone.clone(),
            nodes,
            capacity: NodeCapacity {
                cpus: l.vcpus,
                accelerators: l.accelerators.clone().into_iter().collect(),
            },
            autostop_hook,
        };
        let client = self.agent_of(&rec).await?;
        client
            .configure(config)
            .await
            .map_err(|source| SkyError::Agent {
                cluster: name.into(),
                source,
            })?;
        let _ = client.close().await;
        self.db()?.set_status(
            name,
            ClusterStatus::Up,
            self.clock.now(),
            "nodes running and agent configured",
        )?;
        sink.emit(Event::ClusterStatus {
            cluster: name.into(),
            status: Some(ClusterStatus::Up),
        });
        self.require(name)
    }

    /// Ends a cancelled launch: a cluster it created is torn down so no node outlives the cancel,
    /// and one it restarted is stopped again.
    async fn cancelled<T>(
        &self,
        name: &str,
        created: bool,
        resumed: bool,
        sink: &dyn EventSink,
    ) -> Result<T, SkyError> {
        if created {
            self.down(name, false, sink).await?;
        } else if resumed {
            self.stop(name, sink).await?;
        }
        Err(SkyError::Cancelled {
            cluster: name.into(),
            torn_down: created,
            stopped_again: resumed && !created,
        })
    }

    fn check_fits(&self, task: &Task, rec: &ClusterRecord) -> Result<(), SkyError> {
        match &rec.launchable {
            Some(l) => fits(&task.resources, task.num_nodes, rec.num_nodes, l).map_err(|reason| {
                SkyError::DoesNotFit {
                    cluster: rec.name.clone(),
                    reason,
                }
            }),
            None => Ok(()),
        }
    }

    fn generate_name(&self) -> String {
        let user: String = std::env::var("USER")
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect::<String>()
            .to_ascii_lowercase();
        let salt = (self.clock.now() as u64
            ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9))
            & 0xffff;
        if user.is_empty() {
            format!("sky-{salt:04x}")
        } else {
            format!("sky-{salt:04x}-{user}")
        }
    }
}

/// `work`'s result, or `None` if `cancel` fired first (then `work` is dropped where it stood:
/// only for stages that are safe to stop anywhere).
pub(super) async fn unless_cancelled<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T, SkyError>>,
) -> Result<Option<T>, SkyError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(None),
        result = work => result.map(Some),
    }
}

/// Refuses a workdir that cannot be synced, before any lock is taken or anything is created:
/// a git repository (not supported yet) or a local path that is not a directory.
/// The autostop a launch asks for: `-i` first, then the task's `resources.autostop`, then
/// config.yaml's `autostop`.
fn launch_autostop(
    task: &Task,
    opts: &LaunchOptions,
    default: Option<AutostopRequest>,
) -> Option<Autostop> {
    match opts.idle_minutes {
        Some(idle_minutes) => Some(Autostop {
            idle_minutes,
            down: opts.down,
        }),
        None if opts.down && opts.detach_run => Some(Autostop {
            idle_minutes: 0,
            down: true,
        }),
        None => task
            .resources
            .autostop()
            .or(default)
            .and_then(AutostopRequest::setting),
    }
}

fn check_workdir(cluster: &str, task: &Task) -> Result<(), SkyError> {
    let Some(workdir) = &task.workdir else {
        return Ok(());
    };
    let err = |message: String| SkyError::Workdir {
        cluster: cluster.into(),
        // The path may hold a `${VAR}`-substituted secret: shown as `${KEY}`.
        workdir: task.redact(&format!("{workdir:?}")),
        message: task.redact(&message),
    };
    match workdir {
        crate::task::Workdir::Git { url, .. } => Err(err(format!(
            "git workdirs ({url}) are not supported yet; clone the repository and give its \
             local directory as `workdir` (or `--workdir DIR`)"
        ))),
        crate::task::Workdir::Local(path) => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(err(format!("{path} is not a directory"))),
            Err(e) => Err(err(format!("{path}: {e}"))),
        },
    }
}

fn check_secrets(task: &Task) -> Result<(), SkyError> {
    match task.secret_refs.first() {
        None => Ok(()),
        Some(name) => Err(SkyError::InvalidRequest(format!(
            "secret '{name}' has no value; export it and pass --secret {name}"
        ))),
    }
}
