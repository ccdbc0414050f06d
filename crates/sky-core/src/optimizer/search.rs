//! One resources alternative on one cloud: pick the cheapest instance type that satisfies it
//! (SkyPilot's "feasible resources"), then expand that type into priced regions and zones.
//!
//! Like SkyPilot, only each cloud's single cheapest instance type is expanded; other types of
//! the same cloud never reach the ranking. What this module does not do: compare clouds,
//! alternatives or tasks (see `plan`), or explain failures (see `diagnose`).

use crate::catalog::{InstanceType, Offer};
use crate::resources::{AcceleratorRequest, Amount, DiskTier, MemoryRequest, Resources};

use super::index::CloudIndex;
use super::profile::DiskTierRule;

/// A resolved location filter on one cloud (ids into that cloud's catalog).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Location {
    pub region: Option<u32>,
    pub zone: Option<u32>,
}

/// What runs the task on one cloud, before it is placed in a region.
#[derive(Debug, Clone)]
pub(crate) struct Launchable {
    /// `None`: a TPU VM, which has no instance type of its own in the catalog.
    pub instance_type: Option<u32>,
    /// Accelerators billed apart from the VM: (catalog name, count).
    pub attached: Option<(String, f64)>,
    pub use_spot: bool,
}

/// A launchable pinned to a region (and zone), with its price for one node.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub region: u32,
    pub zone: Option<u32>,
    pub hourly_price: f64,
}

/// Result of looking for a launchable on one cloud (`None`: nothing there satisfies it).
#[derive(Debug, Default)]
pub(crate) struct Feasible {
    pub launchable: Option<Launchable>,
}

fn price_of(offer: &Offer, spot: bool) -> Option<f64> {
    if spot { offer.spot_price } else { offer.price }
}

pub(super) fn amount_ok(amount: Option<Amount>, have: f64) -> bool {
    match amount {
        None => true,
        Some(a) if a.at_least => have >= a.value,
        Some(a) => have == a.value,
    }
}

pub(super) fn memory_ok(memory: Option<MemoryRequest>, it: &InstanceType) -> bool {
    match memory {
        None => true,
        Some(MemoryRequest::Gib(a)) => amount_ok(Some(a), it.memory_gib),
        Some(MemoryRequest::PerCpu(a)) => it.memory_gib >= it.vcpus * a.value,
    }
}

pub(super) fn location_ok(
    ci: &CloudIndex<'_>,
    region: u32,
    zone: Option<u32>,
    loc: Location,
) -> bool {
    if loc.region.is_some_and(|r| r != region) {
        return false;
    }
    match loc.zone {
        None => true,
        Some(z) => zone == Some(z) && ci.zone_region(z) == region,
    }
}

pub(super) fn disk_tier_ok(
    ci: &CloudIndex<'_>,
    instance_type: &str,
    tier: Option<DiskTier>,
) -> bool {
    match (ci.profile.disk_tiers, tier) {
        (DiskTierRule::Any, _) | (_, None | Some(DiskTier::Best | DiskTier::Low)) => true,
        (DiskTierRule::PremiumNeedsSSeries, Some(DiskTier::Ultra)) => false,
        (DiskTierRule::PremiumNeedsSSeries, Some(DiskTier::Medium | DiskTier::High)) => {
            super::profile::is_s_series(instance_type)
        }
    }
}

/// The instance type of the cheapest row among `types` that passes `keep`, the location filter
/// and the price cap. Ties go to the row that comes first in the catalog.
fn cheapest_type(
    ci: &CloudIndex<'_>,
    types: &[u32],
    keep: impl Fn(&InstanceType) -> bool,
    loc: Location,
    spot_prices: bool,
    max_price: Option<f64>,
) -> Option<u32> {
    let mut best: Option<(f64, u32, u32)> = None;
    for &t in types {
        if !keep(ci.instance_type(t)) {
            continue;
        }
        for &o in &ci.offers_by_type[t as usize] {
            let offer = &ci.catalog.offers[o as usize];
            if !location_ok(ci, offer.region, offer.zone, loc) {
                continue;
            }
            let Some(price) = price_of(offer, spot_prices) else {
                continue;
            };
            if max_price.is_some_and(|m| price > m) {
                continue;
            }
            let better = match best {
                None => true,
                Some((p, idx, _)) => price < p || (price == p && o < idx),
            };
            if better {
                best = Some((price, o, t));
            }
        }
    }
    best.map(|(_, _, t)| t)
}

fn acc_count_matches(have: f64, want: f64) -> bool {
    (have - want).abs() <= 0.01
}

/// Finds the launchable for `req` on this cloud, or why there is none.
pub(crate) fn feasible(ci: &CloudIndex<'_>, req: &Resources, loc: Location) -> Feasible {
    if let Some(name) = &req.instance_type {
        return feasible_pinned_type(ci, req, name, loc);
    }
    match &req.accelerators {
        None => {
            let (cpus, memory) = default_shape(ci, req);
            let spot_prices = req.use_spot && req.max_hourly_cost.is_some();
            let t = cheapest_type(
                ci,
                &ci.default_types,
                |it| {
                    amount_ok(cpus, it.vcpus)
                        && memory_ok(memory, it)
                        && disk_tier_ok(ci, &it.name, req.disk_tier)
                },
                loc,
                spot_prices,
                req.max_hourly_cost,
            );
            Feasible {
                launchable: t.map(|t| Launchable {
                    instance_type: Some(t),
                    attached: None,
                    use_spot: req.use_spot,
                }),
            }
        }
        Some(acc) if ci.profile.attach.is_some() => feasible_attached(ci, req, acc, loc),
        Some(acc) => {
            let types = ci.types_with_accelerator(&acc.name);
            let matching: Vec<u32> = types
                .iter()
                .copied()
                .filter(|&t| {
                    ci.instance_type(t)
                        .accelerator
                        .as_ref()
                        .is_some_and(|a| acc_count_matches(a.count, acc.count))
                })
                .filter(|&t| {
                    ci.offers_by_type[t as usize].iter().any(|&o| {
                        let offer = &ci.catalog.offers[o as usize];
                        location_ok(ci, offer.region, offer.zone, loc)
                    })
                })
                .collect();
            if matching.is_empty() {
                return Feasible::default();
            }
            let t = cheapest_type(
                ci,
                &matching,
                |it| {
                    amount_ok(req.cpus, it.vcpus)
                        && memory_ok(req.memory, it)
                        && disk_tier_ok(ci, &it.name, req.disk_tier)
                },
                loc,
                req.use_spot,
                req.max_hourly_cost,
            );
            Feasible {
                launchable: t.map(|t| Launchable {
                    instance_type: Some(t),
                    attached: None,
                    use_spot: req.use_spot,
                }),
            }
        }
    }
}

/// What a request that names no accelerator and no instance type asks for: `8+` vCPUs when it
/// states neither cpus nor memory, and 4 GiB per vCPU when it states no memory.
pub(super) fn default_shape(
    ci: &CloudIndex<'_>,
    req: &Resources,
) -> (Option<Amount>, Option<MemoryRequest>) {
    let cpus = match (req.cpus, req.memory) {
        (None, None) => Some(Amount {
            value: ci.profile.default_cpus,
            at_least: true,
        }),
        (cpus, _) => cpus,
    };
    let memory = req.memory.or(Some(MemoryRequest::PerCpu(Amount {
        value: ci.profile.default_memory_per_cpu,
        at_least: true,
    })));
    (cpus, memory)
}

fn feasible_pinned_type(
    ci: &CloudIndex<'_>,
    req: &Resources,
    name: &str,
    loc: Location,
) -> Feasible {
    let none = Feasible::default();
    if let Some(attach) = ci.profile.attach
        && name == attach.tpu_vm_instance_type
    {
        return match &req.accelerators {
            Some(acc) if attach.is_tpu(&acc.name) => Feasible {
                launchable: Some(Launchable {
                    instance_type: None,
                    attached: Some((acc.name.clone(), acc.count)),
                    use_spot: req.use_spot,
                }),
            },
            _ => none,
        };
    }
    let Some(t) = ci.instance_type_id(name) else {
        return none;
    };
    let it = ci.instance_type(t);
    if !disk_tier_ok(ci, name, req.disk_tier) {
        return none;
    }
    let attached = match ci.profile.attach {
        Some(attach) => match (&req.accelerators, attach.accelerator_of_host(name)) {
            (Some(acc), _) => Some((acc.name.clone(), acc.count)),
            (None, Some((acc, count))) => Some((acc.to_owned(), f64::from(count))),
            (None, None) => None,
        },
        None => None,
    };
    let launchable = Launchable {
        instance_type: Some(t),
        attached,
        use_spot: req.use_spot,
    };
    // Bundled accelerators must be the instance type's own; attached ones must fit the host.
    if ci.profile.attach.is_none()
        && let Some(acc) = &req.accelerators
    {
        let own = it.accelerator.as_ref();
        if !own.is_some_and(|a| {
            a.name.eq_ignore_ascii_case(&acc.name) && acc_count_matches(a.count, acc.count)
        }) {
            return none;
        }
    }
    if ci.profile.attach.is_none() && expand(ci, &launchable, loc).is_empty() {
        return none;
    }
    Feasible {
        launchable: Some(launchable),
    }
}

/// Accelerators priced apart from the VM: a dedicated host type for some models (A100 -> a2),
/// an N1 host sized from the GPU count for the others, a TPU VM for TPUs.
fn feasible_attached(
    ci: &CloudIndex<'_>,
    req: &Resources,
    acc: &AcceleratorRequest,
    loc: Location,
) -> Feasible {
    let Some(attach) = ci.profile.attach else {
        return Feasible::default();
    };
    let rows: Vec<u32> = ci
        .attachable_named(&acc.name)
        .iter()
        .copied()
        .filter(|&i| {
            let a = &ci.catalog.attachable_accelerators[i as usize];
            acc_count_matches(a.accelerator.count, acc.count)
                && a.zone
                    .is_none_or(|_| location_ok(ci, a.region, a.zone, loc))
                && (a.zone.is_some() || loc.zone.is_none())
                && loc.region.is_none_or(|r| r == a.region)
        })
        .collect();
    let Some(&first) = rows.first() else {
        return Feasible::default();
    };
    let canonical = ci.catalog.attachable_accelerators[first as usize]
        .accelerator
        .name
        .clone();
    let launchable = |instance_type| Feasible {
        launchable: Some(Launchable {
            instance_type,
            attached: Some((canonical.clone(), acc.count)),
            use_spot: req.use_spot,
        }),
    };
    if attach.is_tpu(&canonical) {
        // A TPU VM's host is fixed: 96 vCPUs and 334 GB (240 and 400 for v4).
        let v4 = canonical.contains("v4");
        let (cpus, memory) = if v4 { (240.0, 400.0) } else { (96.0, 334.0) };
        let cpus_ok = req.cpus.is_none_or(|a| {
            if a.at_least {
                a.value <= cpus
            } else {
                a.value == cpus
            }
        });
        let memory_ok = match req.memory {
            None => true,
            Some(MemoryRequest::Gib(a)) if a.at_least => a.value <= memory,
            Some(MemoryRequest::Gib(a)) => a.value == memory,
            Some(MemoryRequest::PerCpu(a)) => a.value * cpus <= memory,
        };
        return if cpus_ok && memory_ok {
            launchable(None)
        } else {
            Feasible::default()
        };
    }
    let host = if let Some(dedicated) = attach.dedicated_for(&canonical) {
        let Some((_, names)) = dedicated
            .by_count
            .iter()
            .find(|(n, _)| f64::from(*n) == acc.count)
        else {
            return Feasible::default();
        };
        let types: Vec<u32> = names
            .iter()
            .filter_map(|n| ci.instance_type_id(n))
            .collect();
        cheapest_type(
            ci,
            &types,
            |it| amount_ok(req.cpus, it.vcpus) && memory_ok(req.memory, it),
            Location::default(),
            false,
            None,
        )
    } else {
        let default_cpus = attach.default_host_cpus(&canonical, acc.count);
        let (cpus, memory) = match (req.cpus, req.memory) {
            (None, None) => {
                let Some(n) = default_cpus else {
                    return Feasible::default();
                };
                let n = f64::from(n);
                (
                    Some(Amount {
                        value: n,
                        at_least: true,
                    }),
                    Some(MemoryRequest::Gib(Amount {
                        value: n * attach.host_memory_per_cpu,
                        at_least: true,
                    })),
                )
            }
            (Some(c), None) => (
                Some(c),
                Some(MemoryRequest::Gib(Amount {
                    value: c.value.trunc() * attach.host_memory_per_cpu,
                    at_least: true,
                })),
            ),
            (cpus, memory) => (cpus, memory),
        };
        cheapest_type(
            ci,
            &ci.host_types,
            |it| amount_ok(cpus, it.vcpus) && memory_ok(memory, it),
            Location::default(),
            false,
            None,
        )
    };
    match host {
        Some(t) => launchable(Some(t)),
        None => Feasible::default(),
    }
}

/// A region with its zones (`None` on zone-less clouds) and their prices, in SkyPilot's order.
type RegionZones = (u32, Vec<(Option<u32>, f64)>);

/// Rows as `(region, zone, price)`, grouped the way SkyPilot orders them: rows sorted by price,
/// then region and zone name; regions in order of their cheapest row, zones likewise.
fn group_regions(ci: &CloudIndex<'_>, mut rows: Vec<(u32, Option<u32>, f64)>) -> Vec<RegionZones> {
    rows.sort_by(|a, b| {
        a.2.total_cmp(&b.2)
            .then_with(|| ci.region_name(a.0).cmp(ci.region_name(b.0)))
            .then_with(|| {
                a.1.map(|z| ci.zone_name(z))
                    .cmp(&b.1.map(|z| ci.zone_name(z)))
            })
    });
    let mut regions: Vec<RegionZones> = Vec::new();
    for (region, zone, price) in rows {
        match regions.iter_mut().find(|(r, _)| *r == region) {
            Some((_, zones)) => zones.push((zone, price)),
            None => regions.push((region, vec![(zone, price)])),
        }
    }
    if let Some(prefix) = ci.profile.preferred_region_prefix {
        // Stable partition: preferred regions first, each group still in price order.
        let (mut first, rest): (Vec<_>, Vec<_>) = regions
            .into_iter()
            .partition(|(r, _)| ci.region_name(*r).starts_with(prefix));
        first.extend(rest);
        regions = first;
    }
    regions
}

fn type_rows(ci: &CloudIndex<'_>, t: u32, spot: bool) -> Vec<(u32, Option<u32>, f64)> {
    ci.offers_by_type[t as usize]
        .iter()
        .filter_map(|&o| {
            let offer = &ci.catalog.offers[o as usize];
            price_of(offer, spot).map(|p| (offer.region, offer.zone, p))
        })
        .collect()
}

fn attached_rows(
    ci: &CloudIndex<'_>,
    name: &str,
    count: f64,
    spot: bool,
) -> Vec<(u32, Option<u32>, f64)> {
    ci.attachable_named(name)
        .iter()
        .filter_map(|&i| {
            let a = &ci.catalog.attachable_accelerators[i as usize];
            if a.accelerator.count != count {
                return None;
            }
            let price = if spot { a.spot_price } else { a.price };
            price.map(|p| (a.region, a.zone, p))
        })
        .collect()
}

/// Prices a launchable in every region (and, for spot or zone-priced clouds, every zone) that
/// offers it, in SkyPilot's order, restricted to `loc`.
pub(crate) fn expand(ci: &CloudIndex<'_>, l: &Launchable, loc: Location) -> Vec<Placed> {
    let spot = l.use_spot;
    let regions = match (l.instance_type, &l.attached) {
        (Some(t), None) => group_regions(ci, type_rows(ci, t, spot)),
        (None, Some((name, count))) => group_regions(ci, attached_rows(ci, name, *count, spot)),
        (Some(t), Some((name, count))) => {
            let host = group_regions(ci, type_rows(ci, t, spot));
            let accs = group_regions(ci, attached_rows(ci, name, *count, spot));
            let mut joint = Vec::new();
            for (region, acc_zones) in accs {
                let Some((_, host_zones)) = host.iter().find(|(r, _)| *r == region) else {
                    continue;
                };
                let zones: Vec<(Option<u32>, f64)> = acc_zones
                    .iter()
                    .filter_map(|(z, acc_price)| {
                        host_zones
                            .iter()
                            .find(|(hz, _)| hz == z)
                            .map(|(_, host_price)| (*z, host_price + acc_price))
                    })
                    .collect();
                if !zones.is_empty() {
                    joint.push((region, zones));
                }
            }
            joint
        }
        (None, None) => Vec::new(),
    };
    let by_zone = spot || ci.profile.on_demand_by_zone;
    let mut placed = Vec::new();
    for (region, zones) in regions {
        if loc.region.is_some_and(|r| r != region) {
            continue;
        }
        let zones: Vec<(Option<u32>, f64)> = zones
            .into_iter()
            .filter(|(z, _)| loc.zone.is_none_or(|want| *z == Some(want)))
            .collect();
        let Some(&(first_zone, first_price)) = zones.first() else {
            continue;
        };
        if by_zone && first_zone.is_some() {
            placed.extend(zones.into_iter().map(|(zone, hourly_price)| Placed {
                region,
                zone,
                hourly_price,
            }));
        } else {
            // One candidate per region (a pinned zone stays pinned); the price is the cheapest
            // row, as on-demand prices do not differ between a region's zones.
            placed.push(Placed {
                region,
                zone: loc.zone,
                hourly_price: first_price,
            });
        }
    }
    placed
}
