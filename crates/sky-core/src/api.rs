//! The `Sky` facade: the one surface the CLI and the desktop app call to launch, inspect and manage
//! clusters. It ties the state database, per-cluster locks, providers (through the [`Registry`]),
//! failover and the head-node agent together, and reports progress through an [`EventSink`].
//!
//! Every operation that changes a cluster takes that cluster's lock first and writes the state
//! record before asking a provider for anything. What this module does not do: parse arguments,
//! print, or know any particular cloud (providers come from the composition root).

mod autostop;
mod fit;
mod launch;
mod mounts;
mod orphans;
mod placement;
mod refresh;
mod run;
mod ssh_access;
mod storage;
pub(crate) mod sync;
pub mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::cloud::CloudId;
use crate::config::Paths;
use crate::error::ErrorCode;
use crate::events::{Event, EventSink, Stage};
use crate::jobs::client::{AgentClient, ClientError};
use crate::lock::{ClusterLock, LockError};
use crate::provision::failover::FailoverError;
use crate::provision::{Provider, ProvisionError, Registry};
use tokio_util::sync::CancellationToken;

use crate::state::{ClusterRecord, ClusterStatus, StateError, StateStore};

pub use launch::{LaunchOptions, LaunchPreview};
pub use orphans::OrphanView;
pub use ssh_access::{SshAccessView, SshInclude, SshIncludeView};
pub use storage::{StorageDeleted, StorageView};
pub use views::{ClusterView, CostReportView, RefreshChange, RunOutcome, StatusView};

/// Everything a facade call can fail with; [`SkyError::code`] is what front ends branch on.
#[derive(Debug, thiserror::Error)]
pub enum SkyError {
    #[error("cluster '{0}' not found (see `sky status`)")]
    ClusterNotFound(String),
    #[error(transparent)]
    Busy(#[from] LockError),
    #[error(
        "task does not fit cluster '{cluster}': {reason}; launch it on a new cluster (`-c OTHER`) or tear this one down"
    )]
    DoesNotFit { cluster: String, reason: String },
    #[error("{0}")]
    NoFeasibleResources(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("cluster '{cluster}' is {status}; {hint}")]
    WrongStatus {
        cluster: String,
        status: ClusterStatus,
        hint: String,
    },
    #[error("provisioning cluster '{cluster}' failed: {source}")]
    Failover {
        cluster: String,
        source: FailoverError,
    },
    #[error("cluster '{cluster}': {source}")]
    Provider {
        cluster: String,
        source: ProvisionError,
    },
    /// Restarting a stopped cluster failed (no capacity, quota, throttling): its nodes were
    /// stopped again and it is recorded STOPPED, disks intact.
    #[error(
        "cannot start cluster '{cluster}' now: {source}; it is still STOPPED with its disks intact (retry `sky start {cluster}` later){}",
        if *stopped_again { "" } else { ", though stopping its nodes again failed: run `sky status --refresh`" }
    )]
    StartFailed {
        cluster: String,
        source: ProvisionError,
        stopped_again: bool,
    },
    #[error("cluster '{cluster}' agent: {source}")]
    Agent {
        cluster: String,
        source: ClientError,
    },
    #[error("cluster '{cluster}': syncing workdir {workdir}: {message}")]
    Workdir {
        cluster: String,
        workdir: String,
        message: String,
    },
    #[error(transparent)]
    InvalidName(#[from] crate::names::NameError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("launch of cluster '{cluster}' cancelled{}", if *torn_down { "; the nodes it created were terminated" } else if *stopped_again { "; it was stopped again, as it was before the launch" } else { "" })]
    Cancelled {
        cluster: String,
        torn_down: bool,
        stopped_again: bool,
    },
}

impl SkyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SkyError::ClusterNotFound(_) => ErrorCode::ClusterNotFound,
            SkyError::Busy(LockError::Busy { .. }) => ErrorCode::ClusterBusy,
            SkyError::Busy(LockError::Io { .. }) => ErrorCode::Internal,
            SkyError::DoesNotFit { .. } => ErrorCode::TaskDoesNotFit,
            SkyError::NoFeasibleResources(_) => ErrorCode::NoFeasibleResources,
            SkyError::InvalidRequest(_) | SkyError::Workdir { .. } => ErrorCode::InvalidTask,
            SkyError::WrongStatus { .. } => ErrorCode::ClusterBusy,
            SkyError::Failover { source, .. } => match source {
                FailoverError::Fatal { error, .. }
                    if error.kind == crate::provision::ProvisionErrorKind::Auth =>
                {
                    ErrorCode::CredentialsMissing
                }
                _ => ErrorCode::ResourcesUnavailable,
            },
            SkyError::Agent { source, .. } => source.code(),
            SkyError::StartFailed { .. } => ErrorCode::ResourcesUnavailable,
            SkyError::Cancelled { .. } => ErrorCode::Cancelled,
            SkyError::State(StateError::NotFound(_)) => ErrorCode::ClusterNotFound,
            SkyError::InvalidName(_) | SkyError::State(StateError::NameTaken { .. }) => {
                ErrorCode::InvalidTask
            }
            SkyError::Provider { .. } | SkyError::State(_) => ErrorCode::Internal,
        }
    }
}

/// Settings of one facade instance.
#[derive(Debug, Clone)]
pub struct SkyOptions {
    /// How long a command waits for another command on the same cluster before failing busy.
    pub lock_timeout: Duration,
    /// The `sky` program the head agent runs when autostop fires (`sky stop|down NAME -y`); without
    /// it, autostop cannot be set.
    pub sky_program: Option<PathBuf>,
    /// Clouds the user allows (`allowed_clouds` in config.yaml); others are never used.
    pub allowed_clouds: Vec<CloudId>,
    /// `autostop` in config.yaml: set by launches whose flags and task say nothing of autostop.
    pub default_autostop: Option<crate::task::AutostopRequest>,
    /// What config.yaml puts on every node a launch creates (labels, gVNIC).
    pub nodes: crate::config::NodeDefaults,
    /// Whether a launch may add Sky's cluster configs to `~/.ssh/config` unasked.
    pub ssh_include: SshInclude,
}

impl SkyOptions {
    /// The options `config` sets; the caller adds what only it knows (`sky_program`, a lock
    /// timeout from its environment).
    pub fn from_config(config: &crate::config::SkyConfig) -> SkyOptions {
        SkyOptions {
            allowed_clouds: config.enabled_clouds(),
            default_autostop: config.autostop,
            nodes: config.nodes.clone(),
            ..SkyOptions::default()
        }
    }
}

impl Default for SkyOptions {
    fn default() -> Self {
        SkyOptions {
            lock_timeout: Duration::from_secs(600),
            sky_program: None,
            allowed_clouds: CloudId::ALL.to_vec(),
            default_autostop: None,
            nodes: crate::config::NodeDefaults::default(),
            ssh_include: SshInclude::default(),
        }
    }
}

pub struct Sky {
    paths: Paths,
    registry: Registry,
    clock: Arc<dyn Clock>,
    state: Mutex<StateStore>,
    options: SkyOptions,
}

impl std::fmt::Debug for Sky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sky")
            .field("home", &self.paths.sky_home())
            .field("registry", &self.registry)
            .finish()
    }
}

impl Sky {
    /// Opens the state database under `paths` (creating it on first use).
    pub fn open(
        paths: Paths,
        registry: Registry,
        clock: Arc<dyn Clock>,
        options: SkyOptions,
    ) -> Result<Sky, SkyError> {
        let state = StateStore::open(&paths.sky_home().join(crate::state::STATE_DB_FILE))?;
        Ok(Sky {
            paths,
            registry,
            clock,
            state: Mutex::new(state),
            options,
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Clusters from the database, by name (all when `names` is empty). Fast: no provider is asked.
    pub fn list(&self, names: &[String]) -> Result<Vec<ClusterView>, SkyError> {
        let records = self.records(names)?;
        Ok(records
            .iter()
            .map(|rec| {
                let mut view = ClusterView::from(rec);
                if let Some(p) = rec
                    .launchable
                    .as_ref()
                    .and_then(|l| self.registry.get(l.cloud))
                {
                    view.cloud_names = p.cloud_names(&rec.name);
                }
                view
            })
            .collect())
    }

    /// `sky status`: the clusters, and with `refresh` every record first reconciled with what its
    /// provider really has.
    pub async fn status(
        &self,
        names: &[String],
        refresh: bool,
        sink: &dyn EventSink,
    ) -> Result<StatusView, SkyError> {
        let changes = if refresh {
            self.refresh(names, sink).await?
        } else {
            Vec::new()
        };
        Ok(StatusView {
            clusters: self.list(names)?,
            changes,
        })
    }

    /// Every provider this build has, whether it can be used now and why.
    pub fn check(&self) -> Vec<views::CloudCheckView> {
        CloudId::ALL
            .into_iter()
            .map(|cloud| match self.registry.get(cloud) {
                Some(p) if !self.options.allowed_clouds.contains(&cloud) => views::CloudCheckView {
                    cloud,
                    enabled: false,
                    reason: format!(
                        "not in allowed_clouds of config.yaml ({})",
                        p.check().reason
                    ),
                },
                Some(p) => {
                    let c = p.check();
                    views::CloudCheckView {
                        cloud,
                        enabled: c.enabled,
                        reason: c.reason,
                    }
                }
                None => views::CloudCheckView {
                    cloud,
                    enabled: false,
                    reason: "this build has no provider for it yet".into(),
                },
            })
            .collect()
    }

    /// Cost of every launch so far, gone clusters included.
    pub fn cost_report(&self) -> Result<CostReportView, SkyError> {
        let records = self.db()?.cost_records()?;
        let lines = crate::cost::cost_lines(records, self.clock.now());
        Ok(CostReportView {
            total_cost: crate::cost::total(&lines),
            clusters: lines.iter().map(views::CostLineView::from).collect(),
        })
    }

    /// Stops a cluster's nodes, keeping their disks.
    pub async fn stop(&self, name: &str, sink: &dyn EventSink) -> Result<(), SkyError> {
        let _lock = self.lock(name, sink).await?;
        let rec = self.require(name)?;
        let provider = self.provider_to_act_on(&rec)?;
        if !provider.capabilities().stop {
            return Err(SkyError::InvalidRequest(format!(
                "cluster '{name}' is on {} which cannot stop instances; use `sky down {name}`",
                provider.cloud()
            )));
        }
        if rec.status == ClusterStatus::Stopped {
            sink.emit(Event::Note {
                message: format!("cluster '{name}' is already stopped"),
            });
            return Ok(());
        }
        self.stop_nodes(name, provider.as_ref(), "stopped", sink)
            .await
    }

    /// Stops a cluster's nodes through its provider and records it STOPPED (`why` goes to the
    /// status history); the caller holds the cluster's lock.
    async fn stop_nodes(
        &self,
        name: &str,
        provider: &dyn Provider,
        why: &str,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        stage(sink, name, Stage::Stop, provider.stop(name))
            .await
            .map_err(|source| SkyError::Provider {
                cluster: name.into(),
                source,
            })?;
        self.db()?
            .set_status(name, ClusterStatus::Stopped, self.clock.now(), why)?;
        sink.emit(Event::ClusterStatus {
            cluster: name.into(),
            status: Some(ClusterStatus::Stopped),
        });
        Ok(())
    }

    /// Restarts a stopped cluster (or finishes an interrupted start) and brings its agent back.
    pub async fn start(&self, name: &str, sink: &dyn EventSink) -> Result<(), SkyError> {
        let _lock = self.lock(name, sink).await?;
        let rec = self.require(name)?;
        if rec.status == ClusterStatus::Up {
            sink.emit(Event::Note {
                message: format!("cluster '{name}' is already up"),
            });
            return Ok(());
        }
        self.resume(&rec, sink, &CancellationToken::new()).await?;
        Ok(())
    }

    /// Tears a cluster down. With `purge`, the record is removed even if the provider fails (the
    /// error is reported as a note), for clusters whose cloud resources are already gone by hand.
    pub async fn down(
        &self,
        name: &str,
        purge: bool,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        let _lock = self.lock(name, sink).await?;
        let rec = self.require(name)?;
        let result = if rec.pre_ownership {
            Err(pre_ownership_refusal(&rec))
        } else if rec.launchable.is_none() {
            // A launch died before recording where its nodes went: its attempts' launch ids say.
            self.clean_interrupted_attempts(&rec, sink).await
        } else {
            match self.provider_of(&rec) {
                Ok(provider) => stage(sink, name, Stage::Terminate, provider.terminate(name))
                    .await
                    .map_err(|source| SkyError::Provider {
                        cluster: name.into(),
                        source,
                    }),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if purge => sink.emit(Event::Note {
                message: format!("{e}; removing the record anyway (--purge)"),
            }),
            Err(e) => return Err(e),
        }
        self.remove_record(
            name,
            if purge {
                "terminated (purge)"
            } else {
                "terminated"
            },
        )?;
        sink.emit(Event::ClusterStatus {
            cluster: name.into(),
            status: None,
        });
        self.release_buckets_noting(name, sink).await;
        Ok(())
    }

    /// A connection to an UP cluster's head agent, for queue, logs and cancel.
    pub async fn agent(&self, name: &str) -> Result<AgentClient, SkyError> {
        let rec = self.require(name)?;
        if rec.status != ClusterStatus::Up {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: format!(
                    "its agent is reachable only when UP (`sky start {name}` or `sky status --refresh`)"
                ),
            });
        }
        self.agent_of(&rec).await
    }

    /// The cluster's history, oldest first (kept after teardown).
    pub fn events(&self, name: &str) -> Result<Vec<crate::state::ClusterEvent>, SkyError> {
        Ok(self.db()?.events(name)?)
    }

    fn db(&self) -> Result<MutexGuard<'_, StateStore>, SkyError> {
        // A poisoned lock means another thread panicked mid-call; SQLite's transactions kept the
        // data consistent, so carry on.
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn records(&self, names: &[String]) -> Result<Vec<ClusterRecord>, SkyError> {
        let db = self.db()?;
        if names.is_empty() {
            return Ok(db.list()?);
        }
        names
            .iter()
            .map(|n| {
                db.get(n)?
                    .ok_or_else(|| SkyError::ClusterNotFound(n.clone()))
            })
            .collect()
    }

    fn require(&self, name: &str) -> Result<ClusterRecord, SkyError> {
        self.db()?
            .get(name)?
            .ok_or_else(|| SkyError::ClusterNotFound(name.to_owned()))
    }

    /// The provider of `rec` for acting on its cloud resources (stop, start, down, relaunch,
    /// autostop, refresh), which providers find by this home's owner tags: refused for a cluster
    /// launched before those tags, whose resources nothing proves are this home's.
    fn provider_to_act_on(&self, rec: &ClusterRecord) -> Result<&Arc<dyn Provider>, SkyError> {
        if rec.pre_ownership {
            return Err(pre_ownership_refusal(rec));
        }
        self.provider_of(rec)
    }

    /// The provider of `rec` for reaching its recorded nodes (sync, agent, logs).
    fn provider_of(&self, rec: &ClusterRecord) -> Result<&Arc<dyn Provider>, SkyError> {
        let Some(l) = &rec.launchable else {
            return Err(SkyError::WrongStatus {
                cluster: rec.name.clone(),
                status: rec.status,
                hint: "its launch never got nodes; `sky status --refresh` cleans it up".into(),
            });
        };
        self.registry.get(l.cloud).ok_or_else(|| {
            SkyError::InvalidRequest(format!(
                "cluster '{}' is on {}, which this build has no provider for",
                rec.name, l.cloud
            ))
        })
    }

    async fn agent_of(&self, rec: &ClusterRecord) -> Result<AgentClient, SkyError> {
        let provider = self.provider_of(rec)?;
        let Some(info) = &rec.handle else {
            return Err(SkyError::WrongStatus {
                cluster: rec.name.clone(),
                status: rec.status,
                hint: "it has no nodes recorded".into(),
            });
        };
        let client = provider
            .connect_agent(&rec.name, info)
            .await
            .map_err(|source| SkyError::Provider {
                cluster: rec.name.clone(),
                source,
            })?;
        // The nodes' host keys are pinned now, so OpenSSH can trust the same ones.
        self.write_ssh_config(rec);
        Ok(client)
    }

    /// Removes the record of `name` (its cluster is gone) and what reached it from outside Sky.
    fn remove_record(&self, name: &str, why: &str) -> Result<(), SkyError> {
        self.db()?.remove(name, self.clock.now(), why)?;
        self.forget_ssh(name);
        Ok(())
    }

    /// The front door for a name that may become a new record (launch, adopt): the one rule
    /// ([`crate::names::check_cluster_name`]), then no recorded cluster under the same name in
    /// another case. Checked before any lock, file or record exists; the state store's insert
    /// repeats the second check atomically, for two processes racing past this one.
    /// A cluster recorded under exactly `name` passes: it is reused, not created, and records
    /// from earlier versions must stay usable.
    fn check_new_name(&self, name: &str) -> Result<(), SkyError> {
        match self.db()?.name_in_use(name)? {
            Some(existing) if existing == name => Ok(()),
            Some(existing) => Err(StateError::NameTaken {
                requested: name.to_owned(),
                existing,
            }
            .into()),
            None => Ok(crate::names::check_cluster_name(name)?),
        }
    }

    /// Takes the cluster's lock, telling the user when it has to wait for another command. The
    /// name becomes a file name, so one that could leave the locks directory is refused first.
    async fn lock(&self, name: &str, sink: &dyn EventSink) -> Result<ClusterLock, SkyError> {
        crate::names::check_path_safe(name)?;
        let dir = self.paths.sky_home().join("locks");
        match ClusterLock::acquire(&dir, name, Duration::ZERO, || {}) {
            Ok(lock) => return Ok(lock),
            Err(LockError::Busy { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        sink.emit(Event::WaitingForLock {
            cluster: name.into(),
        });
        let (name, timeout) = (name.to_owned(), self.options.lock_timeout);
        let waited =
            tokio::task::spawn_blocking(move || ClusterLock::acquire(&dir, &name, timeout, || {}))
                .await;
        match waited {
            Ok(result) => Ok(result?),
            Err(join) => Err(SkyError::InvalidRequest(format!(
                "waiting for the cluster lock failed: {join}"
            ))),
        }
    }
}

/// Runs `fut` as a named stage, announcing its start and successful end.
async fn stage<T, E>(
    sink: &dyn EventSink,
    cluster: &str,
    stage: Stage,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    sink.emit(Event::StageStarted {
        cluster: cluster.into(),
        stage,
    });
    let out = fut.await?;
    sink.emit(Event::StageFinished {
        cluster: cluster.into(),
        stage,
    });
    Ok(out)
}

/// Why Sky will not act on the cloud resources of a cluster launched before ownership tags.
fn pre_ownership_refusal(rec: &ClusterRecord) -> SkyError {
    let name = &rec.name;
    SkyError::WrongStatus {
        cluster: name.clone(),
        status: rec.status,
        hint: format!(
            "it was launched by a Sky version before ownership tags, so its cloud resources carry \
             no owner id and Sky cannot prove which are its own (SkyPilot and other Sky homes use \
             the same names); Sky will not stop, start or terminate them. End them in the cloud's \
             console, then `sky down {name} --purge` removes the record"
        ),
    }
}

#[cfg(test)]
mod ownership_tests;
#[cfg(test)]
mod tests;
