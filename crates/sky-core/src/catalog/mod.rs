//! The price catalog: instance types, accelerators and hourly prices per region and zone.
//!
//! The in-memory model below is the contract between the catalog loader (embedded snapshot or a
//! refreshed file under `$SKY_HOME/catalogs/`) and the optimizer. Regions and zones are interned
//! (offers refer to them by index) so the whole catalog loads in a few milliseconds.
//!
//! What this module does not do: choose anything. Ranking is the optimizer's job. It also never
//! reads the source CSVs at run time: `cargo xtask catalog` converts them once into the compact
//! files under `crates/sky-core/catalog-data/`, which are compiled in.
//!
//! # Layout
//! - [`format`]: the versioned binary encoding of one cloud's catalog.
//! - [`load`]: the embedded snapshot and `$SKY_HOME/catalogs/` overrides.
//! - [`gpus`]: what `sky show-gpus` lists (accelerator counts, cheapest offers).
//! - [`query`]: lookups (canonical names, regions, zones, instance types, "did you mean").
//! - [`v8csv`]: SkyPilot's v8 CSV schema -> this model (used by `cargo xtask catalog`).
//! - [`fetch`]: parsers for the clouds' public price lists (`sky catalog update`); the HTTP
//!   part is behind the `fetch` feature.

pub mod fetch;
pub mod format;
pub mod gpus;
pub mod load;
pub mod query;
pub mod v8csv;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudId;

pub use load::{CatalogError, OVERRIDE_DIR, override_path, write_override};

/// Every cloud's catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub clouds: Vec<CloudCatalog>,
    /// Canonical accelerator spellings across clouds (SkyPilot's `common/accelerators.csv`), used
    /// to canonicalise `a100` -> `A100` even for accelerators no loaded cloud offers.
    pub accelerator_names: Vec<String>,
}

impl Catalog {
    pub fn cloud(&self, cloud: CloudId) -> Option<&CloudCatalog> {
        self.clouds.iter().find(|c| c.cloud == cloud)
    }
}

/// Where a cloud's data came from and how old it is (shown by `sky catalog`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogSource {
    /// e.g. "embedded snapshot (SkyPilot catalog v8)" or "AWS price list, fetched by sky catalog update".
    pub description: String,
    /// Date of the price data, ISO 8601 (`2026-05-20`).
    pub data_date: String,
    /// Set when the data covers only part of the cloud (the embedded AWS subset); says what is missing.
    pub partial_coverage: Option<String>,
}

impl CatalogSource {
    /// Whole days from the data date to `today` (days since 1970-01-01, UTC); `None` when the
    /// date is not a valid `YYYY-MM-DD` (the AWS subset's date is unknown).
    pub fn age_days(&self, today: i64) -> Option<i64> {
        parse_iso_date(&self.data_date).map(|day| today - day)
    }
}

/// `YYYY-MM-DD` -> days since 1970-01-01.
pub fn parse_iso_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), so the
/// age shown by `sky catalog` needs no date crate.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// One cloud's catalog.
#[derive(Debug, Clone)]
pub struct CloudCatalog {
    pub cloud: CloudId,
    pub source: CatalogSource,
    /// Interned region names; `Offer::region` indexes this.
    pub regions: Vec<String>,
    /// Interned zone names with the index of their region; `Offer::zone` indexes this.
    pub zones: Vec<Zone>,
    pub instance_types: Vec<InstanceType>,
    /// One row per (instance type, region, zone). Clouds without zones in the data (Azure) have
    /// `zone: None`.
    pub offers: Vec<Offer>,
    /// Accelerators priced on their own and attached to a host VM (GCP GPUs and TPUs). The price of
    /// a candidate on such a cloud is the VM's price plus these.
    pub attachable_accelerators: Vec<AttachableAcceleratorOffer>,
    /// Which host VMs an attachable accelerator may ride on (GCP: A100 needs `a2-*`, others an
    /// `n1-*` with enough vCPUs). Empty on clouds whose instance types carry their accelerators.
    pub host_rules: Vec<AcceleratorHostRule>,
    pub images: Vec<Image>,
}

/// The host VMs that may carry `count` x `accelerator` (an attachable accelerator).
/// Look rules up with [`CloudCatalog::host_rule_for`].
#[derive(Debug, Clone, PartialEq)]
pub struct AcceleratorHostRule {
    /// Canonical accelerator name, or a prefix ending in `*` (`tpu-*`); `None` is the default
    /// rule for accelerators no other rule names.
    pub accelerator: Option<String>,
    pub count: f64,
    pub host: HostSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostSpec {
    /// Exactly these instance types (GCP `A100:8` -> `a2-highgpu-8g`).
    InstanceTypes(Vec<String>),
    /// Any instance type whose name starts with one of `family_prefixes`, with at least
    /// `min_vcpus` vCPUs and `min_memory_gib` memory (GCP `V100:1` -> `n1-*` with >= 8 vCPUs).
    Family {
        family_prefixes: Vec<String>,
        min_vcpus: f64,
        min_memory_gib: f64,
    },
    /// No host VM: the accelerator is a machine of its own and its price is the whole price
    /// (GCP TPU VMs, as SkyPilot prices them).
    Standalone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub region: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub name: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Accelerators that come with the instance (AWS `p4d.24xlarge` -> 8 x A100).
    pub accelerator: Option<AcceleratorInfo>,
    /// `x86_64` or `arm64`, where the source says.
    pub arch: Option<String>,
    /// Azure's Hyper-V generation (`V1`, `V2`, `V1,V2`), where the source says.
    pub generation: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AcceleratorInfo {
    /// Canonical name as the catalog spells it (`A100`, `A100-80GB`, `tpu-v4-8`).
    pub name: String,
    pub count: f64,
    /// Memory of one accelerator, GiB, where the source says.
    pub memory_gib: Option<f64>,
}

/// An instance type's prices in one region (and zone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    pub instance_type: u32,
    pub region: u32,
    pub zone: Option<u32>,
    /// On-demand USD per hour; `None` where the source has no price (then not launchable on demand).
    pub price: Option<f64>,
    /// Spot USD per hour; `None` where spot is not offered.
    pub spot_price: Option<f64>,
}

/// A separately priced accelerator in one region/zone (GCP).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachableAcceleratorOffer {
    pub accelerator: AcceleratorInfo,
    pub region: u32,
    pub zone: Option<u32>,
    pub price: Option<f64>,
    pub spot_price: Option<f64>,
}

/// A machine image, by SkyPilot tag (`skypilot:gpu-ubuntu-2204`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub tag: String,
    /// `None` for global images (GCP).
    pub region: Option<String>,
    pub os: String,
    pub os_version: String,
    pub image_id: String,
    pub creation_date: String,
}
