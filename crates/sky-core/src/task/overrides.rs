//! Command-line overrides of a task (`sky launch task.yaml --gpus A100:8 --env K=V ...`), applied
//! as SkyPilot's `_make_task_or_dag_from_entrypoint_with_overrides` applies them: each flag
//! replaces that field in every resource alternative, `none` (or `*` for placement) clears it,
//! and `--infra` replaces cloud, region and zone together (a part it leaves out is cleared).
//!
//! Values stay strings here so that a bad one is reported against its flag (`--gpus: ...`). The
//! front end fills this struct; it never parses anything itself.

use std::collections::BTreeMap;

use super::error::TaskError;
use super::resources_spec::{Origin, Requested};
use super::spec::{invalid_name_message, is_valid_task_name};
use super::values::{
    parse_cloud, parse_cpus_str, parse_disk_tier, parse_infra, parse_memory_str, ports_from_tokens,
};
use super::vocab::Vocabulary;
use super::{Secret, Task, Workdir};
use crate::resources::{AcceleratorRequest, ImageRequest};

/// What the command line asks to change. `None` / empty means "keep what the task says".
#[derive(Debug, Clone, Default)]
pub struct TaskOverrides {
    pub name: Option<String>,
    pub workdir: Option<String>,
    pub num_nodes: Option<u32>,
    /// `aws`, `gcp/us-central1`, `*/*/us-east-1a`; exclusive with cloud/region/zone.
    pub infra: Option<String>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// `V100`, `V100:4`, `A10:0.5` or `none`.
    pub gpus: Option<String>,
    pub cpus: Option<String>,
    pub memory: Option<String>,
    pub instance_type: Option<String>,
    pub use_spot: Option<bool>,
    pub disk_size: Option<u32>,
    pub disk_tier: Option<String>,
    pub image_id: Option<String>,
    /// Each `--ports` value (`8080`, `10000-10010`, `80,443`), or a single `none`.
    pub ports: Vec<String>,
    /// `--env K=V`, applied to every task of a chain before `${VAR}` substitution.
    pub envs: Vec<(String, String)>,
    /// `--secret K=V`, applied to every task of a chain.
    pub secrets: Vec<(String, Secret)>,
}

impl TaskOverrides {
    /// Whether any override is one SkyPilot applies to a single task only.
    pub fn has_task_level(&self) -> bool {
        self.name.is_some()
            || self.num_nodes.is_some()
            || self.infra.is_some()
            || self.cloud.is_some()
            || self.region.is_some()
            || self.zone.is_some()
            || self.gpus.is_some()
            || self.cpus.is_some()
            || self.memory.is_some()
            || self.instance_type.is_some()
            || self.use_spot.is_some()
            || self.disk_size.is_some()
            || self.disk_tier.is_some()
            || self.image_id.is_some()
            || !self.ports.is_empty()
    }
}

fn flag(name: &str) -> Origin {
    Origin {
        source: String::new(),
        path: name.to_owned(),
        pos: None,
    }
}

/// `none` (any case) clears a field; so does `*` for cloud, region and zone.
fn cleared(value: &str, star_too: bool) -> bool {
    value.eq_ignore_ascii_case("none") || (star_too && value == "*")
}

impl Task {
    /// Applies command-line overrides and re-validates the resources against `vocab`.
    pub fn apply_overrides(
        &mut self,
        o: &TaskOverrides,
        vocab: &impl Vocabulary,
    ) -> Result<(), TaskError> {
        if o.infra.is_some() && (o.cloud.is_some() || o.region.is_some() || o.zone.is_some()) {
            return Err(flag("--infra")
                .err("cannot use --infra together with --cloud, --region or --zone".to_owned()));
        }
        for (k, v) in &o.envs {
            self.envs.insert(k.clone(), v.clone());
        }
        for (k, v) in &o.secrets {
            self.secret_refs.retain(|r| r != k);
            self.secrets.insert(k.clone(), v.clone());
        }
        self.apply_workdir_override(o);
        let placement = match &o.infra {
            Some(infra) => {
                let (cloud, region, zone) =
                    parse_infra(infra).map_err(|m| flag("--infra").err(m))?;
                Some((Some(cloud), Some(region), Some(zone), "--infra"))
            }
            None => None,
        };
        let cloud = match (&placement, &o.cloud) {
            (Some((c, _, _, _)), _) => *c,
            (None, Some(c)) if cleared(c, true) => Some(None),
            (None, Some(c)) => Some(Some(parse_cloud(c).map_err(|m| flag("--cloud").err(m))?)),
            (None, None) => None,
        };
        let text_override = |from_infra: Option<Option<String>>, flag_value: &Option<String>| match (
            from_infra, flag_value,
        ) {
            (Some(v), _) => Some(v),
            (None, Some(v)) if cleared(v, true) => Some(None),
            (None, Some(v)) => Some(Some(v.clone())),
            (None, None) => None,
        };
        let region = text_override(placement.as_ref().map(|p| p.1.clone().flatten()), &o.region);
        let zone = text_override(placement.as_ref().map(|p| p.2.clone().flatten()), &o.zone);
        let placement_flag = |name: &'static str| if o.infra.is_some() { "--infra" } else { name };

        let gpus = match &o.gpus {
            None => None,
            Some(g) if cleared(g, false) => Some(None),
            Some(g) => Some(Some(parse_gpus(g).map_err(|m| flag("--gpus").err(m))?)),
        };
        let cpus = match &o.cpus {
            None => None,
            Some(c) if cleared(c, false) => Some(None),
            Some(c) => Some(Some(parse_cpus_str(c).map_err(|m| flag("--cpus").err(m))?)),
        };
        let memory = match &o.memory {
            None => None,
            Some(m) if cleared(m, false) => Some(None),
            Some(m) => Some(Some(
                parse_memory_str(m).map_err(|e| flag("--memory").err(e))?,
            )),
        };
        let disk_tier = match &o.disk_tier {
            None => None,
            Some(t) if cleared(t, false) => Some(None),
            Some(t) => Some(Some(
                parse_disk_tier(t).map_err(|m| flag("--disk-tier").err(m))?,
            )),
        };
        let ports = if o.ports.is_empty() {
            None
        } else if o.ports.iter().any(|p| cleared(p, false)) {
            if o.ports.len() > 1 {
                return Err(
                    flag("--ports").err("cannot give both 'none' and other ports".to_owned())
                );
            }
            Some(Vec::new())
        } else {
            let tokens: Vec<String> = o
                .ports
                .iter()
                .flat_map(|p| p.split(','))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            Some(ports_from_tokens(&tokens).map_err(|m| flag("--ports").err(m))?)
        };
        if o.disk_size == Some(0) {
            return Err(flag("--disk-size")
                .err("disk size must be a positive whole number of GB, got 0".to_owned()));
        }

        for req in &mut self.requested {
            let r = &mut req.resources;
            let origins: &mut BTreeMap<&'static str, Origin> = &mut req.origins;
            if let Some(c) = cloud {
                r.placement.cloud = c;
                origins.insert("cloud", flag(placement_flag("--cloud")));
            }
            if let Some(v) = &region {
                r.placement.region = v.clone();
                origins.insert("region", flag(placement_flag("--region")));
            }
            if let Some(v) = &zone {
                r.placement.zone = v.clone();
                origins.insert("zone", flag(placement_flag("--zone")));
            }
            if let Some(v) = &gpus {
                r.accelerators = v.clone();
                origins.insert("accelerators", flag("--gpus"));
            }
            if let Some(v) = cpus {
                r.cpus = v;
                origins.insert("cpus", flag("--cpus"));
            }
            if let Some(v) = memory {
                r.memory = v;
                origins.insert("memory", flag("--memory"));
            }
            if let Some(t) = &o.instance_type {
                r.instance_type = (!cleared(t, false)).then(|| t.clone());
                origins.insert("instance_type", flag("--instance-type"));
            }
            if let Some(spot) = o.use_spot {
                r.use_spot = spot;
            }
            if let Some(size) = o.disk_size {
                r.disk_size_gb = size;
            }
            if let Some(v) = disk_tier {
                r.disk_tier = v;
            }
            if let Some(image) = &o.image_id {
                r.image_id =
                    (!cleared(image, false)).then(|| ImageRequest::Any(image.trim().to_owned()));
            }
            if let Some(p) = &ports {
                r.ports = p.clone();
            }
        }
        if let Some(n) = o.num_nodes {
            if n == 0 {
                return Err(flag("--num-nodes")
                    .err("num_nodes must be a positive integer, got 0".to_owned()));
            }
            self.num_nodes = n;
        }
        if let Some(name) = &o.name {
            if !is_valid_task_name(name) {
                return Err(flag("--name").err(invalid_name_message(name)));
            }
            self.name = Some(name.clone());
        }
        let before = self.requested.len();
        let mut unique: Vec<Requested> = Vec::with_capacity(before);
        for r in self.requested.drain(..) {
            if !unique.iter().any(|u| u.resources == r.resources) {
                unique.push(r);
            }
        }
        self.requested = unique;
        self.revalidate(vocab)
    }

    pub(crate) fn apply_workdir_override(&mut self, o: &TaskOverrides) {
        if let Some(dir) = &o.workdir {
            self.workdir = Some(Workdir::Local(dir.clone()));
        }
    }
}

/// `--gpus`: `<name>` or `<name>:<count>`, as SkyPilot's `Resources(accelerators=...)` takes it.
fn parse_gpus(text: &str) -> Result<AcceleratorRequest, String> {
    let bad = || {
        format!(
            "invalid accelerator '{text}': expected <name> or <name>:<count>, e.g. 'V100' or 'V100:4'"
        )
    };
    let (name, count) = match text.trim().split_once(':') {
        None => (text.trim(), 1.0),
        Some((name, count)) => (name, count.trim().parse::<f64>().map_err(|_| bad())?),
    };
    if name.is_empty() || name.contains(':') {
        return Err(bad());
    }
    if !(count.is_finite() && count > 0.0) {
        return Err(format!(
            "accelerator count must be a positive number, got {name}: {count}"
        ));
    }
    Ok(AcceleratorRequest {
        name: name.to_owned(),
        count,
    })
}
