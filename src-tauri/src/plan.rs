//! The cost comparison: parses the task with sky-core, runs the optimizer for on-demand and for
//! spot over every priced cloud (the comparison shows all prices whatever credentials exist),
//! and pairs the two into rows the page ranks and the chart draws.
//!
//! It decides nothing itself: ranking is the optimizer's, validation is the task parser's.

use serde::Serialize;
use sky_core::catalog::Catalog;
use sky_core::optimizer::{self, Blocklist, Candidate, CatalogIndex, Inputs, Target, TaskRequest};
use sky_core::task::TaskError;
use sky_core::{CloudId, ErrorCode};

use crate::chart::{self, PriceBar};
use crate::error::{UiError, UiResult};

const TABLE_ROWS: usize = 30;
const CHART_ROWS: usize = 12;

#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub rank: usize,
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub accelerators: Option<String>,
    pub vcpus: Option<f64>,
    pub memory_gib: Option<f64>,
    /// $/h for all nodes.
    pub on_demand: f64,
    pub spot: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    pub num_nodes: u32,
    pub use_spot: bool,
    pub rows: Vec<PlanRow>,
    /// How many candidates the optimizer found (the table shows the best ones).
    pub total_candidates: usize,
    pub chart_svg: String,
    /// Why the cheapest row is not cheaper still, from what the optimizer returned.
    pub why_not_cheaper: Vec<String>,
}

/// A task error with where it is, so the page can point at the line.
#[derive(Debug, Clone, Serialize)]
pub struct TaskErrorView {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl From<TaskError> for UiError {
    fn from(e: TaskError) -> Self {
        let mut ui = UiError::new(e.code(), e.to_string());
        ui.task = Some(TaskErrorView {
            path: e.path.clone(),
            line: e.line,
            column: e.column,
            message: e.message.clone(),
        });
        ui
    }
}

fn with_spot(request: &TaskRequest, spot: bool) -> TaskRequest {
    let mut r = request.clone();
    for option in &mut r.resources.options {
        option.use_spot = spot;
    }
    r
}

fn same_place(a: &Candidate, b: &Candidate) -> bool {
    a.cloud == b.cloud
        && a.region == b.region
        && a.zone == b.zone
        && a.instance_type == b.instance_type
}

/// Parses a YAML that must hold exactly one task (the comparison and launch take one).
pub fn single_task(catalog: &Catalog, yaml: &str) -> UiResult<sky_core::task::Task> {
    let mut tasks = sky_core::task::parse_chain(yaml, "task.yaml", catalog)?;
    if tasks.len() != 1 {
        return Err(UiError::new(
            ErrorCode::InvalidTask,
            format!(
                "the desktop app takes one task, the YAML holds {}",
                tasks.len()
            ),
        ));
    }
    Ok(tasks.remove(0))
}

/// Plans a single-task YAML against the catalog.
pub fn plan(catalog: &Catalog, yaml: &str) -> UiResult<PlanView> {
    let task = single_task(catalog, yaml)?;
    let request = TaskRequest::from(&task);
    let use_spot = request.resources.options.iter().any(|o| o.use_spot);
    let index = CatalogIndex::new(catalog);
    let blocklist = Blocklist::default();
    let clouds = [CloudId::Aws, CloudId::Gcp, CloudId::Azure];
    let inputs = Inputs {
        index: &index,
        enabled_clouds: &clouds,
        blocklist: &blocklist,
        target: Target::Cost,
    };
    let run = |spot: bool| optimizer::plan(inputs, &[with_spot(&request, spot)]);
    let on_demand = run(false).map_err(|e| UiError::new(e.code(), e.to_string()))?;
    // Spot may be infeasible where on-demand is not (no spot offers): then rows carry no spot price.
    let spot = run(true).ok();
    let first = on_demand.tasks.into_iter().next();
    // The optimizer's own reason for each offer cheaper than the pick (sky-core, as the CLI's
    // `--dryrun --explain` shows it).
    let cheaper = first
        .as_ref()
        .map(|t| optimizer::why_not_cheaper(inputs, &with_spot(&request, false), &t.chosen, 8));
    let od = first.map(|t| t.candidates).unwrap_or_default();
    let sp = spot
        .and_then(|p| p.tasks.into_iter().next())
        .map(|t| t.candidates)
        .unwrap_or_default();
    // One row per (cloud, region, instance type): the zones of a region share its price, and
    // listing each would push the other clouds off the table.
    let mut rows: Vec<PlanRow> = Vec::new();
    for c in &od {
        if rows.len() == TABLE_ROWS {
            break;
        }
        if rows.iter().any(|r| {
            r.cloud == c.cloud && r.region == c.region && r.instance_type == c.instance_type
        }) {
            continue;
        }
        rows.push(PlanRow {
            rank: rows.len() + 1,
            cloud: c.cloud,
            region: c.region.clone(),
            zone: c.zone.clone(),
            instance_type: c.instance_type.clone(),
            accelerators: c.accelerators.as_ref().map(|(n, k)| format!("{n}:{k}")),
            vcpus: c.vcpus,
            memory_gib: c.memory_gib,
            on_demand: c.total_hourly_price,
            spot: sp
                .iter()
                .find(|s| same_place(s, c))
                .map(|s| s.total_hourly_price),
        });
    }
    // The chart compares clouds: each cloud's cheapest few regions, best cloud first.
    let mut bars: Vec<PriceBar> = Vec::new();
    let mut clouds_in_order: Vec<CloudId> = Vec::new();
    for c in &od {
        if !clouds_in_order.contains(&c.cloud) {
            clouds_in_order.push(c.cloud);
        }
    }
    let per_cloud = (CHART_ROWS / clouds_in_order.len().max(1)).max(1);
    for cloud in clouds_in_order {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for c in od.iter().filter(|c| c.cloud == cloud) {
            if seen.len() == per_cloud {
                break;
            }
            if seen.contains(&(c.region.as_str(), c.instance_type.as_str())) {
                continue;
            }
            seen.push((c.region.as_str(), c.instance_type.as_str()));
            bars.push(PriceBar {
                cloud: c.cloud,
                label: format!("{} {} {}", c.cloud.as_str(), c.instance_type, c.region),
                on_demand: c.total_hourly_price,
                spot: sp
                    .iter()
                    .find(|s| {
                        s.cloud == c.cloud
                            && s.region == c.region
                            && s.instance_type == c.instance_type
                    })
                    .map(|s| s.total_hourly_price),
            });
        }
    }
    let chart_svg = chart::price_chart(&bars)?;
    let why_not_cheaper = explain(&rows, &sp, use_spot, cheaper.as_ref());
    Ok(PlanView {
        num_nodes: task.num_nodes,
        use_spot,
        rows,
        total_candidates: od.len(),
        chart_svg,
        why_not_cheaper,
    })
}

fn explain(
    rows: &[PlanRow],
    spot: &[Candidate],
    use_spot: bool,
    cheaper: Option<&optimizer::WhyNotCheaper>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(best) = rows.first() else { return out };
    let place = best.zone.as_deref().unwrap_or(&best.region);
    match cheaper.filter(|w| w.cheaper > 0) {
        None => out.push(format!(
            "{} {} in {place} is the cheapest on-demand offer in the catalog",
            best.cloud.display_name(),
            best.instance_type,
        )),
        Some(why) => {
            let kinds: Vec<String> = why
                .by_kind
                .iter()
                .map(|(kind, n)| format!("{n} by {kind}"))
                .collect();
            out.push(format!(
                "{} {} in {place} is the cheapest on-demand offer that meets every requirement; \
                 {} cloud/instance types cost less and were ruled out: {}",
                best.cloud.display_name(),
                best.instance_type,
                why.cheaper,
                kinds.join(", ")
            ));
            for o in &why.offers {
                out.push(format!(
                    "{} {} in {} (${:.4}/h a node): {}",
                    o.cloud.display_name(),
                    o.instance_type,
                    o.region,
                    o.hourly_price,
                    o.reason
                ));
            }
        }
    }
    if let Some(cheapest_spot) = spot.first() {
        if !use_spot && cheapest_spot.total_hourly_price < best.on_demand {
            out.push(format!(
                "spot {} in {} costs ${:.4}/h, {:.0}% less, but can be reclaimed at any time: set use_spot to take it",
                cheapest_spot.instance_type,
                cheapest_spot.zone.as_deref().unwrap_or(&cheapest_spot.region),
                cheapest_spot.total_hourly_price,
                100.0 * (1.0 - cheapest_spot.total_hourly_price / best.on_demand),
            ));
        }
    } else {
        out.push("no spot offer meets the requirements".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_every_cloud_with_spot_beside_on_demand() {
        let catalog = Catalog::embedded().expect("embedded catalog");
        let view = plan(&catalog, "name: t\nresources:\n  cpus: 4+\n").expect("plan");
        assert!(view.rows.len() > 1);
        assert!(
            view.rows
                .windows(2)
                .all(|w| w[0].on_demand <= w[1].on_demand),
            "ranked"
        );
        let clouds: std::collections::BTreeSet<CloudId> =
            view.rows.iter().map(|r| r.cloud).collect();
        assert!(clouds.len() >= 2, "{clouds:?}");
        assert!(
            view.rows
                .iter()
                .any(|r| r.spot.is_some_and(|s| s < r.on_demand))
        );
        assert!(view.chart_svg.starts_with("<svg"));
        assert!(
            view.why_not_cheaper.iter().any(|w| w.starts_with("spot ")),
            "{:?}",
            view.why_not_cheaper
        );
        // The optimizer's own reasons, per cheaper offer: 4+ vCPUs rules out the small ones.
        assert!(
            view.why_not_cheaper
                .iter()
                .any(|w| w.contains("vCPUs, the task needs 4+")),
            "{:?}",
            view.why_not_cheaper
        );
    }

    #[test]
    fn task_errors_carry_path_and_line() {
        let catalog = Catalog::embedded().expect("embedded catalog");
        let err = plan(&catalog, "name: t\nresources:\n  cpus: lots\n").expect_err("bad cpus");
        assert_eq!(err.code, "invalid_task");
        let task = err.task.expect("task position");
        assert_eq!((task.path.as_str(), task.line), ("resources.cpus", Some(3)));
    }
}
