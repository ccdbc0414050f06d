//! What Sky asks Compute Engine to create: names, labels, request ids and the instance and
//! firewall bodies, as pure functions of the request (tested without any HTTP).
//!
//! GCP names and label values allow only lowercase letters, digits and `-` (labels also `_`), at
//! most 63 characters, while Sky cluster names also allow capitals, `_` and `.`; [`cluster_id`]
//! maps one onto the other without collisions, and the exact name rides in the instance metadata.
//! This module does not call the API.

use std::collections::HashMap;

use google_cloud_compute_v1::model::{
    AcceleratorConfig, AccessConfig, AttachedDisk, AttachedDiskInitializeParams, Firewall,
    Instance, Metadata, NetworkInterface, Scheduling, Tags, access_config, firewall, metadata,
    network_interface, scheduling,
};
use sky_core::provision::Launchable;
use sky_core::resources::{DiskTier, PortRange};

/// Label holding [`cluster_id`]; what every list filters on (with [`LABEL_OWNER`]).
pub const LABEL_CLUSTER: &str = sky_core::provision::owner::TAG_CLUSTER;
/// Label holding the owner id of the Sky home that created the node.
pub const LABEL_OWNER: &str = sky_core::provision::owner::TAG_OWNER;
/// Label holding the launch id of the create attempt that made the node.
pub const LABEL_LAUNCH: &str = sky_core::provision::owner::TAG_LAUNCH;
/// Label holding the node's rank (0 is the head).
pub const LABEL_RANK: &str = "sky-rank";
/// Label saying `head` or `worker`.
pub const LABEL_ROLE: &str = "sky-node-type";
/// Label naming the local user who launched the node.
pub const LABEL_USER: &str = "sky-user";
/// Metadata key holding the cluster's exact Sky name.
pub const META_CLUSTER_NAME: &str = "sky-cluster-name";

/// SkyPilot's default GCP images, by catalog tag.
pub const CPU_IMAGE_TAG: &str = "skypilot:custom-cpu-ubuntu-2204";
pub const GPU_IMAGE_TAG: &str = "skypilot:custom-gpu-ubuntu-2204";
/// The login user the SSH key is installed for unless `gcp.ssh_user` names another.
pub const SSH_USER: &str = "sky";

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The GCP-safe form of a cluster name (at most 52 characters, so `-{rank}` fits in 63).
/// Names already lowercase letters, digits and `-` are kept; others are lowered, have every other
/// character replaced by `-` and get a hash of the exact name appended (the one derivation of
/// `sky_core::names`, whose output for GCP is frozen: instances launched earlier carry it).
pub fn cluster_id(name: &str) -> String {
    sky_core::names::cloud_name(name, 52, false)
}

pub fn instance_name(cluster_id: &str, rank: u32) -> String {
    format!("{cluster_id}-{rank}")
}

/// The firewall rule (and network tag) of `owner`'s cluster: firewall names are unique per
/// project and carry no labels, so the owner is hashed into the name (at most 54 characters),
/// and deleting one home's rule can never delete another home's of the same cluster name.
pub fn firewall_name(cluster_id: &str, owner: &str) -> String {
    let short: String = cluster_id.chars().take(41).collect();
    let short = short.trim_end_matches('-');
    format!(
        "{short}-{:08x}-sky",
        fnv1a(&[owner.as_bytes(), cluster_id.as_bytes()]) as u32
    )
}

/// A UUID-shaped request id that is the same for the same cluster, rank and launch attempt, so
/// re-sending an insert after a lost answer cannot create a second VM (GCP rejects the zero UUID
/// and requires the UUID form).
pub fn request_id(cluster_name: &str, rank: u32, attempt: &str, what: &str) -> String {
    let a = fnv1a(&[
        cluster_name.as_bytes(),
        &rank.to_le_bytes(),
        attempt.as_bytes(),
        what.as_bytes(),
    ]);
    let b = fnv1a(&[what.as_bytes(), attempt.as_bytes(), &a.to_le_bytes()]);
    // Version 4 / variant 1 bits, so strict UUID parsers accept it.
    let hi = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A label value: lowercase letters, digits, `_` and `-`, at most 63 characters.
pub fn label_value(raw: &str) -> String {
    let v: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    if v.is_empty() { "unknown".into() } else { v }
}

/// Everything about one node that is not in the [`Launchable`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub cluster_name: String,
    /// This Sky home's owner id and the attempt's launch id, labelled on the node.
    pub owner: String,
    pub launch_id: String,
    pub rank: u32,
    pub user: String,
    /// `projects/../global/images/..`.
    pub image: String,
    pub disk_size_gb: i64,
    pub disk_type: String,
    /// The OpenSSH public key line installed for `ssh_user`.
    pub ssh_public_key: String,
    /// The login GCP's guest agent creates for the key ([`SSH_USER`] unless configured).
    pub ssh_user: String,
    /// The task's `resources.labels` (checked against GCP's rules), on the instance and its disk.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `gcp.enable_gvnic`: the gVNIC interface instead of VirtIO.
    pub gvnic: bool,
    /// The network, subnetwork and external-address choice (`gcp.vpc_name`,
    /// `gcp.use_internal_ips`).
    pub network: crate::network::NetworkPlacement,
}

/// The `instances.insert` body of one node.
pub fn instance_body(l: &Launchable, zone: &str, spec: &NodeSpec) -> Instance {
    let id = cluster_id(&spec.cluster_name);
    let labels: HashMap<String, String> = [
        (LABEL_CLUSTER, id.clone()),
        (LABEL_RANK, spec.rank.to_string()),
        (
            LABEL_ROLE,
            if spec.rank == 0 { "head" } else { "worker" }.to_owned(),
        ),
        (LABEL_USER, label_value(&spec.user)),
        (LABEL_OWNER, label_value(&spec.owner)),
        (LABEL_LAUNCH, label_value(&spec.launch_id)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(spec.labels.clone())
    .collect();
    let disk = AttachedDisk::new()
        .set_boot(true)
        .set_auto_delete(true)
        .set_initialize_params(
            AttachedDiskInitializeParams::new()
                .set_source_image(spec.image.clone())
                .set_labels(spec.labels.clone())
                .set_disk_size_gb(spec.disk_size_gb)
                .set_disk_type(format!("zones/{zone}/diskTypes/{}", spec.disk_type)),
        );
    let mut nic = NetworkInterface::new().set_network(spec.network.network.clone());
    if let Some(sub) = &spec.network.subnetwork {
        nic = nic.set_subnetwork(sub.clone());
    }
    if spec.network.public_ip {
        nic = nic.set_access_configs([AccessConfig::new()
            .set_name("External NAT")
            .set_type(access_config::Type::OneToOneNat)]);
    }
    if spec.gvnic {
        nic = nic.set_nic_type(network_interface::NicType::Gvnic);
    }
    let mut sched = Scheduling::new();
    if l.use_spot {
        // Spot VMs cannot migrate or restart on their own; stopping keeps the disk for `sky start`.
        sched = sched
            .set_provisioning_model(scheduling::ProvisioningModel::Spot)
            .set_instance_termination_action(scheduling::InstanceTerminationAction::Stop)
            .set_automatic_restart(false)
            .set_on_host_maintenance(scheduling::OnHostMaintenance::Terminate);
    }
    let mut accelerators = Vec::new();
    if let Some((name, count)) = &l.accelerators {
        accelerators.push(
            AcceleratorConfig::new()
                .set_accelerator_type(format!(
                    "zones/{zone}/acceleratorTypes/{}",
                    accelerator_type(name)
                ))
                .set_accelerator_count(count.ceil() as i32),
        );
        // GPUs cannot live-migrate: GCP rejects MIGRATE for instances with accelerators.
        sched = sched.set_on_host_maintenance(scheduling::OnHostMaintenance::Terminate);
    }
    let meta = Metadata::new().set_items([
        metadata::Items::new()
            .set_key("ssh-keys")
            .set_value(format!("{}:{}", spec.ssh_user, spec.ssh_public_key.trim())),
        metadata::Items::new()
            .set_key(META_CLUSTER_NAME)
            .set_value(spec.cluster_name.clone()),
    ]);
    Instance::new()
        .set_name(instance_name(&id, spec.rank))
        .set_machine_type(format!("zones/{zone}/machineTypes/{}", l.instance_type))
        .set_labels(labels)
        .set_disks([disk])
        .set_network_interfaces([nic])
        .set_guest_accelerators(accelerators)
        .set_scheduling(sched)
        .set_metadata(meta)
        .set_tags(Tags::new().set_items([firewall_name(&id, &spec.owner)]))
}

/// The boot disk type for a tier, as SkyPilot maps them: low `pd-standard`, medium (the
/// default) `pd-balanced`, high `pd-ssd`, ultra (and best) `pd-extreme`; then the machine
/// series' limits: n1, a2, g2 and n2 under 64 vCPUs have no pd-extreme (pd-ssd instead), a3 and
/// g2 no pd-standard (pd-balanced), and a3-ultragpu, n4, a4 and g4 take only hyperdisk-balanced.
pub fn disk_type(instance_type: &str, tier: Option<DiskTier>) -> &'static str {
    let tier = match tier.unwrap_or(DiskTier::Medium) {
        DiskTier::Best => DiskTier::Ultra,
        t => t,
    };
    let series = instance_type.split('-').next().unwrap_or("");
    if instance_type.starts_with("a3-ultragpu") || matches!(series, "n4" | "a4" | "g4") {
        return "hyperdisk-balanced";
    }
    let small_n2 = series == "n2"
        && instance_type
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|cpus| cpus < 64);
    match tier {
        DiskTier::Low if matches!(series, "a3" | "g2") => "pd-balanced",
        DiskTier::Low => "pd-standard",
        DiskTier::Medium => "pd-balanced",
        DiskTier::High => "pd-ssd",
        DiskTier::Ultra | DiskTier::Best => match series {
            "a3" => "hyperdisk-balanced",
            "n1" | "a2" | "g2" => "pd-ssd",
            _ if small_n2 => "pd-ssd",
            _ => "pd-extreme",
        },
    }
}

/// A user's `image_id` as the insert's `sourceImage`: `projects/P/global/images/NAME`,
/// `projects/P/global/images/family/FAMILY`, or either as a full API URL.
pub fn source_image(image_id: &str) -> Result<String, String> {
    let path = image_id
        .trim()
        .trim_start_matches("https://www.googleapis.com/compute/v1/")
        .trim_start_matches("https://compute.googleapis.com/compute/v1/");
    let parts: Vec<&str> = path.split('/').collect();
    let ok = match parts.as_slice() {
        ["projects", p, "global", "images", name] => !p.is_empty() && !name.is_empty(),
        ["projects", p, "global", "images", "family", f] => !p.is_empty() && !f.is_empty(),
        _ => false,
    };
    if ok {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "image_id '{image_id}' is not a GCP image (allowed: projects/PROJECT/global/images/NAME, projects/PROJECT/global/images/family/FAMILY, or a skypilot: tag)"
        ))
    }
}

/// GCP's accelerator type for a catalog accelerator name (`A100` → `nvidia-tesla-a100`).
pub fn accelerator_type(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "a100" | "k80" | "p100" | "v100" | "p4" | "t4" => format!("nvidia-tesla-{lower}"),
        "a100-80gb" => "nvidia-a100-80gb".into(),
        "h100" => "nvidia-h100-80gb".into(),
        "h100-mega" => "nvidia-h100-mega-80gb".into(),
        "l4" => "nvidia-l4".into(),
        other if other.starts_with("nvidia-") => other.to_owned(),
        other => format!("nvidia-{other}"),
    }
}

/// The cluster's firewall rule: `ranges` (SSH and the task's ports), from anywhere, to the
/// cluster's tag.
pub fn firewall_body(
    cluster_name: &str,
    owner: &str,
    ranges: &[PortRange],
    network: &str,
) -> Firewall {
    let id = cluster_id(cluster_name);
    let name = firewall_name(&id, owner);
    let all: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            }
        })
        .collect();
    Firewall::new()
        .set_name(name.clone())
        .set_network(network)
        .set_direction(firewall::Direction::Ingress)
        .set_source_ranges(["0.0.0.0/0"])
        .set_target_tags([name])
        .set_allowed([firewall::Allowed::new()
            .set_ip_protocol("tcp")
            .set_ports(all)])
        .set_description(format!("Sky cluster {cluster_name}: SSH and task ports"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sky_core::cloud::CloudId;

    fn launchable(spot: bool, acc: Option<(&str, f64)>) -> Launchable {
        Launchable {
            cloud: CloudId::Gcp,
            region: "us-central1".into(),
            zone: Some("us-central1-a".into()),
            instance_type: "n1-standard-8".into(),
            use_spot: spot,
            vcpus: 8.0,
            memory_gib: 30.0,
            accelerators: acc.map(|(n, c)| (n.to_owned(), c)),
            hourly_price: 1.0,
        }
    }

    fn spec(rank: u32) -> NodeSpec {
        NodeSpec {
            cluster_name: "My_Cluster.1".into(),
            owner: "0123456789abcdef".into(),
            launch_id: "fedcba9876543210".into(),
            rank,
            user: "Alice Smith".into(),
            image: "projects/p/global/images/i".into(),
            disk_size_gb: 100,
            disk_type: "pd-ssd".into(),
            ssh_public_key: "ssh-ed25519 AAAA sky\n".into(),
            ssh_user: SSH_USER.into(),
            labels: [("team".to_owned(), "ml-infra".to_owned())].into(),
            gvnic: false,
            network: crate::network::NetworkPlacement {
                network: "global/networks/default".into(),
                subnetwork: None,
                public_ip: true,
            },
        }
    }

    #[test]
    fn cluster_ids_are_gcp_safe_and_distinct() {
        assert_eq!(cluster_id("train-1"), "train-1");
        let a = cluster_id("My_Cluster.1");
        let b = cluster_id("my-cluster-1");
        assert_ne!(a, b);
        assert!(a.starts_with("my-cluster-1-"), "{a}");
        let long = cluster_id(&"x".repeat(63));
        assert!(long.len() <= 52, "{long}");
        assert!(cluster_id("_x").starts_with('c'));
        for id in [a, long] {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }

    #[test]
    fn request_ids_repeat_per_attempt_and_look_like_uuids() {
        let a = request_id("c", 0, "att1", "insert");
        assert_eq!(a, request_id("c", 0, "att1", "insert"));
        assert_ne!(a, request_id("c", 1, "att1", "insert"));
        assert_ne!(a, request_id("c", 0, "att2", "insert"));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn spot_gpu_body_has_spot_model_terminate_and_accelerators() {
        let body = instance_body(
            &launchable(true, Some(("V100", 2.0))),
            "us-central1-a",
            &spec(1),
        );
        let sched = body.scheduling.as_ref().expect("scheduling");
        assert_eq!(
            sched.provisioning_model,
            Some(scheduling::ProvisioningModel::Spot)
        );
        assert_eq!(
            sched.on_host_maintenance,
            Some(scheduling::OnHostMaintenance::Terminate)
        );
        assert_eq!(
            body.guest_accelerators[0].accelerator_type.as_deref(),
            Some("zones/us-central1-a/acceleratorTypes/nvidia-tesla-v100")
        );
        assert_eq!(body.guest_accelerators[0].accelerator_count, Some(2));
        assert_eq!(body.labels[LABEL_ROLE], "worker");
        assert_eq!(
            body.labels["team"], "ml-infra",
            "the task's labels ride along"
        );
        let disk = &body.disks[0];
        assert_eq!(
            disk.initialize_params
                .as_ref()
                .map(|p| p.labels["team"].as_str()),
            Some("ml-infra")
        );
        assert_eq!(body.labels[LABEL_USER], "alice_smith");
        let disk = body.disks[0].initialize_params.as_ref().expect("disk");
        assert_eq!(disk.disk_size_gb, Some(100));
        assert_eq!(
            disk.disk_type.as_deref(),
            Some("zones/us-central1-a/diskTypes/pd-ssd")
        );
        let json = serde_json::to_value(&body).expect("serialises");
        assert_eq!(json["scheduling"]["provisioningModel"], "SPOT");
        assert_eq!(
            json["machineType"],
            "zones/us-central1-a/machineTypes/n1-standard-8"
        );
    }

    #[test]
    fn on_demand_cpu_body_keeps_default_scheduling_and_ssh_key() {
        let body = instance_body(&launchable(false, None), "us-central1-a", &spec(0));
        let sched = body.scheduling.as_ref().expect("scheduling");
        assert_eq!(sched.provisioning_model, None);
        assert!(body.guest_accelerators.is_empty());
        assert_eq!(body.labels[LABEL_ROLE], "head");
        let items = &body.metadata.as_ref().expect("metadata").items;
        assert_eq!(items[0].value.as_deref(), Some("sky:ssh-ed25519 AAAA sky"));
        assert_eq!(items[1].value.as_deref(), Some("My_Cluster.1"));
        let json = serde_json::to_value(&body).expect("json");
        assert!(json["networkInterfaces"][0].get("nicType").is_none());
    }

    #[test]
    fn gvnic_sets_the_interface_type() {
        let body = instance_body(
            &launchable(false, None),
            "us-central1-a",
            &NodeSpec {
                gvnic: true,
                ..spec(0)
            },
        );
        let json = serde_json::to_value(&body).expect("json");
        assert_eq!(json["networkInterfaces"][0]["nicType"], "GVNIC");
    }

    #[test]
    fn firewall_opens_ssh_and_ports_once() {
        let p = |start, end| PortRange { start, end };
        let fw = firewall_body(
            "c",
            "owner-a",
            &[p(22, 22), p(8080, 8080), p(9000, 9010)],
            "global/networks/default",
        );
        assert_eq!(fw.allowed[0].ports, ["22", "8080", "9000-9010"]);
        assert_eq!(fw.target_tags, [firewall_name("c", "owner-a")]);
        assert_ne!(firewall_name("c", "owner-a"), firewall_name("c", "owner-b"));
        let long = firewall_name(&"x".repeat(52), "owner-a");
        assert!(long.len() <= 63 && long.ends_with("-sky"), "{long}");
    }

    #[test]
    fn disk_tiers_map_to_the_series_disk_types() {
        assert_eq!(disk_type("n2-standard-8", None), "pd-balanced");
        assert_eq!(
            disk_type("n2-standard-8", Some(DiskTier::Low)),
            "pd-standard"
        );
        assert_eq!(disk_type("n2-standard-8", Some(DiskTier::High)), "pd-ssd");
        assert_eq!(disk_type("n2-standard-8", Some(DiskTier::Best)), "pd-ssd");
        assert_eq!(
            disk_type("n2-standard-64", Some(DiskTier::Ultra)),
            "pd-extreme"
        );
        assert_eq!(
            disk_type("c2-standard-60", Some(DiskTier::Best)),
            "pd-extreme"
        );
        assert_eq!(disk_type("n1-standard-4", Some(DiskTier::Ultra)), "pd-ssd");
        assert_eq!(
            disk_type("g2-standard-4", Some(DiskTier::Low)),
            "pd-balanced"
        );
        assert_eq!(
            disk_type("a3-highgpu-8g", Some(DiskTier::Ultra)),
            "hyperdisk-balanced"
        );
        assert_eq!(
            disk_type("n4-standard-4", Some(DiskTier::Low)),
            "hyperdisk-balanced"
        );
    }

    #[test]
    fn source_images_take_paths_families_and_urls_only() {
        assert_eq!(
            source_image("projects/debian-cloud/global/images/family/debian-12").as_deref(),
            Ok("projects/debian-cloud/global/images/family/debian-12")
        );
        assert_eq!(
            source_image("https://www.googleapis.com/compute/v1/projects/p/global/images/i")
                .as_deref(),
            Ok("projects/p/global/images/i")
        );
        let e = source_image("ami-0123456789abcdef0").expect_err("an AMI");
        assert!(
            e.contains("'ami-0123456789abcdef0' is not a GCP image"),
            "{e}"
        );
        assert!(source_image("projects//global/images/i").is_err());
    }
}
