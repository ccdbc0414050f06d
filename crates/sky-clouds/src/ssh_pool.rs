//! The `ssh` cloud: node pools of machines the user already has, declared in
//! `$SKY_HOME/ssh_node_pools.yaml` (see [`sky_core::ssh::pools`]) and used with
//! `--infra ssh/POOL`.
//!
//! "Provisioning" claims the first `num_nodes` hosts of the pool for the cluster (a claim file in
//! `$SKY_HOME/ssh/clusters/<cluster>.json`; one cluster per pool) and waits until every one answers
//! SSH; `down` stops the head's agent and its jobs and removes Sky's files from the hosts, leaving
//! the machines running. Pools cannot be stopped. Autostop is done by the head's agent alone (it
//! releases the head), so it happens with the client machine off; the next `sky status --refresh`
//! sees the released head and drops the record.
//!
//! The pool's machines are taken at the user's word: an offer has the CPUs the task asks for (at
//! least 1) and no accelerators, since measuring them would need the network, which ranking must
//! not touch. What this module does not do: install anything beyond the agent, or manage the
//! machines' power.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sky_core::cloud::CloudId;
use sky_core::jobs::client::AgentClient;
use sky_core::jobs::wire::{AutostopHook, NodeSpec};
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, Launchable, NodeHandle, NodeState, Provider,
    ProvisionError, ProvisionErrorKind, ProvisionRequest,
};
use sky_core::resources::{MemoryRequest, Resources};
use sky_core::ssh::known_hosts::KnownHosts;
use sky_core::ssh::pools::{self, NodePool, POOLS_FILE};
use sky_core::ssh::remote::RELEASE_SCRIPT;
use sky_core::ssh::{ConnectOptions, RemoteCluster, SshTarget};

/// The "instance type" of a pool node.
pub const INSTANCE_TYPE: &str = "ssh-node";

#[derive(Debug, Clone)]
pub struct SshPoolCloud {
    sky_home: PathBuf,
    connect: ConnectOptions,
}

/// Which pool a cluster holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    pool: String,
    num_nodes: u32,
}

fn io_error(path: &Path, e: &std::io::Error) -> ProvisionError {
    ProvisionError::fatal(format!("{}: {e}", path.display()))
}

impl SshPoolCloud {
    pub fn new(sky_home: &Path) -> SshPoolCloud {
        SshPoolCloud {
            sky_home: sky_home.to_path_buf(),
            connect: ConnectOptions::from_env(),
        }
    }

    pub fn with_connect_options(mut self, connect: ConnectOptions) -> SshPoolCloud {
        self.connect = connect;
        self
    }

    fn claims_dir(&self) -> PathBuf {
        self.sky_home.join("ssh").join("clusters")
    }

    fn claim_path(&self, cluster_name: &str) -> PathBuf {
        self.claims_dir().join(format!("{cluster_name}.json"))
    }

    fn claim(&self, cluster_name: &str) -> Option<Claim> {
        let text = fs::read_to_string(self.claim_path(cluster_name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn pools(&self) -> Result<Vec<NodePool>, ProvisionError> {
        pools::load(&self.sky_home).map_err(|e| ProvisionError::fatal(e.to_string()))
    }

    fn pool(&self, name: &str) -> Result<NodePool, ProvisionError> {
        let pools = self.pools()?;
        let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
        pools.into_iter().find(|p| p.name == name).ok_or_else(|| {
            ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!(
                    "no SSH node pool '{name}' in {} (pools: {})",
                    self.sky_home.join(POOLS_FILE).display(),
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })
    }

    /// The claimed hosts of a cluster, head first.
    fn targets(&self, cluster_name: &str) -> Result<Vec<SshTarget>, ProvisionError> {
        let claim = self.claim(cluster_name).ok_or_else(|| {
            ProvisionError::fatal(format!("cluster '{cluster_name}' holds no SSH node pool"))
        })?;
        let pool = self.pool(&claim.pool)?;
        if pool.hosts.len() < claim.num_nodes as usize {
            return Err(ProvisionError::fatal(format!(
                "pool '{}' now has {} hosts and cluster '{cluster_name}' uses {}",
                claim.pool,
                pool.hosts.len(),
                claim.num_nodes
            )));
        }
        Ok(pool
            .hosts
            .into_iter()
            .take(claim.num_nodes as usize)
            .collect())
    }

    async fn connect_all(&self, cluster_name: &str) -> Result<RemoteCluster, ProvisionError> {
        let targets = self.targets(cluster_name)?;
        RemoteCluster::connect(&self.sky_home, cluster_name, &targets, self.connect)
            .await
            .map_err(ProvisionError::from)
    }

    fn handle(pool: &str, rank: u32, target: &SshTarget) -> NodeHandle {
        NodeHandle {
            rank,
            instance_id: format!("{pool}/{}:{}", target.host, target.port),
            internal_ip: target.host.clone(),
            external_ip: Some(target.host.clone()),
            local_dir: None,
        }
    }

    /// Why `resources` cannot run on pool `pool`, or its launchable.
    fn offer_pool(&self, resources: &Resources, num_nodes: u32) -> Result<Launchable, String> {
        let pools = self.pools().map_err(|e| e.message)?;
        let pool = match &resources.placement.region {
            Some(name) => pools
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| format!("no node pool '{name}' in {POOLS_FILE}"))?,
            None if pools.len() == 1 => &pools[0],
            None => return Err("name the node pool: --infra ssh/POOL".into()),
        };
        if pool.hosts.len() < num_nodes as usize {
            return Err(format!(
                "pool '{}' has {} hosts and the task needs {num_nodes}",
                pool.name,
                pool.hosts.len()
            ));
        }
        if resources.placement.zone.is_some() {
            return Err("node pools have no zones".into());
        }
        if let Some(acc) = &resources.accelerators {
            return Err(format!(
                "{}:{} is required and Sky does not know the accelerators of pool machines",
                acc.name, acc.count
            ));
        }
        if resources.use_spot {
            return Err("spot instances are required".into());
        }
        if resources
            .instance_type
            .as_deref()
            .is_some_and(|t| t != INSTANCE_TYPE)
        {
            return Err("a cloud instance type is required".into());
        }
        let cpus = resources.cpus.map_or(1.0, |a| a.value.max(1.0));
        let memory = match resources.memory {
            None => 0.0,
            Some(MemoryRequest::Gib(a)) => a.value,
            Some(MemoryRequest::PerCpu(a)) => a.value * cpus,
        };
        Ok(Launchable {
            cloud: CloudId::Ssh,
            region: pool.name.clone(),
            zone: None,
            instance_type: INSTANCE_TYPE.into(),
            use_spot: false,
            vcpus: cpus,
            memory_gib: memory,
            accelerators: None,
            hourly_price: 0.0,
        })
    }
}

#[async_trait::async_trait]
impl Provider for SshPoolCloud {
    fn cloud(&self) -> CloudId {
        CloudId::Ssh
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            stop: false,
            spot: false,
            multi_node: true,
            zones: false,
        }
    }

    fn check(&self) -> CheckResult {
        let path = self.sky_home.join(POOLS_FILE);
        match pools::load(&self.sky_home) {
            Ok(pools) if pools.is_empty() => CheckResult {
                enabled: false,
                reason: format!("no node pools declared in {}", path.display()),
            },
            Ok(pools) => CheckResult {
                enabled: true,
                reason: format!(
                    "node pools {} from {}",
                    pools
                        .iter()
                        .map(|p| format!("{} ({} hosts)", p.name, p.hosts.len()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    path.display()
                ),
            },
            Err(e) => CheckResult {
                enabled: false,
                reason: e.to_string(),
            },
        }
    }

    fn offer(&self, resources: &Resources, num_nodes: u32) -> Option<Result<Launchable, String>> {
        // Only a task that asks for the ssh cloud lands on a user's machines: they cost nothing,
        // so ranking them with the rest would send every task there.
        if resources.placement.cloud != Some(CloudId::Ssh) {
            return None;
        }
        Some(self.offer_pool(resources, num_nodes))
    }

    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        if req.launchable.cloud != CloudId::Ssh {
            return Err(ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!("the ssh provider cannot launch on {}", req.launchable.cloud),
            ));
        }
        let pool = self.pool(&req.launchable.region)?;
        if pool.hosts.len() < req.num_nodes as usize {
            return Err(ProvisionError::new(
                ProvisionErrorKind::Capacity,
                format!(
                    "pool '{}' has {} hosts and {} are needed",
                    pool.name,
                    pool.hosts.len(),
                    req.num_nodes
                ),
            ));
        }
        let dir = self.claims_dir();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        for entry in fs::read_dir(&dir)
            .map_err(|e| io_error(&dir, &e))?
            .flatten()
        {
            let path = entry.path();
            let other = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            if other == req.cluster_name {
                continue;
            }
            if let Some(claim) = self.claim(&other)
                && claim.pool == pool.name
            {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Capacity,
                    format!(
                        "pool '{}' is in use by cluster '{other}' (`sky down {other}` frees it)",
                        pool.name
                    ),
                ));
            }
        }
        let claim = Claim {
            pool: pool.name.clone(),
            num_nodes: req.num_nodes,
        };
        let path = self.claim_path(&req.cluster_name);
        let text =
            serde_json::to_string(&claim).map_err(|e| ProvisionError::fatal(e.to_string()))?;
        fs::write(&path, text).map_err(|e| io_error(&path, &e))
    }

    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        let claim = self.claim(cluster_name).ok_or_else(|| {
            ProvisionError::fatal(format!("cluster '{cluster_name}' holds no SSH node pool"))
        })?;
        let cluster = self.connect_all(cluster_name).await?;
        let handles = cluster
            .nodes()
            .iter()
            .enumerate()
            .map(|(rank, n)| Self::handle(&claim.pool, rank as u32, &n.target))
            .collect();
        cluster.close().await;
        Ok(ClusterInfo::new(handles))
    }

    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        let Some(claim) = self.claim(cluster_name) else {
            return Ok(Vec::new());
        };
        let targets = self.targets(cluster_name)?;
        let handles: Vec<NodeHandle> = targets
            .iter()
            .enumerate()
            .map(|(rank, t)| Self::handle(&claim.pool, rank as u32, t))
            .collect();
        let quick = ConnectOptions {
            total_wait: self.connect.total_wait.min(Duration::from_secs(10)),
            ..self.connect
        };
        let head =
            match RemoteCluster::connect_head(&self.sky_home, cluster_name, &targets[0], quick)
                .await
            {
                Ok(head) => head,
                // An unreachable head is not proof the cluster is gone: report it as not running.
                Err(_) => {
                    return Ok(handles
                        .into_iter()
                        .map(|h| (h, NodeState::Pending))
                        .collect());
                }
            };
        let check = format!("test -d \"$HOME\"/{}", sky_core::ssh::remote::REMOTE_ROOT);
        // An answer we cannot read proves nothing: keep the cluster.
        let present = match head.nodes().first() {
            Some(n) => n
                .session
                .exec(&check, None)
                .await
                .map_or(true, |o| o.code == 0),
            None => true,
        };
        head.close().await;
        if !present {
            // The head released itself (autostop) or was cleaned behind Sky's back: the pool is
            // free again.
            let _ = fs::remove_file(self.claim_path(cluster_name));
            KnownHosts::for_cluster(&self.sky_home, cluster_name).forget();
            return Ok(Vec::new());
        }
        Ok(handles
            .into_iter()
            .map(|h| (h, NodeState::Running))
            .collect())
    }

    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        Err(ProvisionError::new(
            ProvisionErrorKind::InvalidRequest,
            format!(
                "cluster '{cluster_name}' is on an SSH node pool, which cannot be stopped; use `sky down` to release it"
            ),
        ))
    }

    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        if self.claim(cluster_name).is_none() {
            return Ok(());
        }
        let cluster = self.connect_all(cluster_name).await?;
        let released = cluster.release().await;
        cluster.close().await;
        released.map_err(ProvisionError::from)?;
        KnownHosts::for_cluster(&self.sky_home, cluster_name).forget();
        let path = self.claim_path(cluster_name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, &e)),
        }
    }

    async fn connect_agent(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
    ) -> Result<AgentClient, ProvisionError> {
        let targets = self.targets(cluster_name)?;
        let head =
            RemoteCluster::connect_head(&self.sky_home, cluster_name, &targets[0], self.connect)
                .await
                .map_err(ProvisionError::from)?;
        head.agent().await.map_err(ProvisionError::from)
    }

    async fn agent_nodes(
        &self,
        cluster_name: &str,
        info: &ClusterInfo,
    ) -> Result<Vec<NodeSpec>, ProvisionError> {
        let cluster = self.connect_all(cluster_name).await?;
        let ips: Vec<String> = info.nodes.iter().map(|n| n.internal_ip.clone()).collect();
        let specs = cluster
            .grant_worker_access(&ips)
            .await
            .map_err(ProvisionError::from);
        cluster.close().await;
        specs
    }

    async fn sync_workdir(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
        src: &Path,
    ) -> Result<(), ProvisionError> {
        let cluster = self.connect_all(cluster_name).await?;
        let synced = cluster
            .sync_workdir(src)
            .await
            .map_err(ProvisionError::from);
        cluster.close().await;
        synced
    }

    async fn sync_file_mounts(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
        mounts: &[(String, PathBuf)],
    ) -> Result<(), ProvisionError> {
        let cluster = self.connect_all(cluster_name).await?;
        let synced = cluster
            .upload_file_mounts(mounts)
            .await
            .map_err(ProvisionError::from);
        cluster.close().await;
        synced
    }

    fn autostop_hook(&self, _cluster_name: &str) -> Option<AutostopHook> {
        // Give the agent a moment to record that autostop fired before it is ended.
        let script = format!("sleep 1\n{RELEASE_SCRIPT}");
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
        Some(AutostopHook {
            stop: argv.clone(),
            down: argv,
        })
    }
}

#[cfg(test)]
mod tests {
    use sky_core::resources::Placement;

    use super::*;

    fn with_pools(text: &str) -> (tempfile::TempDir, SshPoolCloud) {
        let dir = tempfile::tempdir().expect("tmp");
        fs::write(dir.path().join(POOLS_FILE), text).expect("pools");
        let cloud = SshPoolCloud::new(dir.path());
        (dir, cloud)
    }

    fn on_ssh(pool: Option<&str>) -> Resources {
        Resources {
            placement: Placement {
                cloud: Some(CloudId::Ssh),
                region: pool.map(str::to_owned),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn offers_only_when_asked_and_only_pools_that_fit() {
        let (_dir, cloud) =
            with_pools("a:\n  user: u\n  hosts: [h1, h2]\nb:\n  user: u\n  hosts: [h3]\n");
        assert_eq!(cloud.offer(&Resources::default(), 1), None, "not asked for");
        let offer = cloud
            .offer(&on_ssh(Some("a")), 2)
            .expect("asked")
            .expect("fits");
        assert_eq!((offer.cloud, offer.region.as_str()), (CloudId::Ssh, "a"));
        let why = cloud
            .offer(&on_ssh(Some("b")), 2)
            .expect("asked")
            .expect_err("too small");
        assert!(
            why.contains("pool 'b' has 1 hosts and the task needs 2"),
            "{why}"
        );
        let why = cloud
            .offer(&on_ssh(None), 1)
            .expect("asked")
            .expect_err("ambiguous");
        assert!(why.contains("--infra ssh/POOL"), "{why}");
        let why = cloud
            .offer(&on_ssh(Some("zz")), 1)
            .expect("asked")
            .expect_err("unknown");
        assert!(why.contains("no node pool 'zz'"), "{why}");
    }

    #[test]
    fn check_reports_the_pool_file_and_its_errors() {
        let (_dir, cloud) = with_pools("a:\n  hosts: [h1]\n");
        let check = cloud.check();
        assert!(!check.enabled);
        assert!(check.reason.contains("a.hosts[0].user"), "{}", check.reason);
        let empty = tempfile::tempdir().expect("tmp");
        let check = SshPoolCloud::new(empty.path()).check();
        assert!(
            !check.enabled && check.reason.contains("no node pools"),
            "{}",
            check.reason
        );
    }

    #[tokio::test]
    async fn a_pool_serves_one_cluster_at_a_time() {
        let (_dir, cloud) = with_pools("a:\n  user: u\n  hosts: [h1]\n");
        let launchable = cloud
            .offer(&on_ssh(Some("a")), 1)
            .expect("asked")
            .expect("fits");
        let req = |name: &str| ProvisionRequest {
            cluster_name: name.into(),
            num_nodes: 1,
            launchable: launchable.clone(),
            resume_stopped: false,
            settings: Default::default(),
            launch_id: format!("launch-{name}"),
        };
        cloud.run_instances(&req("c1")).await.expect("claim");
        cloud
            .run_instances(&req("c1"))
            .await
            .expect("same cluster again");
        let err = cloud.run_instances(&req("c2")).await.expect_err("taken");
        assert!(
            err.message.contains("in use by cluster 'c1'"),
            "{}",
            err.message
        );
        assert!(cloud.stop("c1").await.is_err(), "pools cannot stop");
    }
}
