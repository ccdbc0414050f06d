//! The `local` cloud: clusters whose nodes are directories on this machine.
//!
//! A cluster of N nodes is `$SKY_HOME/local/<cluster>/node-<rank>` for each rank, plus the head
//! agent's home `$SKY_HOME/local/<cluster>/agent`. The nodes "run" while the cluster's agent daemon
//! runs (it runs the jobs as real processes); stopping ends the daemon and its jobs but keeps the
//! directories; terminating also deletes them. `query` reports what really exists, so a crashed
//! launch or a daemon killed behind Sky's back is seen as it is. Always enabled, no credentials,
//! price 0. What this module does not do: run jobs (the agent does) or sync files (the facade does).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sky_core::cloud::CloudId;
use sky_core::jobs::client::{AgentClient, find_agent_binary};
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, Launchable, NodeHandle, NodeState, Provider,
    ProvisionError, ProvisionErrorKind, ProvisionRequest,
};
use sky_core::resources::{MemoryRequest, Resources};

/// The only region, zone-less, and the only "instance type" of the local cloud.
pub const REGION: &str = "local";
pub const INSTANCE_TYPE: &str = "local";
const NODE_IP: &str = "127.0.0.1";

#[derive(Debug, Clone)]
pub struct LocalCloud {
    root: PathBuf,
    machine: Machine,
}

/// What this machine offers one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    pub cpus: f64,
    pub memory_gib: f64,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Machine {
            cpus: cpus as f64,
            memory_gib: total_memory_gib().unwrap_or(0.0),
        }
    }
}

/// MemTotal from /proc/meminfo; `None` where there is no such file.
fn total_memory_gib() -> Option<f64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

impl LocalCloud {
    pub fn new(sky_home: &Path) -> LocalCloud {
        LocalCloud {
            root: sky_home.join("local"),
            machine: Machine::detect(),
        }
    }

    pub fn with_machine(sky_home: &Path, machine: Machine) -> LocalCloud {
        LocalCloud {
            root: sky_home.join("local"),
            machine,
        }
    }

    pub fn cluster_dir(&self, cluster_name: &str) -> PathBuf {
        self.root.join(cluster_name)
    }

    pub fn node_dir(&self, cluster_name: &str, rank: u32) -> PathBuf {
        self.cluster_dir(cluster_name).join(format!("node-{rank}"))
    }

    pub fn agent_home(&self, cluster_name: &str) -> PathBuf {
        self.cluster_dir(cluster_name).join("agent")
    }

    /// Why `resources` cannot run here, or `None` if they fit this machine.
    pub fn misfit(&self, resources: &Resources) -> Option<String> {
        let p = &resources.placement;
        if p.cloud.is_some_and(|c| c != CloudId::Local) {
            return Some("another cloud is required".into());
        }
        if p.region.as_deref().is_some_and(|r| r != REGION) || p.zone.is_some() {
            return Some("a region or zone other than local is required".into());
        }
        if resources
            .instance_type
            .as_deref()
            .is_some_and(|t| t != INSTANCE_TYPE)
        {
            return Some("a cloud instance type is required".into());
        }
        if let Some(acc) = &resources.accelerators {
            return Some(format!(
                "{}:{} is required and this machine has no accelerators",
                acc.name, acc.count
            ));
        }
        if resources.use_spot {
            return Some("spot instances are required".into());
        }
        if resources.image_id.is_some() {
            return Some("a machine image is required".into());
        }
        let cpus = resources.cpus.map_or(0.0, |a| a.value);
        if cpus > self.machine.cpus {
            return Some(format!(
                "{cpus} CPUs are required and this machine has {}",
                self.machine.cpus
            ));
        }
        let memory = match resources.memory {
            None => 0.0,
            Some(MemoryRequest::Gib(a)) => a.value,
            Some(MemoryRequest::PerCpu(a)) => {
                a.value * if cpus > 0.0 { cpus } else { self.machine.cpus }
            }
        };
        if memory > self.machine.memory_gib {
            return Some(format!(
                "{memory:.1} GiB of memory is required and this machine has {:.1} GiB",
                self.machine.memory_gib
            ));
        }
        None
    }

    fn launchable(&self) -> Launchable {
        Launchable {
            cloud: CloudId::Local,
            region: REGION.into(),
            zone: None,
            instance_type: INSTANCE_TYPE.into(),
            use_spot: false,
            vcpus: self.machine.cpus,
            memory_gib: self.machine.memory_gib,
            accelerators: None,
            hourly_price: 0.0,
        }
    }

    /// Node ranks whose directories exist, in order.
    fn existing_ranks(&self, cluster_name: &str) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(self.cluster_dir(cluster_name)) else {
            return Vec::new();
        };
        let mut ranks: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("node-")?.parse().ok())
            .collect();
        ranks.sort_unstable();
        ranks
    }

    fn handle(&self, cluster_name: &str, rank: u32) -> NodeHandle {
        NodeHandle {
            rank,
            instance_id: format!("{cluster_name}-node-{rank}"),
            internal_ip: NODE_IP.into(),
            external_ip: None,
            local_dir: Some(self.node_dir(cluster_name, rank)),
        }
    }

    /// Whether the cluster's agent daemon is alive. The daemon holds an exclusive lock on
    /// `agent.lock` for its whole life, and the kernel drops it when the process dies (even on
    /// `kill -9`), so a lock we can take means no daemon; a pid file could be stale or reused.
    fn daemon_alive(&self, cluster_name: &str) -> bool {
        let path = self.agent_home(cluster_name).join("agent.lock");
        let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(&path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => false,
        }
    }

    fn spawn_client(&self, cluster_name: &str) -> Result<AgentClient, ProvisionError> {
        let binary = find_agent_binary().map_err(|e| ProvisionError::fatal(e.to_string()))?;
        let home = self.agent_home(cluster_name);
        fs::create_dir_all(&home).map_err(|e| io_error(&home, &e))?;
        AgentClient::spawn_local(&binary, &home).map_err(|e| ProvisionError::fatal(e.to_string()))
    }

    /// Asks a running daemon to exit, killing its jobs, and waits until it is gone.
    async fn shut_down_daemon(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        if !self.daemon_alive(cluster_name) {
            return Ok(());
        }
        let client = self.spawn_client(cluster_name)?;
        let asked = client.shutdown(true).await;
        // The connection ends with the daemon; a close error after a shutdown is expected.
        let _ = client.close().await;
        for _ in 0..100 {
            if !self.daemon_alive(cluster_name) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let detail = asked.err().map(|e| format!(": {e}")).unwrap_or_default();
        Err(ProvisionError::new(
            ProvisionErrorKind::Transient,
            format!("the agent of local cluster '{cluster_name}' did not exit within 5 s{detail}"),
        ))
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ProvisionError {
    ProvisionError::fatal(format!("{}: {e}", path.display()))
}

#[async_trait::async_trait]
impl Provider for LocalCloud {
    fn cloud(&self) -> CloudId {
        CloudId::Local
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            stop: true,
            spot: false,
            multi_node: true,
            zones: false,
        }
    }

    fn check(&self) -> CheckResult {
        CheckResult {
            enabled: true,
            reason: format!(
                "this machine ({} CPUs, {:.1} GiB): always enabled, needs no credentials",
                self.machine.cpus, self.machine.memory_gib
            ),
        }
    }

    fn offer(&self, resources: &Resources, _num_nodes: u32) -> Option<Result<Launchable, String>> {
        Some(match self.misfit(resources) {
            None => Ok(self.launchable()),
            Some(why) => Err(why),
        })
    }

    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        if req.launchable.cloud != CloudId::Local {
            return Err(ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!(
                    "the local provider cannot launch on {}",
                    req.launchable.cloud
                ),
            ));
        }
        let existing = self.existing_ranks(&req.cluster_name);
        if req.resume_stopped {
            let expected: Vec<u32> = (0..req.num_nodes).collect();
            if existing != expected {
                return Err(ProvisionError::fatal(format!(
                    "cannot resume local cluster '{}': expected node directories 0..{}, found {:?}",
                    req.cluster_name, req.num_nodes, existing
                )));
            }
        }
        for rank in 0..req.num_nodes {
            let dir = self.node_dir(&req.cluster_name, rank);
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        }
        // The daemon is the cluster's "power": starting it is what makes the nodes run.
        let client = self.spawn_client(&req.cluster_name)?;
        let info = client.info().await;
        let _ = client.close().await;
        info.map(|_| ()).map_err(|e| {
            ProvisionError::new(
                ProvisionErrorKind::Transient,
                format!("the local agent did not start: {e}"),
            )
        })
    }

    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        let ranks = self.existing_ranks(cluster_name);
        if ranks.is_empty() {
            return Err(ProvisionError::fatal(format!(
                "local cluster '{cluster_name}' has no nodes"
            )));
        }
        if !self.daemon_alive(cluster_name) {
            return Err(ProvisionError::new(
                ProvisionErrorKind::Transient,
                format!("the agent of local cluster '{cluster_name}' is not running"),
            ));
        }
        Ok(ClusterInfo::new(
            ranks
                .into_iter()
                .map(|r| self.handle(cluster_name, r))
                .collect(),
        ))
    }

    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        let state = if self.daemon_alive(cluster_name) {
            NodeState::Running
        } else {
            NodeState::Stopped
        };
        Ok(self
            .existing_ranks(cluster_name)
            .into_iter()
            .map(|r| (self.handle(cluster_name, r), state))
            .collect())
    }

    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        self.shut_down_daemon(cluster_name).await
    }

    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        self.shut_down_daemon(cluster_name).await?;
        let dir = self.cluster_dir(cluster_name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&dir, &e)),
        }
    }

    async fn connect_agent(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
    ) -> Result<AgentClient, ProvisionError> {
        self.spawn_client(cluster_name)
    }
}

#[cfg(test)]
mod tests {
    use sky_core::resources::{AcceleratorRequest, Amount, Placement};

    use super::*;

    fn cloud(dir: &Path) -> LocalCloud {
        LocalCloud::with_machine(
            dir,
            Machine {
                cpus: 4.0,
                memory_gib: 16.0,
            },
        )
    }

    #[test]
    fn offers_the_machine_when_the_task_fits_and_says_why_not_otherwise() {
        let dir = tempfile::tempdir().expect("tmp");
        let local = cloud(dir.path());
        let offer = local
            .offer(&Resources::default(), 2)
            .expect("local offers")
            .expect("an empty request fits");
        assert_eq!(
            (offer.cloud, offer.region.as_str(), offer.hourly_price),
            (CloudId::Local, "local", 0.0)
        );

        let cases: Vec<(Resources, &str)> = vec![
            (
                Resources {
                    cpus: Some(Amount {
                        value: 8.0,
                        at_least: true,
                    }),
                    ..Default::default()
                },
                "8 CPUs are required and this machine has 4",
            ),
            (
                Resources {
                    memory: Some(MemoryRequest::PerCpu(Amount {
                        value: 8.0,
                        at_least: false,
                    })),
                    ..Default::default()
                },
                "32.0 GiB of memory",
            ),
            (
                Resources {
                    accelerators: Some(AcceleratorRequest {
                        name: "A100".into(),
                        count: 1.0,
                    }),
                    ..Default::default()
                },
                "A100:1 is required",
            ),
            (
                Resources {
                    placement: Placement {
                        cloud: Some(CloudId::Aws),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "another cloud",
            ),
            (
                Resources {
                    use_spot: true,
                    ..Default::default()
                },
                "spot",
            ),
        ];
        for (resources, expected) in cases {
            let why = local.misfit(&resources).expect("does not fit");
            assert!(why.contains(expected), "{why} should contain {expected}");
            assert_eq!(local.offer(&resources, 1), Some(Err(why)));
        }
        let fits = Resources {
            cpus: Some(Amount {
                value: 2.0,
                at_least: true,
            }),
            ..Default::default()
        };
        assert_eq!(local.misfit(&fits), None);
    }

    #[tokio::test]
    async fn query_reports_what_exists_and_terminate_is_idempotent() {
        let dir = tempfile::tempdir().expect("tmp");
        let local = cloud(dir.path());
        assert!(
            local.query("c").await.expect("query").is_empty(),
            "nothing yet"
        );
        for rank in 0..2 {
            fs::create_dir_all(local.node_dir("c", rank)).expect("node dir");
        }
        let nodes = local.query("c").await.expect("query");
        let states: Vec<(u32, NodeState)> = nodes.iter().map(|(h, s)| (h.rank, *s)).collect();
        assert_eq!(
            states,
            [(0, NodeState::Stopped), (1, NodeState::Stopped)],
            "no daemon: stopped"
        );
        local.terminate("c").await.expect("terminate");
        assert!(!local.cluster_dir("c").exists());
        local
            .terminate("c")
            .await
            .expect("terminating again is fine");
    }
}
