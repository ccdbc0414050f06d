//! Whether a task fits an existing cluster (SkyPilot's `check_resources_fit_cluster`): the same
//! placement where the task pins one, the instance type, enough CPUs, memory and accelerators per
//! node, spot-ness, and enough nodes.
//!
//! What this module does not do: consider load (the agent queues jobs that fit the nodes but not
//! the free capacity).

use crate::provision::Launchable;
use crate::resources::{MemoryRequest, ResourceChoice, Resources};

/// `Ok` if some alternative of `choice` fits the cluster's nodes; otherwise why the first does not.
pub(crate) fn fits(
    choice: &ResourceChoice,
    num_nodes: u32,
    cluster_nodes: u32,
    l: &Launchable,
) -> Result<(), String> {
    if num_nodes > cluster_nodes {
        return Err(format!(
            "the task needs {num_nodes} nodes and the cluster has {cluster_nodes}"
        ));
    }
    let mut first_reason = None;
    for r in &choice.options {
        match fits_one(r, l) {
            Ok(()) => return Ok(()),
            Err(why) => {
                first_reason.get_or_insert(why);
            }
        }
    }
    Err(first_reason.unwrap_or_else(|| "the task has no resource alternatives".into()))
}

/// The alternative of `choice` that `l` was chosen for: the first that fits it and, with a
/// per-region image map, has an image for its region (the optimizer offers no other regions).
pub(crate) fn option_for<'a>(choice: &'a ResourceChoice, l: &Launchable) -> Option<&'a Resources> {
    choice.options.iter().find(|r| {
        let image_ok = match &r.image_id {
            Some(crate::resources::ImageRequest::PerRegion(map)) => map.contains_key(&l.region),
            _ => true,
        };
        image_ok && fits_one(r, l).is_ok()
    })
}

fn fits_one(r: &Resources, l: &Launchable) -> Result<(), String> {
    let p = &r.placement;
    let on = format!(
        "the cluster is {} {}/{}",
        l.instance_type,
        l.cloud.as_str(),
        l.region
    );
    if let Some(c) = p.cloud
        && c != l.cloud
    {
        return Err(format!("the task needs cloud {} and {on}", c.as_str()));
    }
    if let Some(region) = &p.region
        && region != &l.region
    {
        return Err(format!("the task needs region {region} and {on}"));
    }
    if let Some(zone) = &p.zone
        && Some(zone) != l.zone.as_ref()
    {
        return Err(format!("the task needs zone {zone} and {on}"));
    }
    if let Some(t) = &r.instance_type
        && t != &l.instance_type
    {
        return Err(format!("the task needs instance type {t} and {on}"));
    }
    if r.use_spot != l.use_spot {
        let want = if r.use_spot { "spot" } else { "on-demand" };
        return Err(format!("the task needs {want} instances and {on}"));
    }
    if let Some(acc) = &r.accelerators {
        let have = l
            .accelerators
            .as_ref()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&acc.name))
            .map_or(0.0, |(_, c)| *c);
        if have < acc.count {
            return Err(format!(
                "the task needs {}:{} per node and {on} with {have}",
                acc.name, acc.count
            ));
        }
    }
    if let Some(cpus) = r.cpus
        && cpus.value > l.vcpus
    {
        return Err(format!(
            "the task needs {} CPUs per node and {on} with {}",
            cpus.value, l.vcpus
        ));
    }
    let memory = match r.memory {
        None => None,
        Some(MemoryRequest::Gib(a)) => Some(a.value),
        Some(MemoryRequest::PerCpu(a)) => Some(a.value * r.cpus.map_or(l.vcpus, |c| c.value)),
    };
    if let Some(m) = memory
        && m > l.memory_gib
    {
        return Err(format!(
            "the task needs {m} GiB of memory per node and {on} with {:.1}",
            l.memory_gib
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudId;
    use crate::resources::{AcceleratorRequest, Amount, Placement};
    use crate::testing::launchable;

    fn one(r: Resources) -> ResourceChoice {
        ResourceChoice {
            options: vec![r],
            ..Default::default()
        }
    }

    #[test]
    fn fits_and_misfits_say_why() {
        let l = launchable(
            CloudId::Aws,
            "us-east-1",
            Some("us-east-1a"),
            "m6i.xlarge",
            0.2,
        );
        assert_eq!(fits(&ResourceChoice::default(), 2, 2, &l), Ok(()));
        let cases = [
            (
                one(Resources::default()),
                3,
                "needs 3 nodes and the cluster has 2",
            ),
            (
                one(Resources {
                    cpus: Some(Amount {
                        value: 8.0,
                        at_least: true,
                    }),
                    ..Default::default()
                }),
                1,
                "8 CPUs per node",
            ),
            (
                one(Resources {
                    accelerators: Some(AcceleratorRequest {
                        name: "V100".into(),
                        count: 1.0,
                    }),
                    ..Default::default()
                }),
                1,
                "V100:1",
            ),
            (
                one(Resources {
                    placement: Placement {
                        cloud: Some(CloudId::Gcp),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                1,
                "cloud gcp",
            ),
            (
                one(Resources {
                    use_spot: true,
                    ..Default::default()
                }),
                1,
                "spot",
            ),
            (
                one(Resources {
                    memory: Some(MemoryRequest::Gib(Amount {
                        value: 64.0,
                        at_least: true,
                    })),
                    ..Default::default()
                }),
                1,
                "64 GiB",
            ),
        ];
        for (choice, nodes, expected) in cases {
            let why = fits(&choice, nodes, 2, &l).expect_err(expected);
            assert!(
                why.contains(expected),
                "{why:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn the_option_for_a_candidate_is_the_one_with_its_regions_image() {
        let east = Resources {
            disk_size_gb: 100,
            image_id: Some(crate::resources::ImageRequest::PerRegion(
                [("us-east-1".to_owned(), "ami-1".to_owned())].into(),
            )),
            ..Default::default()
        };
        let west = Resources {
            disk_size_gb: 200,
            image_id: Some(crate::resources::ImageRequest::PerRegion(
                [("us-west-2".to_owned(), "ami-2".to_owned())].into(),
            )),
            ..Default::default()
        };
        let choice = ResourceChoice {
            kind: crate::resources::ChoiceKind::AnyOf,
            options: vec![east, west],
        };
        let l = launchable(CloudId::Aws, "us-west-2", None, "m6i.xlarge", 0.2);
        let picked = option_for(&choice, &l).expect("an option");
        assert_eq!(picked.disk_size_gb, 200);
        let elsewhere = launchable(CloudId::Aws, "eu-west-1", None, "m6i.xlarge", 0.2);
        assert!(option_for(&choice, &elsewhere).is_none());
    }
}
