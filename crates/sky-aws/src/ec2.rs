//! The EC2 calls the provider makes, each small and named after what it achieves: find a
//! cluster's instances by tag, make sure the key pair and security group exist, launch, tag ranks.
//!
//! Every call that decides failover (RunInstances) runs with the SDK's retries off, so capacity
//! and 5xx answers reach failover at once; only `RequestLimitExceeded` is retried here, with
//! bounded exponential backoff. This module does not wait for state changes (the provider does).

use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, Instance, InstanceInterruptionBehavior,
    InstanceLifecycleType, InstanceMarketOptionsRequest, InstanceNetworkInterfaceSpecification,
    InstanceStateName, InstanceType, IpPermission, IpRange, MarketType, Placement, ResourceType,
    SpotInstanceType, SpotMarketOptions, Tag, TagSpecification, VolumeType,
};
use backon::{ExponentialBuilder, Retryable};
use sky_core::provision::{NodeHandle, NodeState, ProvisionError};
use sky_core::resources::{DiskTier, PortRange};

use crate::errors::{THROTTLE_CODE, code_of, provision_error};

/// Sky's own keys (never SkyPilot's, whose `skypilot-cluster-name` other tools act on): the
/// cluster's name, the owner id of the Sky home that made the resource, and the launch id of the
/// create attempt (see `sky_core::provision::owner`).
pub use sky_core::provision::owner::{TAG_CLUSTER, TAG_LAUNCH, TAG_OWNER};
/// Tag with the node's rank (0 is the head).
pub const TAG_RANK: &str = "sky-node-rank";
/// `head` or `worker`.
pub const TAG_NODE_TYPE: &str = "sky-node-type";
pub const TAG_USER: &str = "sky-user";

/// Which Sky instances a describe asks for. Every scope requires Sky's owner tag, so instances
/// without it (SkyPilot's, anyone's) never match.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One owner's instances, of one cluster or (`None`) all of them.
    Owner {
        owner: &'a str,
        cluster: Option<&'a str>,
    },
    /// What one create attempt of one owner made.
    Launch { owner: &'a str, launch: &'a str },
    /// Every Sky-owned instance, whoever the owner (for listing other homes' clusters too).
    AnyOwner,
}

impl Scope<'_> {
    fn filters(&self) -> Vec<Filter> {
        let eq = |key: &str, value: &str| {
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build()
        };
        match *self {
            Scope::Owner { owner, cluster } => {
                let mut f = vec![eq(TAG_OWNER, owner)];
                f.push(match cluster {
                    Some(name) => eq(TAG_CLUSTER, name),
                    None => Filter::builder()
                        .name("tag-key")
                        .values(TAG_CLUSTER)
                        .build(),
                });
                f
            }
            Scope::Launch { owner, launch } => vec![eq(TAG_OWNER, owner), eq(TAG_LAUNCH, launch)],
            Scope::AnyOwner => vec![
                Filter::builder().name("tag-key").values(TAG_OWNER).build(),
                Filter::builder()
                    .name("tag-key")
                    .values(TAG_CLUSTER)
                    .build(),
            ],
        }
    }
}

/// The security group of `owner`'s cluster `cluster`: the owner is part of the name because
/// group names are unique per VPC, and another Sky home may use the same cluster name.
pub fn security_group_name(owner: &str, cluster: &str) -> String {
    format!("sky-sg-{owner}-{cluster}")
}

/// One instance as far as Sky cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub instance_id: String,
    pub cluster: String,
    pub owner: Option<String>,
    pub launch: Option<String>,
    pub rank: Option<u32>,
    pub launch_index: i32,
    pub state: InstanceStateName,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub spot: bool,
}

impl Node {
    fn from_instance(i: &Instance) -> Option<Node> {
        let tag = |k: &str| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        Some(Node {
            instance_id: i.instance_id()?.to_owned(),
            cluster: tag(TAG_CLUSTER)?,
            owner: tag(TAG_OWNER),
            launch: tag(TAG_LAUNCH),
            rank: tag(TAG_RANK).and_then(|r| r.parse().ok()),
            launch_index: i.ami_launch_index().unwrap_or(0),
            state: i.state().and_then(|s| s.name()).cloned()?,
            private_ip: i.private_ip_address().map(str::to_owned),
            public_ip: i.public_ip_address().map(str::to_owned),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
            zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(str::to_owned),
            spot: i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
        })
    }

    /// Not gone and not going.
    pub fn alive(&self) -> bool {
        !matches!(
            self.state,
            InstanceStateName::ShuttingDown | InstanceStateName::Terminated
        )
    }

    pub fn node_state(&self) -> Option<NodeState> {
        match self.state {
            InstanceStateName::Pending => Some(NodeState::Pending),
            InstanceStateName::Running => Some(NodeState::Running),
            InstanceStateName::Stopping => Some(NodeState::Stopping),
            InstanceStateName::Stopped => Some(NodeState::Stopped),
            _ => None,
        }
    }

    pub fn handle(&self, rank: u32) -> NodeHandle {
        NodeHandle {
            rank,
            instance_id: self.instance_id.clone(),
            internal_ip: self.private_ip.clone().unwrap_or_default(),
            external_ip: self.public_ip.clone(),
            local_dir: None,
        }
    }
}

/// Orders nodes head first: by rank tag, then launch index and id for nodes not yet ranked.
pub fn rank_order(nodes: &mut [Node]) {
    nodes.sort_by(|a, b| {
        (a.rank.unwrap_or(u32::MAX), a.launch_index, &a.instance_id).cmp(&(
            b.rank.unwrap_or(u32::MAX),
            b.launch_index,
            &b.instance_id,
        ))
    });
}

/// The instances `scope` names in the client's region, terminated ones included.
pub async fn describe(client: &Client, scope: Scope<'_>) -> Result<Vec<Node>, ProvisionError> {
    let mut nodes = Vec::new();
    let mut pages = client
        .describe_instances()
        .set_filters(Some(scope.filters()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| provision_error("DescribeInstances", &e))?;
        for r in page.reservations() {
            nodes.extend(r.instances().iter().filter_map(Node::from_instance));
        }
    }
    Ok(nodes)
}

/// Imports the Sky user's public key as `name` unless a key pair of that name exists.
pub async fn ensure_key_pair(
    client: &Client,
    name: &str,
    public_key: &str,
    owner: &str,
) -> Result<(), ProvisionError> {
    let found = client.describe_key_pairs().key_names(name).send().await;
    match found {
        Ok(out) if !out.key_pairs().is_empty() => return Ok(()),
        Ok(_) => {}
        Err(e) if code_of(&e) == Some("InvalidKeyPair.NotFound") => {}
        Err(e) => return Err(provision_error("DescribeKeyPairs", &e)),
    }
    match client
        .import_key_pair()
        .key_name(name)
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(public_key.as_bytes()))
        // The pair is named after the key, so homes sharing one key share it; the first owner
        // is recorded. Sky never deletes key pairs (they cost nothing and others may use them).
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::KeyPair)
                .tags(tag(TAG_OWNER, owner))
                .build(),
        )
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Another launch imported it between our two calls.
        Err(e) if code_of(&e) == Some("InvalidKeyPair.Duplicate") => Ok(()),
        Err(e) => Err(provision_error("ImportKeyPair", &e)),
    }
}

/// The filters that find security group `name`: in `vpc`, or (when `None`) by name alone, which
/// EC2 resolves in the default VPC as before.
fn group_filters(name: &str, vpc: Option<&str>) -> Vec<Filter> {
    let mut filters = vec![Filter::builder().name("group-name").values(name).build()];
    if let Some(vpc) = vpc {
        filters.push(Filter::builder().name("vpc-id").values(vpc).build());
    }
    filters
}

/// Whether `tags` say the resource is `owner`'s.
fn owned_by(tags: &[Tag], owner: &str) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(TAG_OWNER) && t.value() == Some(owner))
}

/// The id of security group `name` in `vpc` (the default VPC when `None`), with every range of
/// `ports` open to TCP from anywhere. Rules the group already has are kept and not sent again,
/// so a relaunch that asks for more ports adds only those (EC2 rejects a whole batch with one
/// duplicate). A group that exists and is not `owner`'s (a company's own
/// `aws.security_group_name`) is used as it is and never changed: ports it does not open to
/// anywhere are only warned of, since it may well open them to the company's own ranges.
pub async fn ensure_security_group(
    client: &Client,
    name: &str,
    ports: &[PortRange],
    tags: &[Tag],
    vpc: Option<&str>,
    owner: &str,
) -> Result<String, ProvisionError> {
    let existing = client
        .describe_security_groups()
        .set_filters(Some(group_filters(name, vpc)))
        .send()
        .await
        .map_err(|e| provision_error("DescribeSecurityGroups", &e))?;
    let group = existing.security_groups().first();
    let foreign = group.is_some_and(|g| !owned_by(g.tags(), owner));
    let open: Vec<(i32, i32)> = group
        .map(|g| {
            g.ip_permissions()
                .iter()
                .filter(|p| p.ip_protocol() == Some("tcp"))
                .filter(|p| p.ip_ranges().iter().any(|r| r.cidr_ip() == Some(ANYWHERE)))
                .filter_map(|p| Some((p.from_port()?, p.to_port()?)))
                .collect()
        })
        .unwrap_or_default();
    let id = match group.and_then(|g| g.group_id()) {
        Some(id) => id.to_owned(),
        None => {
            let created = client
                .create_security_group()
                .group_name(name)
                .set_vpc_id(vpc.map(str::to_owned))
                .description("Sky cluster: SSH and the task's ports")
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(tags.to_vec()))
                        .build(),
                )
                .send()
                .await;
            match created {
                Ok(out) => out.group_id().unwrap_or_default().to_owned(),
                Err(e) if code_of(&e) == Some("InvalidGroup.Duplicate") => {
                    let again = client
                        .describe_security_groups()
                        .set_filters(Some(group_filters(name, vpc)))
                        .send()
                        .await
                        .map_err(|e| provision_error("DescribeSecurityGroups", &e))?;
                    again
                        .security_groups()
                        .first()
                        .and_then(|g| g.group_id())
                        .unwrap_or_default()
                        .to_owned()
                }
                Err(e) => return Err(provision_error("CreateSecurityGroup", &e)),
            }
        }
    };
    if id.is_empty() {
        return Err(ProvisionError::fatal(format!(
            "security group {name} has no id in EC2's answer"
        )));
    }
    let permissions: Vec<IpPermission> = ports
        .iter()
        .map(|r| (i32::from(r.start), i32::from(r.end)))
        .filter(|(from, to)| !open.iter().any(|(a, b)| a <= from && to <= b))
        .map(|(from, to)| {
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(from)
                .to_port(to)
                .ip_ranges(IpRange::builder().cidr_ip(ANYWHERE).build())
                .build()
        })
        .collect();
    if permissions.is_empty() {
        return Ok(id);
    }
    if foreign {
        let missing: Vec<String> = permissions
            .iter()
            .filter_map(|p| Some((p.from_port()?, p.to_port()?)))
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        tracing::warn!(
            group = %name,
            "security group {name} is not Sky's, so Sky leaves its rules as they are; it does not \
             open TCP {} to anywhere",
            missing.join(", ")
        );
        return Ok(id);
    }
    match client
        .authorize_security_group_ingress()
        .group_id(&id)
        .set_ip_permissions(Some(permissions))
        .send()
        .await
    {
        Ok(_) => Ok(id),
        // A concurrent launch of the same cluster added them between our two calls.
        Err(e) if code_of(&e) == Some("InvalidPermission.Duplicate") => Ok(id),
        Err(e) => Err(provision_error("AuthorizeSecurityGroupIngress", &e)),
    }
}

/// What one RunInstances call asks for.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub cluster: &'a str,
    pub owner: &'a str,
    pub launch_id: &'a str,
    pub user: &'a str,
    pub zone: Option<&'a str>,
    pub instance_type: &'a str,
    pub image_id: &'a str,
    pub count: u32,
    pub key_name: &'a str,
    pub security_group_id: &'a str,
    /// The subnet and the public-address choice (`aws.vpc_name`, `aws.use_internal_ips`).
    pub network: &'a crate::network::NetworkPlacement,
    pub spot: bool,
    pub disk: Disk,
    /// The image's root device, which the disk mapping must name to resize the root volume
    /// (Ubuntu's `/dev/sda1`, Amazon Linux's `/dev/xvda`) rather than add a second one.
    pub root_device: &'a str,
    pub client_token: &'a str,
    /// The task's `resources.labels`, tagged on every instance and volume beside Sky's own tags.
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

/// What the launch needs to know of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub root_device: String,
    /// Size of the image's root snapshot: the smallest root volume it boots on.
    pub min_disk_gib: Option<i32>,
}

/// Ubuntu's root device, for images EC2 cannot describe (AWS-compatible clouds, test servers).
pub const DEFAULT_ROOT_DEVICE: &str = "/dev/sda1";

/// Describes `image_id`; `None` when EC2 does not know it here (RunInstances then says so).
pub async fn describe_image(
    client: &Client,
    image_id: &str,
) -> Result<Option<ImageInfo>, ProvisionError> {
    let out = match client.describe_images().image_ids(image_id).send().await {
        Ok(out) => out,
        Err(e) if code_of(&e).is_some_and(|c| c.starts_with("InvalidAMIID")) => return Ok(None),
        Err(e) => return Err(provision_error("DescribeImages", &e)),
    };
    Ok(out.images().first().map(|image| {
        let root_device = image
            .root_device_name()
            .unwrap_or(DEFAULT_ROOT_DEVICE)
            .to_owned();
        let min_disk_gib = image
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name() == Some(root_device.as_str()))
            .and_then(|m| m.ebs())
            .and_then(|e| e.volume_size());
        ImageInfo {
            root_device,
            min_disk_gib,
        }
    }))
}

const ANYWHERE: &str = "0.0.0.0/0";

/// The root EBS volume of every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    pub size_gib: i32,
    pub volume_type: DiskType,
    /// Provisioned IOPS (gp3 and io2); `None` for magnetic volumes.
    pub iops: Option<i32>,
    /// MiB/s, gp3 only.
    pub throughput: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    Standard,
    Gp3,
    Io2,
}

impl Disk {
    /// SkyPilot's tiers on EBS: low is magnetic `standard`; medium (the default) and high are
    /// gp3 with 3500 / 7000 IOPS and throughput IOPS/16; ultra (and best) is io2 at 20000 IOPS.
    pub fn for_tier(size_gib: i32, tier: Option<DiskTier>) -> Disk {
        let (volume_type, iops) = match tier.unwrap_or(DiskTier::Medium) {
            DiskTier::Low => (DiskType::Standard, None),
            DiskTier::Medium => (DiskType::Gp3, Some(3500)),
            DiskTier::High => (DiskType::Gp3, Some(7000)),
            DiskTier::Ultra | DiskTier::Best => (DiskType::Io2, Some(20000)),
        };
        let throughput = match volume_type {
            DiskType::Gp3 => iops.map(|i| i / 16),
            _ => None,
        };
        Disk {
            size_gib,
            volume_type,
            iops,
            throughput,
        }
    }

    fn ebs(&self) -> EbsBlockDevice {
        let volume_type = match self.volume_type {
            DiskType::Standard => VolumeType::Standard,
            DiskType::Gp3 => VolumeType::Gp3,
            DiskType::Io2 => VolumeType::Io2,
        };
        EbsBlockDevice::builder()
            .volume_size(self.size_gib)
            .volume_type(volume_type)
            .set_iops(self.iops)
            .set_throughput(self.throughput)
            .delete_on_termination(true)
            .build()
    }
}

/// How `RequestLimitExceeded` is retried: bounded exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub retries: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            retries: 5,
        }
    }
}

/// One RunInstances for every node. The client token makes a repeated call (after throttling)
/// return the first call's instances instead of creating a second cluster.
pub async fn run(
    client: &Client,
    launch: &Launch<'_>,
    throttle: Throttle,
) -> Result<Vec<String>, ProvisionError> {
    // Tagged in the create call itself, so no instance or volume exists untagged for a moment.
    let user_tags = || launch.labels.iter().map(|(k, v)| tag(k, v));
    let mut instance_tags = ownership_tags(launch.cluster, launch.owner, launch.launch_id);
    instance_tags.push(tag(TAG_USER, launch.user));
    // A `Name` label is the user's choice of the console name; EC2 refuses a key given twice.
    if !launch.labels.contains_key("Name") {
        instance_tags.push(tag("Name", &format!("sky-{}", launch.cluster)));
    }
    instance_tags.extend(user_tags());
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(instance_tags))
        .build();
    let mut volume_tags = ownership_tags(launch.cluster, launch.owner, launch.launch_id);
    volume_tags.extend(user_tags());
    let volume_tags = TagSpecification::builder()
        .resource_type(ResourceType::Volume)
        .set_tags(Some(volume_tags))
        .build();
    let count = i32::try_from(launch.count).unwrap_or(i32::MAX);
    let call = || async {
        let mut req = client
            .run_instances()
            .image_id(launch.image_id)
            .instance_type(InstanceType::from(launch.instance_type))
            .min_count(count)
            .max_count(count)
            .key_name(launch.key_name)
            .client_token(launch.client_token)
            .tag_specifications(tags.clone())
            .tag_specifications(volume_tags.clone())
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(launch.root_device)
                    .ebs(launch.disk.ebs())
                    .build(),
            );
        let net = launch.network;
        if net.subnet_id.is_some() || !net.public_ip {
            // An explicit interface carries the subnet, the group and the address choice (EC2
            // refuses groups given beside one).
            req = req.network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .set_subnet_id(net.subnet_id.clone())
                    .groups(launch.security_group_id)
                    .associate_public_ip_address(net.public_ip)
                    .delete_on_termination(true)
                    .build(),
            );
        } else {
            req = req.security_group_ids(launch.security_group_id);
        }
        if let Some(zone) = launch.zone {
            req = req.placement(Placement::builder().availability_zone(zone).build());
        }
        if launch.spot {
            req = req.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            );
        }
        req.customize()
            // Failover must see capacity errors (HTTP 500) at once, not after 3 silent retries.
            .config_override(aws_sdk_ec2::Config::builder().retry_config(RetryConfig::disabled()))
            .send()
            .await
    };
    let out = call
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(throttle.first_delay)
                .with_max_delay(throttle.max_delay)
                .with_max_times(throttle.retries)
                .with_jitter(),
        )
        .when(|e| code_of(e) == Some(THROTTLE_CODE))
        .notify(|_, wait| tracing::info!(?wait, "EC2 throttled RunInstances; backing off"))
        .await
        .map_err(|e| {
            let where_ = launch.zone.unwrap_or("the region");
            provision_error(&format!("RunInstances in {where_}"), &e)
        })?;
    Ok(out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}

/// Tags each node with its rank and head/worker role.
pub async fn tag_ranks(client: &Client, ranked: &[(String, u32)]) -> Result<(), ProvisionError> {
    let mut set = tokio::task::JoinSet::new();
    for (id, rank) in ranked {
        let client = client.clone();
        let id = id.clone();
        let rank = *rank;
        set.spawn(async move {
            client
                .create_tags()
                .resources(id)
                .tags(tag(TAG_RANK, &rank.to_string()))
                .tags(tag(
                    TAG_NODE_TYPE,
                    if rank == 0 { "head" } else { "worker" },
                ))
                .send()
                .await
                .map_err(|e| provision_error("CreateTags", &e))
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| ProvisionError::fatal(format!("tagging task failed: {e}")))??;
    }
    Ok(())
}

/// The three tags that prove a resource is `owner`'s, of `cluster`, made by launch `launch_id`.
pub fn ownership_tags(cluster: &str, owner: &str, launch_id: &str) -> Vec<Tag> {
    vec![
        tag(TAG_CLUSTER, cluster),
        tag(TAG_OWNER, owner),
        tag(TAG_LAUNCH, launch_id),
    ]
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
