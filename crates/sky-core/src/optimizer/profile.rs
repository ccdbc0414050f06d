//! Per-cloud optimizer behaviour, as data: which instance families a task that asks for nothing
//! gets, how separately priced accelerators are hosted, how candidates expand into regions and
//! zones, and what moving data out costs.
//!
//! The figures reproduce SkyPilot 0.14.1's choices on the same catalog (read from its
//! `catalog/*_catalog.py` and `clouds/*.py`), so that users see the decisions they already know.
//! This is the one place in the optimizer that knows one cloud from another; the search itself
//! only reads these profiles. What this module does not do: look at prices or offers.

use crate::cloud::CloudId;

/// How a cloud's instance types are grouped into the families a default request may use.
#[derive(Debug, Clone, Copy)]
pub enum FamilyRule {
    /// The name starts with one of these prefixes (`m6i.`, `n2-standard-`).
    Prefixes(&'static [&'static str]),
    /// The size name is `Standard_<letters><digits>[-<digits>]<rest>` and its family
    /// (`letters + rest`, or `letters + '_' + rest` for constrained-vCPU sizes) is listed.
    SizeNameFamilies(&'static [&'static str]),
}

impl FamilyRule {
    pub fn matches(&self, instance_type: &str) -> bool {
        match self {
            FamilyRule::Prefixes(prefixes) => prefixes.iter().any(|p| instance_type.starts_with(p)),
            FamilyRule::SizeNameFamilies(families) => size_name_family(instance_type)
                .is_some_and(|family| families.iter().any(|f| *f == family)),
        }
    }
}

/// `Standard_D8s_v5` -> `Ds_v5`, `Standard_E8-4s_v5` -> `E_s_v5`, `Basic_A1` -> `basic_a`.
fn size_name_family(instance_type: &str) -> Option<String> {
    if instance_type.starts_with("Basic_A") {
        return Some("basic_a".to_owned());
    }
    let rest = instance_type.strip_prefix("Standard_")?;
    let rest = rest.strip_suffix("_Promo").unwrap_or(rest);
    let letters_end = rest.find(|c: char| !c.is_ascii_alphabetic())?;
    if letters_end == 0 {
        return None;
    }
    let (letters, after) = rest.split_at(letters_end);
    let digits_end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    if digits_end == 0 {
        return None;
    }
    let tail = &after[digits_end..];
    if rest.contains('-') {
        // `E8-4s_v5`: the second number is the constrained vCPU count.
        let tail = tail.strip_prefix('-')?;
        let second_end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if second_end == 0 {
            return None;
        }
        Some(format!("{letters}_{}", &tail[second_end..]))
    } else {
        Some(format!("{letters}{tail}"))
    }
}

/// Host VM types dedicated to one accelerator model (`A100` x 1 -> `a2-highgpu-1g`).
#[derive(Debug, Clone, Copy)]
pub struct DedicatedHosts {
    pub accelerator: &'static str,
    /// `(count, host types)`.
    pub by_count: &'static [(u32, &'static [&'static str])],
}

/// Host vCPU sizing for an attachable GPU: `(count, vCPUs)`.
#[derive(Debug, Clone, Copy)]
pub struct HostCpus {
    pub accelerator: &'static str,
    pub by_count: &'static [(u32, u32)],
}

/// Largest host an attachable GPU count may be attached to: `(count, max vCPUs, max GiB)`.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub accelerator: &'static str,
    pub by_count: &'static [(u32, u32, u32)],
}

/// How a cloud that prices accelerators apart from VMs picks the VM to attach them to.
#[derive(Debug, Clone, Copy)]
pub struct AttachRules {
    pub dedicated: &'static [DedicatedHosts],
    /// Families any other GPU is attached to.
    pub host_families: FamilyRule,
    /// vCPUs per GPU count; the entry named `DEFAULT` covers unlisted GPUs.
    pub host_cpus: &'static [HostCpus],
    /// Host memory per requested vCPU when the task states neither cpus nor memory.
    pub host_memory_per_cpu: f64,
    pub host_limits: &'static [HostLimits],
    /// Accelerators whose name starts with this run on a TPU VM instead of a host.
    pub tpu_prefix: &'static str,
    /// The pseudo instance type of a TPU VM; it costs nothing beyond the TPU.
    pub tpu_vm_instance_type: &'static str,
}

impl AttachRules {
    pub fn dedicated_for(&self, accelerator: &str) -> Option<&DedicatedHosts> {
        self.dedicated.iter().find(|d| d.accelerator == accelerator)
    }

    /// The accelerator a dedicated host type carries (`a2-highgpu-1g` -> `A100` x 1).
    pub fn accelerator_of_host(&self, instance_type: &str) -> Option<(&'static str, u32)> {
        self.dedicated.iter().find_map(|d| {
            d.by_count
                .iter()
                .find(|(_, types)| types.contains(&instance_type))
                .map(|(count, _)| (d.accelerator, *count))
        })
    }

    pub fn default_host_cpus(&self, accelerator: &str, count: f64) -> Option<u32> {
        let table = self
            .host_cpus
            .iter()
            .find(|h| h.accelerator == accelerator)
            .or_else(|| self.host_cpus.iter().find(|h| h.accelerator == "DEFAULT"))?;
        table
            .by_count
            .iter()
            .find(|(n, _)| f64::from(*n) == count)
            .map(|(_, cpus)| *cpus)
    }

    pub fn limits_for(&self, accelerator: &str) -> Option<&HostLimits> {
        self.host_limits
            .iter()
            .find(|h| h.accelerator == accelerator)
    }

    pub fn is_tpu(&self, accelerator: &str) -> bool {
        accelerator
            .to_ascii_lowercase()
            .starts_with(self.tpu_prefix)
    }
}

/// Cumulative egress price tiers, USD per GB: `(up to GB, price)`, the last tier unbounded.
#[derive(Debug, Clone, Copy)]
pub enum EgressPricing {
    /// Marginal tiers after a free first GB, with a flat rate above `flat_above_gb`
    /// (AWS's and Azure's internet egress).
    Tiered {
        flat_above_gb: f64,
        flat_price: f64,
        /// `(threshold GB, price)` from the highest threshold down; the first GB is free.
        tiers: &'static [(f64, f64)],
        base_price: f64,
    },
    /// One rate for the whole volume, picked by volume (GCP's worldwide egress).
    Bracketed {
        brackets: &'static [(f64, f64)],
        above_price: f64,
    },
}

impl EgressPricing {
    /// USD to move `gigabytes` out of the cloud.
    pub fn cost(&self, gigabytes: f64) -> f64 {
        match *self {
            EgressPricing::Tiered {
                flat_above_gb,
                flat_price,
                tiers,
                base_price,
            } => {
                if gigabytes > flat_above_gb {
                    return flat_price * gigabytes;
                }
                let mut remaining = gigabytes;
                let mut cost = 0.0;
                for &(threshold, price) in tiers {
                    if remaining >= threshold {
                        cost += (remaining - threshold) * price;
                        remaining -= threshold;
                    }
                }
                if remaining > 1.0 {
                    cost += (remaining - 1.0) * base_price;
                }
                cost
            }
            EgressPricing::Bracketed {
                brackets,
                above_price,
            } => {
                let rate = brackets
                    .iter()
                    .find(|(limit, _)| gigabytes <= *limit)
                    .map_or(above_price, |(_, rate)| *rate);
                rate * gigabytes
            }
        }
    }
}

/// Which disk tiers a cloud's instance types support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskTierRule {
    Any,
    /// `ultra` is refused; `medium`/`high` need a premium-storage (`s`) size.
    PremiumNeedsSSeries,
}

/// Everything the optimizer needs to know about one cloud besides its catalog.
#[derive(Debug, Clone, Copy)]
pub struct CloudProfile {
    pub cloud: CloudId,
    pub default_families: FamilyRule,
    pub default_cpus: f64,
    pub default_memory_per_cpu: f64,
    /// Accelerators priced apart from the VM (`None`: they come with the instance type).
    pub attach: Option<AttachRules>,
    /// On-demand candidates are per zone rather than per region.
    pub on_demand_by_zone: bool,
    /// Regions whose name starts with this are tried before all others.
    pub preferred_region_prefix: Option<&'static str>,
    pub egress: EgressPricing,
    pub disk_tiers: DiskTierRule,
}

/// Object-store URL schemes and the cloud each lives in (SkyPilot's `get_inputs_cloud`).
pub const BUCKET_SCHEMES: &[(&str, CloudId)] = &[("s3://", CloudId::Aws), ("gs://", CloudId::Gcp)];

/// The profile of a priced cloud; `None` for clouds without a catalog (local).
pub fn profile(cloud: CloudId) -> Option<&'static CloudProfile> {
    PROFILES.iter().find(|p| p.cloud == cloud)
}

const GCP_DEDICATED: &[DedicatedHosts] = &[
    DedicatedHosts {
        accelerator: "A100",
        by_count: &[
            (1, &["a2-highgpu-1g"]),
            (2, &["a2-highgpu-2g"]),
            (4, &["a2-highgpu-4g"]),
            (8, &["a2-highgpu-8g"]),
            (16, &["a2-megagpu-16g"]),
        ],
    },
    DedicatedHosts {
        accelerator: "A100-80GB",
        by_count: &[
            (1, &["a2-ultragpu-1g"]),
            (2, &["a2-ultragpu-2g"]),
            (4, &["a2-ultragpu-4g"]),
            (8, &["a2-ultragpu-8g"]),
        ],
    },
    DedicatedHosts {
        accelerator: "L4",
        by_count: &[
            (
                1,
                &[
                    "g2-standard-4",
                    "g2-standard-8",
                    "g2-standard-12",
                    "g2-standard-16",
                    "g2-standard-32",
                ],
            ),
            (2, &["g2-standard-24"]),
            (4, &["g2-standard-48"]),
            (8, &["g2-standard-96"]),
        ],
    },
    DedicatedHosts {
        accelerator: "H100",
        by_count: &[
            (1, &["a3-highgpu-1g"]),
            (2, &["a3-highgpu-2g"]),
            (4, &["a3-highgpu-4g"]),
            (8, &["a3-highgpu-8g"]),
        ],
    },
    DedicatedHosts {
        accelerator: "H100-MEGA",
        by_count: &[(8, &["a3-megagpu-8g"])],
    },
    DedicatedHosts {
        accelerator: "H200",
        by_count: &[(8, &["a3-ultragpu-8g"])],
    },
    DedicatedHosts {
        accelerator: "B200",
        by_count: &[(8, &["a4-highgpu-8g"])],
    },
    DedicatedHosts {
        accelerator: "RTXPRO6000",
        by_count: &[
            (1, &["g4-standard-48"]),
            (2, &["g4-standard-96"]),
            (4, &["g4-standard-192"]),
            (8, &["g4-standard-384"]),
        ],
    },
];

const GCP_HOST_CPUS: &[HostCpus] = &[
    HostCpus {
        accelerator: "K80",
        by_count: &[(1, 4), (2, 8), (4, 16), (8, 32), (16, 64)],
    },
    HostCpus {
        accelerator: "V100",
        by_count: &[(1, 8), (2, 16), (4, 32), (8, 64)],
    },
    HostCpus {
        accelerator: "T4",
        by_count: &[(1, 4), (2, 8), (4, 48)],
    },
    HostCpus {
        accelerator: "P100",
        by_count: &[(1, 8), (2, 16), (4, 32), (8, 64)],
    },
    HostCpus {
        accelerator: "DEFAULT",
        by_count: &[(1, 8), (2, 16), (4, 32), (8, 64), (16, 128)],
    },
];

const GCP_HOST_LIMITS: &[HostLimits] = &[
    HostLimits {
        accelerator: "K80",
        by_count: &[(1, 8, 52), (2, 16, 104), (4, 32, 208), (8, 64, 208)],
    },
    HostLimits {
        accelerator: "V100",
        by_count: &[(1, 12, 78), (2, 24, 156), (4, 48, 312), (8, 96, 624)],
    },
    HostLimits {
        accelerator: "T4",
        by_count: &[(1, 48, 312), (2, 48, 312), (4, 96, 624)],
    },
    HostLimits {
        accelerator: "P4",
        by_count: &[(1, 24, 156), (2, 48, 312), (4, 96, 624)],
    },
    HostLimits {
        accelerator: "P100",
        by_count: &[(1, 16, 104), (2, 32, 208), (4, 96, 624)],
    },
];

static PROFILES: [CloudProfile; 3] = [
    CloudProfile {
        cloud: CloudId::Aws,
        default_families: FamilyRule::Prefixes(&[
            "m6i.", "m6id.", "m7i.", "r6i.", "r6id.", "r7i.", "c6i.", "c6id.", "c7i.",
        ]),
        default_cpus: 8.0,
        default_memory_per_cpu: 4.0,
        attach: None,
        on_demand_by_zone: false,
        preferred_region_prefix: Some("us-"),
        egress: EgressPricing::Tiered {
            flat_above_gb: 150.0 * 1024.0,
            flat_price: 0.05,
            tiers: &[(50.0 * 1024.0, 0.07), (10.0 * 1024.0, 0.085)],
            base_price: 0.09,
        },
        disk_tiers: DiskTierRule::Any,
    },
    CloudProfile {
        cloud: CloudId::Gcp,
        default_families: FamilyRule::Prefixes(&[
            "n2-standard-",
            "n2-highmem-",
            "n2-highcpu-",
            "n4-standard-",
            "n4-highcpu-",
            "n4-highmem-",
        ]),
        default_cpus: 8.0,
        default_memory_per_cpu: 4.0,
        attach: Some(AttachRules {
            dedicated: GCP_DEDICATED,
            host_families: FamilyRule::Prefixes(&["n1-standard", "n1-highmem", "n1-highcpu"]),
            host_cpus: GCP_HOST_CPUS,
            host_memory_per_cpu: 4.0,
            host_limits: GCP_HOST_LIMITS,
            tpu_prefix: "tpu-",
            tpu_vm_instance_type: "TPU-VM",
        }),
        on_demand_by_zone: true,
        preferred_region_prefix: None,
        egress: EgressPricing::Bracketed {
            brackets: &[(1024.0, 0.12), (10240.0, 0.11)],
            above_price: 0.08,
        },
        disk_tiers: DiskTierRule::Any,
    },
    CloudProfile {
        cloud: CloudId::Azure,
        default_families: FamilyRule::SizeNameFamilies(&["Ds_v5", "Es_v5", "Fs_v2"]),
        default_cpus: 8.0,
        default_memory_per_cpu: 4.0,
        attach: None,
        on_demand_by_zone: false,
        preferred_region_prefix: None,
        egress: EgressPricing::Tiered {
            flat_above_gb: 150.0 * 1024.0,
            flat_price: 0.05,
            tiers: &[(50.0 * 1024.0, 0.07), (10.0 * 1024.0, 0.083)],
            base_price: 0.0875,
        },
        disk_tiers: DiskTierRule::PremiumNeedsSSeries,
    },
];

/// Whether an Azure-style size name is a premium-storage (`s`) size: the lowercase letters
/// right after the vCPU count contain `s` (`Standard_D8s_v5`, `Standard_E8-4ds_v5`).
pub fn is_s_series(instance_type: &str) -> bool {
    let Some(rest) = instance_type.split_once('_').map(|(_, r)| r) else {
        return false;
    };
    let upper_end = rest
        .find(|c: char| !c.is_ascii_uppercase())
        .unwrap_or(rest.len());
    let after = &rest[upper_end..];
    let digits_end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let mut after = &after[digits_end..];
    if let Some(constrained) = after.strip_prefix('-') {
        let end = constrained
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(constrained.len());
        after = &constrained[end..];
    }
    let lower_end = after
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(after.len());
    after[..lower_end].contains('s')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_name_families_follow_the_size_naming_scheme() {
        assert_eq!(
            size_name_family("Standard_D8s_v5").as_deref(),
            Some("Ds_v5")
        );
        assert_eq!(
            size_name_family("Standard_E8-4s_v5").as_deref(),
            Some("E_s_v5")
        );
        assert_eq!(
            size_name_family("Standard_F16s_v2").as_deref(),
            Some("Fs_v2")
        );
        assert_eq!(
            size_name_family("Standard_D2s_v5_Promo").as_deref(),
            Some("Ds_v5")
        );
        assert_eq!(size_name_family("Basic_A1").as_deref(), Some("basic_a"));
        assert_eq!(size_name_family("m6i.large"), None);
    }

    #[test]
    fn s_series_is_read_from_the_lowercase_suffix() {
        assert!(is_s_series("Standard_D8s_v5"));
        assert!(is_s_series("Standard_E8-4ds_v5"));
        assert!(!is_s_series("Standard_D8_v5"));
        assert!(!is_s_series("Standard_NC6"));
    }

    #[test]
    fn egress_tiers_match_the_published_rates() {
        let aws = profile(CloudId::Aws)
            .map(|p| p.egress)
            .expect("aws has a profile");
        assert!((aws.cost(1.0) - 0.0).abs() < 1e-12);
        assert!((aws.cost(11.0) - 0.9).abs() < 1e-9);
        let gcp = profile(CloudId::Gcp)
            .map(|p| p.egress)
            .expect("gcp has a profile");
        assert!((gcp.cost(100.0) - 12.0).abs() < 1e-9);
        assert!((gcp.cost(2048.0) - 225.28).abs() < 1e-9);
        assert!(profile(CloudId::Local).is_none());
    }
}
