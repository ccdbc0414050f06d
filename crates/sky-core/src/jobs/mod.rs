//! Jobs on one cluster: their identities, states and records, shared by the head-node agent
//! (`sky-agent`, which owns the queue) and its clients.
//!
//! - [`wire`]: the versioned JSON-lines request/response protocol.
//! - [`queue`]: the pure scheduling policy (which pending jobs start now, on which nodes).
//! - [`client`]: [`client::AgentClient`], the typed client the CLI and the desktop app use.
//!
//! This module runs nothing and stores nothing: the agent does both.

pub mod client;
pub mod inherit;
pub mod queue;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The CPU demand of a job that does not state one, per node. SkyPilot uses the same default, so
/// a 4-CPU node runs 8 unannotated jobs at once.
pub const DEFAULT_JOB_CPUS: f64 = 0.5;

/// Name of the directory, inside a node's directory, that holds the synced workdir. Jobs start
/// there when it exists (SkyPilot's `~/sky_workdir`), else in the node directory itself.
pub const WORKDIR_NAME: &str = "sky_workdir";

/// A job's number on its cluster, assigned by the agent from 1 upwards and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(JobId)
            .ok_or_else(|| format!("job id '{s}' is not a positive whole number"))
    }
}

/// PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED. FAILED_DRIVER: the job could not be
/// started, or the agent that watched it died, so its real outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    FailedDriver,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::FailedDriver,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::FailedDriver => "FAILED_DRIVER",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Pending | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one node of a job needs while it runs. Fractions are allowed (0.5 CPU, 0.5 GPU), as in
/// SkyPilot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDemand {
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    /// Accelerator name → count per node, e.g. `{"A100": 8}`.
    #[serde(default)]
    pub accelerators: BTreeMap<String, f64>,
}

fn default_cpus() -> f64 {
    DEFAULT_JOB_CPUS
}

impl Default for JobDemand {
    fn default() -> Self {
        JobDemand {
            cpus: DEFAULT_JOB_CPUS,
            accelerators: BTreeMap::new(),
        }
    }
}

/// What one node of the cluster offers. Every node of a cluster is alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCapacity {
    pub cpus: f64,
    #[serde(default)]
    pub accelerators: BTreeMap<String, f64>,
}

/// Values that must reach a job's environment and nowhere else: their `Debug` is redacted, and
/// the agent keeps them only in memory and in the spawned processes' environment.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secrets(pub BTreeMap<String, String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.keys().map(|k| format!("{k}=<redacted>")))
            .finish()
    }
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A job as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    #[serde(default)]
    pub name: Option<String>,
    /// Shell text run by `bash -c` once per node.
    pub run: String,
    #[serde(default = "one")]
    pub num_nodes: u32,
    #[serde(default)]
    pub demand: JobDemand,
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
}

fn one() -> u32 {
    1
}

impl JobSpec {
    /// A one-node job with the default demand.
    pub fn command(run: impl Into<String>) -> JobSpec {
        JobSpec {
            name: None,
            run: run.into(),
            num_nodes: 1,
            demand: JobDemand::default(),
            envs: BTreeMap::new(),
            secrets: Secrets::default(),
        }
    }
}

/// A job as the agent knows it. Times are Unix seconds with fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub name: Option<String>,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    /// Why a job failed to start, was lost, or was cancelled.
    pub message: Option<String>,
    pub submitted_at: f64,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub num_nodes: u32,
    pub demand: JobDemand,
    /// Ranks of the cluster nodes the job runs on, in job-rank order (empty until it starts).
    pub nodes: Vec<u32>,
    pub run: String,
    pub envs: BTreeMap<String, String>,
    /// SkyPilot's `SKYPILOT_TASK_ID` for this job.
    pub task_id: String,
    /// Directory holding the job's logs on the head node (`node-<rank>.log` per job rank).
    pub log_dir: String,
}

/// Autostop as configured on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutostopSetting {
    pub idle_minutes: u32,
    /// Tear the cluster down instead of stopping it.
    pub down: bool,
}
