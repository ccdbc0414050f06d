//! The serializable shapes that leave the core: `sky status -o json`, `sky cost-report -o json`,
//! `sky check`, and what the desktop app receives. Built from domain records here, so internal
//! types can change without changing what scripts and the UI read.
//!
//! Timestamps are Unix seconds; prices are USD per hour. What this module does not do: format for
//! a terminal (the CLI does).

use serde::Serialize;

use crate::cloud::CloudId;
use crate::cost::CostLine;
use crate::state::{Autostop, ClusterRecord, ClusterStatus};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub status: ClusterStatus,
    pub cloud: Option<CloudId>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub num_nodes: u32,
    pub use_spot: bool,
    pub vcpus: Option<f64>,
    pub memory_gib: Option<f64>,
    /// `{"A100": 8}` per node, or null.
    pub accelerators: Option<std::collections::BTreeMap<String, f64>>,
    /// All nodes, USD per hour (null before a placement was chosen).
    pub hourly_price: Option<f64>,
    pub launched_at: i64,
    pub last_use_at: i64,
    pub last_use_command: String,
    pub autostop: Option<AutostopView>,
    pub head_ip: Option<String>,
    /// What the cluster's cloud names its resources (derived from `name` where the cloud does
    /// not accept it as it is); empty before a placement was chosen.
    pub cloud_names: Vec<crate::provision::CloudName>,
    /// Why the last `status --refresh` could not check this cluster (its cloud has no
    /// credentials here, or did not answer); the record is kept until a refresh can check it.
    pub unchecked: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AutostopView {
    pub idle_minutes: u32,
    pub down: bool,
}

impl From<Autostop> for AutostopView {
    fn from(a: Autostop) -> Self {
        AutostopView {
            idle_minutes: a.idle_minutes,
            down: a.down,
        }
    }
}

impl From<&ClusterRecord> for ClusterView {
    fn from(r: &ClusterRecord) -> Self {
        let l = r.launchable.as_ref();
        ClusterView {
            name: r.name.clone(),
            status: r.status,
            cloud: l.map(|l| l.cloud),
            region: l.map(|l| l.region.clone()),
            zone: l.and_then(|l| l.zone.clone()),
            instance_type: l.map(|l| l.instance_type.clone()),
            num_nodes: r.num_nodes,
            use_spot: l.is_some_and(|l| l.use_spot),
            vcpus: l.map(|l| l.vcpus),
            memory_gib: l.map(|l| l.memory_gib),
            accelerators: l
                .and_then(|l| l.accelerators.clone())
                .map(|(n, c)| [(n, c)].into_iter().collect()),
            hourly_price: l.map(|l| l.hourly_price * f64::from(r.num_nodes)),
            launched_at: r.launched_at,
            last_use_at: r.last_use_at,
            last_use_command: r.last_use_command.clone(),
            autostop: r.autostop.map(AutostopView::from),
            head_ip: r.handle.as_ref().and_then(|h| h.head()).map(|n| {
                n.external_ip
                    .clone()
                    .unwrap_or_else(|| n.internal_ip.clone())
            }),
            cloud_names: Vec::new(),
            unchecked: r.unchecked.clone(),
        }
    }
}

/// What `status --refresh` found different from the record, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshChange {
    pub cluster: String,
    pub from: Option<ClusterStatus>,
    /// `None`: the record was removed.
    pub to: Option<ClusterStatus>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    pub clusters: Vec<ClusterView>,
    /// Only with `refresh`: what changed.
    pub changes: Vec<RefreshChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLineView {
    pub name: String,
    /// Whether the cluster still exists.
    pub alive: bool,
    pub cloud: CloudId,
    pub region: String,
    pub instance_type: String,
    pub num_nodes: u32,
    pub use_spot: bool,
    /// All nodes, USD per hour.
    pub hourly_price: f64,
    pub launched_at: i64,
    pub terminated_at: Option<i64>,
    pub running_seconds: i64,
    pub cost: f64,
    /// When the nodes ran: `(start, end)`, `None` while still running (spend-over-time charts).
    pub intervals: Vec<(i64, Option<i64>)>,
}

impl From<&CostLine> for CostLineView {
    fn from(l: &CostLine) -> Self {
        let r = &l.record;
        CostLineView {
            name: r.name.clone(),
            alive: r.terminated_at.is_none(),
            cloud: r.cloud,
            region: r.region.clone(),
            instance_type: r.instance_type.clone(),
            num_nodes: r.num_nodes,
            use_spot: r.use_spot,
            hourly_price: r.hourly_price * f64::from(r.num_nodes),
            launched_at: r.launched_at,
            terminated_at: r.terminated_at,
            running_seconds: l.running_seconds,
            cost: l.cost,
            intervals: r.intervals.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReportView {
    pub clusters: Vec<CostLineView>,
    pub total_cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudCheckView {
    pub cloud: CloudId,
    pub enabled: bool,
    pub reason: String,
}

/// How a launch or exec ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    pub cluster: String,
    /// `None` when the task had no `run` (setup only).
    pub job_id: Option<u64>,
    /// The job's final status when its logs were followed; `None` when detached.
    pub job_status: Option<String>,
    /// What the CLI exits with: the job's exit code, or setup's first non-zero one.
    pub exit_code: Option<i32>,
    pub setup_failed: bool,
    /// The cluster was torn down afterwards (`--down`).
    pub torn_down: bool,
}
