//! The provider trait: the narrow set of operations the core asks of every cloud (and of the
//! `local` cloud), mirroring SkyPilot's `sky/provision/__init__.py`, plus the typed records that
//! cross it.
//!
//! Implementations live in the `sky-clouds` crate; the core reaches them only through
//! [`Registry`] and never matches on a cloud to decide behaviour: differences are expressed by
//! [`Capabilities`] and by what each provider returns. What this module does not do: choose where
//! to launch (the optimizer ranks, [`failover`] walks the ranking) or run jobs (the agent does).

pub mod error;
pub mod failover;
pub mod owner;
pub mod throttle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudId;
use crate::jobs::client::AgentClient;
use crate::jobs::wire::{AutostopHook, NodeSpec};
use crate::resources::{DiskTier, ImageRequest, PortRange, Resources};
use crate::ssh::vms::Vms;

pub use error::{BlockScope, ErrorRow, ProvisionError, ProvisionErrorKind, error_row};
pub use owner::{HomeOwner, LaunchAttempt};

/// A fully pinned choice of where and on what to run one node: what the optimizer ranks and the
/// state database records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launchable {
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub use_spot: bool,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Accelerator name and count per node, if any.
    pub accelerators: Option<(String, f64)>,
    /// USD per hour for one node.
    pub hourly_price: f64,
}

/// What `run_instances` is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionRequest {
    pub cluster_name: String,
    pub num_nodes: u32,
    pub launchable: Launchable,
    /// Restart the cluster's stopped nodes instead of creating new ones (`sky start`, or a launch
    /// onto a STOPPED cluster).
    pub resume_stopped: bool,
    /// The task's disk, ports and image for this placement; local and SSH-pool providers ignore
    /// them (their machines exist already).
    pub settings: NodeSettings,
    /// This create attempt's launch id ([`owner::new_launch_id`]), already in the cluster's
    /// record: cloud providers tag everything the call creates with it (and with their home's
    /// owner id), so an interrupted attempt is found by it.
    pub launch_id: String,
}

/// What a task asks of every node's machine beyond where it runs: the boot disk, the inbound
/// ports and the image, resolved for one placement. Each cloud maps them to its own terms
/// (disk tiers to volume types, the image to an AMI, a GCP image path or an Azure URN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSettings {
    pub disk_size_gb: u32,
    /// `None`: the cloud's default tier.
    pub disk_tier: Option<DiskTier>,
    /// TCP ports to open besides SSH.
    pub ports: Vec<PortRange>,
    /// The image for this placement's region (`image_id`, or that region's entry of a
    /// per-region map); `None`: the cloud's default image for the instance type.
    pub image_id: Option<String>,
    /// `resources.labels`: tags (AWS, Azure) or labels (GCP) on every resource the launch
    /// creates, beside Sky's own; checked by [`crate::resources::label_problem`].
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// GCP's gVNIC network interface instead of VirtIO (`gcp.enable_gvnic`); set only on GCP
    /// placements, the one cloud that offers the choice.
    #[serde(default)]
    pub gvnic: bool,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            disk_size_gb: crate::resources::DEFAULT_DISK_SIZE_GB,
            disk_tier: None,
            ports: Vec::new(),
            image_id: None,
            labels: BTreeMap::new(),
            gvnic: false,
        }
    }
}

impl NodeSettings {
    /// The settings `resources` asks for on a node in `region`. A per-region image map without
    /// `region` gives no image: the optimizer never offers such a region, so this only happens
    /// for placements chosen elsewhere (a resumed cluster), which keep the cloud's default.
    /// A docker image (refused by the task parser) is never passed on as a VM image.
    pub fn for_region(resources: &Resources, region: &str) -> NodeSettings {
        let image_id = match &resources.image_id {
            None => None,
            Some(ImageRequest::Any(id)) => Some(id.clone()),
            Some(ImageRequest::PerRegion(map)) => map.get(region).cloned(),
        }
        .filter(|id| !id.starts_with("docker:"));
        NodeSettings {
            disk_size_gb: resources.disk_size_gb,
            disk_tier: resources.disk_tier,
            ports: resources.ports.clone(),
            image_id,
            labels: resources.labels.clone(),
            gvnic: false,
        }
    }

    /// The task's labels checked against `cloud`'s rules before anything is created there; a bad
    /// one blocks the whole cloud (every placement on it would refuse the same label), so
    /// failover moves to another cloud or ends with the reason.
    pub fn check_labels(&self, cloud: CloudId) -> Result<(), ProvisionError> {
        for (key, value) in &self.labels {
            if let Some(why) = crate::resources::label_problem(cloud, key, value) {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::InvalidRequest,
                    format!("labels: {why}"),
                )
                .with_scope(BlockScope::Cloud));
            }
        }
        Ok(())
    }

    /// Every port to open as inclusive ranges, SSH's 22 first, overlapping ranges merged.
    pub fn inbound_ranges(&self) -> Vec<PortRange> {
        let mut ranges: Vec<PortRange> = self.ports.clone();
        ranges.sort_by_key(|r| (r.start, r.end));
        let mut merged: Vec<PortRange> = Vec::new();
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end.saturating_add(1) => {
                    last.end = last.end.max(r.end);
                }
                _ => merged.push(r),
            }
        }
        if !merged.iter().any(|r| r.start <= 22 && 22 <= r.end) {
            merged.insert(0, PortRange { start: 22, end: 22 });
        }
        merged
    }
}

/// One node as the provider knows it. Stored in the state database as part of [`ClusterInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHandle {
    /// 0 is the head node.
    pub rank: u32,
    pub instance_id: String,
    pub internal_ip: String,
    pub external_ip: Option<String>,
    /// Where the node's files live when the node is a directory on this machine (the `local`
    /// cloud); `None` for remote machines.
    pub local_dir: Option<PathBuf>,
}

/// The version of [`ClusterInfo`]'s JSON form in the state database.
pub const CLUSTER_INFO_VERSION: u32 = 1;

/// The nodes of a provisioned cluster, head first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub version: u32,
    pub nodes: Vec<NodeHandle>,
}

impl ClusterInfo {
    pub fn new(mut nodes: Vec<NodeHandle>) -> Self {
        nodes.sort_by_key(|n| n.rank);
        ClusterInfo {
            version: CLUSTER_INFO_VERSION,
            nodes,
        }
    }
    pub fn head(&self) -> Option<&NodeHandle> {
        self.nodes.first()
    }
}

/// What a provider reports for one node when asked (`query`), for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Pending,
    Running,
    Stopping,
    Stopped,
}

/// Opt-in behaviour, so the core branches on abilities rather than on cloud names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Nodes can be stopped and restarted keeping their disks.
    pub stop: bool,
    pub spot: bool,
    pub multi_node: bool,
    /// Instances have zones (failover walks zones before regions).
    pub zones: bool,
}

/// A cluster a provider found in the cloud by its Sky tags.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundCluster {
    pub name: String,
    /// The owner id its resources carry (see [`owner`]); `None` from providers whose clusters
    /// live inside this Sky home and so are its own by construction (the local cloud).
    pub owner: Option<String>,
    /// The launch ids its nodes carry (one per create attempt that made some of them).
    pub launch_ids: Vec<String>,
    /// Head first.
    pub nodes: Vec<NodeHandle>,
    /// What the head node is and where, as the cloud reports it; `None` when the listing does
    /// not say (such a cluster can be terminated but not adopted).
    pub placement: Option<FoundPlacement>,
}

/// Where and what a found cluster's nodes are: enough to price it from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlacement {
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub use_spot: bool,
    /// Every node is stopped (else at least one runs or is starting).
    pub stopped: bool,
}

/// A name a cloud gives one kind of a cluster's resources (`what`: "resource group",
/// "instances"), derived from the cluster name; shown by `sky status -v`. `<rank>` in `name`
/// stands for each node's rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudName {
    pub what: String,
    pub name: String,
}

impl CloudName {
    pub fn new(what: &str, name: impl Into<String>) -> CloudName {
        CloudName {
            what: what.to_owned(),
            name: name.into(),
        }
    }
}

/// Whether a provider can be used now, and why (shown by `sky check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub enabled: bool,
    pub reason: String,
}

/// One cloud (or this machine) as the core sees it.
///
/// Calls should return quickly; where a cloud is slow, `run_instances` starts the work and
/// `wait_instances` polls it. `terminate` is idempotent: a cluster that is already gone is `Ok`.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn cloud(&self) -> CloudId;
    fn capabilities(&self) -> Capabilities;
    /// Whether the provider is configured (credentials present and well-formed); must not touch
    /// the network, since ranking calls it on every plan.
    fn check(&self) -> CheckResult;
    /// Asks the cloud itself whether the credentials work (one cheap authenticated call), for
    /// `sky check`. Providers without a remote API keep the default, which is [`Provider::check`].
    async fn verify(&self) -> CheckResult {
        self.check()
    }
    /// A candidate this provider offers on its own, outside the price catalog (the local machine
    /// when the task fits it): `Some(Err(why))` when it does not fit. Most providers return `None`
    /// and are ranked from the catalog by the optimizer.
    /// Why this provider cannot create `l` at all, though the catalog prices it (a kind of
    /// machine it has no API for); such placements are left out of real launches with the
    /// reason. `Ok` by default.
    fn can_create(&self, _l: &Launchable) -> Result<(), String> {
        Ok(())
    }
    fn offer(&self, _resources: &Resources, _num_nodes: u32) -> Option<Result<Launchable, String>> {
        None
    }
    /// Creates (or, with `resume_stopped`, restarts) the cluster's nodes.
    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError>;
    /// Waits until every node of the cluster runs and returns them.
    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError>;
    /// The state of each node that exists; an empty list means the cluster is gone.
    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError>;
    /// Every cluster this provider finds tagged as Sky's in the account (any region), with its
    /// nodes, so `sky status --refresh` can report clusters the database does not know (orphans
    /// of a crashed launch) and `sky adopt` can record them. Providers that cannot list keep the
    /// default: none.
    ///
    /// Cloud providers list every cluster carrying Sky's owner tag, whoever owns it (each with
    /// its [`FoundCluster::owner`]), so the core can tell this home's orphans from other Sky
    /// homes' clusters; resources without Sky's tags (SkyPilot's, anyone else's) never appear.
    async fn list_clusters(&self) -> Result<Vec<FoundCluster>, ProvisionError> {
        Ok(Vec::new())
    }
    /// The nodes one create attempt of `cluster_name` left, found by its launch id (and this
    /// home's owner id) at the attempt's region, whatever the cluster's recorded region says.
    /// The default, for providers whose clusters live in this Sky home, asks by name.
    async fn query_launch(
        &self,
        cluster_name: &str,
        _attempt: &LaunchAttempt,
    ) -> Result<Vec<NodeHandle>, ProvisionError> {
        Ok(self
            .query(cluster_name)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }
    /// Terminates what [`Provider::query_launch`] finds (idempotent).
    async fn terminate_launch(
        &self,
        cluster_name: &str,
        _attempt: &LaunchAttempt,
    ) -> Result<(), ProvisionError> {
        self.terminate(cluster_name).await
    }
    /// Terminates the cluster `cluster_name` of *another* Sky home, `owner_id` (`sky down
    /// --orphan NAME --owner OWNER_ID`): only resources carrying both tags. Providers whose
    /// clusters live in this Sky home have no other owners' clusters and refuse.
    async fn terminate_foreign(
        &self,
        cluster_name: &str,
        owner_id: &str,
    ) -> Result<(), ProvisionError> {
        Err(ProvisionError::new(
            ProvisionErrorKind::InvalidRequest,
            format!(
                "the {} cloud holds no other Sky home's clusters ({cluster_name} of owner {owner_id})",
                self.cloud()
            ),
        ))
    }
    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError>;
    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError>;
    /// Connects to the head node's agent (starting it if it is not running), over whatever
    /// channel this provider reaches its nodes by (a pipe locally, SSH remotely).
    async fn connect_agent(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
    ) -> Result<AgentClient, ProvisionError> {
        match self.vms(cluster_name, info) {
            Some(vms) => vms.connect_agent().await,
            None => Err(ProvisionError::fatal(format!(
                "the {} cloud has no way to reach cluster {cluster_name}'s agent",
                self.cloud()
            ))),
        }
    }
    /// How to reach the cluster's nodes when they are VMs with a public (else private) address,
    /// sshd on port 22 and Sky's user key (AWS, GCP, Azure). Returning it gives this provider the
    /// SSH versions of `connect_agent`, `agent_nodes`, `sync_workdir` and `sync_file_mounts`; the
    /// default `None` keeps the versions for nodes that are directories on this machine.
    fn vms<'a>(&'a self, _cluster_name: &'a str, _info: &'a ClusterInfo) -> Option<Vms<'a>> {
        None
    }
    /// How OpenSSH reaches the cluster's nodes, head first, for `ssh CLUSTER` (see
    /// `crate::ssh::client_config`): the same addresses, logins and keys Sky uses. `None` for
    /// nodes that are not reached over SSH (directories on this machine).
    fn ssh_targets(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
    ) -> Option<Result<Vec<crate::ssh::SshTarget>, ProvisionError>> {
        self.vms(cluster_name, info).map(|vms| vms.targets())
    }
    /// The nodes as the head's agent must see them (its cluster config): where each node's files
    /// are and how the agent reaches it. The default suits nodes that are directories on this
    /// machine; providers of remote nodes prepare SSH access from the head to the workers here
    /// (see `crate::ssh::RemoteCluster::grant_worker_access`).
    async fn agent_nodes(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
    ) -> Result<Vec<NodeSpec>, ProvisionError> {
        if let Some(vms) = self.vms(cluster_name, info) {
            return vms.agent_nodes().await;
        }
        Ok(info
            .nodes
            .iter()
            .map(|n| NodeSpec {
                ip: n.internal_ip.clone(),
                dir: n.local_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
                ssh: None,
            })
            .collect())
    }
    /// Replaces the task's workdir (`sky_workdir`) on every node with a filtered copy of `src`.
    /// The default copies into each node's `local_dir`; remote providers upload over SSH.
    async fn sync_workdir(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
        src: &Path,
    ) -> Result<(), ProvisionError> {
        if let Some(vms) = self.vms(cluster_name, info) {
            return vms.sync_workdir(src).await;
        }
        for node in &info.nodes {
            let Some(dir) = &node.local_dir else {
                return Err(ProvisionError::fatal(format!(
                    "node {} is remote and this provider cannot sync workdirs to it",
                    node.rank
                )));
            };
            crate::api::sync::sync_workdir(src, dir).map_err(ProvisionError::fatal)?;
        }
        Ok(())
    }
    /// Places a task's `file_mounts` on every node, before setup: local files and directories
    /// (the remote `~` being the login's home) and bucket paths, which each node copies itself.
    /// The default places them in each node's `local_dir` (`~` and relative paths inside it);
    /// remote providers go over SSH.
    async fn sync_file_mounts(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
        mounts: &crate::storage::NodeMounts,
    ) -> Result<(), ProvisionError> {
        if let Some(vms) = self.vms(cluster_name, info) {
            return vms.sync_file_mounts(mounts).await;
        }
        if mounts.is_empty() {
            return Ok(());
        }
        let mut dirs = Vec::with_capacity(info.nodes.len());
        for node in &info.nodes {
            let Some(dir) = &node.local_dir else {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::InvalidRequest,
                    format!(
                        "file_mounts.{}: the {} cloud cannot place file mounts on its nodes; \
                         use the workdir, or an SSH-reached cloud (ssh, aws, gcp, azure)",
                        mounts.first_remote().unwrap_or_default(),
                        self.cloud()
                    ),
                ));
            };
            dirs.push(dir.clone());
        }
        let placed = dirs
            .iter()
            .map(|dir| crate::api::sync::place_file_mounts(dir, mounts));
        for result in futures::future::join_all(placed).await {
            result.map_err(|m| ProvisionError::new(ProvisionErrorKind::InvalidRequest, m))?;
        }
        Ok(())
    }
    /// The names this provider gives `cluster_name`'s resources, as pure functions of the name
    /// (the same ones `down` and `refresh` look for), so a user can find them in the cloud's
    /// console; the default: none to show.
    fn cloud_names(&self, _cluster_name: &str) -> Vec<CloudName> {
        Vec::new()
    }
    /// A command line the head's agent runs by itself when autostop fires, for clusters whose
    /// autostop must not depend on the client machine being on (`info`: the recorded nodes, head
    /// first). `None` (the default): the agent runs `sky stop`/`sky down` on the machine that
    /// launched the cluster, or the head halts its nodes where a guest shutdown stops them
    /// ([`Provider::guest_shutdown`]).
    fn autostop_hook(&self, _cluster_name: &str, _info: &ClusterInfo) -> Option<AutostopHook> {
        None
    }
    /// Gives a cluster recorded before ownership tags this home's tags, with launch id
    /// `launch_id`, on exactly the nodes `info` names by id in `region`. The ids in this home's
    /// own record are what prove the nodes are its own; each must still exist and carry the tag
    /// the earlier Sky gave it, with this cluster's name, or nothing is tagged. Once that is
    /// checked and before any tag is written, `record_attempt` puts the launch id in the record,
    /// as before a create call. `Ok(false)`: something did not match, or the provider cannot
    /// (the default).
    async fn claim_pre_ownership(
        &self,
        _cluster_name: &str,
        _region: &str,
        _info: &ClusterInfo,
        _launch_id: &str,
        _record_attempt: &(dyn Fn() -> Result<(), ProvisionError> + Send + Sync),
    ) -> Result<bool, ProvisionError> {
        Ok(false)
    }
    /// What a guest OS shutdown on a node (`shutdown -h now`) does to that node on this cloud:
    /// how a head with no cloud credentials stops its own cluster. The default: nothing Sky can
    /// rely on.
    fn guest_shutdown(&self, _spot: bool) -> GuestShutdown {
        GuestShutdown::default()
    }
    /// Why an autostop (`down`: one that deletes) could not be set on a cluster this provider
    /// would create, found before anything is created: an account that forbids what the head
    /// needs to act for itself. `None` when nothing says so (the default; also when the cloud
    /// cannot be asked, since setting autostop later says why if it fails).
    async fn autostop_preflight(&self, _down: bool) -> Option<String> {
        None
    }
    /// Readies `cluster_name` for what its head does when autostop fires, with the client's
    /// credentials, when autostop is set (`Some(down)`) or cancelled (`None`): where a guest
    /// shutdown is the mechanism, makes it stop the nodes or delete them (EC2's
    /// `InstanceInitiatedShutdownBehavior`); where the head acts through a cloud identity, grants
    /// that identity exactly what the setting needs, and takes it back on cancel. An error means
    /// the setting could not be made to work, and the agent is not told of it.
    async fn prepare_autostop(
        &self,
        _cluster_name: &str,
        _down: Option<bool>,
    ) -> Result<(), ProvisionError> {
        Ok(())
    }
}

/// What a guest OS shutdown does to a node of one cloud.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestShutdown {
    /// The node stops and its compute stops billing (EC2's default shutdown behaviour; a GCE
    /// instance becomes TERMINATED).
    pub stops: bool,
    /// The node can be made to delete itself and its disks instead (EC2's
    /// `InstanceInitiatedShutdownBehavior=terminate`).
    pub deletes: bool,
}

/// The providers one front end was built with (its composition root fills it).
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    /// Object stores the client can read buckets of (`file_mounts`), one per kind.
    stores: Vec<Arc<dyn crate::storage::ObjectStore>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.cloud().to_string()))
            .entries(self.stores.iter().map(|s| s.kind().to_string()))
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }
    /// Adds a provider; a second one for the same cloud replaces the first.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.retain(|p| p.cloud() != provider.cloud());
        self.providers.push(provider);
        self
    }
    /// Adds an object store; a second one of the same kind replaces the first.
    pub fn with_store(mut self, store: Arc<dyn crate::storage::ObjectStore>) -> Self {
        self.stores.retain(|s| s.kind() != store.kind());
        self.stores.push(store);
        self
    }
    pub fn store(
        &self,
        kind: crate::storage::StoreKind,
    ) -> Option<&Arc<dyn crate::storage::ObjectStore>> {
        self.stores.iter().find(|s| s.kind() == kind)
    }
    pub fn get(&self, cloud: CloudId) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.cloud() == cloud)
    }
    pub fn providers(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.iter()
    }
    /// Clouds whose `check` passes now.
    pub fn enabled(&self) -> Vec<CloudId> {
        self.providers
            .iter()
            .filter(|p| p.check().enabled)
            .map(|p| p.cloud())
            .collect()
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn a_per_region_image_gives_that_regions_image_and_docker_keeps_the_default() {
        let mut r = Resources {
            disk_size_gb: 500,
            disk_tier: Some(DiskTier::High),
            ports: vec![PortRange {
                start: 8080,
                end: 8080,
            }],
            image_id: Some(ImageRequest::PerRegion(
                [
                    ("us-east-1".to_owned(), "ami-0123456789abcdef0".to_owned()),
                    ("us-west-2".to_owned(), "ami-0fedcba9876543210".to_owned()),
                ]
                .into(),
            )),
            ..Resources::default()
        };
        let s = NodeSettings::for_region(&r, "us-west-2");
        assert_eq!(s.image_id.as_deref(), Some("ami-0fedcba9876543210"));
        assert_eq!((s.disk_size_gb, s.disk_tier), (500, Some(DiskTier::High)));
        assert_eq!(NodeSettings::for_region(&r, "eu-west-1").image_id, None);
        r.image_id = Some(ImageRequest::Any("docker:ubuntu:22.04".into()));
        assert_eq!(NodeSettings::for_region(&r, "us-west-2").image_id, None);
        let d = NodeSettings::for_region(&Resources::default(), "x");
        assert_eq!(d, NodeSettings::default());
        assert_eq!(d.disk_size_gb, 256);
    }

    #[test]
    fn inbound_ranges_put_ssh_first_and_merge_overlaps() {
        let p = |start, end| PortRange { start, end };
        let s = NodeSettings {
            ports: vec![p(9000, 9010), p(8080, 8080), p(9005, 9020), p(9021, 9021)],
            ..NodeSettings::default()
        };
        assert_eq!(
            s.inbound_ranges(),
            [p(22, 22), p(8080, 8080), p(9000, 9021)]
        );
        let covered = NodeSettings {
            ports: vec![p(20, 30)],
            ..NodeSettings::default()
        };
        assert_eq!(covered.inbound_ranges(), [p(20, 30)]);
    }
}
