//! The daemon's in-memory state and every job state transition: submit, schedule and start,
//! process exits, cancel, restart recovery and autostop.
//!
//! The database is the record; memory holds only what must not or cannot be stored: the running
//! processes and the secrets of jobs that have not started yet. Trade-off: if the daemon dies,
//! secrets of still-pending jobs are lost, and those jobs are failed on restart with a message
//! saying to resubmit, rather than being written to disk. Not here: sockets and the wire format
//! ([`crate::server`]).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use sky_core::jobs::queue::{self, Holding, Pending};
use sky_core::jobs::wire::{ClusterConfig, NodeSpec, WireError, WireErrorKind};
use sky_core::jobs::{AutostopSetting, JobId, JobRecord, JobSpec, JobStatus, Secrets};
use tokio::sync::{Mutex, Notify};

use crate::db::{Db, DbError};
use crate::env::{JobEnv, task_id};
use crate::paths::Home;
use crate::runtime::{NodeRuntime, ProcessSpec, exit_code};

/// Knobs read once at daemon start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Length of one autostop "minute". 60 s, except in tests (`SKY_AGENT_IDLE_UNIT_SECS`).
    pub idle_unit: Duration,
    /// Time between SIGTERM and SIGKILL when cancelling (`SKY_AGENT_KILL_GRACE_SECS`, default 5).
    pub kill_grace: Duration,
}

impl Settings {
    pub fn from_env() -> Settings {
        let secs = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(Duration::from_secs_f64(default))
        };
        Settings {
            idle_unit: secs("SKY_AGENT_IDLE_UNIT_SECS", 60.0),
            kill_grace: secs("SKY_AGENT_KILL_GRACE_SECS", 5.0),
        }
    }
}

pub type Shared = Arc<Mutex<Agent>>;

/// A job rank's process group on its node.
pub type ProcessGroup = (NodeSpec, u32);

#[derive(Debug)]
struct RunningJob {
    /// By job rank.
    nodes: Vec<NodeSpec>,
    pgids: Vec<u32>,
    exits: Vec<Option<i32>>,
    cancel_requested: bool,
    /// Why the first failing rank failed, when that names a node (lost, killed).
    failure: Option<String>,
}

#[derive(Debug)]
pub struct Agent {
    pub home: Home,
    pub settings: Settings,
    pub changed: Arc<Notify>,
    db: Db,
    runtime: Arc<dyn NodeRuntime>,
    config: Option<ClusterConfig>,
    autostop: Option<AutostopSetting>,
    autostop_fired: bool,
    running: HashMap<JobId, RunningJob>,
    secrets: HashMap<JobId, Secrets>,
    last_activity: Instant,
    /// Setups in progress count as activity for autostop.
    pub active_setups: usize,
    /// Process groups of the setups in progress, keyed by setup run, so `cancel_setup` and
    /// `shutdown` can kill them on every node.
    pub setup_groups: HashMap<u64, Vec<(NodeSpec, u32)>>,
    /// Key of the next setup run in `setup_groups`.
    pub next_setup: u64,
}

pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn internal(e: impl std::fmt::Display) -> WireError {
    WireError::new(WireErrorKind::Internal, e.to_string())
}

impl From<DbError> for WireError {
    fn from(e: DbError) -> Self {
        internal(e)
    }
}

impl Agent {
    pub fn new(home: Home, db: Db, runtime: Arc<dyn NodeRuntime>, settings: Settings) -> Agent {
        Agent {
            home,
            settings,
            changed: Arc::new(Notify::new()),
            db,
            runtime,
            config: None,
            autostop: None,
            autostop_fired: false,
            running: HashMap::new(),
            secrets: HashMap::new(),
            last_activity: Instant::now(),
            active_setups: 0,
            setup_groups: HashMap::new(),
            next_setup: 0,
        }
    }

    /// Load the stored configuration and settle what a previous daemon left behind: its running
    /// jobs are unwatched (their exit codes can no longer be known), so their processes are
    /// killed and they become FAILED_DRIVER; pending jobs whose secrets lived in its memory
    /// cannot start correctly and fail the same way.
    pub fn recover(&mut self) -> Result<Vec<JobId>, DbError> {
        self.config = self.db.config()?;
        self.autostop = self.db.autostop()?;
        let mut failed = Vec::new();
        for job in self.db.jobs(&[JobStatus::Running])? {
            for (rank, pgid, identity) in self.db.procs(job.id)? {
                let node = self.node_of(&job, rank);
                // A local group is killed only while its leader is provably the process we
                // started: after a reboot (or long enough) its number may be another program's.
                // A worker's rank is addressed through the key file its wrapper keeps on the
                // worker (crate::remote), which the wrapper removes when the job ends.
                if node.ssh.is_none() && !crate::procid::still_same(pgid, identity.as_deref()) {
                    tracing::info!(job = %job.id, rank, pgid, "recorded process is gone or its number was reused; not signalled");
                    continue;
                }
                let _ = self
                    .runtime
                    .signal_group(&node, pgid, Some(Signal::SIGKILL));
            }
            self.db.finish(
                job.id,
                JobStatus::FailedDriver,
                None,
                Some("the agent watching this job stopped unexpectedly; its processes were killed"),
                now_unix(),
            )?;
            failed.push(job.id);
        }
        for job in self.db.jobs(&[JobStatus::Pending])? {
            if self.db.has_secrets(job.id)? {
                self.db.finish(
                    job.id,
                    JobStatus::FailedDriver,
                    None,
                    Some("the agent restarted before this job started, and its secrets were only kept in memory; submit it again"),
                    now_unix(),
                )?;
                failed.push(job.id);
            }
        }
        Ok(failed)
    }

    fn node_of(&self, job: &JobRecord, rank: u32) -> NodeSpec {
        let cluster_rank = job.nodes.get(rank as usize).copied().unwrap_or(0);
        self.config
            .as_ref()
            .and_then(|c| c.nodes.get(cluster_rank as usize).cloned())
            .unwrap_or_else(|| NodeSpec {
                ip: "127.0.0.1".into(),
                dir: self.home.dir.clone(),
                ssh: None,
            })
    }

    pub fn config(&self) -> Option<&ClusterConfig> {
        self.config.as_ref()
    }

    pub fn autostop(&self) -> Option<AutostopSetting> {
        self.autostop
    }

    pub fn idle_for(&self) -> Duration {
        self.last_activity.elapsed()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn runtime(&self) -> Arc<dyn NodeRuntime> {
        self.runtime.clone()
    }

    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    pub fn configure(&mut self, config: ClusterConfig) -> Result<(), WireError> {
        let bad = |m: String| WireError::new(WireErrorKind::BadRequest, m);
        if config.cluster_name.trim().is_empty() {
            return Err(bad("configure: cluster_name must not be empty".into()));
        }
        if config.nodes.is_empty() {
            return Err(bad(
                "configure: nodes must list at least the head node".into()
            ));
        }
        if !(config.capacity.cpus.is_finite() && config.capacity.cpus > 0.0) {
            return Err(bad(format!(
                "configure: capacity.cpus must be a number > 0, got {}",
                config.capacity.cpus
            )));
        }
        if let Some(hook) = &config.autostop_hook
            && (hook.stop.is_empty() || hook.down.is_empty())
        {
            return Err(bad(
                "configure: autostop_hook.stop and .down must each be a non-empty command line"
                    .into(),
            ));
        }
        self.db.set_config(&config)?;
        self.config = Some(config);
        // A (re)configured cluster was just started or launched: that is activity, and the
        // idle clock must not fire a hook from before this configuration (old worker addresses).
        self.touch();
        self.changed.notify_waiters();
        Ok(())
    }

    pub fn submit(&mut self, spec: JobSpec) -> Result<JobId, WireError> {
        let Some(config) = &self.config else {
            return Err(WireError::new(
                WireErrorKind::NotConfigured,
                "the agent has no cluster configuration yet (configure it first)",
            ));
        };
        if spec.run.trim().is_empty() {
            return Err(WireError::new(
                WireErrorKind::BadRequest,
                "submit: run must be a non-empty command",
            ));
        }
        let capacity = vec![config.capacity.clone(); config.nodes.len()];
        queue::fits_idle(&capacity, spec.num_nodes, &spec.demand).map_err(|e| {
            WireError::new(
                WireErrorKind::DoesNotFit,
                format!(
                    "the job does not fit cluster '{}': {e}",
                    config.cluster_name
                ),
            )
        })?;
        let cluster = config.cluster_name.clone();
        let submitted_at = now_unix();
        let logs = self.home.logs();
        let id = self.db.insert_job(
            &spec,
            submitted_at,
            |id| task_id(submitted_at, &cluster, id),
            |id| logs.join(id.to_string()).display().to_string(),
        )?;
        if !spec.secrets.is_empty() {
            self.secrets.insert(id, spec.secrets);
        }
        self.touch();
        self.changed.notify_waiters();
        Ok(id)
    }

    pub fn job(&self, id: JobId) -> Result<JobRecord, WireError> {
        self.db.job(id)?.ok_or_else(|| job_not_found(id))
    }

    /// Start every pending job the policy places now.
    pub fn schedule(&mut self, shared: &Shared) -> Result<(), DbError> {
        let Some(config) = self.config.clone() else {
            return Ok(());
        };
        let pending_jobs = self.db.jobs(&[JobStatus::Pending])?;
        if pending_jobs.is_empty() {
            return Ok(());
        }
        let running_jobs = self.db.jobs(&[JobStatus::Running])?;
        let capacity = vec![config.capacity.clone(); config.nodes.len()];
        let holding: Vec<Holding> = running_jobs
            .iter()
            .map(|j| Holding {
                nodes: &j.nodes,
                demand: &j.demand,
            })
            .collect();
        let pending: Vec<Pending> = pending_jobs
            .iter()
            .map(|j| Pending {
                id: j.id,
                num_nodes: j.num_nodes,
                demand: &j.demand,
            })
            .collect();
        let placements = queue::schedule(&capacity, &holding, &pending);
        for placement in placements {
            if let Some(job) = pending_jobs.iter().find(|j| j.id == placement.job) {
                self.start(shared, &config, job, &placement.nodes)?;
            }
        }
        Ok(())
    }

    fn start(
        &mut self,
        shared: &Shared,
        config: &ClusterConfig,
        job: &JobRecord,
        nodes: &[u32],
    ) -> Result<(), DbError> {
        let secrets = self.secrets.remove(&job.id);
        let env = JobEnv {
            config,
            job_id: job.id,
            task_id: &job.task_id,
            demand: &job.demand,
            envs: &job.envs,
            secrets: secrets.as_ref(),
            nodes,
        };
        let log_dir = std::path::PathBuf::from(&job.log_dir);
        let mut children = Vec::new();
        let mut node_specs = Vec::new();
        let mut failure = None;
        for (rank, cluster_rank) in nodes.iter().enumerate() {
            let Some(node) = config.nodes.get(*cluster_rank as usize) else {
                failure = Some(format!("node {cluster_rank} is not in the cluster"));
                break;
            };
            let vars = env.for_rank(rank as u32);
            let log = log_dir.join(format!("node-{rank}.log"));
            let spec = ProcessSpec {
                script: &job.run,
                env: &vars,
                log: &log,
            };
            match self.runtime.spawn(node, &spec) {
                Ok(child) => match child.id() {
                    Some(pid) => {
                        children.push((rank as u32, pid, child));
                        node_specs.push(node.clone());
                    }
                    None => failure = Some("the process exited before it could be tracked".into()),
                },
                Err(e) => {
                    failure = Some(format!(
                        "could not start rank {rank} on node {cluster_rank}: {e}"
                    ))
                }
            }
            if failure.is_some() {
                break;
            }
        }
        let now = now_unix();
        if let Some(message) = failure {
            for ((_, pid, _), node) in children.iter().zip(&node_specs) {
                let _ = self.runtime.signal_group(node, *pid, Some(Signal::SIGKILL));
            }
            tracing::warn!(job = %job.id, %message, "job failed to start");
            self.db
                .finish(job.id, JobStatus::FailedDriver, None, Some(&message), now)?;
            return Ok(());
        }
        // Read now, while each child is alive or at worst an unreaped zombie of ours, so its
        // number cannot have been reused yet.
        let pids: Vec<(u32, u32, Option<String>)> = children
            .iter()
            .map(|(r, p, _)| (*r, *p, crate::procid::identity(*p)))
            .collect();
        self.db.mark_running(job.id, nodes, now, &pids)?;
        tracing::info!(job = %job.id, ?nodes, "job started");
        self.running.insert(
            job.id,
            RunningJob {
                nodes: node_specs,
                pgids: pids.iter().map(|(_, p, _)| *p).collect(),
                exits: vec![None; pids.len()],
                cancel_requested: false,
                failure: None,
            },
        );
        for (rank, _, mut child) in children {
            let shared = shared.clone();
            let id = job.id;
            tokio::spawn(async move {
                let code = match child.wait().await {
                    Ok(status) => exit_code(status),
                    Err(_) => -1,
                };
                let mut agent = shared.lock().await;
                if let Err(e) = agent.on_exit(id, rank, code) {
                    tracing::error!(job = %id, error = %e, "recording a job exit failed");
                }
                if let Err(e) = agent.schedule(&shared) {
                    tracing::error!(error = %e, "scheduling failed");
                }
            });
        }
        self.changed.notify_waiters();
        Ok(())
    }

    fn on_exit(&mut self, id: JobId, rank: u32, code: i32) -> Result<(), DbError> {
        self.db.record_exit(id, rank, code)?;
        let Some(job) = self.running.get_mut(&id) else {
            return Ok(());
        };
        if let Some(slot) = job.exits.get_mut(rank as usize) {
            *slot = Some(code);
        }
        if code != 0
            && job.failure.is_none()
            && !job.cancel_requested
            && let Some(node) = job.nodes.get(rank as usize)
        {
            job.failure = crate::remote::describe_exit(node, rank, code);
        }
        // Leftover background processes of a finished rank would be orphans: end them.
        if let (Some(node), Some(pgid)) =
            (job.nodes.get(rank as usize), job.pgids.get(rank as usize))
        {
            let _ = self
                .runtime
                .signal_group(node, *pgid, Some(Signal::SIGTERM));
        }
        // One rank failing fails the job: the others are stopped, as SkyPilot does.
        if code != 0 && !job.cancel_requested {
            for (i, (node, pgid)) in job.nodes.iter().zip(&job.pgids).enumerate() {
                if job.exits[i].is_none() {
                    let _ = self
                        .runtime
                        .signal_group(node, *pgid, Some(Signal::SIGTERM));
                }
            }
        }
        if job.exits.iter().any(Option::is_none) {
            return Ok(());
        }
        let codes: Vec<i32> = job.exits.iter().map(|c| c.unwrap_or(-1)).collect();
        let first_failure = codes.iter().copied().find(|c| *c != 0);
        let (status, message) = if job.cancel_requested {
            (JobStatus::Cancelled, Some("cancelled by request"))
        } else if first_failure.is_some() {
            (JobStatus::Failed, job.failure.as_deref())
        } else {
            (JobStatus::Succeeded, None)
        };
        self.db.finish(
            id,
            status,
            Some(first_failure.unwrap_or(0)),
            message,
            now_unix(),
        )?;
        self.running.remove(&id);
        tracing::info!(job = %id, %status, "job ended");
        self.touch();
        self.changed.notify_waiters();
        Ok(())
    }

    /// Cancel jobs (all pending and running ones with `ids: None`). Pending ones end at once;
    /// running ones get SIGTERM on every rank's group now and SIGKILL after the grace period.
    /// Returns the jobs cancelled and the (node, group) pairs to wait for.
    pub fn cancel(
        &mut self,
        ids: Option<&[JobId]>,
    ) -> Result<(Vec<JobId>, Vec<ProcessGroup>), WireError> {
        let targets: Vec<JobRecord> = match ids {
            None => self.db.jobs(&[JobStatus::Pending, JobStatus::Running])?,
            Some(ids) => {
                let mut jobs = Vec::new();
                for id in ids {
                    jobs.push(self.job(*id)?);
                }
                jobs
            }
        };
        let mut cancelled = Vec::new();
        let mut groups = Vec::new();
        for job in targets {
            match job.status {
                JobStatus::Pending => {
                    self.secrets.remove(&job.id);
                    self.db.finish(
                        job.id,
                        JobStatus::Cancelled,
                        None,
                        Some("cancelled before it started"),
                        now_unix(),
                    )?;
                    cancelled.push(job.id);
                }
                JobStatus::Running => {
                    if let Some(running) = self.running.get_mut(&job.id) {
                        running.cancel_requested = true;
                        for (node, pgid) in running.nodes.iter().zip(&running.pgids) {
                            let _ = self
                                .runtime
                                .signal_group(node, *pgid, Some(Signal::SIGTERM));
                            groups.push((node.clone(), *pgid));
                        }
                    }
                    cancelled.push(job.id);
                }
                _ => {}
            }
        }
        if !groups.is_empty() {
            let runtime = self.runtime.clone();
            let grace = self.settings.kill_grace;
            let to_kill = groups.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for (node, pgid) in to_kill {
                    if let Ok(true) = runtime.signal_group(&node, pgid, Some(Signal::SIGKILL)) {
                        tracing::info!(pgid, "process group ignored SIGTERM; killed");
                    }
                }
            });
        }
        self.touch();
        self.changed.notify_waiters();
        Ok((cancelled, groups))
    }

    pub fn pending_or_running(&self) -> Result<bool, DbError> {
        Ok(!self.running.is_empty()
            || !self
                .db
                .jobs(&[JobStatus::Pending, JobStatus::Running])?
                .is_empty())
    }

    pub fn set_autostop(&mut self, setting: Option<AutostopSetting>) -> Result<(), WireError> {
        // A setting with nothing to run when it fires would look set and never act (a cluster
        // configured by a client that had no way to stop it).
        if setting.is_some()
            && !self
                .config
                .as_ref()
                .and_then(|c| c.autostop_hook.as_ref())
                .is_some_and(|h| !h.stop.is_empty() && !h.down.is_empty())
        {
            return Err(WireError::new(
                WireErrorKind::NotConfigured,
                "this cluster's agent has no command to stop the cluster when idle; \
                 `sky launch` the cluster again (or `sky stop` and `sky start` it) to give it one",
            ));
        }
        self.db.set_autostop(setting)?;
        self.autostop = setting;
        self.autostop_fired = false;
        // As in SkyPilot, setting autostop restarts the idle clock.
        self.touch();
        Ok(())
    }

    /// Fire autostop when the cluster has been idle long enough: run the hook once, detached,
    /// so that stopping the cluster (which ends this daemon) cannot cut it short.
    pub fn check_autostop(&mut self) -> Result<(), DbError> {
        let Some(setting) = self.autostop else {
            return Ok(());
        };
        if self.autostop_fired || self.active_setups > 0 || self.pending_or_running()? {
            return Ok(());
        }
        let limit = self
            .settings
            .idle_unit
            .mul_f64(f64::from(setting.idle_minutes));
        if self.last_activity.elapsed() < limit {
            return Ok(());
        }
        self.autostop_fired = true;
        let hook = self
            .config
            .as_ref()
            .and_then(|c| c.autostop_hook.as_ref())
            .map(|h| {
                if setting.down {
                    h.down.clone()
                } else {
                    h.stop.clone()
                }
            });
        let Some(argv) = hook.filter(|a| !a.is_empty()) else {
            tracing::warn!("autostop is due but no autostop hook was configured");
            return Ok(());
        };
        tracing::info!(
            down = setting.down,
            ?argv,
            "autostop: cluster idle, running hook"
        );
        let log_path = self.home.logs().join("autostop.log");
        let spawned = crate::private::create_dir_all(&self.home.logs())
            .and_then(|()| crate::private::open_append(&log_path))
            .and_then(|log| {
                let err = log.try_clone()?;
                std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .process_group(0)
                    .spawn()
            });
        match spawned {
            // Reaped by a thread so it never lingers as a zombie of the daemon.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => tracing::error!(error = %e, "autostop hook could not start"),
        }
        Ok(())
    }
}

pub fn job_not_found(id: JobId) -> WireError {
    WireError::new(
        WireErrorKind::JobNotFound,
        format!("job {id} does not exist on this cluster"),
    )
}
