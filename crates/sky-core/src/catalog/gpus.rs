//! What `sky show-gpus` lists: accelerators, the counts one can get, and per (cloud, instance
//! type, count) the cheapest on-demand price with its region, as SkyPilot 0.14 lists them.
//!
//! Attachable accelerators are priced the way SkyPilot shows them: each accelerator offer is
//! paired with the cheapest host VM its cloud's host rule allows in the same zone, and the row
//! shows host + accelerator; standalone ones (TPU VMs) show their own price and no host.
//!
//! What this module does not do: choose resources for a task (the optimizer does) or format
//! tables (front ends do).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::cloud::CloudId;

use super::{AttachableAcceleratorOffer, Catalog, CloudCatalog, HostSpec, Offer};

/// SkyPilot's "common GPUs", listed first by `sky show-gpus`.
pub const COMMON_GPUS: [&str; 14] = [
    "A10",
    "A10G",
    "A100",
    "A100-80GB",
    "B200",
    "H100",
    "H200",
    "L4",
    "L40S",
    "RTX5090",
    "RTXPRO6000",
    "T4",
    "V100",
    "V100-32GB",
];

/// The smallest TPU of each generation, listed second (larger ones appear with `--all`).
pub const COMMON_TPUS: [&str; 14] = [
    "tpu-v2-8",
    "tpu-v3-8",
    "tpu-v4-8",
    "tpu-v4-16",
    "tpu-v4-32",
    "tpu-v5litepod-1",
    "tpu-v5litepod-4",
    "tpu-v5litepod-8",
    "tpu-v5p-8",
    "tpu-v5p-16",
    "tpu-v5p-32",
    "tpu-v6e-1",
    "tpu-v6e-4",
    "tpu-v6e-8",
];

/// Which accelerators to list. Name and region match as case-insensitive substrings
/// (`A100` also lists `A100-80GB`), as SkyPilot's filters do.
#[derive(Debug, Clone, Default)]
pub struct GpuFilter<'a> {
    pub name: Option<&'a str>,
    pub count: Option<f64>,
    pub region: Option<&'a str>,
}

/// One listed way to get an accelerator: SkyPilot's `InstanceTypeInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuOffer {
    pub cloud: CloudId,
    /// `None` for a standalone accelerator (TPU VM) shown as "(attachable)".
    pub instance_type: Option<String>,
    pub accelerator_name: String,
    pub accelerator_count: f64,
    pub cpu_count: Option<f64>,
    /// Memory of one accelerator, GiB.
    pub device_memory: Option<f64>,
    /// Host memory, GiB.
    pub memory: Option<f64>,
    /// Cheapest on-demand USD/h (host + attached accelerators).
    pub price: Option<f64>,
    /// Spot USD/h in the same region as `price`.
    pub spot_price: Option<f64>,
    pub region: String,
}

/// Accelerator name -> counts available on any of the catalog's clouds, sorted.
pub fn accelerator_counts(catalog: &Catalog, filter: &GpuFilter<'_>) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for cloud in &catalog.clouds {
        let region_ok: Vec<bool> = cloud
            .regions
            .iter()
            .map(|r| matches(filter.region, r))
            .collect();
        // An instance type counts once if any of its offers is in an accepted region.
        let mut offered = vec![false; cloud.instance_types.len()];
        for offer in &cloud.offers {
            if region_ok[offer.region as usize] {
                offered[offer.instance_type as usize] = true;
            }
        }
        let from_types = cloud
            .instance_types
            .iter()
            .zip(&offered)
            .filter(|(_, offered)| **offered)
            .filter_map(|(it, _)| it.accelerator.as_ref());
        let attachable = cloud
            .attachable_accelerators
            .iter()
            .filter(|a| region_ok[a.region as usize])
            .map(|a| &a.accelerator);
        for acc in from_types.chain(attachable) {
            if !matches(filter.name, &acc.name) || filter.count.is_some_and(|c| c != acc.count) {
                continue;
            }
            let counts = out.entry(acc.name.clone()).or_default();
            if !counts.contains(&acc.count) {
                counts.push(acc.count);
            }
        }
    }
    for counts in out.values_mut() {
        counts.sort_by(f64::total_cmp);
    }
    out
}

/// Accelerator name -> its offers, in SkyPilot's order: clouds ordered by their cheapest
/// (on-demand, then spot) offer, offers within a cloud by price then spot price.
pub fn list_gpu_offers(
    catalog: &Catalog,
    filter: &GpuFilter<'_>,
) -> BTreeMap<String, Vec<GpuOffer>> {
    let mut by_name: BTreeMap<String, Vec<GpuOffer>> = BTreeMap::new();
    for cloud in &catalog.clouds {
        for (name, rows) in cloud_offers(cloud, filter) {
            by_name.entry(name).or_default().extend(rows);
        }
    }
    for rows in by_name.values_mut() {
        let mut cloud_min: HashMap<CloudId, (Option<f64>, Option<f64>)> = HashMap::new();
        for row in rows.iter() {
            let entry = cloud_min.entry(row.cloud).or_insert((None, None));
            entry.0 = min_opt(entry.0, row.price);
            entry.1 = min_opt(entry.1, row.spot_price);
        }
        // Stable sort: equal keys keep the per-cloud order built above.
        rows.sort_by(|a, b| {
            let (am, asp) = cloud_min[&a.cloud];
            let (bm, bsp) = cloud_min[&b.cloud];
            nan_last(am, bm)
                .then(nan_last(asp, bsp))
                .then(nan_last(a.price, b.price))
                .then(nan_last(a.spot_price, b.spot_price))
        });
    }
    by_name
}

/// Whether `needle` (if any) occurs in `haystack`, ignoring ASCII case.
fn matches(needle: Option<&str>, haystack: &str) -> bool {
    needle.is_none_or(|n| {
        haystack
            .to_ascii_lowercase()
            .contains(&n.to_ascii_lowercase())
    })
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Ascending, with missing values last (pandas' `sort_values` puts NaN last).
fn nan_last(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// One cloud's rows, grouped by accelerator name (TPUs by generation, `tpu-v4`), each group in
/// SkyPilot's per-cloud order.
fn cloud_offers(cloud: &CloudCatalog, filter: &GpuFilter<'_>) -> BTreeMap<String, Vec<GpuOffer>> {
    // Cheapest row per (instance type, accelerator, count); the key's order is the output order.
    let mut best: HashMap<(String, String, u64), GpuOffer> = HashMap::new();
    let mut keep = |row: GpuOffer| {
        let key = (
            row.instance_type.clone().unwrap_or_default(),
            row.accelerator_name.clone(),
            row.accelerator_count.to_bits(),
        );
        match best.get(&key) {
            Some(current) if !cheaper(&row, current) => {}
            _ => {
                best.insert(key, row);
            }
        }
    };

    // Decide each instance type and region once, not once per offer (~90k offers).
    let type_ok: Vec<bool> = cloud
        .instance_types
        .iter()
        .map(|it| {
            it.accelerator.as_ref().is_some_and(|acc| {
                matches(filter.name, &acc.name) && filter.count.is_none_or(|c| c == acc.count)
            })
        })
        .collect();
    let region_ok: Vec<bool> = cloud
        .regions
        .iter()
        .map(|r| matches(filter.region, r))
        .collect();
    for offer in &cloud.offers {
        if !type_ok[offer.instance_type as usize] || !region_ok[offer.region as usize] {
            continue;
        }
        let it = &cloud.instance_types[offer.instance_type as usize];
        let Some(acc) = &it.accelerator else { continue };
        let region = cloud.region_name(offer.region);
        keep(GpuOffer {
            cloud: cloud.cloud,
            instance_type: Some(it.name.clone()),
            accelerator_name: acc.name.clone(),
            accelerator_count: acc.count,
            cpu_count: Some(it.vcpus),
            device_memory: acc.memory_gib,
            memory: Some(it.memory_gib),
            price: offer.price,
            spot_price: offer.spot_price,
            region: region.to_owned(),
        });
    }

    let wanted: Vec<&AttachableAcceleratorOffer> = cloud
        .attachable_accelerators
        .iter()
        .filter(|a| {
            accepts(
                filter,
                &a.accelerator.name,
                a.accelerator.count,
                cloud.region_name(a.region),
            )
        })
        .collect();
    if !wanted.is_empty() {
        let hosts = HostIndex::new(cloud);
        for attachable in wanted {
            if let Some(row) = priced_with_host(cloud, &hosts, attachable) {
                keep(row);
            }
        }
    }

    let mut groups: BTreeMap<String, Vec<GpuOffer>> = BTreeMap::new();
    for row in best.into_values() {
        let group = match tpu_generation(&row.accelerator_name) {
            Some(generation) => generation.to_owned(),
            None => row.accelerator_name.clone(),
        };
        groups.entry(group).or_default().push(row);
    }
    for (group, rows) in &mut groups {
        if group.starts_with("tpu-") {
            rows.sort_by(|a, b| {
                nan_last(a.price, b.price)
                    .then(nan_last(a.spot_price, b.spot_price))
                    .then_with(|| a.region.cmp(&b.region))
            });
        } else {
            rows.sort_by(|a, b| {
                a.accelerator_count
                    .total_cmp(&b.accelerator_count)
                    .then_with(|| a.instance_type.cmp(&b.instance_type))
                    .then(nan_last(a.cpu_count, b.cpu_count))
                    .then(nan_last(a.price, b.price))
                    .then(nan_last(a.spot_price, b.spot_price))
                    .then_with(|| a.region.cmp(&b.region))
            });
        }
    }
    groups
}

fn accepts(filter: &GpuFilter<'_>, name: &str, count: f64, region: &str) -> bool {
    matches(filter.name, name)
        && matches(filter.region, region)
        && filter.count.is_none_or(|c| c == count)
}

/// `tpu-v4-8` -> `tpu-v4`: SkyPilot lists all sizes of a TPU generation in one table.
fn tpu_generation(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("tpu-")?;
    let version_len = rest.find('-')?;
    Some(&name[..4 + version_len])
}

/// The row to show: lowest on-demand price, then lowest spot price, then region name.
fn cheaper(a: &GpuOffer, b: &GpuOffer) -> bool {
    nan_last(a.price, b.price)
        .then(nan_last(a.spot_price, b.spot_price))
        .then_with(|| a.region.cmp(&b.region))
        .is_lt()
}

/// Priced instance-type offers per (region, zone), to find host VMs without rescanning.
struct HostIndex<'a> {
    by_place: HashMap<(u32, Option<u32>), Vec<&'a Offer>>,
}

impl<'a> HostIndex<'a> {
    fn new(cloud: &'a CloudCatalog) -> Self {
        let mut by_place: HashMap<(u32, Option<u32>), Vec<&'a Offer>> = HashMap::new();
        for offer in cloud.offers.iter().filter(|o| o.price.is_some()) {
            by_place
                .entry((offer.region, offer.zone))
                .or_default()
                .push(offer);
        }
        HostIndex { by_place }
    }
}

fn priced_with_host(
    cloud: &CloudCatalog,
    hosts: &HostIndex<'_>,
    attachable: &AttachableAcceleratorOffer,
) -> Option<GpuOffer> {
    let acc = &attachable.accelerator;
    let rule = cloud.host_rule_for(&acc.name, acc.count)?;
    let region = cloud.region_name(attachable.region).to_owned();
    let base = GpuOffer {
        cloud: cloud.cloud,
        instance_type: None,
        accelerator_name: acc.name.clone(),
        accelerator_count: acc.count,
        cpu_count: None,
        device_memory: acc.memory_gib,
        memory: None,
        price: attachable.price,
        spot_price: attachable.spot_price,
        region,
    };
    if rule.host == HostSpec::Standalone {
        return Some(base);
    }
    // An accelerator without an on-demand price cannot be combined into one (SkyPilot drops it).
    let acc_price = attachable.price?;
    let candidates = hosts.by_place.get(&(attachable.region, attachable.zone))?;
    let host = candidates
        .iter()
        .filter(|o| {
            let it = &cloud.instance_types[o.instance_type as usize];
            match &rule.host {
                HostSpec::InstanceTypes(names) => names.contains(&it.name),
                HostSpec::Family {
                    family_prefixes,
                    min_vcpus,
                    min_memory_gib,
                } => {
                    family_prefixes
                        .iter()
                        .any(|p| it.name.starts_with(p.as_str()))
                        && it.vcpus >= *min_vcpus
                        && it.memory_gib >= *min_memory_gib
                }
                HostSpec::Standalone => false,
            }
        })
        // First of the cheapest, in catalog order (pandas' idxmin).
        .fold(None::<&&Offer>, |best, o| match best {
            Some(b) if b.price <= o.price => Some(b),
            _ => Some(o),
        })?;
    let it = &cloud.instance_types[host.instance_type as usize];
    Some(GpuOffer {
        instance_type: Some(it.name.clone()),
        cpu_count: Some(it.vcpus),
        memory: Some(it.memory_gib),
        price: host.price.map(|p| p + acc_price),
        spot_price: match (host.spot_price, attachable.spot_price) {
            (Some(h), Some(a)) => Some(h + a),
            _ => None,
        },
        ..base
    })
}

#[cfg(test)]
mod tests;
