//! The optimizer: for a task or a chain of tasks, every feasible (cloud, region, zone, instance
//! type, spot) placement, priced for all nodes and ranked, plus the chosen placement.
//!
//! It is a pure function of the tasks, the catalog, the enabled clouds, a blocklist and the
//! target, and it reproduces SkyPilot 0.14.1's decisions on the same catalog: per cloud only the
//! cheapest satisfying instance type is expanded into regions and zones; ties keep SkyPilot's
//! order (enabled clouds in the order given, then regions by price and name); `ordered`
//! alternatives use the first one that is feasible; a chain is solved exactly by dynamic
//! programming over the egress cost between consecutive tasks' clouds.
//!
//! `Target::Time` is honest about what is known: no task carries a runtime model, so every
//! placement is assumed to take the task's estimated runtime (one hour unless the caller sets
//! one) and only egress time differs; ties then go to the cheapest placement.
//!
//! What this module does not do: read files, look at credentials, provision or print.

mod diagnose;
mod explain;
mod index;
pub mod profile;
mod search;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::catalog::Catalog;
use crate::cloud::CloudId;
use crate::error::ErrorCode;
use crate::resources::{ChoiceKind, ResourceChoice, Resources};

pub use explain::{CheaperOffer, WhyNotCheaper, why_not_cheaper};
pub use index::CatalogIndex;

use index::CloudIndex;
use search::Location;

/// What to minimise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Cost,
    Time,
}

/// Data a task reads from a bucket before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInputs {
    /// The cloud the data lives in; `None` when it is not in a cloud Sky prices.
    pub cloud: Option<CloudId>,
    pub gigabytes: f64,
}

/// One task as the optimizer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub name: Option<String>,
    pub num_nodes: u32,
    pub resources: ResourceChoice,
    pub inputs: Option<TaskInputs>,
    /// Size of the outputs the next task of the chain reads, GB.
    pub outputs_gigabytes: Option<f64>,
    /// Estimated runtime in seconds; one hour when unknown.
    pub estimated_runtime_secs: Option<f64>,
}

impl TaskRequest {
    pub fn new(resources: ResourceChoice) -> Self {
        TaskRequest {
            name: None,
            num_nodes: 1,
            resources,
            inputs: None,
            outputs_gigabytes: None,
            estimated_runtime_secs: None,
        }
    }

    fn runtime_secs(&self) -> f64 {
        self.estimated_runtime_secs.unwrap_or(3600.0)
    }

    fn label(&self) -> String {
        self.name
            .as_deref()
            .map_or_else(|| "task".to_owned(), |n| format!("task '{n}'"))
    }
}

/// A place to skip (after a failed launch): every field that is `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    pub cloud: Option<CloudId>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub use_spot: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocklist {
    pub blocks: Vec<Block>,
}

impl Blocklist {
    pub fn blocks(&self, c: &Candidate) -> bool {
        self.blocks.iter().any(|b| {
            b.cloud.is_none_or(|x| x == c.cloud)
                && b.region.as_ref().is_none_or(|r| *r == c.region)
                && b.zone.as_ref().is_none_or(|z| Some(z) == c.zone.as_ref())
                && b.instance_type
                    .as_ref()
                    .is_none_or(|t| *t == c.instance_type)
                && b.use_spot.is_none_or(|s| s == c.use_spot)
        })
    }
}

/// A fully pinned placement with its price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    #[serde(serialize_with = "serialize_accelerators")]
    pub accelerators: Option<(String, f64)>,
    pub vcpus: Option<f64>,
    pub memory_gib: Option<f64>,
    pub use_spot: bool,
    /// USD per hour for one node.
    pub hourly_price: f64,
    /// USD per hour for all nodes.
    pub total_hourly_price: f64,
}

fn serialize_accelerators<S: Serializer>(
    acc: &Option<(String, f64)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match acc {
        None => s.serialize_none(),
        Some((name, count)) => {
            let count = if count.fract() == 0.0 && *count >= 0.0 && *count < 1e15 {
                serde_json::Number::from(*count as u64)
            } else {
                serde_json::Number::from_f64(*count).unwrap_or_else(|| serde_json::Number::from(0))
            };
            let map: BTreeMap<&str, serde_json::Number> = BTreeMap::from([(name.as_str(), count)]);
            map.serialize(s)
        }
    }
}

/// `1` for whole counts, `0.5` otherwise (as accelerators are written in task files).
pub(crate) fn format_count(count: f64) -> String {
    if count.fract() == 0.0 {
        format!("{count:.0}")
    } else {
        format!("{count}")
    }
}

/// The optimizer's answer for one task: every candidate best first, and the one chosen (which,
/// in a chain, may trade a little task cost for less egress).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskPlan {
    pub name: Option<String>,
    pub num_nodes: u32,
    pub chosen: Candidate,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub target: Target,
    pub tasks: Vec<TaskPlan>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizeError {
    /// The request names something that does not exist or contradicts itself.
    #[error("{message}")]
    Invalid { message: String },
    /// Nothing in the catalog satisfies the request.
    #[error("{message}")]
    NoFeasibleResources {
        message: String,
        nearest: Vec<Candidate>,
    },
    #[error("the chain has no tasks")]
    EmptyChain,
}

impl OptimizeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            OptimizeError::Invalid { .. } | OptimizeError::EmptyChain => ErrorCode::InvalidTask,
            OptimizeError::NoFeasibleResources { .. } => ErrorCode::NoFeasibleResources,
        }
    }
}

/// Everything the optimizer reads besides the tasks.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a, 'c> {
    pub index: &'a CatalogIndex<'c>,
    /// Clouds to consider, in tie-breaking order (SkyPilot's is AWS, GCP, Azure).
    pub enabled_clouds: &'a [CloudId],
    pub blocklist: &'a Blocklist,
    pub target: Target,
}

/// Convenience for one-shot callers: builds the index and plans the chain.
pub fn optimize(
    catalog: &Catalog,
    tasks: &[TaskRequest],
    enabled_clouds: &[CloudId],
    blocklist: &Blocklist,
    target: Target,
) -> Result<Plan, OptimizeError> {
    let index = CatalogIndex::new(catalog);
    plan(
        Inputs {
            index: &index,
            enabled_clouds,
            blocklist,
            target,
        },
        tasks,
    )
}

/// Plans a chain of tasks (a single task is a chain of one).
pub fn plan(inputs: Inputs<'_, '_>, tasks: &[TaskRequest]) -> Result<Plan, OptimizeError> {
    if tasks.is_empty() {
        return Err(OptimizeError::EmptyChain);
    }
    let mut per_task = Vec::with_capacity(tasks.len());
    let mut choosable = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (candidates, first) = candidates_for_task(inputs, task)?;
        per_task.push(candidates);
        choosable.push(first);
    }
    let chosen = choose_chain(inputs.target, tasks, &per_task, &choosable);
    let tasks = tasks
        .iter()
        .zip(per_task)
        .zip(chosen)
        .map(|((task, candidates), chosen)| TaskPlan {
            name: task.name.clone(),
            num_nodes: task.num_nodes,
            chosen: candidates[chosen].clone(),
            candidates,
        })
        .collect();
    Ok(Plan {
        target: inputs.target,
        tasks,
    })
}

/// One alternative, checked against the catalog: which clouds to search and where.
struct Resolved<'r> {
    resources: &'r Resources,
    cloud: Option<CloudId>,
}

/// Every candidate of one task, best first (stable: equal prices keep SkyPilot's order).
/// A task's candidates best first, and how many of the first ones may be chosen: all of them,
/// except under `ordered:`, where only the first feasible alternative's (the rest are there for
/// failover).
fn candidates_for_task(
    inputs: Inputs<'_, '_>,
    task: &TaskRequest,
) -> Result<(Vec<Candidate>, usize), OptimizeError> {
    let options = &task.resources.options;
    let mut resolved = Vec::with_capacity(options.len());
    for option in options {
        resolved.push(resolve(inputs, option)?);
    }
    let usable: Vec<&Resolved<'_>> = resolved
        .iter()
        .filter(|r| r.cloud.is_none_or(|c| inputs.enabled_clouds.contains(&c)))
        .collect();
    if usable.is_empty() {
        let wanted: Vec<String> = resolved
            .iter()
            .filter_map(|r| r.cloud.map(|c| c.display_name().to_owned()))
            .collect();
        return Err(OptimizeError::NoFeasibleResources {
            message: format!(
                "{} requires {} which is not enabled (enabled: {})",
                task.label(),
                wanted.join(", "),
                cloud_list(inputs.enabled_clouds)
            ),
            nearest: Vec::new(),
        });
    }
    // Best first under either target: a task's placements all share its estimated runtime
    // (nothing models per-instance speed), so for `Time` too the cheapest comes first, and the
    // chain step only adds egress time. The sort is stable, so equal prices keep SkyPilot's order.
    // `ordered:` keeps the user's order between alternatives: every candidate of the first comes
    // before any of the second, so failover moves to the second only when the first is used up.
    let by_price =
        |a: &Candidate, b: &Candidate| a.total_hourly_price.total_cmp(&b.total_hourly_price);
    let ordered = task.resources.kind == ChoiceKind::Ordered;
    let mut all = Vec::new();
    let mut first = None;
    for option in &usable {
        let mut found = candidates_for_option(inputs, task, option);
        if ordered {
            found.sort_by(by_price);
        }
        all.extend(found);
        if first.is_none() && !all.is_empty() {
            first = Some(all.len());
        }
    }
    if all.is_empty() {
        return Err(diagnose::no_feasible(inputs, task, &usable));
    }
    if !ordered {
        all.sort_by(by_price);
    }
    let choosable = if ordered {
        first.unwrap_or(all.len())
    } else {
        all.len()
    };
    Ok((all, choosable))
}

fn cloud_list(clouds: &[CloudId]) -> String {
    if clouds.is_empty() {
        return "none".to_owned();
    }
    clouds
        .iter()
        .map(|c| c.display_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Candidates of one alternative over every cloud it may use, in SkyPilot's order.
fn candidates_for_option(
    inputs: Inputs<'_, '_>,
    task: &TaskRequest,
    option: &Resolved<'_>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for &cloud in inputs.enabled_clouds {
        if option.cloud.is_some_and(|c| c != cloud) {
            continue;
        }
        let Some(ci) = inputs.index.cloud(cloud) else {
            // A cloud without a price catalog (this machine) costs nothing, so it would always
            // win: it is a candidate only when the task names it.
            if option.cloud == Some(cloud) {
                out.push(unpriced_candidate(cloud));
            }
            continue;
        };
        let Some(loc) = location(ci, option.resources) else {
            continue;
        };
        let found = search::feasible(ci, option.resources, loc);
        let Some(launchable) = found.launchable else {
            continue;
        };
        for placed in search::expand(ci, &launchable, loc) {
            if !image_allows(option.resources, ci.region_name(placed.region)) {
                continue;
            }
            let candidate = make_candidate(ci, &launchable, &placed, task.num_nodes);
            if !inputs.blocklist.blocks(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

fn unpriced_candidate(cloud: CloudId) -> Candidate {
    Candidate {
        cloud,
        region: cloud.as_str().to_owned(),
        zone: None,
        instance_type: cloud.as_str().to_owned(),
        accelerators: None,
        vcpus: None,
        memory_gib: None,
        use_spot: false,
        hourly_price: 0.0,
        total_hourly_price: 0.0,
    }
}

/// The cloud a bucket URL (`s3://data`, `gs://data`) lives in, for input egress.
pub fn cloud_of_bucket(url: &str) -> Option<CloudId> {
    profile::BUCKET_SCHEMES
        .iter()
        .find(|(scheme, _)| url.starts_with(scheme))
        .map(|(_, cloud)| *cloud)
}

/// A per-region `image_id` map limits the regions a task can run in.
fn image_allows(resources: &Resources, region: &str) -> bool {
    match &resources.image_id {
        Some(crate::resources::ImageRequest::PerRegion(map)) => map.contains_key(region),
        _ => true,
    }
}

fn location(ci: &CloudIndex<'_>, r: &Resources) -> Option<Location> {
    let region = match &r.placement.region {
        Some(name) => Some(ci.region_id(name)?),
        None => None,
    };
    let zone = match &r.placement.zone {
        Some(name) => Some(ci.zone_id(name)?),
        None => None,
    };
    let region = region.or_else(|| zone.map(|z| ci.zone_region(z)));
    Some(Location { region, zone })
}

fn make_candidate(
    ci: &CloudIndex<'_>,
    launchable: &search::Launchable,
    placed: &search::Placed,
    num_nodes: u32,
) -> Candidate {
    let it = launchable.instance_type.map(|t| ci.instance_type(t));
    let instance_type = match it {
        Some(it) => it.name.clone(),
        None => ci
            .profile
            .attach
            .map_or_else(String::new, |a| a.tpu_vm_instance_type.to_owned()),
    };
    let accelerators = launchable.attached.clone().or_else(|| {
        it.and_then(|it| it.accelerator.as_ref())
            .map(|a| (a.name.clone(), a.count))
    });
    Candidate {
        cloud: ci.catalog.cloud,
        region: ci.region_name(placed.region).to_owned(),
        zone: placed.zone.map(|z| ci.zone_name(z).to_owned()),
        instance_type,
        accelerators,
        vcpus: it.map(|it| it.vcpus),
        memory_gib: it.map(|it| it.memory_gib),
        use_spot: launchable.use_spot,
        hourly_price: placed.hourly_price,
        total_hourly_price: placed.hourly_price * f64::from(num_nodes),
    }
}

/// Checks an alternative's names against the catalog and infers its cloud where SkyPilot does
/// (from a TPU, an instance type or a region that only one enabled cloud has).
fn resolve<'r>(inputs: Inputs<'_, '_>, r: &'r Resources) -> Result<Resolved<'r>, OptimizeError> {
    diagnose::resolve(inputs, r).map(|cloud| Resolved {
        resources: r,
        cloud,
    })
}

/// Picks one candidate per task minimising the chain's total (task cost or time plus egress
/// between consecutive tasks on different clouds). Exact: egress depends only on the pair of
/// clouds, so the best predecessor per cloud is enough.
fn choose_chain(
    target: Target,
    tasks: &[TaskRequest],
    per_task: &[Vec<Candidate>],
    choosable: &[usize],
) -> Vec<usize> {
    let objective = |task: &TaskRequest, c: &Candidate| match target {
        Target::Cost => c.total_hourly_price * task.runtime_secs() / 3600.0,
        Target::Time => task.runtime_secs(),
    };
    let transfer = |from: Option<CloudId>, to: CloudId, gigabytes: Option<f64>| -> f64 {
        let Some(gb) = gigabytes.filter(|gb| *gb > 0.0) else {
            return 0.0;
        };
        let Some(from) = from else { return 0.0 };
        if from == to {
            return 0.0;
        }
        match target {
            Target::Cost => profile::profile(from).map_or(0.0, |p| p.egress.cost(gb)),
            // 10 Gbps between clouds, SkyPilot's estimate for sharded bucket transfers.
            Target::Time => gb * 8.0 / 10.0,
        }
    };
    // values[i][j]: best total up to task i when task i uses candidate j; back[i][j]: parent.
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(tasks.len());
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(tasks.len());
    for (i, (task, candidates)) in tasks.iter().zip(per_task).enumerate() {
        let mut row = Vec::with_capacity(candidates.len());
        let mut parents = Vec::with_capacity(candidates.len());
        // The best parent per cloud: (value, first index reaching it).
        let mut best_by_cloud: Vec<(CloudId, f64, usize)> = Vec::new();
        if i > 0 {
            for (j, c) in per_task[i - 1].iter().enumerate() {
                let v = values[i - 1][j];
                match best_by_cloud.iter_mut().find(|(cl, _, _)| *cl == c.cloud) {
                    Some(entry) if v < entry.1 => *entry = (c.cloud, v, j),
                    Some(_) => {}
                    None => best_by_cloud.push((c.cloud, v, j)),
                }
            }
        }
        for (k, c) in candidates.iter().enumerate() {
            // A later `ordered:` alternative is kept for failover, never chosen over the first.
            if k >= choosable[i] {
                row.push(f64::INFINITY);
                parents.push(0);
                continue;
            }
            let own = objective(task, c);
            if i == 0 {
                let inbound = task.inputs.as_ref().map_or(0.0, |input| {
                    transfer(input.cloud, c.cloud, Some(input.gigabytes))
                });
                row.push(own + inbound);
                parents.push(0);
                continue;
            }
            let outputs = tasks[i - 1].outputs_gigabytes;
            let mut best: Option<(f64, usize)> = None;
            for &(cloud, v, j) in &best_by_cloud {
                let total = v + transfer(Some(cloud), c.cloud, outputs);
                let better = match best {
                    None => true,
                    Some((b, bj)) => total < b || (total == b && j < bj),
                };
                if better {
                    best = Some((total, j));
                }
            }
            let (pred, parent) = best.unwrap_or((0.0, 0));
            row.push(own + pred);
            parents.push(parent);
        }
        values.push(row);
        back.push(parents);
    }
    let last = values.len() - 1;
    let mut pick = first_min(&values[last]);
    let mut chosen = vec![0; tasks.len()];
    for i in (0..tasks.len()).rev() {
        chosen[i] = pick;
        pick = back[i][pick];
    }
    chosen
}

fn first_min(values: &[f64]) -> usize {
    let mut best = 0;
    for (j, v) in values.iter().enumerate() {
        if *v < values[best] {
            best = j;
        }
    }
    best
}

impl From<&crate::task::Task> for TaskRequest {
    fn from(task: &crate::task::Task) -> Self {
        TaskRequest {
            name: task.name.clone(),
            num_nodes: task.num_nodes,
            resources: task.resources.clone(),
            inputs: task.inputs.as_ref().map(|d| TaskInputs {
                cloud: cloud_of_bucket(&d.location),
                gigabytes: d.estimated_size_gb,
            }),
            outputs_gigabytes: task.outputs.as_ref().map(|d| d.estimated_size_gb),
            estimated_runtime_secs: None,
        }
    }
}
