//! Sky's GCP provider: Compute Engine instances through `google-cloud-compute-v1` (REST + JSON).
//!
//! A cluster is a set of instances labelled with the cluster's GCP-safe id and each node's rank,
//! in one zone, behind one firewall rule (SSH plus task ports). Nothing is remembered between
//! calls: every operation finds the cluster's instances by label across all zones, so a crashed
//! launch is still found by `query`, `terminate` and `list_clusters`. Inserts go out one per node,
//! concurrently, each with a request id fixed per cluster, rank and attempt. Errors are mapped to
//! [`ProvisionErrorKind`] in [`errors`]; every finished operation is checked for `error`, since
//! the SDK's poller reports failed operations as `Ok`.
//!
//! Nodes are reached over SSH (`sky_core::ssh`) as user `sky` with Sky's own key, which launch
//! puts in the instance metadata. What it does not do: choose zones (failover does), price
//! anything (the catalog does), or run jobs (the head's agent does).

pub mod adc;
pub mod client;
pub mod errors;
pub mod network;
pub mod ops;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sky_core::catalog::Catalog;
use sky_core::cloud::CloudId;
use sky_core::config::{Paths, SkyConfig};
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, FoundCluster, FoundPlacement, GuestShutdown, HomeOwner,
    LaunchAttempt, Launchable, NodeHandle, NodeState, Provider, ProvisionError, ProvisionErrorKind,
    ProvisionRequest,
};
use sky_core::ssh::ConnectOptions;
use sky_core::ssh::vms::Vms;
use tokio::task::JoinSet;

use crate::client::{Clients, CredentialSource, Lookup, Settings};
use crate::ops::{Action, Node};
use crate::spec::NodeSpec;

/// The GCP provider for a front end's registry: endpoint and polling from `config`'s `gcp:`
/// section, credentials from the keychain or `GOOGLE_APPLICATION_CREDENTIALS` on first use.
pub fn provider(paths: &Paths, config: &SkyConfig) -> Arc<dyn Provider> {
    let (settings, config_error) = match Settings::from_config(config) {
        Ok(s) => (s, None),
        Err(e) => (Settings::default(), Some(e)),
    };
    let mut p = GcpProvider::new(paths.sky_home(), CredentialSource::Platform, settings);
    p.config_error = config_error;
    if let Some(user) = config.ssh_user(CloudId::Gcp) {
        p.set_ssh_user(user);
    }
    Arc::new(p)
}

pub struct GcpProvider {
    sky_home: PathBuf,
    clients: Clients,
    config_error: Option<String>,
    /// Distinguishes this process's launches, so request ids differ between runs but repeat
    /// within one attempt.
    nonce: String,
    attempts: AtomicU64,
    images: OnceLock<Result<Vec<(String, String)>, String>>,
    connect: ConnectOptions,
    /// Login name whose key goes into the `ssh-keys` metadata (`gcp.ssh_user`).
    ssh_user: String,
    /// Whose nodes this provider labels and acts on (the home's owner id by default).
    owner: HomeOwner,
}

impl GcpProvider {
    pub fn new(sky_home: PathBuf, source: CredentialSource, settings: Settings) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        GcpProvider {
            clients: Clients::new(source, settings),
            config_error: None,
            nonce: format!("{nanos:x}-{}", std::process::id()),
            attempts: AtomicU64::new(0),
            images: OnceLock::new(),
            connect: ConnectOptions::from_env(),
            ssh_user: spec::SSH_USER.to_owned(),
            owner: HomeOwner::of_home(&sky_home),
            sky_home,
        }
    }

    /// Acts for `owner` instead of the owner id in the Sky home's state database.
    pub fn set_owner(&mut self, owner: HomeOwner) {
        self.owner = owner;
    }

    /// Logs into the nodes as `user` (GCP creates it from the `ssh-keys` metadata) instead of
    /// [`spec::SSH_USER`]; `gcp.ssh_user` in the config sets it.
    pub fn set_ssh_user(&mut self, user: &str) {
        user.clone_into(&mut self.ssh_user);
    }

    fn settings(&self) -> &Settings {
        self.clients.settings()
    }

    /// `gcp.ssh_proxy_command` for the region the cluster's nodes are in (their handles say
    /// `zone/name`).
    fn proxy_command<'a>(&'a self, info: &ClusterInfo) -> Option<&'a str> {
        let proxy = self.settings().network.ssh_proxy_command.as_ref()?;
        let zone = info.head()?.instance_id.split_once('/')?.0;
        proxy.for_region(region_of_zone(zone))
    }

    /// The catalog's GCP image with `tag` (SkyPilot's defaults are tagged for CPU and GPU nodes).
    fn image_tagged(&self, tag: &str) -> Result<String, ProvisionError> {
        let images = self.images.get_or_init(|| {
            let catalog = Catalog::load(&self.sky_home).map_err(|e| e.to_string())?;
            let cloud = catalog
                .cloud(CloudId::Gcp)
                .ok_or_else(|| "the catalog has no GCP section".to_owned())?;
            Ok(cloud
                .images
                .iter()
                .map(|i| (i.tag.clone(), i.image_id.clone()))
                .collect())
        });
        let images = images
            .as_ref()
            .map_err(|e| ProvisionError::fatal(format!("GCP images: {e}")))?;
        images
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| {
                ProvisionError::new(
                    ProvisionErrorKind::InvalidRequest,
                    format!("the GCP catalog has no image tagged {tag}"),
                )
            })
    }

    /// This home's nodes of `cluster_name`.
    async fn nodes(&self, cluster_name: &str) -> Result<Vec<Node>, ProvisionError> {
        let owner = self.owner.get()?;
        self.nodes_of(&owner, cluster_name).await
    }

    async fn nodes_of(&self, owner: &str, cluster_name: &str) -> Result<Vec<Node>, ProvisionError> {
        let built = self.clients.get().await?;
        let id = spec::cluster_id(cluster_name);
        let scope = ops::Scope::Cluster {
            owner,
            cluster_id: &id,
        };
        ops::list(&built.instances, &built.project, scope).await
    }

    /// Deletes `nodes`, then `owner`'s firewall rule of the cluster once none of its nodes
    /// remain.
    async fn delete_nodes(
        &self,
        owner: &str,
        cluster_name: &str,
        nodes: &[Node],
    ) -> Result<(), ProvisionError> {
        self.act_all(nodes, Action::Delete).await?;
        let left = self.nodes_of(owner, cluster_name).await?;
        if let Some(n) = left.iter().find(|l| nodes.iter().any(|d| d.name == l.name)) {
            return Err(ProvisionError::fatal(format!(
                "GCP still lists {} of cluster {cluster_name} after deleting it",
                n.name
            )));
        }
        if !left.is_empty() {
            return Ok(());
        }
        let built = self.clients.get().await?;
        ops::delete_firewall(
            &built.firewalls,
            &built.project,
            &spec::firewall_name(&spec::cluster_id(cluster_name), owner),
        )
        .await
    }

    /// Runs `action` on every node concurrently; returns the first failure after all finished.
    async fn act_all(&self, nodes: &[Node], action: Action) -> Result<(), ProvisionError> {
        let built = self.clients.get().await?;
        let mut set = JoinSet::new();
        for n in nodes {
            set.spawn(ops::act(
                built.instances.clone(),
                built.project.clone(),
                n.zone.clone(),
                n.name.clone(),
                action,
            ));
        }
        first_error(set).await
    }
}

impl GcpProvider {
    /// This home's nodes that one create attempt made.
    async fn launch_nodes(&self, attempt: &LaunchAttempt) -> Result<Vec<Node>, ProvisionError> {
        let owner = self.owner.get()?;
        let built = self.clients.get().await?;
        let scope = ops::Scope::Launch {
            owner: &owner,
            launch: &attempt.launch_id,
        };
        ops::list(&built.instances, &built.project, scope).await
    }
}

/// Waits for every task and returns the first error (by completion), so nothing is left running.
async fn first_error(mut set: JoinSet<Result<(), ProvisionError>>) -> Result<(), ProvisionError> {
    let mut first: Option<ProvisionError> = None;
    while let Some(joined) = set.join_next().await {
        let result =
            joined.unwrap_or_else(|e| Err(ProvisionError::fatal(format!("GCP task failed: {e}"))));
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Sky's SSH public key (created on first use by the SSH runtime), installed on every node.
pub fn user_public_key(sky_home: &Path) -> Result<String, ProvisionError> {
    sky_core::ssh::keys::load_or_create(sky_home)
        .and_then(|k| k.public_openssh())
        .map_err(|e| {
            ProvisionError::new(
                ProvisionErrorKind::Auth,
                format!("GCP nodes need Sky's SSH key: {e}"),
            )
        })
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[async_trait::async_trait]
impl Provider for GcpProvider {
    fn cloud(&self) -> CloudId {
        CloudId::Gcp
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            stop: true,
            spot: true,
            multi_node: true,
            zones: true,
        }
    }

    /// A guest shutdown moves a GCE instance to TERMINATED, GCE's stopped state: compute billing
    /// ends and the boot disk is kept, as `instances.stop` would. Nothing makes it delete itself.
    fn guest_shutdown(&self, _spot: bool) -> GuestShutdown {
        GuestShutdown {
            stops: true,
            deletes: false,
        }
    }

    fn check(&self) -> CheckResult {
        if let Some(e) = &self.config_error {
            return CheckResult {
                enabled: false,
                reason: format!("config.yaml: {e}"),
            };
        }
        match self.clients.lookup() {
            Lookup::Found(found) => CheckResult {
                enabled: true,
                reason: format!(
                    "project {} (credentials from {})",
                    found.project, found.from
                ),
            },
            Lookup::Missing(why) => CheckResult {
                enabled: false,
                reason: why.clone(),
            },
        }
    }

    async fn verify(&self) -> CheckResult {
        let offline = self.check();
        if !offline.enabled {
            return offline;
        }
        let result = match self.clients.get().await {
            Ok(built) => ops::probe(&built.instances, &built.project).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => CheckResult {
                enabled: true,
                reason: format!("{}; Compute Engine answered", offline.reason),
            },
            Err(e) => CheckResult {
                enabled: false,
                reason: e.message,
            },
        }
    }

    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let l = &req.launchable;
        req.settings.check_labels(CloudId::Gcp)?;
        let zone = l.zone.clone().ok_or_else(|| {
            ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!(
                    "GCP needs a zone for region {}, the candidate has none",
                    l.region
                ),
            )
        })?;
        let built = self.clients.get().await?.clone();
        let existing = self.nodes(&req.cluster_name).await?;
        if let Some(elsewhere) = existing.iter().find(|n| n.zone != zone) {
            return Err(ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!(
                    "cluster {} already has node {} in zone {}, not {zone}; run `sky down {}` first",
                    req.cluster_name, elsewhere.name, elsewhere.zone, req.cluster_name
                ),
            ));
        }
        if req.resume_stopped {
            let stopped: Vec<Node> = existing
                .iter()
                .filter(|n| n.state() == NodeState::Stopped)
                .cloned()
                .collect();
            self.act_all(&stopped, Action::Start).await?;
        }
        let missing: Vec<u32> = (0..req.num_nodes)
            .filter(|r| !existing.iter().any(|n| n.rank == *r))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let ssh_public_key = user_public_key(&self.sky_home)?;
        let owner = self.owner.get()?;
        let image = match &req.settings.image_id {
            Some(tag) if tag.starts_with("skypilot:") => self.image_tagged(tag)?,
            Some(id) => spec::source_image(id)
                .map_err(|e| ProvisionError::new(ProvisionErrorKind::InvalidRequest, e))?,
            None => self.image_tagged(if l.accelerators.is_some() {
                spec::GPU_IMAGE_TAG
            } else {
                spec::CPU_IMAGE_TAG
            })?,
        };
        let disk_size_gb = i64::from(req.settings.disk_size_gb);
        let disk_type = spec::disk_type(&l.instance_type, req.settings.disk_tier);
        let placement = network::place(
            &built.networks,
            &built.subnetworks,
            &self.settings().network,
            &built.project,
            region_of_zone(&zone),
        )
        .await?;
        if placement.network.starts_with("global/")
            || placement
                .network
                .starts_with(&format!("projects/{}/", built.project))
        {
            ops::ensure_firewall(
                &built.firewalls,
                &built.project,
                spec::firewall_body(
                    &req.cluster_name,
                    &owner,
                    &req.settings.inbound_ranges(),
                    &placement.network,
                ),
            )
            .await?;
        } else {
            // A shared VPC's firewall rules belong to its host project, whose admins make them.
            tracing::warn!(
                network = %placement.network,
                "shared VPC: Sky creates no firewall rule in the host project; its rules must \
                 let SSH (and the task's ports) reach the cluster"
            );
        }
        let attempt = format!(
            "{}-{}",
            self.nonce,
            self.attempts.fetch_add(1, Ordering::Relaxed)
        );
        let user = local_user();
        let mut set = JoinSet::new();
        for rank in missing.iter().copied() {
            let node = NodeSpec {
                cluster_name: req.cluster_name.clone(),
                owner: owner.clone(),
                launch_id: req.launch_id.clone(),
                rank,
                user: user.clone(),
                image: image.clone(),
                disk_size_gb,
                disk_type: disk_type.to_owned(),
                ssh_public_key: ssh_public_key.clone(),
                ssh_user: self.ssh_user.clone(),
                labels: req.settings.labels.clone(),
                gvnic: req.settings.gvnic,
                network: placement.clone(),
            };
            set.spawn(ops::insert(
                built.instances.clone(),
                built.project.clone(),
                zone.clone(),
                spec::instance_body(l, &zone, &node),
                spec::request_id(&req.cluster_name, rank, &attempt, "insert"),
                self.settings().poll_interval,
            ));
        }
        let Err(error) = first_error(set).await else {
            return Ok(());
        };
        // A partial launch bills for the nodes that did come up: remove what this call created.
        let created: Vec<Node> = self
            .nodes(&req.cluster_name)
            .await?
            .into_iter()
            .filter(|n| missing.contains(&n.rank))
            .collect();
        if let Err(cleanup) = self.act_all(&created, Action::Delete).await {
            return Err(ProvisionError::fatal(format!(
                "{}; then deleting the {} nodes already created failed, they may be left \
                 behind (run `sky down {}`): {}",
                error.message,
                created.len(),
                req.cluster_name,
                cleanup.message
            )));
        }
        Err(error)
    }

    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        let deadline = Instant::now() + self.settings().boot_timeout;
        let mut gap = self.settings().poll_interval;
        loop {
            let nodes = self.nodes(cluster_name).await?;
            if nodes.is_empty() {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Capacity,
                    format!(
                        "GCP cluster {cluster_name} has no instances (preempted or deleted while starting)"
                    ),
                ));
            }
            if let Some(gone) = nodes
                .iter()
                .find(|n| matches!(n.state(), NodeState::Stopped | NodeState::Stopping))
            {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Capacity,
                    format!(
                        "GCP node {} in {} stopped while starting (spot preemption or a stop)",
                        gone.name, gone.zone
                    ),
                ));
            }
            let ready = nodes
                .iter()
                .all(|n| n.state() == NodeState::Running && n.internal_ip.is_some());
            if ready {
                return Ok(ClusterInfo::new(nodes.iter().map(Node::handle).collect()));
            }
            if Instant::now() >= deadline {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    format!(
                        "GCP cluster {cluster_name}: nodes not running after {}s",
                        self.settings().boot_timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(gap).await;
            gap = (gap * 3 / 2).min(Duration::from_secs(10));
        }
    }

    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        Ok(self
            .nodes(cluster_name)
            .await?
            .iter()
            .map(|n| (n.handle(), n.state()))
            .collect())
    }

    async fn list_clusters(&self) -> Result<Vec<FoundCluster>, ProvisionError> {
        let built = self.clients.get().await?;
        let nodes = ops::list(&built.instances, &built.project, ops::Scope::AnyOwner).await?;
        // Keyed by owner and name: two Sky homes may both have a `dev`.
        let mut clusters: BTreeMap<(String, String), Vec<Node>> = BTreeMap::new();
        for n in nodes {
            let Some(owner) = n.owner.clone() else {
                continue;
            };
            clusters
                .entry((owner, n.cluster_name.clone()))
                .or_default()
                .push(n);
        }
        Ok(clusters
            .into_iter()
            .map(|((owner, name), mut nodes)| {
                nodes.sort_by_key(|n| n.rank);
                let placement = nodes.first().and_then(|head| {
                    Some(FoundPlacement {
                        region: region_of_zone(&head.zone).to_owned(),
                        zone: Some(head.zone.clone()),
                        instance_type: head.machine_type.clone()?,
                        use_spot: head.spot,
                        stopped: nodes.iter().all(|n| n.state() == NodeState::Stopped),
                    })
                });
                let mut launch_ids: Vec<String> =
                    nodes.iter().filter_map(|n| n.launch.clone()).collect();
                launch_ids.sort();
                launch_ids.dedup();
                FoundCluster {
                    name,
                    owner: Some(owner),
                    launch_ids,
                    nodes: nodes.iter().map(Node::handle).collect(),
                    placement,
                }
            })
            .collect())
    }

    async fn query_launch(
        &self,
        _cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<Vec<NodeHandle>, ProvisionError> {
        Ok(self
            .launch_nodes(attempt)
            .await?
            .iter()
            .map(Node::handle)
            .collect())
    }

    async fn terminate_launch(
        &self,
        cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<(), ProvisionError> {
        let owner = self.owner.get()?;
        let nodes = self.launch_nodes(attempt).await?;
        self.delete_nodes(&owner, cluster_name, &nodes).await
    }

    async fn terminate_foreign(
        &self,
        cluster_name: &str,
        owner_id: &str,
    ) -> Result<(), ProvisionError> {
        let nodes = self.nodes_of(owner_id, cluster_name).await?;
        self.delete_nodes(owner_id, cluster_name, &nodes).await
    }

    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let nodes: Vec<Node> = self
            .nodes(cluster_name)
            .await?
            .into_iter()
            .filter(|n| n.state() != NodeState::Stopped)
            .collect();
        self.act_all(&nodes, Action::Stop).await
    }

    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let owner = self.owner.get()?;
        let nodes = self.nodes_of(&owner, cluster_name).await?;
        self.delete_nodes(&owner, cluster_name, &nodes).await
    }

    fn cloud_names(&self, cluster_name: &str) -> Vec<sky_core::provision::CloudName> {
        use sky_core::provision::CloudName;
        let id = spec::cluster_id(cluster_name);
        let firewall = match self.owner.get() {
            Ok(owner) => spec::firewall_name(&id, &owner),
            Err(e) => format!("(unknown: {e})"),
        };
        vec![
            CloudName::new("instances", format!("{id}-<rank>")),
            CloudName::new(&format!("label {}", spec::LABEL_CLUSTER), id.clone()),
            CloudName::new("firewall rule", firewall),
        ]
    }

    fn can_create(&self, l: &Launchable) -> Result<(), String> {
        let tpu = l
            .accelerators
            .as_ref()
            .is_some_and(|(name, _)| name.to_ascii_lowercase().starts_with("tpu-"))
            || l.instance_type.eq_ignore_ascii_case("TPU-VM");
        if tpu {
            return Err(
                "TPU VMs are created through Cloud TPU's own API, which Sky's GCP provider does \
                 not call yet (it creates Compute Engine instances); ask for a GPU instead"
                    .into(),
            );
        }
        Ok(())
    }

    fn vms<'a>(&'a self, cluster_name: &'a str, info: &'a ClusterInfo) -> Option<Vms<'a>> {
        Some(Vms {
            sky_home: &self.sky_home,
            cluster_name,
            info,
            user: &self.ssh_user,
            connect: self.connect,
            use_internal_ips: self.settings().network.use_internal_ips,
            proxy_command: self.proxy_command(info),
        })
    }
}

/// `us-central1-a` → `us-central1`: GCP zone names are their region's name plus a letter.
fn region_of_zone(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}
