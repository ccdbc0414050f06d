//! Reading a task's `resources:` block into requested [`Resources`] alternatives, as SkyPilot
//! 0.14.1's `Resources.from_yaml_config` does: `any_of`/`ordered` overrides merged onto the base
//! (labels merged key by key), accelerator lists (ordered) and sets/dicts (any of) expanded into
//! one alternative each, `gpus` as an alias of `accelerators`.
//!
//! What this module does not do: check names against the catalog. That is [`super::validate`],
//! which runs after command-line overrides so that, as in SkyPilot, a cloud is inferred from the
//! final request rather than from the file alone.

use std::collections::BTreeMap;

use super::error::{TaskError, one_of};
use super::fields::{Ctx, index, join};
use super::values::{
    parse_cloud, parse_cpus, parse_disk_size, parse_disk_tier, parse_infra, parse_memory,
    parse_ports,
};
use super::yaml::{Node, Pos};
use crate::resources::{AcceleratorRequest, ChoiceKind, ImageRequest, Resources};

/// Fields of one resources mapping (an `any_of`/`ordered` item has all but those two).
pub(crate) const SINGLE_KEYS: &[&str] = &[
    "infra",
    "cloud",
    "region",
    "zone",
    "instance_type",
    "cpus",
    "memory",
    "accelerators",
    "gpus",
    "use_spot",
    "disk_size",
    "disk_tier",
    "network_tier",
    "local_disk",
    "ports",
    "image_id",
    "labels",
    "max_hourly_cost",
    "job_recovery",
    "volumes",
    "ephemeral_storage",
    "accelerator_args",
    "autostop",
    "priority",
    "priority_class",
    "_no_missing_accel_warnings",
    "_docker_login_config",
    "_is_image_managed",
    "_requires_fuse",
    "_cluster_config_overrides",
];

/// Kept verbatim in `Resources::extras`: valid SkyPilot fields Sky does not act on yet.
const KEPT_KEYS: &[&str] = &[
    "network_tier",
    "local_disk",
    "job_recovery",
    "volumes",
    "accelerator_args",
    "priority",
    "priority_class",
    "_no_missing_accel_warnings",
    "_docker_login_config",
    "_is_image_managed",
    "_requires_fuse",
    "_cluster_config_overrides",
];

/// Clouds SkyPilot knows that Sky does not run on: named so the error says "not supported" rather
/// than "unknown".
pub(crate) const OTHER_SKYPILOT_CLOUDS: &[&str] = &[
    "ibm",
    "lambda",
    "scp",
    "oci",
    "kubernetes",
    "k8s",
    "runpod",
    "vast",
    "vsphere",
    "cudo",
    "fluidstack",
    "paperspace",
    "primeintellect",
    "do",
    "nebius",
    "slurm",
    "hyperbolic",
    "seeweb",
    "shadeform",
    "yotta",
    "mithril",
    "verda",
];

/// Where a field's value came from, so errors found later (by validation against the catalog)
/// still point at the file position or the command-line flag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Origin {
    pub source: String,
    pub path: String,
    pub pos: Option<Pos>,
}

impl Origin {
    pub fn err(&self, message: String) -> TaskError {
        TaskError::at(&self.source, &self.path, self.pos, message)
    }
}

/// One requested alternative before validation: the resources plus where each field came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Requested {
    pub resources: Resources,
    pub origins: BTreeMap<&'static str, Origin>,
}

impl Requested {
    /// The origin of `field`, or the whole block's when the field was not written.
    pub fn origin(&self, field: &'static str) -> Origin {
        self.origins
            .get(field)
            .or_else(|| self.origins.get(""))
            .cloned()
            .unwrap_or(Origin {
                source: String::new(),
                path: "resources".to_owned(),
                pos: None,
            })
    }
}

struct Entry<'n> {
    key: String,
    key_node: &'n Node,
    value: &'n Node,
    path: String,
}

/// Parses `resources:` (absent or null means one default alternative).
pub(crate) fn parse_resources(
    ctx: Ctx<'_>,
    node: Option<&Node>,
) -> Result<(ChoiceKind, Vec<Requested>), TaskError> {
    let Some(node) = node.filter(|n| !n.is_null()) else {
        let mut origins = BTreeMap::new();
        origins.insert(
            "",
            Origin {
                source: ctx.source.to_owned(),
                path: "resources".to_owned(),
                pos: None,
            },
        );
        return Ok((
            ChoiceKind::AnyOf,
            vec![Requested {
                resources: Resources::default(),
                origins,
            }],
        ));
    };
    let block = Origin {
        source: ctx.source.to_owned(),
        path: "resources".to_owned(),
        pos: Some(node.pos),
    };
    let entries = entries_of(ctx, node, "resources", true)?;
    let (kind, mut options) = expand(ctx, entries, &block)?;
    dedup(&mut options);
    Ok((kind, options))
}

fn entries_of<'n>(
    ctx: Ctx<'_>,
    node: &'n Node,
    path: &str,
    top: bool,
) -> Result<Vec<Entry<'n>>, TaskError> {
    let map = node
        .as_map()
        .ok_or_else(|| ctx.expected(path, node, "a mapping"))?;
    let mut allowed: Vec<&str> = SINGLE_KEYS.to_vec();
    if top {
        allowed.extend(["any_of", "ordered"]);
    } else if let Some((k, _)) = map
        .iter()
        .find(|(k, _)| matches!(k.key_text().as_str(), "any_of" | "ordered"))
    {
        return Err(ctx.at(
            &join(path, &k.key_text()),
            k,
            "an any_of/ordered item cannot hold another any_of or ordered list",
        ));
    }
    ctx.check_keys(path, map, &allowed)?;
    let mut entries: Vec<Entry<'n>> = map
        .iter()
        .map(|(k, v)| Entry {
            key: k.key_text(),
            key_node: k,
            value: v,
            path: join(path, &k.key_text()),
        })
        .collect();
    // `gpus` is SkyPilot's alias of `accelerators`.
    if let Some(alias) = entries.iter().position(|e| e.key == "gpus") {
        if let Some(both) = entries.iter().find(|e| e.key == "accelerators") {
            return Err(ctx.at(
                &both.path,
                both.key_node,
                "cannot specify both 'gpus' and 'accelerators'",
            ));
        }
        entries[alias].key = "accelerators".to_owned();
    }
    Ok(entries)
}

/// One accelerator alternative as written, before canonicalisation.
#[derive(Debug, Clone)]
struct AccelChoice {
    name: String,
    count: f64,
    origin: Origin,
}

fn expand(
    ctx: Ctx<'_>,
    entries: Vec<Entry<'_>>,
    block: &Origin,
) -> Result<(ChoiceKind, Vec<Requested>), TaskError> {
    let any_of = entries.iter().find(|e| e.key == "any_of");
    let ordered = entries.iter().find(|e| e.key == "ordered");
    if let (Some(_), Some(o)) = (any_of, ordered) {
        return Err(ctx.at(
            &o.path,
            o.key_node,
            "cannot specify both 'any_of' and 'ordered'",
        ));
    }
    let (accels, accels_ordered) = match entries.iter().find(|e| e.key == "accelerators") {
        Some(e) => parse_accelerators(ctx, e)?,
        None => (Vec::new(), false),
    };
    if accels.len() > 1 {
        let e = entries.iter().find(|e| e.key == "accelerators");
        if let (Some(e), Some(_)) = (e, ordered) {
            return Err(ctx.at(
                &e.path,
                e.value,
                "cannot specify several accelerators together with 'ordered'",
            ));
        }
        if let (Some(e), Some(_), true) = (e, any_of, accels_ordered) {
            return Err(ctx.at(
                &e.path,
                e.value,
                "cannot specify an ordered list of accelerators together with 'any_of' (use a set: {A100, V100})",
            ));
        }
    }
    let overrides = any_of
        .map(|e| (e, ChoiceKind::AnyOf))
        .or(ordered.map(|e| (e, ChoiceKind::Ordered)));
    if let Some((list, kind)) = overrides {
        let items = list
            .value
            .as_seq()
            .ok_or_else(|| ctx.expected(&list.path, list.value, "a list of resources"))?;
        let base: Vec<&Entry<'_>> = entries
            .iter()
            .filter(|e| e.key != "any_of" && e.key != "ordered")
            .collect();
        let mut options = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&list.path, i);
            let item_entries = entries_of(ctx, item, &item_path, false)?;
            // Base fields first, then the item's, which win; labels merge key by key in `single`.
            let mut merged: Vec<Entry<'_>> = base
                .iter()
                .filter(|b| b.key == "labels" || !item_entries.iter().any(|o| o.key == b.key))
                .map(|b| Entry {
                    key: b.key.clone(),
                    key_node: b.key_node,
                    value: b.value,
                    path: b.path.clone(),
                })
                .collect();
            merged.extend(item_entries);
            let item_block = Origin {
                source: ctx.source.to_owned(),
                path: item_path,
                pos: Some(item.pos),
            };
            let (_, expanded) = expand(ctx, merged, &item_block)?;
            options.extend(expanded);
        }
        return Ok((kind, options));
    }
    if accels.is_empty() {
        return Ok((ChoiceKind::AnyOf, vec![single(ctx, &entries, None, block)?]));
    }
    let kind = if accels_ordered {
        ChoiceKind::Ordered
    } else {
        ChoiceKind::AnyOf
    };
    let options = accels
        .into_iter()
        .map(|a| single(ctx, &entries, Some(a), block))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((kind, options))
}

/// `V100`, `V100:4`, `A10:0.5`, `{A100: 8}`, `{A100: 8, V100: 8}` (any of), `[A100:8, V100:8]`
/// (in order of preference). Returns the alternatives and whether they are ordered.
fn parse_accelerators(ctx: Ctx<'_>, e: &Entry<'_>) -> Result<(Vec<AccelChoice>, bool), TaskError> {
    let origin = |pos: Pos| Origin {
        source: ctx.source.to_owned(),
        path: e.path.clone(),
        pos: Some(pos),
    };
    let mut out: Vec<AccelChoice> = Vec::new();
    let mut push = |choice: AccelChoice| {
        if !out
            .iter()
            .any(|c| c.name == choice.name && c.count == choice.count)
        {
            out.push(choice);
        }
    };
    let node = e.value;
    if node.is_null() {
        return Ok((Vec::new(), false));
    }
    if let Some(text) = node.as_str() {
        let (name, count) = parse_accelerator_str(ctx, &e.path, node, text)?;
        push(AccelChoice {
            name,
            count,
            origin: origin(node.pos),
        });
        return Ok((out, false));
    }
    if let Some(items) = node.as_seq() {
        for item in items {
            let text = item
                .as_str()
                .ok_or_else(|| ctx.expected(&e.path, item, "an accelerator such as 'A100:8'"))?;
            let (name, count) = parse_accelerator_str(ctx, &e.path, item, text)?;
            push(AccelChoice {
                name,
                count,
                origin: origin(item.pos),
            });
        }
        return Ok((out, true));
    }
    if let Some(map) = node.as_map() {
        for (k, v) in map {
            let key = k.key_text();
            let (name, count) = if v.is_null() {
                parse_accelerator_str(ctx, &e.path, k, &key)?
            } else {
                let count = v
                    .as_number()
                    .ok_or_else(|| ctx.expected(&e.path, v, "a number of accelerators"))?;
                if key.contains(':') {
                    return Err(ctx.at(
                        &e.path,
                        k,
                        format!("accelerator '{key}' has a count both in its name and as a value"),
                    ));
                }
                check_count(ctx, &e.path, v, &key, count)?;
                (key, count)
            };
            push(AccelChoice {
                name,
                count,
                origin: origin(k.pos),
            });
        }
        return Ok((out, false));
    }
    Err(ctx.expected(
        &e.path,
        node,
        "an accelerator ('A100', 'A100:8'), a mapping ({A100: 8}) or a list",
    ))
}

fn parse_accelerator_str(
    ctx: Ctx<'_>,
    path: &str,
    node: &Node,
    text: &str,
) -> Result<(String, f64), TaskError> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    // SkyPilot's `80GB+`, `24GB:2`, `nvidia:80GB:8` pick devices by memory from a metadata table
    // the offline catalog does not carry; say so rather than call it an unknown accelerator.
    if parts.iter().any(|p| is_memory_size(p)) {
        return Err(ctx.at(
            path,
            node,
            format!("choosing accelerators by memory ('{text}') is not supported; name the accelerator, e.g. 'A100-80GB:8'"),
        ));
    }
    let bad = || {
        ctx.at(path, node, format!("invalid accelerator '{text}': expected <name> or <name>:<count>, e.g. 'V100' or 'V100:4'"))
    };
    match parts.as_slice() {
        [name] if !name.is_empty() => Ok(((*name).to_owned(), 1.0)),
        [name, count] if !name.is_empty() => {
            let count: f64 = count.trim().parse().map_err(|_| bad())?;
            check_count(ctx, path, node, name, count)?;
            Ok(((*name).to_owned(), count))
        }
        _ => Err(bad()),
    }
}

/// `80GB`, `24gb+`, `1TB`: SkyPilot's `^[0-9]+[GgMmTt][Bb]\+?$`.
fn is_memory_size(part: &str) -> bool {
    let part = part.strip_suffix('+').unwrap_or(part);
    let lower = part.to_ascii_lowercase();
    let Some(number) = lower.strip_suffix('b') else {
        return false;
    };
    let Some(number) = number.strip_suffix(['g', 'm', 't']) else {
        return false;
    };
    !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
}

fn check_count(
    ctx: Ctx<'_>,
    path: &str,
    node: &Node,
    name: &str,
    count: f64,
) -> Result<(), TaskError> {
    if count.is_finite() && count > 0.0 {
        Ok(())
    } else {
        Err(ctx.at(
            path,
            node,
            format!("accelerator count must be a positive number, got {name}: {count}"),
        ))
    }
}

/// Builds one alternative from its (merged) entries and at most one accelerator.
fn single(
    ctx: Ctx<'_>,
    entries: &[Entry<'_>],
    accel: Option<AccelChoice>,
    block: &Origin,
) -> Result<Requested, TaskError> {
    let mut r = Resources::default();
    let mut origins: BTreeMap<&'static str, Origin> = BTreeMap::new();
    origins.insert("", block.clone());
    let mut infra: Option<&Entry<'_>> = None;
    let mut legacy: Option<&Entry<'_>> = None;
    for e in entries {
        let origin = Origin {
            source: ctx.source.to_owned(),
            path: e.path.clone(),
            pos: Some(e.value.pos),
        };
        let v = e.value;
        match e.key.as_str() {
            "infra" => {
                infra = Some(e);
                if let Some(text) = ctx.opt_str(&e.path, v)? {
                    let (cloud, region, zone) =
                        parse_infra(&text).map_err(|m| ctx.at(&e.path, v, m))?;
                    r.placement.cloud = cloud;
                    r.placement.region = region;
                    r.placement.zone = zone;
                    for f in ["cloud", "region", "zone"] {
                        origins.insert(f, origin.clone());
                    }
                }
            }
            "cloud" => {
                legacy = Some(e);
                if let Some(text) = ctx.opt_str(&e.path, v)? {
                    r.placement.cloud =
                        Some(parse_cloud(&text).map_err(|m| ctx.at(&e.path, v, m))?);
                    origins.insert("cloud", origin);
                }
            }
            "region" | "zone" => {
                legacy = Some(e);
                let value = ctx.opt_str(&e.path, v)?;
                if e.key == "region" {
                    r.placement.region = value;
                    origins.insert("region", origin);
                } else {
                    r.placement.zone = value;
                    origins.insert("zone", origin);
                }
            }
            "instance_type" => {
                r.instance_type = ctx.opt_str(&e.path, v)?;
                origins.insert("instance_type", origin);
            }
            "cpus" => {
                r.cpus = parse_cpus(v).map_err(|m| ctx.at(&e.path, v, m))?;
                origins.insert("cpus", origin);
            }
            "memory" => {
                r.memory = parse_memory(v).map_err(|m| ctx.at(&e.path, v, m))?;
                origins.insert("memory", origin);
            }
            "accelerators" => {}
            "use_spot" => {
                r.use_spot = ctx.opt_bool(&e.path, v)?.unwrap_or(false);
                origins.insert("use_spot", origin);
            }
            "disk_size" => {
                if let Some(gb) = parse_disk_size(v).map_err(|m| ctx.at(&e.path, v, m))? {
                    r.disk_size_gb = gb;
                }
            }
            "disk_tier" => {
                r.disk_tier = match ctx.opt_str(&e.path, v)? {
                    None => None,
                    Some(text) => Some(parse_disk_tier(&text).map_err(|m| ctx.at(&e.path, v, m))?),
                };
            }
            "ports" => r.ports = parse_ports(v).map_err(|m| ctx.at(&e.path, v, m))?,
            "image_id" => {
                r.image_id = parse_image_id(ctx, &e.path, v)?;
                origins.insert("image_id", origin);
            }
            "labels" => {
                origins.insert("labels", origin);
                for (k, value) in ctx.opt_map(&e.path, v)? {
                    let key = k.key_text();
                    let text = value
                        .as_str()
                        .ok_or_else(|| ctx.expected(&join(&e.path, &key), value, "a string"))?;
                    if let Some(why) = crate::resources::reserved_label(&key) {
                        return Err(ctx.at(&join(&e.path, &key), k, why));
                    }
                    r.labels.insert(key, text.to_owned());
                }
            }
            "max_hourly_cost" if !v.is_null() => {
                let cost = v
                    .as_number()
                    .ok_or_else(|| ctx.expected(&e.path, v, "a positive number (USD per hour)"))?;
                if cost.is_nan() || cost <= 0.0 {
                    return Err(ctx.at(
                        &e.path,
                        v,
                        format!(
                            "max_hourly_cost must be a positive number, got {}",
                            v.show()
                        ),
                    ));
                }
                r.max_hourly_cost = Some(cost);
            }
            "network_tier" => {
                if let Some(text) = ctx.opt_str(&e.path, v)?
                    && !["standard", "best"].contains(&text.to_lowercase().as_str())
                {
                    return Err(ctx.at(
                        &e.path,
                        v,
                        format!(
                            "invalid network_tier '{text}' (allowed: {})",
                            one_of(&["standard", "best"])
                        ),
                    ));
                }
                r.extras.insert(e.key.clone(), v.to_json());
            }
            "autostop" => {
                r.autostop = super::autostop::parse(&ctx, &e.path, v)?;
            }
            // Superseded by disk_size; SkyPilot 0.14.1 accepts and drops it.
            "ephemeral_storage" => {}
            key if KEPT_KEYS.contains(&key) => {
                r.extras.insert(e.key.clone(), v.to_json());
            }
            _ => {}
        }
    }
    if let (Some(i), Some(l)) = (infra, legacy) {
        return Err(ctx.at(
            &l.path,
            l.key_node,
            format!(
                "cannot specify both 'infra' ({}) and '{}'",
                i.value.show(),
                l.key
            ),
        ));
    }
    if let Some(a) = accel {
        origins.insert("accelerators", a.origin);
        r.accelerators = Some(AcceleratorRequest {
            name: a.name,
            count: a.count,
        });
    }
    Ok(Requested {
        resources: r,
        origins,
    })
}

fn parse_image_id(
    ctx: Ctx<'_>,
    path: &str,
    node: &Node,
) -> Result<Option<ImageRequest>, TaskError> {
    if node.is_null() {
        return Ok(None);
    }
    if let Some(text) = node.as_str() {
        return Ok(Some(ImageRequest::Any(text.trim().to_owned())));
    }
    if let Some(map) = node.as_map() {
        let mut per_region = BTreeMap::new();
        for (k, v) in map {
            let key = k.key_text();
            let text = v
                .as_str()
                .ok_or_else(|| ctx.expected(&join(path, &key), v, "an image id"))?;
            per_region.insert(key.trim().to_owned(), text.trim().to_owned());
        }
        return Ok(if per_region.is_empty() {
            None
        } else {
            Some(ImageRequest::PerRegion(per_region))
        });
    }
    Err(ctx.expected(path, node, "an image id or a mapping of region to image id"))
}

/// SkyPilot's resources are a set: identical alternatives collapse.
fn dedup(options: &mut Vec<Requested>) {
    let mut kept: Vec<Requested> = Vec::new();
    for o in options.drain(..) {
        if !kept.iter().any(|k| k.resources == o.resources) {
            kept.push(o);
        }
    }
    *options = kept;
}
