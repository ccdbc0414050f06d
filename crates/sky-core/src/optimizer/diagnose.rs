//! Checking a request's names against the catalog, and explaining a request nothing satisfies:
//! which constraint no offer meets, and the nearest offers if that constraint were relaxed.
//!
//! What this module does not do: rank. It reuses the search to find the nearest offers.

use crate::cloud::CloudId;
use crate::resources::{AcceleratorRequest, MemoryRequest, Resources};

use super::index::CloudIndex;
use super::{Candidate, Inputs, OptimizeError, Resolved, TaskRequest, candidates_for_option};

fn invalid(message: String) -> OptimizeError {
    OptimizeError::Invalid { message }
}

/// Up to three names close to `wanted`, for "did you mean".
fn near_names<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let wanted_lower = wanted.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .map(|n| {
            (
                strsim::jaro_winkler(&wanted_lower, &n.to_ascii_lowercase()),
                n,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let best = scored.first().map_or(0.0, |s| s.0);
    let mut out: Vec<String> = Vec::new();
    // Only names about as close as the closest one: a clear typo gets one suggestion.
    for (_, n) in scored
        .into_iter()
        .filter(|(score, _)| *score >= best - 0.02)
    {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
        if out.len() == 3 {
            break;
        }
    }
    out
}

fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(
            " (did you mean {}?)",
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn cloud_names(clouds: &[CloudId]) -> String {
    super::cloud_list(clouds)
}

/// The cloud an alternative is bound to, inferred where SkyPilot infers it; errors for names
/// that exist nowhere or contradict each other.
pub(super) fn resolve(
    inputs: Inputs<'_, '_>,
    r: &Resources,
) -> Result<Option<CloudId>, OptimizeError> {
    let mut cloud = r.placement.cloud;
    let searchable: Vec<&CloudIndex<'_>> = inputs
        .enabled_clouds
        .iter()
        .filter_map(|c| inputs.index.cloud(*c))
        .collect();

    if let Some(acc) = &r.accelerators {
        let tpu_cloud = searchable
            .iter()
            .find(|ci| ci.profile.attach.is_some_and(|a| a.is_tpu(&acc.name)))
            .map(|ci| ci.catalog.cloud);
        if acc.name.to_ascii_lowercase().starts_with("tpu-") {
            match (cloud, tpu_cloud) {
                (None, Some(c)) => cloud = Some(c),
                (Some(c), _)
                    if inputs.index.cloud(c).is_some_and(|ci| {
                        ci.profile.attach.is_none_or(|a| !a.is_tpu(&acc.name))
                    }) =>
                {
                    return Err(invalid(format!(
                        "accelerator '{}' is a TPU, which {} does not offer",
                        acc.name,
                        c.display_name()
                    )));
                }
                _ => {}
            }
        }
    }

    if let Some(name) = &r.instance_type {
        match cloud {
            Some(c) => {
                if let Some(ci) = inputs.index.cloud(c)
                    && !instance_type_known(ci, name)
                {
                    let near = near_names(
                        name,
                        ci.catalog.instance_types.iter().map(|t| t.name.as_str()),
                    );
                    return Err(invalid(format!(
                        "invalid instance type '{name}' for cloud {c}{}",
                        did_you_mean(&near)
                    )));
                }
            }
            None => {
                let owners: Vec<CloudId> = searchable
                    .iter()
                    .filter(|ci| instance_type_known(ci, name))
                    .map(|ci| ci.catalog.cloud)
                    .collect();
                match owners.as_slice() {
                    [] => {
                        let near = near_names(
                            name,
                            searchable.iter().flat_map(|ci| {
                                ci.catalog.instance_types.iter().map(|t| t.name.as_str())
                            }),
                        );
                        return Err(invalid(format!(
                            "invalid instance type '{name}' for any cloud among {}{}",
                            cloud_names(inputs.enabled_clouds),
                            did_you_mean(&near)
                        )));
                    }
                    [one] => cloud = Some(*one),
                    many => {
                        return Err(invalid(format!(
                            "ambiguous instance type '{name}': offered by {}; set the cloud",
                            cloud_names(many)
                        )));
                    }
                }
            }
        }
    }

    if r.placement.region.is_some() || r.placement.zone.is_some() {
        match cloud {
            Some(c) => {
                if let Some(ci) = inputs.index.cloud(c) {
                    validate_location(ci, r).map_err(invalid)?;
                }
            }
            None => {
                let valid: Vec<CloudId> = searchable
                    .iter()
                    .filter(|ci| validate_location(ci, r).is_ok())
                    .map(|ci| ci.catalog.cloud)
                    .collect();
                match valid.as_slice() {
                    [one] => cloud = Some(*one),
                    [] => {
                        let detail = searchable
                            .iter()
                            .filter_map(|ci| {
                                validate_location(ci, r)
                                    .err()
                                    .map(|e| format!("{}: {e}", ci.catalog.cloud))
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(invalid(format!(
                            "invalid region/zone for any cloud among {}: {detail}",
                            cloud_names(inputs.enabled_clouds)
                        )));
                    }
                    many => {
                        return Err(invalid(format!(
                            "cannot infer the cloud from the region/zone: {} all have it; set the cloud",
                            cloud_names(many)
                        )));
                    }
                }
            }
        }
    }

    if let (Some(name), Some(c)) = (&r.instance_type, cloud)
        && let Some(ci) = inputs.index.cloud(c)
        && let Some(t) = ci.instance_type_id(name)
    {
        let it = ci.instance_type(t);
        if let Some(cpus) = r.cpus {
            let ok = if cpus.at_least {
                it.vcpus >= cpus.value
            } else {
                it.vcpus == cpus.value
            };
            if !ok {
                return Err(invalid(format!(
                    "{name} has {} vCPUs, but cpus {}{} is requested",
                    it.vcpus,
                    cpus.value,
                    if cpus.at_least { "+" } else { "" }
                )));
            }
        }
        if let Some(memory) = r.memory {
            let (ok, wanted) = match memory {
                MemoryRequest::Gib(a) if a.at_least => {
                    (it.memory_gib >= a.value, format!("{}+", a.value))
                }
                MemoryRequest::Gib(a) => (it.memory_gib == a.value, format!("{}", a.value)),
                // SkyPilot compares a per-vCPU ratio with the memory as if it were GB.
                MemoryRequest::PerCpu(a) => (it.memory_gib >= a.value, format!("{}x", a.value)),
            };
            if !ok {
                return Err(invalid(format!(
                    "{name} has {} GB of memory, but memory {wanted} is requested",
                    it.memory_gib
                )));
            }
        }
    }
    Ok(cloud)
}

fn instance_type_known(ci: &CloudIndex<'_>, name: &str) -> bool {
    ci.instance_type_id(name).is_some()
        || ci
            .profile
            .attach
            .is_some_and(|a| a.tpu_vm_instance_type == name)
}

fn validate_location(ci: &CloudIndex<'_>, r: &Resources) -> Result<(), String> {
    let region = match &r.placement.region {
        Some(name) => match ci.region_id(name) {
            Some(id) => Some(id),
            None => {
                let near = near_names(name, ci.catalog.regions.iter().map(String::as_str));
                return Err(format!("invalid region '{name}'{}", did_you_mean(&near)));
            }
        },
        None => None,
    };
    if let Some(zone) = &r.placement.zone {
        if ci.catalog.zones.is_empty() {
            return Err(format!("{} does not support zones", ci.catalog.cloud));
        }
        let Some(z) = ci.zone_id(zone) else {
            let candidates = ci
                .catalog
                .zones
                .iter()
                .filter(|z| region.is_none_or(|r| z.region == r))
                .map(|z| z.name.as_str());
            let near = near_names(zone, candidates);
            return Err(format!("invalid zone '{zone}'{}", did_you_mean(&near)));
        };
        if let Some(region) = region
            && ci.zone_region(z) != region
        {
            return Err(format!(
                "zone '{zone}' is in region '{}', not '{}'",
                ci.region_name(ci.zone_region(z)),
                ci.region_name(region)
            ));
        }
    }
    Ok(())
}

/// Describes what a request asks for, SkyPilot-style (`{'V100': 1}, cpus=8+, spot`).
pub(super) fn describe(r: &Resources) -> String {
    let mut parts = Vec::new();
    if let Some(c) = r.placement.cloud {
        parts.push(c.display_name().to_owned());
    }
    if let Some(region) = &r.placement.region {
        parts.push(format!("region={region}"));
    }
    if let Some(zone) = &r.placement.zone {
        parts.push(format!("zone={zone}"));
    }
    if let Some(t) = &r.instance_type {
        parts.push(t.clone());
    }
    if let Some(AcceleratorRequest { name, count }) = &r.accelerators {
        parts.push(format!("{name}:{}", super::format_count(*count)));
    }
    if let Some(c) = r.cpus {
        parts.push(format!(
            "cpus={}{}",
            c.value,
            if c.at_least { "+" } else { "" }
        ));
    }
    match r.memory {
        Some(MemoryRequest::Gib(a)) => parts.push(format!(
            "memory={}{}",
            a.value,
            if a.at_least { "+" } else { "" }
        )),
        Some(MemoryRequest::PerCpu(a)) => parts.push(format!("memory={}x", a.value)),
        None => {}
    }
    if r.use_spot {
        parts.push("spot".to_owned());
    }
    if let Some(m) = r.max_hourly_cost {
        parts.push(format!("max_hourly_cost=${m}/h"));
    }
    if parts.is_empty() {
        "any resources".to_owned()
    } else {
        parts.join(", ")
    }
}

fn describe_candidate(c: &Candidate) -> String {
    let place = match &c.zone {
        Some(z) => format!("{}/{z}", c.region),
        None => c.region.clone(),
    };
    let acc = c
        .accelerators
        .as_ref()
        .map(|(n, k)| format!(" {n}:{}", super::format_count(*k)))
        .unwrap_or_default();
    format!(
        "{} {}{acc} in {place}{} at ${:.4}/h",
        c.cloud,
        c.instance_type,
        if c.use_spot { " (spot)" } else { "" },
        c.total_hourly_price
    )
}

/// The error for a task nothing satisfies: the constraint to blame and the nearest offers.
pub(super) fn no_feasible(
    inputs: Inputs<'_, '_>,
    task: &TaskRequest,
    options: &[&Resolved<'_>],
) -> OptimizeError {
    let nodes = if task.num_nodes > 1 {
        format!("{}x ", task.num_nodes)
    } else {
        String::new()
    };
    let wanted: Vec<String> = options
        .iter()
        .map(|o| format!("{nodes}{}", describe(o.resources)))
        .collect();
    let mut message = format!(
        "no offer in the catalog satisfies {}: {} (searched {})",
        task.label(),
        wanted.join(" | "),
        cloud_names(&priced_clouds(inputs))
    );
    let Some(first) = options.first() else {
        return OptimizeError::NoFeasibleResources {
            message,
            nearest: Vec::new(),
        };
    };
    let r = first.resources;
    if let Some(acc) = &r.accelerators
        && !accelerator_offered(inputs, first, acc)
    {
        let fuzzy = fuzzy_names(inputs, first, acc);
        message.push_str(&format!(
            "\nno enabled cloud offers {}:{}",
            acc.name,
            super::format_count(acc.count)
        ));
        if !fuzzy.is_empty() {
            message.push_str(&format!(
                "; offered accelerators that come close: {}",
                fuzzy.join(", ")
            ));
        }
        return OptimizeError::NoFeasibleResources {
            message,
            nearest: Vec::new(),
        };
    }
    for (constraint, relaxed) in relaxations(r) {
        let option = Resolved {
            resources: &relaxed,
            cloud: first.cloud,
        };
        let mut found = candidates_for_option(inputs, task, &option);
        if found.is_empty() {
            continue;
        }
        found.sort_by(|a, b| a.total_hourly_price.total_cmp(&b.total_hourly_price));
        // One line per (cloud, instance type): its cheapest placement.
        let mut seen: Vec<(CloudId, String)> = Vec::new();
        found.retain(|c| {
            let key = (c.cloud, c.instance_type.clone());
            let fresh = !seen.contains(&key);
            if fresh {
                seen.push(key);
            }
            fresh
        });
        found.truncate(3);
        message.push_str(&format!(
            "\nnothing satisfies {constraint}; nearest offers without it:"
        ));
        for c in &found {
            message.push_str(&format!("\n  {}", describe_candidate(c)));
        }
        return OptimizeError::NoFeasibleResources {
            message,
            nearest: found,
        };
    }
    message.push_str("\nno single constraint explains it; relax several (see `sky show-gpus`)");
    OptimizeError::NoFeasibleResources {
        message,
        nearest: Vec::new(),
    }
}

/// The enabled clouds that have a price catalog (the ones actually searched).
fn priced_clouds(inputs: Inputs<'_, '_>) -> Vec<CloudId> {
    inputs
        .enabled_clouds
        .iter()
        .copied()
        .filter(|c| inputs.index.cloud(*c).is_some())
        .collect()
}

fn accelerator_offered(
    inputs: Inputs<'_, '_>,
    option: &Resolved<'_>,
    acc: &AcceleratorRequest,
) -> bool {
    clouds_in_scope(inputs, option).any(|ci| {
        ci.types_with_accelerator(&acc.name).iter().any(|&t| {
            ci.instance_type(t)
                .accelerator
                .as_ref()
                .is_some_and(|a| (a.count - acc.count).abs() <= 0.01)
        }) || ci.attachable_named(&acc.name).iter().any(|&i| {
            (ci.catalog.attachable_accelerators[i as usize]
                .accelerator
                .count
                - acc.count)
                .abs()
                <= 0.01
        })
    })
}

fn fuzzy_names(
    inputs: Inputs<'_, '_>,
    option: &Resolved<'_>,
    acc: &AcceleratorRequest,
) -> Vec<String> {
    let needle = acc.name.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    for ci in clouds_in_scope(inputs, option) {
        let mut offered: Vec<(String, f64)> = ci
            .catalog
            .instance_types
            .iter()
            .filter_map(|t| t.accelerator.as_ref().map(|a| (a.name.clone(), a.count)))
            .chain(
                ci.catalog
                    .attachable_accelerators
                    .iter()
                    .map(|a| (a.accelerator.name.clone(), a.accelerator.count)),
            )
            .filter(|(n, _)| {
                n.to_ascii_lowercase().contains(&needle)
                    || strsim::jaro_winkler(&n.to_ascii_lowercase(), &needle) > 0.85
            })
            .collect();
        offered.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for (n, k) in offered {
            let label = format!("{n}:{}", super::format_count(k));
            if !out.contains(&label) {
                out.push(label);
            }
        }
    }
    out.truncate(12);
    out
}

fn clouds_in_scope<'a, 'c>(
    inputs: Inputs<'a, 'c>,
    option: &'a Resolved<'_>,
) -> impl Iterator<Item = &'a CloudIndex<'c>> {
    inputs
        .enabled_clouds
        .iter()
        .filter(move |c| option.cloud.is_none_or(|o| o == **c))
        .filter_map(move |c| inputs.index.cloud(*c))
}

/// Each constraint the request states, with a copy of the request without it.
fn relaxations(r: &Resources) -> Vec<(String, Resources)> {
    let mut out = Vec::new();
    if let Some(m) = r.max_hourly_cost {
        out.push((
            format!("max_hourly_cost ${m}/h"),
            Resources {
                max_hourly_cost: None,
                ..r.clone()
            },
        ));
    }
    if let Some(c) = r.cpus {
        let label = format!("cpus {}{}", c.value, if c.at_least { "+" } else { "" });
        out.push((
            label,
            Resources {
                cpus: None,
                ..r.clone()
            },
        ));
    }
    if r.memory.is_some() {
        out.push((
            "the memory request".to_owned(),
            Resources {
                memory: None,
                ..r.clone()
            },
        ));
    }
    if r.disk_tier.is_some() {
        out.push((
            "the disk tier".to_owned(),
            Resources {
                disk_tier: None,
                ..r.clone()
            },
        ));
    }
    if r.placement.region.is_some() || r.placement.zone.is_some() {
        let mut relaxed = r.clone();
        relaxed.placement.region = None;
        relaxed.placement.zone = None;
        let place = r
            .placement
            .zone
            .clone()
            .or_else(|| r.placement.region.clone())
            .unwrap_or_default();
        out.push((format!("the location '{place}'"), relaxed));
    }
    if r.use_spot {
        out.push((
            "spot".to_owned(),
            Resources {
                use_spot: false,
                ..r.clone()
            },
        ));
    }
    if r.accelerators.is_some() && (r.cpus.is_some() || r.memory.is_some()) {
        out.push((
            "cpus and memory together".to_owned(),
            Resources {
                cpus: None,
                memory: None,
                ..r.clone()
            },
        ));
    }
    out
}
