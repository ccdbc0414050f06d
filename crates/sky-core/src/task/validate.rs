//! Checking a requested alternative against the catalog's names, as SkyPilot's
//! `Resources.validate()` does: canonicalise accelerator names, infer the cloud from a region, zone
//! or instance type that only one cloud has, fill in the region of a zone, and check that an
//! instance type has the vCPUs and memory asked for.
//!
//! What this module does not do: check that a combination is offered (an accelerator in a region,
//! a price under `max_hourly_cost`). The optimizer answers that, with the nearest offers.

use super::TaskError;
use super::error::{closest, did_you_mean};
use super::resources_spec::Requested;
use super::vocab::Vocabulary;
use crate::cloud::CloudId;
use crate::resources::{ImageRequest, MemoryRequest, Resources};

/// Validates one alternative. A vocabulary with no clouds (no catalog at hand) skips name checks.
pub(crate) fn validate(req: &Requested, vocab: &impl Vocabulary) -> Result<Resources, TaskError> {
    let mut r = req.resources.clone();
    let clouds = vocab.clouds();
    if let Some(acc) = &mut r.accelerators {
        // TPUs exist only on GCP, so naming one pins the cloud (SkyPilot does the same).
        if acc.name.to_lowercase().contains("tpu") {
            match r.placement.cloud {
                None => r.placement.cloud = Some(CloudId::Gcp),
                Some(CloudId::Gcp) => {}
                Some(other) => {
                    return Err(req.origin("accelerators").err(format!(
                        "TPU '{}' is only offered on GCP, but the cloud is {other}",
                        acc.name
                    )));
                }
            }
        }
        if !clouds.is_empty() {
            acc.name = canonical_accelerator(&acc.name, r.placement.cloud, vocab)
                .map_err(|m| req.origin("accelerators").err(m))?;
        }
    }
    if clouds.is_empty() {
        return Ok(r);
    }
    validate_region_zone(req, &mut r, vocab)?;
    validate_instance_type(req, &mut r, vocab)?;
    validate_network_tier_image(req, &r)?;
    if let Some(cloud) = r.placement.cloud {
        for (key, value) in &r.labels {
            if let Some(why) = crate::resources::label_problem(cloud, key, value) {
                return Err(req.origin("labels").err(why));
            }
        }
    }
    validate_image_id(req, &mut r)?;
    Ok(r)
}

/// SkyPilot's checks of a machine image that need no cloud API: a cloud must be named, an AWS
/// image needs a region, and a per-region map must cover the region asked for (and is narrowed
/// to it). Docker images (`docker:...`) are refused: Sky has no container runtime on its nodes,
/// and running the task on the bare VM instead would not be what the file says.
fn validate_image_id(req: &Requested, r: &mut Resources) -> Result<(), TaskError> {
    let Some(image) = &r.image_id else {
        return Ok(());
    };
    let docker = match image {
        ImageRequest::Any(id) => Some(id).filter(|id| id.starts_with("docker:")),
        ImageRequest::PerRegion(map) => map.values().find(|id| id.starts_with("docker:")),
    };
    let origin = req.origin("image_id");
    if let Some(id) = docker {
        return Err(origin.err(format!(
            "'{id}': docker images are not supported yet (Sky runs tasks on the VM itself, with \
             no container runtime); use a VM image (an AMI, a GCP image, an Azure URN or a \
             skypilot: tag) or remove image_id"
        )));
    }
    let Some(cloud) = r.placement.cloud else {
        return Err(origin
            .err("a cloud must be given with image_id (e.g. infra: aws/us-east-1)".to_owned()));
    };
    if let (Some(region), ImageRequest::PerRegion(map)) = (&r.placement.region, image) {
        let Some(id) = map.get(region) else {
            let listed: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(origin.err(format!(
                "image_id has no image for region '{region}' (it lists {})",
                listed.join(", ")
            )));
        };
        r.image_id = Some(ImageRequest::PerRegion(
            [(region.clone(), id.clone())].into(),
        ));
    }
    let ids: Vec<&String> = match &r.image_id {
        Some(ImageRequest::Any(id)) => vec![id],
        Some(ImageRequest::PerRegion(map)) => map.values().collect(),
        None => Vec::new(),
    };
    for id in ids {
        if let Err(allowed) = image_shape(cloud, id) {
            return Err(origin.err(format!(
                "image_id '{id}' is not {} image (allowed: {allowed})",
                match cloud {
                    CloudId::Aws => "an AWS",
                    CloudId::Azure => "an Azure",
                    _ => "a GCP",
                }
            )));
        }
    }
    let needs_region = cloud == CloudId::Aws
        && r.placement.region.is_none()
        && matches!(&r.image_id, Some(ImageRequest::Any(id)) if !id.starts_with("skypilot:"));
    if needs_region {
        return Err(origin.err(
            "an AWS image_id belongs to one region: give the region (e.g. infra: aws/us-east-1) or a mapping of region to image".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `id` has the shape of an image on `cloud`, or else what is allowed. Only the shape:
/// whether the image exists is the cloud's answer at launch.
fn image_shape(cloud: CloudId, id: &str) -> Result<(), &'static str> {
    if id.starts_with("skypilot:") {
        return Ok(());
    }
    let ok = match cloud {
        CloudId::Aws => {
            id.starts_with("resolve:ssm:")
                || id
                    .strip_prefix("ami-")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        }
        CloudId::Gcp => {
            let path = id
                .trim_start_matches("https://www.googleapis.com/compute/v1/")
                .trim_start_matches("https://compute.googleapis.com/compute/v1/");
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["projects", p, "global", "images", rest @ ..] => {
                    !p.is_empty()
                        && match rest {
                            [name] => !name.is_empty(),
                            ["family", f] => !f.is_empty(),
                            _ => false,
                        }
                }
                _ => false,
            }
        }
        CloudId::Azure => {
            id.starts_with("/subscriptions/")
                || (id.split(':').count() == 4 && id.split(':').all(|p| !p.is_empty()))
        }
        // Clouds without machine images of their own take whatever they are given.
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match cloud {
        CloudId::Aws => {
            "an AMI id such as ami-0123456789abcdef0, resolve:ssm:PARAMETER, or a skypilot: tag"
        }
        CloudId::Gcp => {
            "projects/PROJECT/global/images/NAME, projects/PROJECT/global/images/family/FAMILY, or a skypilot: tag"
        }
        _ => {
            "a marketplace URN publisher:offer:sku:version, an image resource id /subscriptions/..., or a skypilot: tag"
        }
    })
}

/// SkyPilot's `network_tier: best` runs on a GPUDirect image: on GCP it picks one itself, so a
/// custom image elsewhere must be a docker image.
fn validate_network_tier_image(req: &Requested, r: &Resources) -> Result<(), TaskError> {
    let best = r
        .extras
        .get("network_tier")
        .and_then(|v| v.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case("best"));
    if !best || r.placement.cloud == Some(CloudId::Gcp) {
        return Ok(());
    }
    let images: Vec<&str> = match &r.image_id {
        None => Vec::new(),
        Some(ImageRequest::Any(id)) => vec![id.as_str()],
        Some(ImageRequest::PerRegion(map)) => map.values().map(String::as_str).collect(),
    };
    match images.iter().find(|id| !id.starts_with("docker:")) {
        Some(id) => Err(req.origin("image_id").err(format!(
            "with network_tier 'best' outside GCP, SkyPilot needs a docker image, which Sky does \
             not run yet; got '{id}' (use network_tier 'best' on GCP, or 'standard')"
        ))),
        None => Ok(()),
    }
}

/// Exact case-insensitive match first; then a unique name containing what was written, as
/// SkyPilot's `canonicalize_accelerator_name` does (`a10g` -> `A10G`, `h100-mega` -> `H100-MEGA`).
fn canonical_accelerator(
    name: &str,
    cloud: Option<CloudId>,
    vocab: &impl Vocabulary,
) -> Result<String, String> {
    if name.to_lowercase().starts_with("tpu-") {
        return Ok(name.to_lowercase());
    }
    let known = vocab.canonical_accelerators();
    let lower = name.to_lowercase();
    if let Some(canonical) = known.iter().find(|n| n.to_lowercase() == lower) {
        return Ok(canonical.clone());
    }
    // SkyPilot narrows substring matches to the pinned cloud's accelerators.
    let scope: Vec<String> = match cloud {
        Some(c) => vocab
            .accelerators(c)
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect(),
        None => known.clone(),
    };
    let containing: Vec<&String> = scope
        .iter()
        .filter(|n| n.to_lowercase().contains(&lower))
        .collect();
    match containing.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let hint = did_you_mean(name, known.iter().map(String::as_str));
            Err(format!("unknown accelerator '{name}'{hint}"))
        }
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            Err(format!(
                "accelerator name '{name}' is ambiguous: choose one of {}",
                names.join(", ")
            ))
        }
    }
}

fn clouds_or(r: &Resources, vocab: &impl Vocabulary) -> Vec<CloudId> {
    match r.placement.cloud {
        Some(c) => vec![c],
        None => vocab.clouds(),
    }
}

fn cloud_list(clouds: &[CloudId]) -> String {
    let names: Vec<&str> = clouds.iter().map(|c| c.display_name()).collect();
    names.join(", ")
}

fn validate_region_zone(
    req: &Requested,
    r: &mut Resources,
    vocab: &impl Vocabulary,
) -> Result<(), TaskError> {
    if r.placement.region.is_none() && r.placement.zone.is_none() {
        return Ok(());
    }
    // On the ssh cloud the "region" is a node pool of the user's file, which only its provider
    // knows; it says what is wrong with it when offering.
    if r.placement.cloud == Some(CloudId::Ssh) {
        return Ok(());
    }
    let candidates = clouds_or(r, vocab);
    let mut fits: Vec<(CloudId, String, Option<String>)> = Vec::new();
    let mut first_error: Option<TaskError> = None;
    for cloud in &candidates {
        match check_region_zone(
            req,
            *cloud,
            r.placement.region.as_deref(),
            r.placement.zone.as_deref(),
            vocab,
        ) {
            Ok((region, zone)) => fits.push((*cloud, region, zone)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match fits.as_slice() {
        [(cloud, region, zone)] => {
            r.placement.cloud = Some(*cloud);
            r.placement.region = Some(region.clone());
            r.placement.zone = zone.clone();
            Ok(())
        }
        [] if candidates.len() == 1 => {
            Err(first_error
                .unwrap_or_else(|| req.origin("region").err("invalid region".to_owned())))
        }
        [] => {
            let (field, value) = match (&r.placement.zone, &r.placement.region) {
                (Some(z), _) => ("zone", z.clone()),
                (None, Some(reg)) => ("region", reg.clone()),
                (None, None) => ("region", String::new()),
            };
            let names: Vec<String> = candidates
                .iter()
                .flat_map(|c| {
                    if field == "zone" {
                        vocab
                            .zones(*c)
                            .into_iter()
                            .map(|(z, _)| z.to_owned())
                            .collect::<Vec<_>>()
                    } else {
                        vocab.regions(*c).into_iter().map(str::to_owned).collect()
                    }
                })
                .collect();
            let hint = did_you_mean(&value, names.iter().map(String::as_str));
            Err(req.origin(field).err(format!(
                "unknown {field} '{value}' for any cloud among {}{hint}",
                cloud_list(&candidates)
            )))
        }
        many => {
            let clouds: Vec<CloudId> = many.iter().map(|(c, _, _)| *c).collect();
            Err(req.origin("region").err(format!(
                "cannot infer the cloud: {} all have this region/zone; set the cloud with infra",
                cloud_list(&clouds)
            )))
        }
    }
}

/// Region (case-insensitive, returned in the catalog's spelling) and zone (exact) on one cloud.
fn check_region_zone(
    req: &Requested,
    cloud: CloudId,
    region: Option<&str>,
    zone: Option<&str>,
    vocab: &impl Vocabulary,
) -> Result<(String, Option<String>), TaskError> {
    let regions = vocab.regions(cloud);
    let mut canonical_region = None;
    if let Some(region) = region {
        match regions.iter().find(|r| r.eq_ignore_ascii_case(region)) {
            Some(found) => canonical_region = Some((*found).to_owned()),
            None => {
                let hint = did_you_mean(region, regions.iter().copied());
                return Err(req
                    .origin("region")
                    .err(format!("unknown region '{region}' for {cloud}{hint}")));
            }
        }
    }
    let Some(zone) = zone else {
        return Ok((canonical_region.unwrap_or_default(), None));
    };
    let zones = vocab.zones(cloud);
    let in_scope: Vec<(&str, &str)> = zones
        .iter()
        .copied()
        .filter(|(_, zr)| canonical_region.as_deref().is_none_or(|cr| cr == *zr))
        .collect();
    match in_scope.iter().find(|(z, _)| *z == zone) {
        Some((_, zone_region)) => Ok(((*zone_region).to_owned(), Some(zone.to_owned()))),
        None => {
            let scope = match &canonical_region {
                Some(cr) => format!("region '{cr}' of {cloud}"),
                None => cloud.to_string(),
            };
            let hint = if zones.is_empty() {
                format!(" ({cloud} has no zones in the catalog)")
            } else {
                did_you_mean(zone, in_scope.iter().map(|(z, _)| *z))
            };
            Err(req
                .origin("zone")
                .err(format!("unknown zone '{zone}' for {scope}{hint}")))
        }
    }
}

fn validate_instance_type(
    req: &Requested,
    r: &mut Resources,
    vocab: &impl Vocabulary,
) -> Result<(), TaskError> {
    let Some(instance_type) = r.instance_type.clone() else {
        return Ok(());
    };
    let candidates = clouds_or(r, vocab);
    let having: Vec<CloudId> = candidates
        .iter()
        .copied()
        .filter(|c| vocab.instance_types(*c).contains(&instance_type.as_str()))
        .collect();
    let cloud = match having.as_slice() {
        [one] => *one,
        [] => {
            let names: Vec<&str> = candidates
                .iter()
                .flat_map(|c| vocab.instance_types(*c))
                .collect();
            let elsewhere: Vec<CloudId> = vocab
                .clouds()
                .into_iter()
                .filter(|c| !candidates.contains(c))
                .filter(|c| vocab.instance_types(*c).contains(&instance_type.as_str()))
                .collect();
            let hint = match (
                closest(&instance_type, names.iter().copied()),
                elsewhere.first(),
            ) {
                (_, Some(other)) => format!(" (it is an instance type of {other})"),
                (Some(best), None) => format!(" (did you mean '{best}'?)"),
                (None, None) => String::new(),
            };
            let scope = match r.placement.cloud {
                Some(c) => format!("for {c}"),
                None => format!("for any cloud among {}", cloud_list(&candidates)),
            };
            return Err(req.origin("instance_type").err(format!(
                "unknown instance type '{instance_type}' {scope}{hint}"
            )));
        }
        many => {
            return Err(req.origin("instance_type").err(format!(
                "instance type '{instance_type}' exists on {}; set the cloud with infra",
                cloud_list(many)
            )));
        }
    };
    r.placement.cloud = Some(cloud);
    let Some((vcpus, memory)) = vocab.instance_shape(cloud, &instance_type) else {
        return Ok(());
    };
    if let Some(cpus) = r.cpus {
        let ok = if cpus.at_least {
            vcpus >= cpus.value
        } else {
            vcpus == cpus.value
        };
        if !ok {
            let plus = if cpus.at_least { "+" } else { "" };
            return Err(req.origin("cpus").err(format!(
                "{instance_type} has {vcpus} vCPUs, but {}{plus} is requested",
                cpus.value
            )));
        }
    }
    if let Some(request) = r.memory {
        let (ok, shown) = match request {
            MemoryRequest::Gib(a) if a.at_least => (memory >= a.value, format!("{}+", a.value)),
            MemoryRequest::Gib(a) => (memory == a.value, a.value.to_string()),
            // SkyPilot compares the bare number here, not number x vCPUs; so do we.
            MemoryRequest::PerCpu(a) => (memory >= a.value, format!("{}x", a.value)),
        };
        if !ok {
            return Err(req.origin("memory").err(format!(
                "{instance_type} has {memory} GB of memory, but {shown} is requested"
            )));
        }
    }
    Ok(())
}
