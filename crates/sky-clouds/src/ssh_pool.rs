//! The `ssh` cloud: node pools of machines the user already has, declared in
//! `$SKY_HOME/ssh_node_pools.yaml` (see [`sky_core::ssh::pools`]) and used with
//! `--infra ssh/POOL`.
//!
//! "Provisioning" claims the first `num_nodes` hosts of the pool for the cluster (a claim file in
//! `$SKY_HOME/ssh/clusters/<cluster>.json` naming the hosts) and waits until every one answers
//! SSH. A host serves one cluster at a time: claims are checked and written under one lock
//! (`$SKY_HOME/ssh/pool-claims.lock`), so of two launches racing for a host (the CLI and the app)
//! exactly one wins and the other is told `pool busy: host X is used by cluster Y`. `down` stops
//! the head's agent and its jobs and removes the cluster's own directory from the hosts (see
//! [`sky_core::ssh::node_dir`]), leaving the machines and everything else on them alone. Pools
//! cannot be stopped. Autostop is done by the head's agent alone (it releases the workers over its
//! own SSH, then the head), so it happens with the client machine off; the next
//! `sky status --refresh` sees the released head and drops the record.
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
use sky_core::lock::ClusterLock;
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, Launchable, NodeHandle, NodeState, Provider,
    ProvisionError, ProvisionErrorKind, ProvisionRequest,
};
use sky_core::resources::{MemoryRequest, Resources};
use sky_core::ssh::known_hosts::KnownHosts;
use sky_core::ssh::node_dir::NodeDir;
use sky_core::ssh::pools::{self, NodePool, POOLS_FILE};
use sky_core::ssh::session::quote;
use sky_core::ssh::{ConnectOptions, RemoteCluster, SshTarget};

/// The "instance type" of a pool node.
pub const INSTANCE_TYPE: &str = "ssh-node";

#[derive(Debug, Clone)]
pub struct SshPoolCloud {
    sky_home: PathBuf,
    connect: ConnectOptions,
}

/// Which pool and hosts a cluster holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    pool: String,
    num_nodes: u32,
    /// The hosts taken, as `user@host:port`, head first. Empty in claims written before hosts
    /// were recorded: those are the pool's first `num_nodes`.
    #[serde(default)]
    hosts: Vec<String>,
}

/// How long a launch waits for another process's claim to be written (it takes milliseconds).
const CLAIM_LOCK_WAIT: Duration = Duration::from_secs(30);

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

    /// Records `claim` for `cluster` unless another cluster holds one of its hosts; the check
    /// and the write happen under the pool-claims lock, so two processes cannot both win.
    fn write_claim(&self, cluster: &str, claim: &Claim) -> Result<(), ProvisionError> {
        let ssh_dir = self.sky_home.join("ssh");
        let _lock = ClusterLock::acquire(&ssh_dir, "pool-claims", CLAIM_LOCK_WAIT, || {
            tracing::info!("waiting for another sky process to finish claiming pool hosts");
        })
        .map_err(|e| ProvisionError::new(ProvisionErrorKind::Transient, e.to_string()))?;
        let dir = self.claims_dir();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let pools = self.pools()?;
        for entry in fs::read_dir(&dir)
            .map_err(|e| io_error(&dir, &e))?
            .flatten()
        {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(other) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if other == cluster {
                continue;
            }
            let Some(theirs) = self.claim(other) else {
                continue;
            };
            let their_hosts = if theirs.hosts.is_empty() {
                pools
                    .iter()
                    .find(|p| p.name == theirs.pool)
                    .map(|p| {
                        p.hosts
                            .iter()
                            .take(theirs.num_nodes as usize)
                            .map(ToString::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                theirs.hosts
            };
            if let Some(host) = claim.hosts.iter().find(|h| their_hosts.contains(h)) {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Capacity,
                    format!(
                        "pool busy: host {host} is used by cluster '{other}' (pool '{}'; `sky down {other}` frees it)",
                        theirs.pool
                    ),
                ));
            }
        }
        let path = self.claim_path(cluster);
        let text =
            serde_json::to_string(claim).map_err(|e| ProvisionError::fatal(e.to_string()))?;
        // Readers take no lock: they must see the old claim or the new one, never half of one.
        let tmp = dir.join(format!("{cluster}.json.{}.tmp", std::process::id()));
        fs::write(&tmp, text).map_err(|e| io_error(&tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, &e))
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
        let claim = Claim {
            pool: pool.name.clone(),
            num_nodes: req.num_nodes,
            hosts: pool
                .hosts
                .iter()
                .take(req.num_nodes as usize)
                .map(ToString::to_string)
                .collect(),
        };
        // The lock is a blocking file lock held for a few file reads and one write.
        let cloud = self.clone();
        let cluster = req.cluster_name.clone();
        tokio::task::spawn_blocking(move || cloud.write_claim(&cluster, &claim))
            .await
            .map_err(|e| ProvisionError::fatal(e.to_string()))?
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
        let check = format!("test -d \"$HOME\"/{}", quote(head.node_dir().rel()));
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

    fn ssh_targets(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
    ) -> Option<Result<Vec<SshTarget>, ProvisionError>> {
        Some(self.targets(cluster_name))
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
        mounts: &sky_core::storage::NodeMounts,
    ) -> Result<(), ProvisionError> {
        if mounts.is_empty() {
            return Ok(());
        }
        let cluster = self.connect_all(cluster_name).await?;
        let synced = cluster
            .upload_file_mounts(mounts)
            .await
            .map_err(ProvisionError::from);
        cluster.close().await;
        synced
    }

    fn autostop_hook(&self, cluster_name: &str, _info: &ClusterInfo) -> Option<AutostopHook> {
        let dir = match NodeDir::for_cluster(&self.sky_home, cluster_name) {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!(cluster = cluster_name, error = %e, "no autostop hook");
                return None;
            }
        };
        let workers = self.targets(cluster_name).unwrap_or_default();
        let script = release_on_autostop(&dir, workers.get(1..).unwrap_or_default());
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
        Some(AutostopHook {
            stop: argv.clone(),
            down: argv,
        })
    }
}

/// What the head's agent runs when autostop fires: release each worker over the head's own SSH
/// (the keys `grant_worker_access` placed there, rank order), then the head itself, last since
/// that removes the keys. A worker that cannot be reached is named in the agent's autostop log
/// and keeps its directory: the refresh that then drops the record does not reach workers, so it
/// stays in `~/.sky-nodes` on that host until removed by hand (not done yet).
fn release_on_autostop(dir: &NodeDir, workers: &[SshTarget]) -> String {
    let release = dir.release_script();
    // Give the agent a moment to record that autostop fired before it is ended.
    let mut script = String::from("sleep 1\n");
    script.push_str(&format!("keys=\"$HOME\"/{}/ssh\n", quote(dir.rel())));
    for (i, worker) in workers.iter().enumerate() {
        let rank = i + 1;
        script.push_str(&format!(
            "ssh -i \"$keys/node-{rank}.key\" -p {port} -o BatchMode=yes -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o LogLevel=ERROR \
             -o UserKnownHostsFile=\"$keys/known_hosts\" {login} /bin/sh -s <<'SKY_RELEASE_EOF' \
             || echo \"sky: could not release worker {rank} ({display})\" >&2\n{release}\nSKY_RELEASE_EOF\n",
            port = worker.port,
            login = quote(&format!("{}@{}", worker.user, worker.host)),
            display = worker.to_string().replace(['"', '$', '`', '\\'], ""),
        ));
    }
    script.push_str(&release);
    script
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
            err.message
                .contains("pool busy: host u@h1:22 is used by cluster 'c1'"),
            "{}",
            err.message
        );
        assert!(cloud.stop("c1").await.is_err(), "pools cannot stop");
    }

    #[test]
    fn racing_claims_on_one_host_have_exactly_one_winner() {
        // The same host in two pools: claims conflict by host, not by pool name.
        let (dir, _cloud) =
            with_pools("a:\n  user: u\n  hosts: [h1]\nb:\n  user: u\n  hosts: [h0, h1]\n");
        for round in 0..5 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let cloud = SshPoolCloud::new(dir.path());
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        let (pool, hosts) = if i % 2 == 0 {
                            ("a", vec!["u@h1:22".to_owned()])
                        } else {
                            ("b", vec!["u@h0:22".to_owned(), "u@h1:22".to_owned()])
                        };
                        let claim = Claim {
                            pool: pool.into(),
                            num_nodes: hosts.len() as u32,
                            hosts,
                        };
                        barrier.wait();
                        cloud.write_claim(&format!("r{round}c{i}"), &claim)
                    })
                })
                .collect();
            let results: Vec<_> = threads
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .collect();
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "round {round}: {results:?}");
            for err in results.iter().filter_map(|r| r.as_ref().err()) {
                assert!(
                    err.message.starts_with("pool busy: host u@h"),
                    "{}",
                    err.message
                );
            }
            for e in fs::read_dir(dir.path().join("ssh/clusters"))
                .expect("claims")
                .flatten()
            {
                fs::remove_file(e.path()).expect("reset");
            }
        }
    }
}
