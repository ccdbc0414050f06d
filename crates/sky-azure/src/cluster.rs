//! What a Sky cluster is made of on Azure, as pure functions: resource names, tags and the JSON
//! bodies of the resource group, NSG, VNet, public IPs, NICs and VMs; and how a listed VM reads
//! back as a node.
//!
//! Layout: one resource group per cluster and Sky home (`sky-<cluster>-<user>-<owner id>`, tagged
//! with the cluster, user, owner id and launch id; so two homes' `dev` never share a group, and
//! `down` of one never deletes the other's), holding one
//! VNet + subnet and one NSG, and per node a Standard static public IP, a NIC and a VM named
//! `<host base>-<rank>`, its `computerName` the same. Names come from the cluster name through
//! `sky_core::names`: kept where Azure accepts them as they are, derived (lowercase, `-` for
//! `_` and `.`, cut with a hash) where not, and recomputed identically by every command. The exact
//! cluster name rides in the `sky-cluster` tag. Deleting the resource group deletes everything.
//! What this module does not do: send anything (see `provider`).

use serde_json::{Value, json};
use sky_core::provision::{Launchable, NodeState};
use sky_core::resources::{DiskTier, PortRange};

use azure_mgmt_compute::package_2024_07_01::models as compute;

pub use sky_core::provision::owner::{TAG_CLUSTER, TAG_LAUNCH, TAG_OWNER};
pub const TAG_USER: &str = "sky-user";
pub const TAG_RANK: &str = "sky-rank";
/// Value of the `sky-role` tag, for people browsing the portal.
pub const TAG_ROLE: &str = "sky-role";

pub const ADMIN_USER: &str = "azureuser";
pub const VNET: &str = "sky-vnet";
pub const SUBNET: &str = "sky-subnet";
pub const NSG: &str = "sky-nsg";

/// Ubuntu 22.04 (Gen2) from Canonical: Azure has no SkyPilot image catalog, so this is the
/// default CPU image (as in SkyPilot, which uses a marketplace Ubuntu).
pub const DEFAULT_IMAGE: &str = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest";
/// The same Ubuntu for Hyper-V generation 1 sizes, which cannot boot a Gen2 image.
pub const DEFAULT_GEN1_IMAGE: &str = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest";
/// Ubuntu 22.04 with NVIDIA drivers and CUDA (Microsoft's HPC image, Gen2), for GPU sizes.
pub const DEFAULT_GPU_IMAGE: &str = "microsoft-dsvm:ubuntu-hpc:2204:latest";
/// Microsoft's Ubuntu 20.04 data-science image (Gen1), for Gen1-only GPU sizes (K80, some M60),
/// as SkyPilot's own Gen1 GPU image is built on it.
pub const DEFAULT_GEN1_GPU_IMAGE: &str = "microsoft-dsvm:ubuntu-2004:2004:latest";

/// The default image for a size: Gen1-only sizes (the catalog's `Generation` is `V1`) need a
/// Gen1 image; every other size boots Gen2.
pub fn default_image(gpu: bool, gen1_only: bool) -> &'static str {
    match (gpu, gen1_only) {
        (false, false) => DEFAULT_IMAGE,
        (false, true) => DEFAULT_GEN1_IMAGE,
        (true, false) => DEFAULT_GPU_IMAGE,
        (true, true) => DEFAULT_GEN1_GPU_IMAGE,
    }
}

/// Whether a size takes premium SSDs: an `s` among the lowercase letters after the family and
/// vCPU count (`Standard_D4s_v5` does, `Standard_D4_v5` does not).
pub fn is_s_series(vm_size: &str) -> bool {
    let Some(rest) = vm_size
        .strip_prefix("Standard_")
        .or_else(|| vm_size.strip_prefix("Basic_"))
    else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_uppercase());
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = match rest.strip_prefix('-') {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    rest.chars()
        .take_while(|c| c.is_ascii_lowercase())
        .any(|c| c == 's')
}

/// The OS disk's `storageAccountType` for a tier, as SkyPilot maps them: low is Standard_LRS,
/// medium and high Premium_LRS, which only `s` sizes take. The default (medium) and best (high)
/// fall back to Standard_LRS on other sizes; asking for medium or high on them, or for ultra
/// (Azure OS disks have no ultra tier), is an error naming the tier.
pub fn storage_account_type(vm_size: &str, tier: Option<DiskTier>) -> Result<&'static str, String> {
    let premium_ok = is_s_series(vm_size);
    match tier {
        Some(DiskTier::Low) => Ok("Standard_LRS"),
        None | Some(DiskTier::Best) if premium_ok => Ok("Premium_LRS"),
        None | Some(DiskTier::Best) => Ok("Standard_LRS"),
        Some(DiskTier::Medium | DiskTier::High) if premium_ok => Ok("Premium_LRS"),
        Some(t @ (DiskTier::Medium | DiskTier::High)) => Err(format!(
            "disk_tier {} needs a premium SSD, which {vm_size} does not take (allowed there: low, best; or an S-series size such as Standard_D4s_v5)",
            tier_name(t)
        )),
        Some(DiskTier::Ultra) => Err(
            "disk_tier ultra is not available for Azure OS disks (allowed: low, medium, high, best)"
                .to_owned(),
        ),
    }
}

fn tier_name(t: DiskTier) -> &'static str {
    match t {
        DiskTier::Low => "low",
        DiskTier::Medium => "medium",
        DiskTier::High => "high",
        DiskTier::Ultra => "ultra",
        DiskTier::Best => "best",
    }
}

/// Everything a launch needs beyond the placement.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub cluster: String,
    pub user: String,
    /// This Sky home's owner id and the attempt's launch id, tagged on every resource.
    pub owner: String,
    pub launch_id: String,
    pub launchable: Launchable,
    pub image: String,
    pub disk_gb: i32,
    /// The OS disk's `storageAccountType` ([`storage_account_type`]).
    pub disk_type: String,
    /// Inbound TCP port ranges, SSH's included.
    pub ports: Vec<PortRange>,
    pub ssh_public_key: String,
    /// `adminUsername`, the login the key is installed for.
    pub ssh_user: String,
    /// The task's `resources.labels` (checked against Azure's rules), tagged on every resource.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Only characters Azure accepts in resource names, lower case.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Resource group names: at most 90 characters (letters, digits, `_`, `-`, `.`, parentheses; not
/// ending in `.`), compared case-insensitively.
pub const RESOURCE_GROUP_MAX: usize = 90;
/// Linux host names (`computerName`) and VM names: at most 64 characters, no `_` in host names
/// ("Linux host name cannot exceed 64 characters in length or contain the following
/// characters: ..."). A node's name is the host base, `-` and its rank, so the base leaves room
/// for `-` and any u32 rank.
pub const HOST_NAME_MAX: usize = 64;
const HOST_BASE_MAX: usize = HOST_NAME_MAX - 1 - 10;

/// The resource group of `cluster` for `user` of the Sky home `owner`: the owner id keeps two
/// homes' clusters of one name (in one subscription) in groups of their own. Cluster names use
/// only characters Azure allows here, so only the length may need fitting.
pub fn resource_group(cluster: &str, user: &str, owner: &str) -> String {
    let user = sanitize(user);
    let owner = sanitize(owner);
    let full = if user.is_empty() {
        format!("sky-{cluster}-{owner}")
    } else {
        format!("sky-{cluster}-{user}-{owner}")
    };
    sky_core::names::capped(&full, RESOURCE_GROUP_MAX)
}

/// What every node name of `cluster` starts with: the cluster name where it is a valid host name
/// with room for the rank, else derived from it (see `sky_core::names::cloud_name`). Capitals are
/// kept, as Azure accepts them and clusters launched earlier have them.
pub fn host_base(cluster: &str) -> String {
    sky_core::names::cloud_name(cluster, HOST_BASE_MAX, true)
}

/// The VM's name and `computerName`.
pub fn vm_name(cluster: &str, rank: u32) -> String {
    format!("{}-{rank}", host_base(cluster))
}

pub fn rg_body(spec: &NodeSpec) -> Value {
    json!({
        "location": spec.launchable.region,
        "tags": tags(spec, None),
    })
}

/// Inbound SSH and the task's ports from anywhere, as SkyPilot opens them. The PUT replaces
/// the whole rule set, so a relaunch asking for more ports gets them.
pub fn nsg_body(spec: &NodeSpec) -> Value {
    let rules: Vec<Value> = spec
        .ports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let port = if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            };
            json!({
                "name": format!("sky-allow-{port}"),
                "properties": {
                    "priority": 1000 + i,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": port,
                }
            })
        })
        .collect();
    json!({
        "location": spec.launchable.region,
        "tags": tags(spec, None),
        "properties": { "securityRules": rules },
    })
}

pub fn vnet_body(spec: &NodeSpec, nsg_id: &str) -> Value {
    json!({
        "location": spec.launchable.region,
        "tags": tags(spec, None),
        "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [{
                "name": SUBNET,
                "properties": {
                    "addressPrefix": "10.0.0.0/20",
                    "networkSecurityGroup": { "id": nsg_id },
                }
            }],
        },
    })
}

pub fn public_ip_body(spec: &NodeSpec, rank: u32) -> Value {
    let mut body = json!({
        "location": spec.launchable.region,
        "tags": tags(spec, Some(rank)),
        "sku": { "name": "Standard" },
        "properties": { "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4" },
    });
    if let Some(zone) = &spec.launchable.zone {
        body["zones"] = json!([zone]);
    }
    body
}

pub fn nic_body(spec: &NodeSpec, rank: u32, subnet_id: &str, public_ip_id: &str) -> Value {
    json!({
        "location": spec.launchable.region,
        "tags": tags(spec, Some(rank)),
        "properties": {
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {
                    "subnet": { "id": subnet_id },
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": { "id": public_ip_id },
                }
            }],
        },
    })
}

/// The image reference: a marketplace URN `publisher:offer:sku:version`, or a resource id
/// (`/subscriptions/.../images/...` or a gallery image version).
pub fn image_reference(image: &str) -> Result<Value, String> {
    if image.starts_with("/subscriptions/") {
        return Ok(json!({ "id": image }));
    }
    let parts: Vec<&str> = image.split(':').collect();
    match parts.as_slice() {
        [publisher, offer, sku, version] if parts.iter().all(|p| !p.is_empty()) => Ok(json!({
            "publisher": publisher, "offer": offer, "sku": sku, "version": version,
        })),
        _ => Err(format!(
            "image_id '{image}' is not an Azure image: expected a marketplace URN \
             'publisher:offer:sku:version' or a resource id starting with /subscriptions/"
        )),
    }
}

/// The VM, in the SDK's model so the wire shape is the compute API's own.
pub fn vm_body(
    spec: &NodeSpec,
    rank: u32,
    nic_id: &str,
) -> Result<compute::VirtualMachine, String> {
    let l = &spec.launchable;
    let name = vm_name(&spec.cluster, rank);
    let mut properties = json!({
        "hardwareProfile": { "vmSize": l.instance_type },
        "storageProfile": {
            "imageReference": image_reference(&spec.image)?,
            "osDisk": {
                "createOption": "FromImage",
                "diskSizeGB": spec.disk_gb,
                "managedDisk": { "storageAccountType": spec.disk_type },
                "deleteOption": "Delete",
            },
        },
        "osProfile": {
            "computerName": name,
            "adminUsername": spec.ssh_user,
            "linuxConfiguration": {
                "disablePasswordAuthentication": true,
                "ssh": { "publicKeys": [{
                    "path": format!("/home/{}/.ssh/authorized_keys", spec.ssh_user),
                    "keyData": spec.ssh_public_key,
                }]},
            },
        },
        "networkProfile": {
            "networkInterfaces": [{ "id": nic_id, "properties": { "primary": true, "deleteOption": "Delete" } }],
        },
    });
    if l.use_spot {
        // Deallocate (not Delete) on eviction keeps the disk, so `sky start` can bring it back;
        // maxPrice -1 means "up to the on-demand price": evicted for capacity, never for price.
        properties["priority"] = json!("Spot");
        properties["evictionPolicy"] = json!("Deallocate");
        properties["billingProfile"] = json!({ "maxPrice": -1 });
    }
    let mut body = json!({
        "location": l.region,
        "tags": tags(spec, Some(rank)),
        "properties": properties,
    });
    if let Some(zone) = &l.zone {
        body["zones"] = json!([zone]);
    }
    if rank == 0 {
        // What the head deallocates its cluster with when autostop fires; it may do nothing
        // until `sky autostop` assigns it a role (see `autostop`).
        body["identity"] = json!({ "type": "SystemAssigned" });
    }
    serde_json::from_value(body).map_err(|e| format!("building the VM model: {e}"))
}

fn tags(spec: &NodeSpec, rank: Option<u32>) -> Value {
    let mut t = json!({
        TAG_CLUSTER: spec.cluster,
        TAG_USER: spec.user,
        TAG_OWNER: spec.owner,
        TAG_LAUNCH: spec.launch_id,
    });
    for (key, value) in &spec.labels {
        t[key] = json!(value);
    }
    if let Some(rank) = rank {
        t[TAG_RANK] = json!(rank.to_string());
        t[TAG_ROLE] = json!(if rank == 0 { "head" } else { "worker" });
    }
    t
}

/// One VM as listed with its instance view.
#[derive(Debug, Clone, PartialEq)]
pub struct VmView {
    pub name: String,
    pub rank: Option<u32>,
    pub provisioning_state: Option<String>,
    pub power_state: Option<String>,
    /// The error code of a failed provisioning (`ProvisioningState/failed/<Code>`).
    pub failure: Option<(String, String)>,
    pub nic_id: Option<String>,
    /// The size's name (`Standard_D4s_v5`).
    pub vm_size: Option<String>,
    pub location: String,
    pub zone: Option<String>,
    pub spot: bool,
}

impl VmView {
    pub fn from_model(vm: &compute::VirtualMachine) -> VmView {
        let props = vm.properties.as_ref();
        let rank = vm
            .resource
            .tags
            .as_ref()
            .and_then(|t| t.get(TAG_RANK))
            .and_then(|v| v.as_str())
            .and_then(|r| r.parse().ok());
        let statuses = props
            .and_then(|p| p.instance_view.as_ref())
            .map(|iv| iv.statuses.as_slice())
            .unwrap_or_default();
        let code_of = |prefix: &str| {
            statuses
                .iter()
                .filter_map(|s| s.code.as_deref())
                .find_map(|c| c.strip_prefix(prefix).map(str::to_owned))
        };
        let failure = statuses.iter().find_map(|s| {
            let code = s
                .code
                .as_deref()?
                .strip_prefix("ProvisioningState/failed/")?;
            Some((code.to_owned(), s.message.clone().unwrap_or_default()))
        });
        VmView {
            name: vm.resource.name.clone().unwrap_or_default(),
            rank,
            provisioning_state: props.and_then(|p| p.provisioning_state.clone()),
            power_state: code_of("PowerState/"),
            failure,
            nic_id: props
                .and_then(|p| p.network_profile.as_ref())
                .and_then(|n| n.network_interfaces.first())
                .and_then(|n| n.sub_resource.id.clone()),
            vm_size: props
                .and_then(|p| p.hardware_profile.as_ref())
                .and_then(|h| h.vm_size.as_ref())
                .and_then(wire_name),
            location: vm.resource.location.clone(),
            zone: vm.zones.first().cloned(),
            spot: props.and_then(|p| p.priority.as_ref()) == Some(&compute::Priority::Spot),
        }
    }

    /// The node's state as Sky sees it; a VM whose provisioning failed counts as pending until
    /// `wait_instances` reports the failure.
    pub fn state(&self) -> NodeState {
        match self.power_state.as_deref() {
            Some("running") => NodeState::Running,
            Some("stopping" | "deallocating") => NodeState::Stopping,
            Some("stopped" | "deallocated") => NodeState::Stopped,
            _ => NodeState::Pending,
        }
    }
}

/// An SDK enum's name on the wire: the sizes are a frozen enum that keeps unknown names as
/// strings, so serialising is the one way that gives every size back as Azure spelled it.
fn wire_name<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sky_core::cloud::CloudId;

    fn spec(spot: bool, zone: Option<&str>) -> NodeSpec {
        NodeSpec {
            cluster: "c1".into(),
            user: "alice".into(),
            owner: "0a1b2c3d4e5f6a7b".into(),
            launch_id: "7b6a5f4e3d2c1b0a".into(),
            launchable: Launchable {
                cloud: CloudId::Azure,
                region: "eastus".into(),
                zone: zone.map(str::to_owned),
                instance_type: "Standard_D2s_v5".into(),
                use_spot: spot,
                vcpus: 2.0,
                memory_gib: 8.0,
                accelerators: None,
                hourly_price: 0.1,
            },
            image: DEFAULT_IMAGE.into(),
            disk_gb: 256,
            disk_type: "Premium_LRS".into(),
            ports: vec![
                PortRange { start: 22, end: 22 },
                PortRange {
                    start: 8080,
                    end: 8080,
                },
            ],
            ssh_public_key: "ssh-ed25519 AAAA test".into(),
            ssh_user: ADMIN_USER.into(),
            labels: [("cost-center".to_owned(), "42".to_owned())].into(),
        }
    }

    #[test]
    fn vm_model_round_trips_every_field_we_set() {
        // The SDK model silently drops fields it does not know; a round trip equal to what we
        // wrote proves each name and enum value is the API's.
        let vm = vm_body(&spec(true, Some("2")), 1, "/nic/id").expect("model");
        let wire = serde_json::to_value(&vm).expect("serialize");
        assert_eq!(wire["properties"]["priority"], "Spot");
        assert_eq!(wire["properties"]["evictionPolicy"], "Deallocate");
        assert_eq!(wire["properties"]["billingProfile"]["maxPrice"], -1.0);
        assert_eq!(wire["zones"], json!(["2"]));
        assert_eq!(wire["tags"][TAG_ROLE], "worker");
        assert_eq!(
            wire["tags"]["cost-center"], "42",
            "the task's labels ride along"
        );
        assert_eq!(
            wire["properties"]["storageProfile"]["imageReference"]["offer"],
            "0001-com-ubuntu-server-jammy"
        );
        assert_eq!(
            wire["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"],
            "ssh-ed25519 AAAA test"
        );
        assert_eq!(
            wire["properties"]["networkProfile"]["networkInterfaces"][0]["id"],
            "/nic/id"
        );
        assert_eq!(
            wire["properties"]["storageProfile"]["osDisk"]["diskSizeGB"],
            256
        );
        let on_demand = serde_json::to_value(vm_body(&spec(false, None), 0, "/n").expect("model"))
            .expect("serialize");
        assert!(on_demand["properties"].get("priority").is_none());
        assert!(on_demand.get("zones").is_none());
    }

    #[test]
    fn premium_disks_only_on_s_sizes_and_tiers_fall_back_like_skypilot() {
        assert!(is_s_series("Standard_D4s_v5"));
        assert!(is_s_series("Standard_M64-32ms"));
        assert!(is_s_series("Standard_NC24ads_A100_v4"));
        assert!(!is_s_series("Standard_D4_v5"));
        assert!(!is_s_series("Standard_NC6"));
        assert_eq!(
            storage_account_type("Standard_D4s_v5", None),
            Ok("Premium_LRS")
        );
        assert_eq!(
            storage_account_type("Standard_D4_v5", None),
            Ok("Standard_LRS")
        );
        assert_eq!(
            storage_account_type("Standard_D4_v5", Some(DiskTier::Best)),
            Ok("Standard_LRS")
        );
        assert_eq!(
            storage_account_type("Standard_D4s_v5", Some(DiskTier::Low)),
            Ok("Standard_LRS")
        );
        let e = storage_account_type("Standard_D4_v5", Some(DiskTier::High)).expect_err("high");
        assert!(e.starts_with("disk_tier high needs a premium SSD"), "{e}");
        let e = storage_account_type("Standard_D4s_v5", Some(DiskTier::Ultra)).expect_err("ultra");
        assert!(e.contains("ultra"), "{e}");
    }

    #[test]
    fn gen1_only_sizes_get_gen1_images() {
        assert_eq!(default_image(false, false), DEFAULT_IMAGE);
        assert_eq!(default_image(false, true), DEFAULT_GEN1_IMAGE);
        assert_eq!(default_image(true, true), DEFAULT_GEN1_GPU_IMAGE);
        assert!(!DEFAULT_GEN1_IMAGE.contains("gen2"));
    }

    #[test]
    fn nsg_opens_ssh_and_task_ports_once_each() {
        let body = nsg_body(&spec(false, None));
        let ports: Vec<&str> = body["properties"]["securityRules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter_map(|r| r["properties"]["destinationPortRange"].as_str())
            .collect();
        assert_eq!(ports, ["22", "8080"]);
    }

    #[test]
    fn images_are_urns_or_resource_ids() {
        assert_eq!(image_reference("a:b:c:latest").expect("urn")["sku"], "c");
        assert_eq!(
            image_reference("/subscriptions/x/images/y").expect("id")["id"],
            "/subscriptions/x/images/y"
        );
        let err = image_reference("ami-123").expect_err("aws id");
        assert!(
            err.contains("'ami-123'") && err.contains("publisher:offer:sku:version"),
            "{err}"
        );
    }

    #[test]
    fn resource_group_names_carry_the_user() {
        assert_eq!(
            resource_group("c1", "Alice.B", "0a1b2c3d4e5f6a7b"),
            "sky-c1-aliceb-0a1b2c3d4e5f6a7b"
        );
        assert_eq!(resource_group("c1", "", "0a1b"), "sky-c1-0a1b");
        // `_` and `.` are fine in group names.
        assert_eq!(
            resource_group("my_c.1", "bob", "0a1b"),
            "sky-my_c.1-bob-0a1b"
        );
        let long = resource_group(&"c".repeat(63), &"u".repeat(40), "0a1b2c3d4e5f6a7b");
        assert!(long.len() <= RESOURCE_GROUP_MAX, "{long}");
        assert_ne!(
            long,
            resource_group(&"c".repeat(63), &"u".repeat(40), "0a1b2c3d4e5f6a7c")
        );
    }

    /// Azure's own check of a Linux `computerName` (as the fake applies it too).
    fn valid_linux_host(name: &str) -> bool {
        name.len() <= HOST_NAME_MAX
            && !name.is_empty()
            && !name.ends_with(['.', '-'])
            && !name.contains(|c: char| "`~!@#$%^&*()=+_[]{}\\|;:'\",<>/?".contains(c))
    }

    #[test]
    fn node_names_are_valid_linux_host_names_for_every_cluster_name() {
        assert_eq!(vm_name("c1", 3), "c1-3");
        assert_eq!(vm_name("Dev", 0), "Dev-0");
        for cluster in ["my_cluster", "a.b.c", &"x".repeat(63), &"Y_".repeat(31)] {
            for rank in [0, 9, 10, 4_294_967_295] {
                let name = vm_name(cluster, rank);
                assert!(valid_linux_host(&name), "{cluster} -> {name}");
            }
            assert!(vm_name(cluster, 0).starts_with(&host_base(cluster)));
        }
        assert_ne!(host_base("my_cluster"), host_base("my-cluster"));
        assert_ne!(host_base("my_cluster"), host_base("my.cluster"));
        let vm = vm_body(
            &NodeSpec {
                cluster: "my_cluster".into(),
                ..spec(false, None)
            },
            1,
            "/n",
        )
        .expect("model");
        let wire = serde_json::to_value(&vm).expect("serialize");
        let host = wire["properties"]["osProfile"]["computerName"]
            .as_str()
            .expect("host");
        assert!(
            valid_linux_host(host) && host.starts_with("my-cluster-"),
            "{host}"
        );
        assert_eq!(
            wire["tags"][TAG_CLUSTER], "my_cluster",
            "the exact name rides in the tag"
        );
    }
}
