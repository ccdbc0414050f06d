//! What a task asks for (`Resources`), after parsing and validation.
//!
//! These are requirements, not choices: every field that is `None` means "any". The optimizer
//! turns them into ranked, fully pinned `Candidate`s. Parsing from YAML lives in `task`; this
//! module holds only the validated shapes, so the optimizer and the front ends share one vocabulary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudId;

/// Where a task may run: `infra: gcp/us-central1/us-central1-a` or the legacy `cloud/region/zone`.
/// `None` parts (or `*` in `infra`) mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub cloud: Option<CloudId>,
    pub region: Option<String>,
    pub zone: Option<String>,
}

/// A number with an optional `+` ("at least"): `cpus: 8` means exactly 8, `cpus: 8+` at least 8.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    pub value: f64,
    pub at_least: bool,
}

/// `memory: 32`, `32+`, or `4x` / `4x+` (GiB per vCPU).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MemoryRequest {
    Gib(Amount),
    PerCpu(Amount),
}

/// One accelerator demand, name canonicalised to the catalog's spelling (`a100` -> `A100`).
/// `count` may be fractional (`A10:0.5`) for shared GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceleratorRequest {
    pub name: String,
    pub count: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskTier {
    Low,
    Medium,
    High,
    Ultra,
    Best,
}

/// A port or an inclusive range (`8080`, `10000-10010`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

/// `image_id: ami-...` or a per-region map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageRequest {
    Any(String),
    PerRegion(BTreeMap<String, String>),
}

/// One fully parsed resources block (a single alternative of `any_of`/`ordered`/accelerator sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub placement: Placement,
    pub instance_type: Option<String>,
    pub accelerators: Option<AcceleratorRequest>,
    pub cpus: Option<Amount>,
    pub memory: Option<MemoryRequest>,
    /// `None`: not stated (on-demand). SkyPilot treats unstated as `false`.
    pub use_spot: bool,
    pub disk_size_gb: u32,
    pub disk_tier: Option<DiskTier>,
    pub ports: Vec<PortRange>,
    pub image_id: Option<ImageRequest>,
    pub labels: BTreeMap<String, String>,
    /// Upper bound on the price of one node, USD per hour.
    pub max_hourly_cost: Option<f64>,
    /// `autostop`: what the launch sets when no `-i` is given (`None`: the config's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostop: Option<crate::task::AutostopRequest>,
    /// SkyPilot resource fields Sky accepts and keeps but does not act on yet (`job_recovery`,
    /// `priority`, `network_tier`, `local_disk`, `accelerator_args`, `volumes`, ...),
    /// by their YAML name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extras: BTreeMap<String, serde_json::Value>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            placement: Placement::default(),
            instance_type: None,
            accelerators: None,
            cpus: None,
            memory: None,
            use_spot: false,
            disk_size_gb: DEFAULT_DISK_SIZE_GB,
            disk_tier: None,
            ports: Vec::new(),
            image_id: None,
            labels: BTreeMap::new(),
            max_hourly_cost: None,
            autostop: None,
            extras: BTreeMap::new(),
        }
    }
}

/// SkyPilot's default boot disk size.
pub const DEFAULT_DISK_SIZE_GB: u32 = 256;

/// How a task's alternatives combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    /// Pick the cheapest (or fastest) among all alternatives (`any_of`, accelerator lists/sets).
    AnyOf,
    /// Use the first alternative that is feasible; later ones only as fallbacks (`ordered`).
    Ordered,
}

/// The resource alternatives of one task; `options` always has at least one element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChoice {
    pub kind: ChoiceKind,
    pub options: Vec<Resources>,
}

impl ResourceChoice {
    /// The task's `autostop`: the first alternative that states one (a top-level
    /// `resources.autostop` is copied into every alternative).
    pub fn autostop(&self) -> Option<crate::task::AutostopRequest> {
        self.options.iter().find_map(|r| r.autostop)
    }
}

impl Default for ResourceChoice {
    fn default() -> Self {
        ResourceChoice {
            kind: ChoiceKind::AnyOf,
            options: vec![Resources::default()],
        }
    }
}

/// Why `key` cannot be a user label on any cloud: Sky's own keys (`sky-cluster`, `sky-owner`,
/// ...) are what prove a resource is this home's, so only Sky writes them.
pub fn reserved_label(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    (lower.starts_with("sky-") || lower.starts_with("sky_")).then(|| {
        format!(
            "label '{key}': keys starting with 'sky-' or 'sky_' are Sky's own (they mark which \
             clusters are whose); choose another key"
        )
    })
}

/// Why `key: value` cannot label `cloud`'s resources, by that cloud's rules; `None` when it can.
/// The local cloud and SSH pools create no cloud resources, so any label passes there.
pub fn label_problem(cloud: CloudId, key: &str, value: &str) -> Option<String> {
    if let Some(why) = reserved_label(key) {
        return Some(why);
    }
    let gcp_chars = |t: &str| {
        t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    let why = match cloud {
        CloudId::Aws if key.is_empty() || key.chars().count() > 128 => {
            "AWS tag keys have 1 to 128 characters"
        }
        CloudId::Aws if key.to_ascii_lowercase().starts_with("aws:") => {
            "AWS reserves tag keys starting with 'aws:'"
        }
        CloudId::Aws if value.chars().count() > 256 => "AWS tag values have at most 256 characters",
        CloudId::Gcp
            if key.len() > 63
                || !key.starts_with(|c: char| c.is_ascii_lowercase())
                || !gcp_chars(key) =>
        {
            "GCP label keys start with a lowercase letter and hold at most 63 lowercase letters, \
             digits, '_' or '-'"
        }
        CloudId::Gcp if value.len() > 63 || !gcp_chars(value) => {
            "GCP label values hold at most 63 lowercase letters, digits, '_' or '-'"
        }
        CloudId::Azure
            if key.is_empty()
                || key.chars().count() > 512
                || key.contains(['<', '>', '%', '&', '\\', '?', '/']) =>
        {
            "Azure tag names have 1 to 512 characters, none of < > % & \\ ? /"
        }
        CloudId::Azure if value.chars().count() > 256 => {
            "Azure tag values have at most 256 characters"
        }
        _ => return None,
    };
    Some(format!("label '{key}: {value}' cannot be used: {why}"))
}
