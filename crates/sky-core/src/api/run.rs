//! The stages of a launch (and an exec) after the cluster is UP: sync the workdir and file
//! mounts, run setup on every node, submit the job and follow its logs, and `--down` at the end.
//!
//! What this module does not do: plan, provision or bring the agent up (`launch.rs` does), or
//! decide what a cancel undoes (`launch.rs` again).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::views::RunOutcome;
use super::{LaunchOptions, Sky, SkyError, stage};
use crate::events::{Event, EventSink, Stage};
use crate::jobs::client::{AgentClient, LogEvent};
use crate::jobs::wire::SetupSpec;
use crate::jobs::{JobId, JobSpec, Secrets};
use crate::state::ClusterRecord;
use crate::task::{Task, Workdir};
use tokio_util::sync::CancellationToken;

/// How often a cancelled launch repeats its setup cancel until the agent reports setup ended.
const SETUP_CANCEL_REPEAT: std::time::Duration = std::time::Duration::from_secs(2);

impl Sky {
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn sync_workdir(
        &self,
        task: &Task,
        rec: &ClusterRecord,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        let Some(workdir) = &task.workdir else {
            return Ok(());
        };
        let name = rec.name.as_str();
        // The path may hold a `${VAR}`-substituted secret: shown as `${KEY}`.
        let err = |message: String| SkyError::Workdir {
            cluster: name.into(),
            workdir: task.redact(&format!("{workdir:?}")),
            message: task.redact(&message),
        };
        let src = match workdir {
            Workdir::Local(path) => PathBuf::from(path),
            Workdir::Git { url, .. } => {
                return Err(err(format!("git workdirs ({url}) are not supported yet")));
            }
        };
        let Some(info) = &rec.handle else {
            return Err(err("the cluster has no recorded nodes".into()));
        };
        sink.emit(Event::StageStarted {
            cluster: name.into(),
            stage: Stage::SyncWorkdir,
        });
        let provider = self.provider_of(rec)?.clone();
        provider
            .sync_workdir(name, info, &src)
            .await
            .map_err(|e| err(e.message))?;
        sink.emit(Event::StageFinished {
            cluster: name.into(),
            stage: Stage::SyncWorkdir,
        });
        Ok(())
    }

    /// Places the task's `file_mounts` on every node (before setup, which may use them): local
    /// files uploaded, bucket paths copied by each node with read-only access asked for now.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn sync_file_mounts(
        &self,
        task: &Task,
        rec: &ClusterRecord,
        plan: &super::mounts::MountPlan,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if plan.is_empty() {
            return Ok(());
        }
        let name = rec.name.as_str();
        let Some(info) = &rec.handle else {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: "it has no recorded nodes".into(),
            });
        };
        let provider = self.provider_of(rec)?.clone();
        let mounts = self.node_mounts(task, plan).await?;
        for copy in &mounts.buckets {
            if let Some(caveat) = copy.access.caveat() {
                sink.emit(Event::Note {
                    message: format!("file_mounts.{}: {caveat}", task.redact(&copy.remote)),
                });
            }
        }
        stage(
            sink,
            name,
            Stage::SyncFileMounts,
            provider.sync_file_mounts(name, info, &mounts),
        )
        .await
        .map_err(|mut source| {
            // Mount paths may hold `${VAR}`-substituted secrets: shown as `${KEY}`.
            source.message = task.redact(&source.message);
            SkyError::Provider {
                cluster: name.into(),
                source,
            }
        })
    }

    /// Runs `setup` on every node; returns an outcome when it failed. When `cancel` fires, the
    /// agent kills setup on every node and this returns `None` for the caller's cancel check.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn run_setup(
        &self,
        task: &Task,
        rec: &ClusterRecord,
        client: &AgentClient,
        sink: &dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<Option<RunOutcome>, SkyError> {
        let Some(commands) = task.setup.clone() else {
            return Ok(None);
        };
        let name = rec.name.as_str();
        let agent_err = |source| SkyError::Agent {
            cluster: name.into(),
            source,
        };
        sink.emit(Event::StageStarted {
            cluster: name.into(),
            stage: Stage::Setup,
        });
        let spec = SetupSpec {
            commands,
            envs: task.envs.clone(),
            secrets: secrets_of(task),
        };
        let mut stream = client.setup(spec).await.map_err(agent_err)?;
        let mut cancel_sent = false;
        let mut repeat_at = tokio::time::Instant::now();
        loop {
            let item = tokio::select! {
                biased;
                item = stream.next() => item,
                () = cancel.cancelled(), if !cancel_sent => {
                    sink.emit(Event::Note {
                        message: format!("cancelling setup on every node of cluster '{name}'"),
                    });
                    cancel_sent = true;
                    client.cancel_setup().await.map_err(agent_err)?;
                    repeat_at = tokio::time::Instant::now() + SETUP_CANCEL_REPEAT;
                    continue;
                }
                // The cancel may have reached the agent before this setup had started its
                // processes; repeat it until setup reports its end.
                () = tokio::time::sleep_until(repeat_at), if cancel_sent => {
                    client.cancel_setup().await.map_err(agent_err)?;
                    repeat_at = tokio::time::Instant::now() + SETUP_CANCEL_REPEAT;
                    continue;
                }
            };
            let Some(item) = item else { break };
            match item.map_err(agent_err)? {
                LogEvent::Chunk(chunk) => emit_lines(sink, name, rec.num_nodes, chunk.lines),
                LogEvent::SetupEnd(_) if cancel.is_cancelled() => return Ok(None),
                LogEvent::SetupEnd(result) => {
                    if result.succeeded() {
                        sink.emit(Event::StageFinished {
                            cluster: name.into(),
                            stage: Stage::Setup,
                        });
                        return Ok(None);
                    }
                    let code = result
                        .exit_codes
                        .iter()
                        .copied()
                        .find(|c| *c != 0)
                        .unwrap_or(1);
                    sink.emit(Event::Note {
                        message: format!(
                            "setup failed on cluster '{name}' (exit codes {:?}); logs in {}",
                            result.exit_codes, result.log_dir
                        ),
                    });
                    return Ok(Some(RunOutcome {
                        cluster: name.into(),
                        job_id: None,
                        job_status: None,
                        exit_code: Some(code),
                        setup_failed: true,
                        torn_down: false,
                    }));
                }
                LogEvent::JobEnd(_) => {}
            }
        }
        Err(SkyError::Agent {
            cluster: name.into(),
            source: crate::jobs::client::ClientError::Closed {
                detail: " during setup".into(),
            },
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn submit(
        &self,
        task: &Task,
        rec: &ClusterRecord,
        client: &AgentClient,
        command: &str,
        sink: &dyn EventSink,
    ) -> Result<Option<JobId>, SkyError> {
        let name = rec.name.as_str();
        let now = self.clock.now();
        self.db()?.touch(name, command, now)?;
        let Some(run) = task.run.clone() else {
            return Ok(None);
        };
        let mut spec = JobSpec::command(run);
        spec.name = task.name.clone();
        spec.num_nodes = task.num_nodes;
        spec.envs = task.envs.clone();
        spec.secrets = secrets_of(task);
        if let Some(acc) = task
            .resources
            .options
            .first()
            .and_then(|r| r.accelerators.as_ref())
        {
            spec.demand.accelerators = BTreeMap::from([(acc.name.clone(), acc.count)]);
        }
        let job = stage(sink, name, Stage::SubmitJob, client.submit(spec))
            .await
            .map_err(|source| SkyError::Agent {
                cluster: name.into(),
                source,
            })?;
        sink.emit(Event::JobSubmitted {
            cluster: name.into(),
            job_id: job.0,
        });
        Ok(Some(job))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn follow(
        &self,
        name: &str,
        job: Option<JobId>,
        num_nodes: u32,
        detach: bool,
        client: &AgentClient,
        sink: &dyn EventSink,
    ) -> Result<RunOutcome, SkyError> {
        let mut outcome = RunOutcome {
            cluster: name.into(),
            job_id: job.map(|j| j.0),
            job_status: None,
            exit_code: None,
            setup_failed: false,
            torn_down: false,
        };
        let Some(job) = job.filter(|_| !detach) else {
            return Ok(outcome);
        };
        let agent_err = |source| SkyError::Agent {
            cluster: name.into(),
            source,
        };
        let mut stream = client
            .tail(Some(job), Vec::new(), true)
            .await
            .map_err(agent_err)?;
        while let Some(item) = stream.next().await {
            match item.map_err(agent_err)? {
                LogEvent::Chunk(chunk) => emit_lines(sink, name, num_nodes, chunk.lines),
                LogEvent::JobEnd(end) => {
                    outcome.job_status = Some(end.status.as_str().to_owned());
                    outcome.exit_code = end.exit_code.or(Some(
                        if end.status == crate::jobs::JobStatus::Succeeded {
                            0
                        } else {
                            1
                        },
                    ));
                }
                LogEvent::SetupEnd(_) => {}
            }
        }
        Ok(outcome)
    }

    /// `--down` after a followed job (or a failed setup).
    pub(super) async fn finish(
        &self,
        name: &str,
        mut outcome: RunOutcome,
        opts: &LaunchOptions,
        sink: &dyn EventSink,
    ) -> Result<RunOutcome, SkyError> {
        let job_ended = outcome.job_status.is_some() || outcome.setup_failed;
        if opts.down && job_ended {
            self.down(name, false, sink).await?;
            outcome.torn_down = true;
        }
        Ok(outcome)
    }
}

fn emit_lines(
    sink: &dyn EventSink,
    cluster: &str,
    num_nodes: u32,
    lines: Vec<crate::jobs::wire::LogLine>,
) {
    for line in lines {
        let text = if num_nodes > 1 {
            let role = if line.rank == 0 {
                "head".to_owned()
            } else {
                format!("worker{}", line.rank)
            };
            format!("({role}, rank={}) {}", line.rank, line.text)
        } else {
            line.text
        };
        sink.emit(Event::Log {
            cluster: cluster.into(),
            line: text,
        });
    }
}

fn secrets_of(task: &Task) -> Secrets {
    Secrets(
        task.secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect(),
    )
}
