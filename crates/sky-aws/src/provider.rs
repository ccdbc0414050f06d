//! [`AwsProvider`]: the [`Provider`] trait over the calls in [`crate::ec2`].
//!
//! Ownership: every instance, volume and security group carries Sky's own tags (cluster, this
//! home's owner id, the attempt's launch id), set in the create calls themselves; every call
//! that acts by cluster name filters by this home's owner id too, so SkyPilot's instances and
//! other Sky homes' never match. Every region a cluster was sent to is remembered (a relaunch
//! in another region must not hide the first one's instances).
//!
//! Launch order: remember the region, security group (also for an existing cluster, so new
//! ports open), key pair, image, one RunInstances, rank tags; a failure after instances exist terminates them before returning, so failover never
//! moves on with nodes left running. Waiting is one DescribeInstances per poll for all nodes, so
//! eight nodes wait as long as one. This module does not retry failed launches elsewhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, InstanceAttributeName, InstanceStateName};
use sky_core::catalog::Catalog;
use sky_core::cloud::CloudId;
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, FoundCluster, FoundPlacement, GuestShutdown,
    LaunchAttempt, NodeHandle, NodeState, Provider, ProvisionError, ProvisionErrorKind,
    ProvisionRequest,
};
use sky_core::ssh::ConnectOptions;
use sky_core::ssh::vms::Vms;

use crate::client::{Clients, Lookup};
use crate::ec2::{self, Launch, Node, Scope};
use crate::errors::provision_error;
use crate::{AwsOptions, HOME_REGION};

/// The one tag the Sky versions before ownership tags put on instances (SkyPilot's own key).
const LEGACY_TAG_CLUSTER: &str = "skypilot-cluster-name";

pub struct AwsProvider {
    options: AwsOptions,
    clients: Arc<Clients>,
    catalog: OnceLock<Result<Arc<Catalog>, String>>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("endpoint_url", &self.options.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    pub fn new(options: AwsOptions) -> Self {
        let clients = Arc::new(Clients::new(
            options.credentials.clone(),
            options.endpoint_url.clone(),
        ));
        AwsProvider {
            options,
            clients,
            catalog: OnceLock::new(),
        }
    }

    pub fn options(&self) -> &AwsOptions {
        &self.options
    }

    /// The EC2 client for `region` (for tests and tools that inspect what the provider made).
    pub fn client(&self, region: &str) -> Result<Client, ProvisionError> {
        self.clients.get(region)
    }

    fn catalog(&self) -> Result<Arc<Catalog>, ProvisionError> {
        self.catalog
            .get_or_init(|| {
                Catalog::load(&self.options.sky_home)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| ProvisionError::fatal(format!("cannot read the catalog: {e}")))
    }

    /// Regions to search for clusters.
    pub fn regions(&self) -> Result<Vec<String>, ProvisionError> {
        if let Some(r) = &self.options.regions {
            return Ok(r.clone());
        }
        let catalog = self.catalog()?;
        Ok(catalog
            .cloud(CloudId::Aws)
            .map(|c| c.regions.clone())
            .unwrap_or_default())
    }

    fn region_file(&self, cluster: &str) -> PathBuf {
        self.options
            .sky_home
            .join("aws")
            .join("clusters")
            .join(cluster)
    }

    /// This Sky home's owner id, which every filter and tag uses.
    fn owner(&self) -> Result<String, ProvisionError> {
        self.options.owner.get()
    }

    /// Adds `region` to the regions `cluster` was sent to (one per line, oldest first).
    fn remember_region(&self, cluster: &str, region: &str) -> Result<(), ProvisionError> {
        let path = self.region_file(cluster);
        let mut regions = self.recorded_regions(cluster);
        if regions.iter().any(|r| r == region) {
            return Ok(());
        }
        regions.push(region.to_owned());
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, regions.join("\n") + "\n")
        };
        write().map_err(|e| {
            ProvisionError::fatal(format!(
                "cannot record the region in {}: {e}",
                path.display()
            ))
        })
    }

    fn recorded_regions(&self, cluster: &str) -> Vec<String> {
        std::fs::read_to_string(self.region_file(cluster))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The regions that may hold this home's `cluster`: every recorded one, else those a search
    /// finds live instances in.
    async fn find_regions(&self, cluster: &str) -> Result<Vec<String>, ProvisionError> {
        let recorded = self.recorded_regions(cluster);
        if !recorded.is_empty() {
            return Ok(recorded);
        }
        let owner = self.owner()?;
        let mut found = Vec::new();
        let scope = OwnedScope::Owner {
            owner,
            cluster: Some(cluster.to_owned()),
        };
        for (region, nodes) in self.scan(&scope).await? {
            if nodes.iter().any(Node::alive) {
                self.remember_region(cluster, &region)?;
                found.push(region);
            }
        }
        Ok(found)
    }

    /// Describes the instances `scope` names in every region concurrently.
    async fn scan(&self, scope: &OwnedScope) -> Result<Vec<(String, Vec<Node>)>, ProvisionError> {
        let mut set = tokio::task::JoinSet::new();
        for region in self.regions()? {
            let client = self.clients.get(&region)?;
            let scope = scope.clone();
            set.spawn(async move {
                let nodes = ec2::describe(&client, scope.as_scope()).await;
                (region, nodes)
            });
        }
        let mut found = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (region, nodes) =
                joined.map_err(|e| ProvisionError::fatal(format!("region scan failed: {e}")))?;
            match nodes {
                Ok(n) => found.push((region, n)),
                // A region the account has not enabled holds nothing of ours.
                Err(e) if e.kind == ProvisionErrorKind::Quota => {
                    tracing::debug!(%region, error = %e, "region skipped");
                }
                Err(e) => return Err(e),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    async fn live_nodes(
        &self,
        client: &Client,
        scope: Scope<'_>,
    ) -> Result<Vec<Node>, ProvisionError> {
        let mut nodes: Vec<Node> = ec2::describe(client, scope)
            .await?
            .into_iter()
            .filter(Node::alive)
            .collect();
        ec2::rank_order(&mut nodes);
        Ok(nodes)
    }

    /// The task's image for this region, else `aws.image_id`, else the catalog's Ubuntu image
    /// for the instance type. `skypilot:` tags name catalog images.
    fn image_for(&self, req: &ProvisionRequest) -> Result<String, ProvisionError> {
        let l = &req.launchable;
        let wanted = req
            .settings
            .image_id
            .as_ref()
            .or(self.options.image_id.as_ref());
        if let Some(id) = wanted {
            if !id.starts_with("skypilot:") {
                return Ok(id.clone());
            }
            return self.catalog_image(id, &l.region);
        }
        let arm = is_arm(&l.instance_type);
        let gpu = l.accelerators.is_some();
        let tag = match (gpu, arm) {
            (false, false) => "skypilot:custom-cpu-ubuntu",
            (false, true) => "skypilot:custom-cpu-ubuntu-arm64",
            (true, false) => "skypilot:custom-gpu-ubuntu",
            (true, true) => "skypilot:custom-gpu-ubuntu-arm64",
        };
        self.catalog_image(tag, &l.region)
    }

    fn catalog_image(&self, tag: &str, region: &str) -> Result<String, ProvisionError> {
        let catalog = self.catalog()?;
        catalog
            .cloud(CloudId::Aws)
            .and_then(|c| {
                c.images
                    .iter()
                    .find(|i| i.tag == tag && i.region.as_deref() == Some(region))
            })
            .map(|i| i.image_id.clone())
            // Without an image this region cannot be used; another region may have one.
            .ok_or_else(|| {
                ProvisionError::new(
                    ProvisionErrorKind::Quota,
                    format!("the catalog has no {tag} image in {region}"),
                )
            })
    }

    /// The task's disk size; `aws.disk_size` replaces only the default (test servers want small
    /// volumes), so a task that writes `disk_size: 256` on such a setup gets the configured size.
    fn disk_gib(&self, req: &ProvisionRequest) -> Result<i32, ProvisionError> {
        let asked = req.settings.disk_size_gb;
        let gib = if asked == sky_core::resources::DEFAULT_DISK_SIZE_GB {
            self.options.disk_gib
        } else {
            i32::try_from(asked).map_err(|_| {
                ProvisionError::fatal(format!("disk_size {asked} GB is larger than EBS allows"))
            })?
        };
        Ok(gib)
    }

    /// Waits until every live node of `cluster` satisfies `done`, or it times out.
    async fn wait_for(
        &self,
        client: &Client,
        scope: Scope<'_>,
        cluster: &str,
        what: &str,
        done: impl Fn(&[Node]) -> Result<bool, ProvisionError>,
        include_dead: bool,
    ) -> Result<Vec<Node>, ProvisionError> {
        let start = Instant::now();
        loop {
            let mut nodes = ec2::describe(client, scope).await?;
            if !include_dead {
                nodes.retain(Node::alive);
            }
            ec2::rank_order(&mut nodes);
            if done(&nodes)? {
                return Ok(nodes);
            }
            if start.elapsed() >= self.options.wait_timeout {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    format!(
                        "{cluster}: nodes not {what} after {}s",
                        self.options.wait_timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    async fn launch(&self, client: &Client, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let cluster = req.cluster_name.as_str();
        let l = &req.launchable;
        req.settings.check_labels(CloudId::Aws)?;
        let owner = self.owner()?;
        let network =
            crate::network::place(client, &self.options.network, &l.region, l.zone.as_deref())
                .await?;
        // First, so a relaunch of an existing cluster that asks for more ports opens them.
        let sg = ec2::ensure_security_group(
            client,
            &self.group_name(&owner, cluster),
            &req.settings.inbound_ranges(),
            &ec2::ownership_tags(cluster, &owner, &req.launch_id),
            network.vpc_id.as_deref(),
            &owner,
        )
        .await?;
        let mine = Scope::Owner {
            owner: &owner,
            cluster: Some(cluster),
        };
        let existing = self.live_nodes(client, mine).await?;
        let have = u32::try_from(existing.len()).unwrap_or(u32::MAX);
        if have >= req.num_nodes {
            tracing::info!(cluster, have, "nodes already exist; not launching more");
            return Ok(());
        }
        let public_key = read_public_key(&self.options.sky_home)?;
        let key_name = format!("sky-key-{:08x}", fnv(public_key.as_bytes()) as u32);
        ec2::ensure_key_pair(client, &key_name, &public_key, &owner).await?;
        let image = self.image_for(req)?;
        let disk_gib = self.disk_gib(req)?;
        let info = ec2::describe_image(client, &image).await?;
        if let Some(min) = info.as_ref().and_then(|i| i.min_disk_gib)
            && disk_gib < min
        {
            return Err(ProvisionError::fatal(format!(
                "disk_size {disk_gib} GB is smaller than image {image}'s {min} GB root volume (allowed: disk_size >= {min})"
            )));
        }
        let root_device = info
            .as_ref()
            .map_or(ec2::DEFAULT_ROOT_DEVICE, |i| i.root_device.as_str());
        let token = client_token(cluster);
        let user = std::env::var("USER").unwrap_or_else(|_| "sky".into());
        let launch = Launch {
            cluster,
            owner: &owner,
            launch_id: &req.launch_id,
            user: &user,
            zone: l.zone.as_deref(),
            instance_type: &l.instance_type,
            image_id: &image,
            count: req.num_nodes - have,
            key_name: &key_name,
            security_group_id: &sg,
            network: &network,
            spot: l.use_spot,
            disk: ec2::Disk::for_tier(disk_gib, req.settings.disk_tier),
            root_device,
            client_token: &token,
            labels: &req.settings.labels,
        };
        let ids = ec2::run(client, &launch, self.options.throttle).await?;
        let used: Vec<u32> = existing.iter().filter_map(|n| n.rank).collect();
        let free = (0..req.num_nodes).filter(|r| !used.contains(r));
        let ranked: Vec<(String, u32)> = ids.iter().cloned().zip(free).collect();
        if let Err(e) = ec2::tag_ranks(client, &ranked).await {
            // Half-made nodes must not outlive the error.
            if let Err(cleanup) = terminate_ids(client, &ids).await {
                return Err(ProvisionError::fatal(format!(
                    "{}; then terminating the new nodes failed ({}), they may be left running",
                    e.message, cleanup.message
                )));
            }
            return Err(e);
        }
        tracing::info!(cluster, nodes = ids.len(), region = %l.region, "launched");
        Ok(())
    }

    async fn resume(&self, client: &Client, cluster: &str) -> Result<(), ProvisionError> {
        let owner = self.owner()?;
        // A node still stopping cannot be started yet.
        let nodes = self
            .wait_for(
                client,
                Scope::Owner {
                    owner: &owner,
                    cluster: Some(cluster),
                },
                cluster,
                "stopped",
                |n| Ok(!n.iter().any(|n| n.state == InstanceStateName::Stopping)),
                false,
            )
            .await?;
        if nodes.is_empty() {
            return Err(ProvisionError::new(
                ProvisionErrorKind::Fatal,
                format!("{cluster} has no nodes left to start; launch it again"),
            ));
        }
        let stopped: Vec<String> = nodes
            .iter()
            .filter(|n| n.state == InstanceStateName::Stopped)
            .map(|n| n.instance_id.clone())
            .collect();
        if stopped.is_empty() {
            return Ok(());
        }
        client
            .start_instances()
            .set_instance_ids(Some(stopped))
            .send()
            .await
            .map_err(|e| provision_error("StartInstances", &e))?;
        Ok(())
    }
}

impl AwsProvider {
    /// Terminates the live instances `scope` names in the client's region and waits until EC2
    /// reports them terminated.
    async fn terminate_scope(
        &self,
        client: &Client,
        scope: Scope<'_>,
        cluster: &str,
    ) -> Result<(), ProvisionError> {
        let ids: Vec<String> = self
            .live_nodes(client, scope)
            .await?
            .into_iter()
            .map(|n| n.instance_id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        terminate_ids(client, &ids).await?;
        self.wait_for(
            client,
            scope,
            cluster,
            "terminated",
            |n| {
                Ok(n.iter()
                    .filter(|n| ids.contains(&n.instance_id))
                    .all(|n| n.state == InstanceStateName::Terminated))
            },
            true,
        )
        .await?;
        Ok(())
    }

    /// The security group of `owner`'s `cluster`: `aws.security_group_name` (shared by every
    /// cluster), else one of the cluster's own.
    fn group_name(&self, owner: &str, cluster: &str) -> String {
        self.options
            .network
            .security_group_name
            .clone()
            .unwrap_or_else(|| ec2::security_group_name(owner, cluster))
    }

    /// Deletes `owner`'s security group of `cluster` once none of that owner's instances of the
    /// cluster remain in the region, in whichever VPC it is (by id: EC2 takes a name only in the
    /// default VPC). Only a group tagged with `owner` is deleted, so a company's own
    /// `aws.security_group_name` stays; a shared one still in use by another cluster (stopped
    /// ones included) is refused by EC2 and kept. Not fatal when EC2 refuses: the group costs
    /// nothing and the next launch of this name reuses it.
    async fn delete_group_if_unused(
        &self,
        client: &Client,
        owner: &str,
        cluster: &str,
    ) -> Result<(), ProvisionError> {
        let scope = Scope::Owner {
            owner,
            cluster: Some(cluster),
        };
        if !self.live_nodes(client, scope).await?.is_empty() {
            return Ok(());
        }
        let sg = self.group_name(owner, cluster);
        let groups = client
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(&sg).build())
            .filters(
                Filter::builder()
                    .name(format!("tag:{}", ec2::TAG_OWNER))
                    .values(owner)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| provision_error("DescribeSecurityGroups", &e))?;
        for id in groups.security_groups().iter().filter_map(|g| g.group_id()) {
            if let Err(e) = client.delete_security_group().group_id(id).send().await {
                tracing::debug!(group = %sg, id, error = %provision_error("DeleteSecurityGroup", &e), "security group kept");
            }
        }
        Ok(())
    }
}

/// A [`Scope`] that owns its strings, to move into a region's scanning task.
#[derive(Debug, Clone)]
enum OwnedScope {
    Owner {
        owner: String,
        cluster: Option<String>,
    },
    AnyOwner,
}

impl OwnedScope {
    fn as_scope(&self) -> Scope<'_> {
        match self {
            OwnedScope::Owner { owner, cluster } => Scope::Owner {
                owner,
                cluster: cluster.as_deref(),
            },
            OwnedScope::AnyOwner => Scope::AnyOwner,
        }
    }
}

/// Handles of `nodes` (in rank order), numbering unranked ones by position.
fn handles(nodes: &[Node]) -> Vec<NodeHandle> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.handle(n.rank.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX))))
        .collect()
}

fn states(nodes: &[Node]) -> Vec<(NodeHandle, NodeState)> {
    nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let rank = n.rank.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX));
            n.node_state().map(|s| (n.handle(rank), s))
        })
        .collect()
}

/// Graviton families have a `g` right after the generation digit (`m7g`, `c7gn`, `t4g`).
fn is_arm(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or("");
    let after_digits = family
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start_matches(|c: char| c.is_ascii_digit());
    after_digits.starts_with('g') && family.chars().any(|c| c.is_ascii_digit())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Unique per launch attempt, the same for the attempt's retries; at most 64 characters.
fn client_token(cluster: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut token = format!("sky-{:x}-{:x}-{cluster}", nanos, std::process::id());
    token.truncate(64);
    token
}

/// The Sky user's SSH public key (created on first use by the SSH runtime's key store).
fn read_public_key(sky_home: &std::path::Path) -> Result<String, ProvisionError> {
    sky_core::ssh::keys::load_or_create(sky_home)
        .and_then(|k| k.public_openssh())
        .map(|k| k.trim().to_owned())
        .map_err(|e| ProvisionError::fatal(format!("the Sky SSH key: {e}")))
}

async fn terminate_ids(client: &Client, ids: &[String]) -> Result<(), ProvisionError> {
    if ids.is_empty() {
        return Ok(());
    }
    client
        .terminate_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| provision_error("TerminateInstances", &e))
}

#[async_trait::async_trait]
impl Provider for AwsProvider {
    fn cloud(&self) -> CloudId {
        CloudId::Aws
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            stop: true,
            spot: true,
            multi_node: true,
            zones: true,
        }
    }

    fn check(&self) -> CheckResult {
        match self.clients.lookup() {
            Lookup::Found(found) => match found.logged_out() {
                None => CheckResult {
                    enabled: true,
                    reason: format!("credentials from the {}", found.describe()),
                },
                Some(why) => CheckResult {
                    enabled: false,
                    reason: why,
                },
            },
            Lookup::Missing(why) => CheckResult {
                enabled: false,
                reason: format!("no AWS credentials: {why}"),
            },
        }
    }

    async fn verify(&self) -> CheckResult {
        let offline = self.check();
        if !offline.enabled {
            return offline;
        }
        let client = match self.clients.get(HOME_REGION) {
            Ok(c) => c,
            Err(e) => {
                return CheckResult {
                    enabled: false,
                    reason: e.message,
                };
            }
        };
        match client.describe_regions().send().await {
            Ok(out) => {
                // Who the calls run as, when STS answers: with profiles and roles that is what
                // people need to see. A missing STS (some AWS-compatible clouds) is no failure.
                let identity = match self.clients.sts() {
                    Ok(sts) => match sts.get_caller_identity().send().await {
                        Ok(me) => me
                            .arn()
                            .map(|arn| format!("; signed in as {arn}"))
                            .unwrap_or_default(),
                        Err(e) => {
                            tracing::debug!(error = %aws_sdk_sts::error::DisplayErrorContext(&e), "GetCallerIdentity");
                            String::new()
                        }
                    },
                    Err(_) => String::new(),
                };
                CheckResult {
                    enabled: true,
                    reason: format!(
                        "{}; EC2 answered DescribeRegions ({} regions enabled){identity}",
                        offline.reason,
                        out.regions().len()
                    ),
                }
            }
            Err(e) => CheckResult {
                enabled: false,
                reason: provision_error("DescribeRegions", &e).message,
            },
        }
    }

    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let cluster = req.cluster_name.as_str();
        let region = req.launchable.region.as_str();
        let client = self.clients.get(region)?;
        // Before anything exists, so a launch killed from here on is still found by region.
        self.remember_region(cluster, region)?;
        if req.resume_stopped {
            self.resume(&client, cluster).await
        } else {
            self.launch(&client, req).await
        }
    }

    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        // The region of the latest attempt: `run_instances` just recorded it last.
        let Some(region) = self.find_regions(cluster_name).await?.pop() else {
            return Err(ProvisionError::fatal(format!(
                "{cluster_name} has no instances in any searched region"
            )));
        };
        let owner = self.owner()?;
        let client = self.clients.get(&region)?;
        let nodes = self
            .wait_for(
                &client,
                Scope::Owner {
                    owner: &owner,
                    cluster: Some(cluster_name),
                },
                cluster_name,
                "running",
                |nodes| {
                    if nodes.is_empty() {
                        return Err(ProvisionError::new(
                            ProvisionErrorKind::Capacity,
                            format!("{cluster_name}: every instance went away while starting (spot reclaimed?)"),
                        ));
                    }
                    Ok(nodes.iter().all(|n| {
                        n.state == InstanceStateName::Running && n.private_ip.is_some()
                    }))
                },
                false,
            )
            .await?;
        Ok(ClusterInfo::new(handles(&nodes)))
    }

    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        let owner = self.owner()?;
        let mut nodes = Vec::new();
        for region in self.find_regions(cluster_name).await? {
            let client = self.clients.get(&region)?;
            let scope = Scope::Owner {
                owner: &owner,
                cluster: Some(cluster_name),
            };
            nodes.extend(self.live_nodes(&client, scope).await?);
        }
        ec2::rank_order(&mut nodes);
        Ok(states(&nodes))
    }

    async fn query_launch(
        &self,
        _cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<Vec<NodeHandle>, ProvisionError> {
        let owner = self.owner()?;
        let client = self.clients.get(&attempt.region)?;
        let scope = Scope::Launch {
            owner: &owner,
            launch: &attempt.launch_id,
        };
        Ok(handles(&self.live_nodes(&client, scope).await?))
    }

    async fn terminate_launch(
        &self,
        cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<(), ProvisionError> {
        let owner = self.owner()?;
        let client = self.clients.get(&attempt.region)?;
        let scope = Scope::Launch {
            owner: &owner,
            launch: &attempt.launch_id,
        };
        self.terminate_scope(&client, scope, cluster_name).await?;
        self.delete_group_if_unused(&client, &owner, cluster_name)
            .await
    }

    async fn terminate_foreign(
        &self,
        cluster_name: &str,
        owner_id: &str,
    ) -> Result<(), ProvisionError> {
        let scope = OwnedScope::Owner {
            owner: owner_id.to_owned(),
            cluster: Some(cluster_name.to_owned()),
        };
        for (region, nodes) in self.scan(&scope).await? {
            if !nodes.iter().any(Node::alive) {
                continue;
            }
            let client = self.clients.get(&region)?;
            self.terminate_scope(&client, scope.as_scope(), cluster_name)
                .await?;
            self.delete_group_if_unused(&client, owner_id, cluster_name)
                .await?;
        }
        Ok(())
    }

    async fn list_clusters(&self) -> Result<Vec<FoundCluster>, ProvisionError> {
        let own = self.owner()?;
        // Keyed by owner and name: two homes may both have a `dev`.
        let mut clusters: BTreeMap<(String, String), (String, Vec<Node>)> = BTreeMap::new();
        for (region, nodes) in self.scan(&OwnedScope::AnyOwner).await? {
            for n in nodes.into_iter().filter(Node::alive) {
                let Some(owner) = n.owner.clone() else {
                    continue;
                };
                clusters
                    .entry((owner, n.cluster.clone()))
                    .or_insert_with(|| (region.clone(), Vec::new()))
                    .1
                    .push(n);
            }
        }
        let mut out = Vec::new();
        for ((owner, name), (region, mut nodes)) in clusters {
            // So a later `terminate` or adoption finds this home's cluster without searching.
            if owner == own {
                self.remember_region(&name, &region)?;
            }
            ec2::rank_order(&mut nodes);
            let placement = nodes.first().and_then(|head| {
                Some(FoundPlacement {
                    region: region.clone(),
                    zone: head.zone.clone(),
                    instance_type: head.instance_type.clone()?,
                    use_spot: head.spot,
                    stopped: nodes.iter().all(|n| n.state == InstanceStateName::Stopped),
                })
            });
            let mut launch_ids: Vec<String> =
                nodes.iter().filter_map(|n| n.launch.clone()).collect();
            launch_ids.sort();
            launch_ids.dedup();
            out.push(FoundCluster {
                name,
                owner: Some(owner),
                launch_ids,
                nodes: handles(&nodes),
                placement,
            });
        }
        Ok(out)
    }

    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let regions = self.find_regions(cluster_name).await?;
        if regions.is_empty() {
            return Err(ProvisionError::fatal(format!(
                "{cluster_name} has no instances to stop"
            )));
        }
        let owner = self.owner()?;
        let scope = Scope::Owner {
            owner: &owner,
            cluster: Some(cluster_name),
        };
        for region in regions {
            let client = self.clients.get(&region)?;
            let nodes = self.live_nodes(&client, scope).await?;
            let ids: Vec<String> = nodes
                .iter()
                .filter(|n| {
                    matches!(
                        n.state,
                        InstanceStateName::Running | InstanceStateName::Pending
                    )
                })
                .map(|n| n.instance_id.clone())
                .collect();
            if !ids.is_empty() {
                client
                    .stop_instances()
                    .set_instance_ids(Some(ids))
                    .send()
                    .await
                    .map_err(|e| provision_error("StopInstances", &e))?;
            }
            self.wait_for(
                &client,
                scope,
                cluster_name,
                "stopped",
                |n| Ok(n.iter().all(|n| n.state == InstanceStateName::Stopped)),
                false,
            )
            .await?;
        }
        Ok(())
    }

    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let owner = self.owner()?;
        let scope = Scope::Owner {
            owner: &owner,
            cluster: Some(cluster_name),
        };
        for region in self.find_regions(cluster_name).await? {
            let client = self.clients.get(&region)?;
            self.terminate_scope(&client, scope, cluster_name).await?;
            self.delete_group_if_unused(&client, &owner, cluster_name)
                .await?;
        }
        let _ = std::fs::remove_file(self.region_file(cluster_name));
        Ok(())
    }

    /// The earlier Sky tagged instances with SkyPilot's `skypilot-cluster-name` key only. The
    /// instance ids this home recorded, each still alive with that tag naming this cluster and
    /// no other home's owner id, get this home's tags (instances and their volumes) and rank
    /// tags; the region is remembered as for a launch.
    async fn claim_pre_ownership(
        &self,
        cluster_name: &str,
        region: &str,
        info: &ClusterInfo,
        launch_id: &str,
        record_attempt: &(dyn Fn() -> Result<(), ProvisionError> + Send + Sync),
    ) -> Result<bool, ProvisionError> {
        let owner = self.owner()?;
        let client = self.clients.get(region)?;
        let ids: Vec<String> = info.nodes.iter().map(|n| n.instance_id.clone()).collect();
        let described = match client
            .describe_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
        {
            Ok(out) => out,
            // An id that no longer exists: nothing is claimed.
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                    .is_some_and(|c| c.starts_with("InvalidInstanceID")) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(provision_error("DescribeInstances", &e)),
        };
        let instances: Vec<&aws_sdk_ec2::types::Instance> = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .collect();
        let proven = instances.len() == ids.len()
            && instances.iter().all(|i| {
                let tag = |key: &str| {
                    i.tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                };
                let alive = i.state().and_then(|s| s.name()).is_some_and(|s| {
                    !matches!(
                        s,
                        InstanceStateName::Terminated | InstanceStateName::ShuttingDown
                    )
                });
                alive
                    && tag(LEGACY_TAG_CLUSTER) == Some(cluster_name)
                    && tag(sky_core::provision::owner::TAG_OWNER).is_none_or(|o| o == owner)
            });
        if !proven {
            return Ok(false);
        }
        record_attempt()?;
        let mut resources = ids.clone();
        resources.extend(instances.iter().flat_map(|i| {
            i.block_device_mappings()
                .iter()
                .filter_map(|b| b.ebs()?.volume_id().map(str::to_owned))
        }));
        client
            .create_tags()
            .set_resources(Some(resources))
            .set_tags(Some(ec2::ownership_tags(cluster_name, &owner, launch_id)))
            .send()
            .await
            .map_err(|e| provision_error("CreateTags", &e))?;
        let ranked: Vec<(String, u32)> = info
            .nodes
            .iter()
            .map(|n| (n.instance_id.clone(), n.rank))
            .collect();
        ec2::tag_ranks(&client, &ranked).await?;
        self.remember_region(cluster_name, region)?;
        Ok(true)
    }

    /// An EBS-backed instance stops on a guest shutdown (`InstanceInitiatedShutdownBehavior`
    /// `stop`, the default for on-demand instances), or terminates, deleting its volumes
    /// (`DeleteOnTermination` is set on each), when that attribute is `terminate`. A one-time
    /// spot instance can only terminate.
    fn guest_shutdown(&self, spot: bool) -> GuestShutdown {
        GuestShutdown {
            stops: !spot,
            deletes: true,
        }
    }

    /// Sets each live instance's `InstanceInitiatedShutdownBehavior`: `terminate` for an
    /// autostop with `--down`, else (a stop, or cancelled) `stop`. Calls for one region go out
    /// together.
    async fn prepare_autostop(
        &self,
        cluster_name: &str,
        down: Option<bool>,
    ) -> Result<(), ProvisionError> {
        let down = down.unwrap_or(false);
        let owner = self.owner()?;
        let scope = Scope::Owner {
            owner: &owner,
            cluster: Some(cluster_name),
        };
        let behaviour = if down { "terminate" } else { "stop" };
        for region in self.find_regions(cluster_name).await? {
            let client = self.clients.get(&region)?;
            let nodes = self.live_nodes(&client, scope).await?;
            let mut calls = tokio::task::JoinSet::new();
            for node in nodes {
                let call = client
                    .modify_instance_attribute()
                    .instance_id(node.instance_id)
                    .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                    .value(behaviour);
                calls.spawn(async move { call.send().await });
            }
            while let Some(joined) = calls.join_next().await {
                joined
                    .map_err(|e| ProvisionError::fatal(e.to_string()))?
                    .map_err(|e| provision_error("ModifyInstanceAttribute", &e))?;
            }
        }
        Ok(())
    }

    fn vms<'a>(&'a self, cluster_name: &'a str, info: &'a ClusterInfo) -> Option<Vms<'a>> {
        let network = &self.options.network;
        // The region the cluster was last sent to is where it runs now.
        let region = self.recorded_regions(cluster_name).pop();
        let proxy_command = network
            .ssh_proxy_command
            .as_ref()
            .zip(region.as_deref())
            .and_then(|(proxy, region)| proxy.for_region(region));
        Some(Vms {
            sky_home: &self.options.sky_home,
            cluster_name,
            info,
            user: &self.options.ssh_user,
            connect: ConnectOptions::from_env(),
            use_internal_ips: network.use_internal_ips,
            proxy_command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graviton_types_are_arm() {
        for t in [
            "m7g.large",
            "c7gn.xlarge",
            "t4g.micro",
            "g5g.xlarge",
            "im4gn.large",
        ] {
            assert!(is_arm(t), "{t}");
        }
        for t in [
            "m5.large",
            "g5.xlarge",
            "p4d.24xlarge",
            "c6i.large",
            "inf2.xlarge",
        ] {
            assert!(!is_arm(t), "{t}");
        }
    }

    #[test]
    fn client_tokens_fit_ec2_and_differ_per_attempt() {
        let long = "c".repeat(100);
        let a = client_token(&long);
        assert!(a.len() <= 64, "{a}");
        let b = client_token("x");
        let c = client_token("x");
        assert_ne!(b, c, "two attempts must not share a token");
    }
}
