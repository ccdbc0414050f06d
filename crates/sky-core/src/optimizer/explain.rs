//! Why not cheaper: for a task's pick, the offers in the catalog that cost less per node, and
//! the optimizer's own reason that each was not taken (too few vCPUs or too little memory, an
//! accelerator missing, a region the task excludes, a cloud not enabled, a type the task does
//! not name, an earlier attempt that failed there). One entry per cloud and instance type, at its
//! cheapest cheaper offer; both faces render it (`sky launch --dryrun --explain`, the desktop's
//! comparison).
//!
//! The checks are the ones `search` applies, asked one by one so the first that fails can be
//! named. What this module does not do: rank, or change the choice.

use serde::Serialize;

use crate::cloud::CloudId;
use crate::resources::{Amount, MemoryRequest, Resources};

use super::index::CloudIndex;
use super::search;
use super::{Candidate, Inputs, TaskRequest, format_count};

/// A cheaper offer the optimizer did not take, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheaperOffer {
    pub cloud: CloudId,
    pub region: String,
    pub instance_type: String,
    /// `T4:1`, when the instance type carries accelerators.
    pub accelerators: Option<String>,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// USD per hour for one node, on-demand or spot as the task asks.
    pub hourly_price: f64,
    /// What kind of reason (`vcpus`, `memory`, `accelerator`, `region`, `cloud`, ...), for
    /// grouping.
    pub kind: &'static str,
    pub reason: String,
}

/// The pick, the cheapest offers below it with their reasons, and how many there are by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhyNotCheaper {
    /// How many (cloud, instance type) pairs have an offer cheaper than the pick.
    pub cheaper: usize,
    /// At most the limit asked for, cheapest first: the cheapest offer of each kind of reason,
    /// then the near misses just below the pick's price.
    pub offers: Vec<CheaperOffer>,
    /// `(kind, count)` over all of them, most common first.
    pub by_kind: Vec<(&'static str, usize)>,
}

fn amount_text(a: Amount) -> String {
    format!(
        "{}{}",
        format_count(a.value),
        if a.at_least { "+" } else { "" }
    )
}

fn memory_text(m: MemoryRequest) -> String {
    match m {
        MemoryRequest::Gib(a) => format!("{} GiB", amount_text(a)),
        MemoryRequest::PerCpu(a) => format!("{} GiB per vCPU", amount_text(a)),
    }
}

/// The families a cloud's default types come from, for the reason's text.
fn families(ci: &CloudIndex<'_>) -> String {
    use super::profile::FamilyRule;
    match ci.profile.default_families {
        FamilyRule::Prefixes(p) => p
            .iter()
            .map(|f| f.trim_end_matches(['.', '-']))
            .collect::<Vec<_>>()
            .join(", "),
        FamilyRule::SizeNameFamilies(f) => f.join(", "),
    }
}

/// Why type `t` of `ci` at `offer` (an index into its offers) cannot serve `req`, with a kind;
/// `None` when it could.
fn rejection(
    inputs: Inputs<'_, '_>,
    ci: &CloudIndex<'_>,
    req: &Resources,
    t: u32,
    offer: u32,
    num_nodes: u32,
) -> Option<(&'static str, String)> {
    let cloud = ci.catalog.cloud;
    let it = ci.instance_type(t);
    if !inputs.enabled_clouds.contains(&cloud) {
        return Some((
            "cloud",
            format!(
                "{} is not enabled here (see `sky check`)",
                cloud.display_name()
            ),
        ));
    }
    if let Some(pinned) = req.placement.cloud
        && pinned != cloud
    {
        return Some((
            "cloud",
            format!("the task asks for {}", pinned.display_name()),
        ));
    }
    if let Some(name) = &req.instance_type {
        if *name != it.name {
            return Some(("instance type", format!("the task asks for {name}")));
        }
    } else {
        match (&req.accelerators, &it.accelerator) {
            (Some(want), Some(have))
                if have.name.eq_ignore_ascii_case(&want.name)
                    && (have.count - want.count).abs() <= 0.01 => {}
            (Some(want), Some(have)) => {
                return Some((
                    "accelerator",
                    format!(
                        "has {}:{}, the task asks for {}:{}",
                        have.name,
                        format_count(have.count),
                        want.name,
                        format_count(want.count)
                    ),
                ));
            }
            (Some(want), None) => {
                let attached = ci.profile.attach.is_some();
                return Some((
                    "accelerator",
                    format!(
                        "has no {}:{}{}",
                        want.name,
                        format_count(want.count),
                        if attached {
                            " (the pick's price includes the accelerator attached to its host)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            (None, Some(a)) => {
                return Some((
                    "accelerator",
                    format!(
                        "an accelerator type ({}:{}); the task asks for none",
                        a.name,
                        format_count(a.count)
                    ),
                ));
            }
            (None, None) => {}
        }
    }
    let (cpus, memory, defaulted) = if req.accelerators.is_none() && req.instance_type.is_none() {
        let (c, m) = search::default_shape(ci, req);
        (c, m, req.cpus.is_none() && req.memory.is_none())
    } else {
        (req.cpus, req.memory, false)
    };
    let default_note = if defaulted {
        " (Sky's default when the task states neither cpus nor memory)"
    } else {
        ""
    };
    if req.instance_type.is_none() && !search::amount_ok(cpus, it.vcpus) {
        return Some((
            "vcpus",
            format!(
                "{} vCPUs, the task needs {}{default_note}",
                format_count(it.vcpus),
                cpus.map(amount_text).unwrap_or_default()
            ),
        ));
    }
    if req.instance_type.is_none() && !search::memory_ok(memory, it) {
        return Some((
            "memory",
            format!(
                "{} GiB memory, the task needs {}{default_note}",
                format_count(it.memory_gib),
                memory.map(memory_text).unwrap_or_default()
            ),
        ));
    }
    if req.accelerators.is_none() && req.instance_type.is_none() && !ci.default_types.contains(&t) {
        return Some((
            "family",
            format!(
                "not a family Sky (like SkyPilot) picks when no instance_type is named ({}); \
                 name it as instance_type to use it",
                families(ci)
            ),
        ));
    }
    if !search::disk_tier_ok(ci, &it.name, req.disk_tier) {
        return Some((
            "disk tier",
            format!(
                "cannot take disk_tier: {}",
                req.disk_tier
                    .map(|d| format!("{d:?}").to_lowercase())
                    .unwrap_or_default()
            ),
        ));
    }
    let o = &ci.catalog.offers[offer as usize];
    let region = ci.region_name(o.region);
    let Some(loc) = super::location(ci, req) else {
        return Some((
            "region",
            "the task's region or zone is not this cloud's".into(),
        ));
    };
    if !search::location_ok(ci, o.region, o.zone, loc) {
        let wanted = req
            .placement
            .zone
            .as_deref()
            .or(req.placement.region.as_deref())
            .unwrap_or_default();
        return Some(("region", format!("in {region}; the task asks for {wanted}")));
    }
    if !super::image_allows(req, region) {
        return Some(("image", format!("image_id names no image for {region}")));
    }
    let launchable = search::Launchable {
        instance_type: Some(t),
        attached: None,
        use_spot: req.use_spot,
    };
    let placed = search::Placed {
        region: o.region,
        zone: o.zone,
        hourly_price: if req.use_spot {
            o.spot_price.unwrap_or_default()
        } else {
            o.price.unwrap_or_default()
        },
    };
    let candidate = super::make_candidate(ci, &launchable, &placed, num_nodes);
    if inputs.blocklist.blocks(&candidate) {
        return Some((
            "blocked",
            "an earlier attempt of this launch failed there".into(),
        ));
    }
    None
}

/// The cheapest offers below `chosen`'s price per node and why each was not taken (at most
/// `limit` listed; every one counted).
pub fn why_not_cheaper(
    inputs: Inputs<'_, '_>,
    task: &TaskRequest,
    chosen: &Candidate,
    limit: usize,
) -> WhyNotCheaper {
    let spot = chosen.use_spot;
    let mut all: Vec<CheaperOffer> = Vec::new();
    for cloud in CloudId::PRICED {
        let Some(ci) = inputs.index.cloud(cloud) else {
            continue;
        };
        for t in 0..ci.catalog.instance_types.len() as u32 {
            // The type's cheapest offer below the pick: where its reason is shown.
            let mut best: Option<(f64, u32)> = None;
            for &o in &ci.offers_by_type[t as usize] {
                let offer = &ci.catalog.offers[o as usize];
                let price = if spot { offer.spot_price } else { offer.price };
                // A zero price is a row the source could not price, never launched.
                let Some(price) = price.filter(|p| *p > 0.0 && *p < chosen.hourly_price) else {
                    continue;
                };
                if best.is_none_or(|(p, _)| price < p) {
                    best = Some((price, o));
                }
            }
            let Some((price, o)) = best else { continue };
            // With alternatives (`any_of`), the reason of the one it comes closest to: the
            // alternative whose first failing check comes last.
            let reason = task
                .resources
                .options
                .iter()
                .map(|req| rejection(inputs, ci, req, t, o, task.num_nodes))
                .max_by_key(|r| r.as_ref().map_or(usize::MAX, |(kind, _)| rank(kind)));
            let (kind, reason) = match reason.flatten() {
                Some(r) => r,
                // Fits, costs less, yet not ranked first: a zone's or a tie's detail.
                None => ("rank", "ranked after the pick".to_owned()),
            };
            let it = ci.instance_type(t);
            all.push(CheaperOffer {
                cloud,
                region: ci
                    .region_name(ci.catalog.offers[o as usize].region)
                    .to_owned(),
                instance_type: it.name.clone(),
                accelerators: it
                    .accelerator
                    .as_ref()
                    .map(|a| format!("{}:{}", a.name, format_count(a.count))),
                vcpus: it.vcpus,
                memory_gib: it.memory_gib,
                hourly_price: price,
                kind,
                reason,
            });
        }
    }
    all.sort_by(|a, b| a.hourly_price.total_cmp(&b.hourly_price));
    let mut by_kind: Vec<(&'static str, usize)> = Vec::new();
    for offer in &all {
        match by_kind.iter_mut().find(|(k, _)| *k == offer.kind) {
            Some((_, n)) => *n += 1,
            None => by_kind.push((offer.kind, 1)),
        }
    }
    by_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let cheaper = all.len();
    // Listed: the cheapest offer of each kind of reason, then the near misses (the offers just
    // below the pick's price, which a person weighing the pick asks about), cheapest first.
    let mut picked: Vec<usize> = Vec::new();
    for (kind, _) in &by_kind {
        if let Some(i) = all.iter().position(|o| o.kind == *kind) {
            picked.push(i);
        }
    }
    picked.truncate(limit);
    for i in (0..all.len()).rev() {
        if picked.len() >= limit {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.sort_unstable();
    let offers = picked.into_iter().map(|i| all[i].clone()).collect();
    WhyNotCheaper {
        cheaper,
        offers,
        by_kind,
    }
}

/// How far through the checks a reason of this kind comes (later: closer to fitting).
fn rank(kind: &str) -> usize {
    [
        "cloud",
        "instance type",
        "accelerator",
        "vcpus",
        "memory",
        "family",
        "disk tier",
        "region",
        "image",
        "blocked",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::optimizer::{Blocklist, CatalogIndex, Target};

    fn explain(yaml: &str, limit: usize) -> (Candidate, WhyNotCheaper) {
        let catalog = Catalog::embedded().expect("embedded catalog");
        let task = crate::task::parse_chain(yaml, "task.yaml", &catalog)
            .expect("task")
            .remove(0);
        let request = TaskRequest::from(&task);
        let index = CatalogIndex::new(&catalog);
        let blocklist = Blocklist::default();
        let inputs = Inputs {
            index: &index,
            enabled_clouds: &[CloudId::Aws, CloudId::Gcp, CloudId::Azure],
            blocklist: &blocklist,
            target: Target::Cost,
        };
        let plan = crate::optimizer::plan(inputs, std::slice::from_ref(&request)).expect("plan");
        let chosen = plan.tasks[0].chosen.clone();
        let why = why_not_cheaper(inputs, &request, &chosen, limit);
        (chosen, why)
    }

    #[test]
    fn every_cheaper_offer_of_a_cpu_task_is_ruled_out_by_its_shape() {
        let (chosen, why) = explain("resources:\n  cpus: 8+\n  memory: 32+\n", 500);
        assert!(why.cheaper > 10, "{why:?}");
        assert_eq!(why.offers.len(), why.cheaper.min(500));
        let (_, few) = explain("resources:\n  cpus: 8+\n  memory: 32+\n", 6);
        assert_eq!(few.offers.len(), 6);
        for (kind, _) in &few.by_kind {
            assert!(few.offers.iter().any(|o| o.kind == *kind), "{kind} shown");
        }
        assert!(
            why.offers
                .iter()
                .all(|o| o.hourly_price < chosen.hourly_price),
            "all cheaper than {}",
            chosen.hourly_price
        );
        assert!(
            why.offers
                .windows(2)
                .all(|w| w[0].hourly_price <= w[1].hourly_price),
            "cheapest first"
        );
        assert!(
            why.offers.iter().all(|o| o.kind != "rank"),
            "{:?}",
            why.offers.iter().find(|o| o.kind == "rank")
        );
        let small = why
            .offers
            .iter()
            .find(|o| o.kind == "vcpus")
            .expect("a type with too few vCPUs");
        assert!(small.vcpus < 8.0, "{small:?}");
        assert!(
            small.reason.contains("the task needs 8+"),
            "{}",
            small.reason
        );
        assert!(
            why.by_kind.iter().map(|(_, n)| n).sum::<usize>() == why.cheaper,
            "{:?}",
            why.by_kind
        );
    }

    #[test]
    fn a_pinned_region_and_cloud_are_named_as_the_reason() {
        let (_, why) = explain("resources:\n  infra: aws/eu-central-1\n  cpus: 2\n", 2000);
        assert!(
            why.offers
                .iter()
                .any(|o| o.kind == "cloud" && o.reason == "the task asks for AWS"),
            "{:?}",
            why.by_kind
        );
        let elsewhere = why
            .offers
            .iter()
            .find(|o| o.kind == "region")
            .expect("a cheaper AWS region");
        assert_eq!(elsewhere.cloud, CloudId::Aws);
        assert!(
            elsewhere.reason.ends_with("the task asks for eu-central-1"),
            "{}",
            elsewhere.reason
        );
    }

    #[test]
    fn an_accelerator_task_names_the_missing_accelerator() {
        let (_, why) = explain("resources:\n  accelerators: A100:8\n", 50);
        assert!(
            why.offers
                .iter()
                .any(|o| o.kind == "accelerator" && o.reason.contains("A100:8")),
            "{:?}",
            why.offers
        );
    }
}
