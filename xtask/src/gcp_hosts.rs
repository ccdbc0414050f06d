//! Which GCP host VMs may carry an attachable accelerator, as data for the embedded catalog.
//!
//! GCP prices GPUs apart from the VM they ride on, and only some VMs take a given GPU: A100,
//! L4, H100, H200, B200 and RTX PRO 6000 come with their own machine families (`a2-*`, `g2-*`,
//! `a3-*`, `a4-*`, `g4-*`); other GPUs go on `n1-*` machines with at least a set number of
//! vCPUs and 4 GiB of memory per vCPU; TPU VMs are priced on their own. These are the rules
//! SkyPilot 0.14.1 applies (documented at cloud.google.com/compute/docs/gpus), restated here
//! as data so the optimizer and `sky show-gpus` read them from the catalog instead of
//! hard-coding a cloud.
//!
//! What this does not do: check per-zone host availability (the offers decide that).

use sky_core::catalog::{AcceleratorHostRule, HostSpec};

/// GPU memory per vCPU that a default host must have.
const MEMORY_PER_VCPU_GIB: f64 = 4.0;
const DEFAULT_HOST_FAMILIES: [&str; 3] = ["n1-standard", "n1-highmem", "n1-highcpu"];

/// `(accelerator count, host instance types)`.
type HostsByCount = (u32, &'static [&'static str]);
/// `(accelerator count, minimum host vCPUs)`.
type CpusByCount = (u32, u32);

pub fn rules() -> Vec<AcceleratorHostRule> {
    let dedicated: &[(&str, &[HostsByCount])] = &[
        (
            "A100",
            &[
                (1, &["a2-highgpu-1g"]),
                (2, &["a2-highgpu-2g"]),
                (4, &["a2-highgpu-4g"]),
                (8, &["a2-highgpu-8g"]),
                (16, &["a2-megagpu-16g"]),
            ],
        ),
        (
            "A100-80GB",
            &[
                (1, &["a2-ultragpu-1g"]),
                (2, &["a2-ultragpu-2g"]),
                (4, &["a2-ultragpu-4g"]),
                (8, &["a2-ultragpu-8g"]),
            ],
        ),
        (
            "L4",
            &[
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
        ),
        (
            "H100",
            &[
                (1, &["a3-highgpu-1g"]),
                (2, &["a3-highgpu-2g"]),
                (4, &["a3-highgpu-4g"]),
                (8, &["a3-highgpu-8g"]),
            ],
        ),
        ("H100-MEGA", &[(8, &["a3-megagpu-8g"])]),
        ("H200", &[(8, &["a3-ultragpu-8g"])]),
        ("B200", &[(8, &["a4-highgpu-8g"])]),
        (
            "RTXPRO6000",
            &[
                (1, &["g4-standard-48"]),
                (2, &["g4-standard-96"]),
                (4, &["g4-standard-192"]),
                (8, &["g4-standard-384"]),
            ],
        ),
    ];
    // vCPUs a default (n1) host needs per accelerator count; modelled on AWS's shapes.
    let by_cpus: &[(Option<&str>, &[CpusByCount])] = &[
        (Some("K80"), &[(1, 4), (2, 8), (4, 16), (8, 32), (16, 64)]),
        (Some("V100"), &[(1, 8), (2, 16), (4, 32), (8, 64)]),
        (Some("T4"), &[(1, 4), (2, 8), (4, 48)]),
        (Some("P100"), &[(1, 8), (2, 16), (4, 32), (8, 64)]),
        (None, &[(1, 8), (2, 16), (4, 32), (8, 64), (16, 128)]),
    ];

    let mut rules = Vec::new();
    for (name, counts) in dedicated {
        for (count, hosts) in *counts {
            rules.push(AcceleratorHostRule {
                accelerator: Some((*name).to_owned()),
                count: f64::from(*count),
                host: HostSpec::InstanceTypes(hosts.iter().map(|h| (*h).to_owned()).collect()),
            });
        }
    }
    rules.push(AcceleratorHostRule {
        accelerator: Some("tpu-*".to_owned()),
        count: 1.0,
        host: HostSpec::Standalone,
    });
    for (name, counts) in by_cpus {
        for (count, cpus) in *counts {
            rules.push(AcceleratorHostRule {
                accelerator: name.map(str::to_owned),
                count: f64::from(*count),
                host: HostSpec::Family {
                    family_prefixes: DEFAULT_HOST_FAMILIES
                        .iter()
                        .map(|f| (*f).to_owned())
                        .collect(),
                    min_vcpus: f64::from(*cpus),
                    min_memory_gib: f64::from(*cpus) * MEMORY_PER_VCPU_GIB,
                },
            });
        }
    }
    rules
}
