//! Test doubles for the provider trait and the clock: [`FakeCloud`] (scripted per-placement
//! outcomes that remembers what it created) and [`ManualClock`].
//!
//! Compiled only for tests and with the `testing` feature, so no release binary carries them.
//! What this module does not do: simulate a cloud's API; it scripts the outcomes failover and
//! the facade must handle.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::{Clock, UnixSeconds};
use crate::cloud::CloudId;
use crate::jobs::client::AgentClient;
use crate::provision::{
    BlockScope, Capabilities, CheckResult, ClusterInfo, FoundCluster, FoundPlacement,
    LaunchAttempt, Launchable, NodeHandle, NodeState, Provider, ProvisionError, ProvisionErrorKind,
    ProvisionRequest,
};

/// A clock that only moves when told.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: UnixSeconds) -> Self {
        ManualClock(AtomicI64::new(start))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn set(&self, now: UnixSeconds) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

/// What one scripted `run_instances` at a placement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Fails before creating anything.
    Fail(ProvisionErrorKind),
    /// Fails before creating anything, with the scope a cloud's error table would give.
    FailScoped(ProvisionErrorKind, BlockScope),
    /// Creates the nodes, then fails while waiting for them (a partial launch to clean up).
    FailAfterCreating(ProvisionErrorKind),
}

#[derive(Debug, Default)]
struct FakeState {
    /// Per "region" or "region/zone": outcomes consumed in order; the last one repeats.
    script: HashMap<String, VecDeque<Outcome>>,
    /// Clusters that exist now, with their node count and state.
    live: BTreeMap<String, (u32, NodeState)>,
    /// Where each live cluster was created, for `list_clusters`.
    placements: HashMap<String, Launchable>,
    pending_failure: HashMap<String, ProvisionErrorKind>,
    terminate_fails: bool,
    /// `wait_instances` never answers (nodes that take forever to boot).
    hang_waiting: bool,
    /// The launch id of the attempt that created each live cluster.
    launch_ids: HashMap<String, String>,
    /// Clusters of other Sky homes in the same account: (owner id, name) -> node count.
    foreign: BTreeMap<(String, String), u32>,
    /// Every call that asks the cloud fails with this (an API that cannot be reached).
    unreachable: Option<ProvisionErrorKind>,
    calls: Vec<String>,
}

/// A provider whose every answer is scripted. Unscripted placements succeed.
#[derive(Debug)]
pub struct FakeCloud {
    cloud: CloudId,
    enabled: bool,
    state: Mutex<FakeState>,
}

impl FakeCloud {
    pub fn new(cloud: CloudId) -> Self {
        FakeCloud {
            cloud,
            enabled: true,
            state: Mutex::new(FakeState::default()),
        }
    }
    pub fn disabled(cloud: CloudId) -> Self {
        FakeCloud {
            enabled: false,
            ..FakeCloud::new(cloud)
        }
    }
    /// Scripts `place` ("region" or "region/zone"): each launch there takes the next outcome; the
    /// last repeats.
    pub fn script(self, place: &str, outcomes: &[Outcome]) -> Self {
        self.with_state(|s| {
            s.script
                .insert(place.to_owned(), outcomes.iter().copied().collect())
        });
        self
    }
    /// Nodes never finish booting: `wait_instances` records its call and then never returns.
    pub fn hang_waiting(self) -> Self {
        self.with_state(|s| s.hang_waiting = true);
        self
    }
    /// Every call that asks the cloud fails with `kind` (network down, credentials refused).
    pub fn unreachable(self, kind: ProvisionErrorKind) -> Self {
        self.with_state(|s| s.unreachable = Some(kind));
        self
    }
    /// A cluster another Sky home (`owner`) created in the same account.
    pub fn add_foreign(&self, owner: &str, name: &str, nodes: u32) {
        self.with_state(|s| s.foreign.insert((owner.into(), name.into()), nodes));
    }
    /// Other Sky homes' clusters that exist now.
    pub fn foreign(&self) -> BTreeMap<(String, String), u32> {
        self.with_state(|s| s.foreign.clone())
    }
    /// The launch id the live cluster `name` was created with.
    pub fn launch_id_of(&self, name: &str) -> Option<String> {
        self.with_state(|s| s.launch_ids.get(name).cloned())
    }
    pub fn terminate_fails(self) -> Self {
        self.with_state(|s| s.terminate_fails = true);
        self
    }
    /// Every call made, in order, e.g. `run c1 us-east-1/us-east-1a`, `terminate c1`.
    pub fn calls(&self) -> Vec<String> {
        self.with_state(|s| s.calls.clone())
    }
    /// Clusters that exist now and the state of their nodes.
    pub fn live(&self) -> BTreeMap<String, (u32, NodeState)> {
        self.with_state(|s| s.live.clone())
    }
    /// Makes a cluster's nodes look stopped (or running) behind the core's back, as a console
    /// action or a crash would.
    pub fn set_node_state(&self, cluster: &str, state: NodeState) {
        self.with_state(|s| {
            if let Some(entry) = s.live.get_mut(cluster) {
                entry.1 = state;
            }
        });
    }
    /// Makes a cluster vanish behind the core's back.
    pub fn forget(&self, cluster: &str) {
        self.with_state(|s| s.live.remove(cluster));
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        // A poisoned mutex means a test already panicked; keep going to show the first failure.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl FakeState {
    fn reachable(&self) -> Result<(), ProvisionError> {
        match self.unreachable {
            None => Ok(()),
            Some(kind) => Err(ProvisionError::new(
                kind,
                "scripted: the fake API cannot be reached",
            )),
        }
    }
}

fn place_key(l: &Launchable) -> (String, String) {
    let zoned = l.zone.as_ref().map(|z| format!("{}/{z}", l.region));
    (l.region.clone(), zoned.unwrap_or_else(|| l.region.clone()))
}

fn nodes(cluster: &str, n: u32) -> Vec<NodeHandle> {
    (0..n)
        .map(|rank| NodeHandle {
            rank,
            instance_id: format!("{cluster}-{rank}"),
            internal_ip: format!("10.0.0.{}", rank + 1),
            external_ip: None,
            local_dir: None,
        })
        .collect()
}

#[async_trait::async_trait]
impl Provider for FakeCloud {
    fn cloud(&self) -> CloudId {
        self.cloud
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
        let reason = if self.enabled {
            "fake credentials"
        } else {
            "fake: disabled"
        };
        CheckResult {
            enabled: self.enabled,
            reason: reason.into(),
        }
    }
    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        self.with_state(|s| {
            s.reachable()?;
            let (region, zoned) = place_key(&req.launchable);
            let verb = if req.resume_stopped { "resume" } else { "run" };
            s.calls.push(format!("{verb} {} {zoned}", req.cluster_name));
            let key = if s.script.contains_key(&zoned) {
                Some(zoned.clone())
            } else {
                s.script.contains_key(&region).then_some(region)
            };
            let outcome = match key.and_then(|k| s.script.get_mut(&k)) {
                Some(q) if q.len() > 1 => q.pop_front().unwrap_or(Outcome::Ok),
                Some(q) => q.front().copied().unwrap_or(Outcome::Ok),
                None => Outcome::Ok,
            };
            match outcome {
                Outcome::Fail(kind) => Err(ProvisionError::new(
                    kind,
                    format!("scripted {} at {zoned}", kind.as_str()),
                )),
                Outcome::FailScoped(kind, scope) => Err(ProvisionError::new(
                    kind,
                    format!("scripted {} at {zoned}", kind.as_str()),
                )
                .with_scope(scope)),
                Outcome::Ok | Outcome::FailAfterCreating(_) => {
                    s.live.insert(
                        req.cluster_name.clone(),
                        (req.num_nodes, NodeState::Running),
                    );
                    if !req.resume_stopped {
                        s.placements
                            .insert(req.cluster_name.clone(), req.launchable.clone());
                        s.launch_ids
                            .insert(req.cluster_name.clone(), req.launch_id.clone());
                    }
                    if let Outcome::FailAfterCreating(kind) = outcome {
                        s.pending_failure.insert(req.cluster_name.clone(), kind);
                    }
                    Ok(())
                }
            }
        })
    }
    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        let hang = self.with_state(|s| s.hang_waiting);
        if hang {
            self.with_state(|s| s.calls.push(format!("wait {cluster_name}")));
            return std::future::pending().await;
        }
        self.with_state(|s| {
            s.calls.push(format!("wait {cluster_name}"));
            if let Some(kind) = s.pending_failure.remove(cluster_name) {
                return Err(ProvisionError::new(
                    kind,
                    "scripted failure after creating nodes",
                ));
            }
            match s.live.get(cluster_name) {
                Some((n, _)) => Ok(ClusterInfo::new(nodes(cluster_name, *n))),
                None => Err(ProvisionError::fatal(format!("no cluster {cluster_name}"))),
            }
        })
    }
    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        self.with_state(|s| {
            s.calls.push(format!("query {cluster_name}"));
            s.reachable()?;
            Ok(s.live
                .get(cluster_name)
                .map(|(n, st)| {
                    nodes(cluster_name, *n)
                        .into_iter()
                        .map(|h| (h, *st))
                        .collect()
                })
                .unwrap_or_default())
        })
    }
    async fn list_clusters(&self) -> Result<Vec<FoundCluster>, ProvisionError> {
        self.with_state(|s| {
            s.reachable()?;
            let foreign = s.foreign.iter().map(|((owner, name), n)| FoundCluster {
                name: name.clone(),
                owner: Some(owner.clone()),
                launch_ids: Vec::new(),
                nodes: nodes(name, *n),
                placement: None,
            });
            Ok(s.live
                .iter()
                .map(|(name, (n, state))| FoundCluster {
                    name: name.clone(),
                    // Like the local cloud: its own clusters are this home's by construction.
                    owner: None,
                    launch_ids: s.launch_ids.get(name).cloned().into_iter().collect(),
                    nodes: nodes(name, *n),
                    placement: s.placements.get(name).map(|l| FoundPlacement {
                        region: l.region.clone(),
                        zone: l.zone.clone(),
                        instance_type: l.instance_type.clone(),
                        use_spot: l.use_spot,
                        stopped: *state == NodeState::Stopped,
                    }),
                })
                .chain(foreign)
                .collect())
        })
    }
    async fn query_launch(
        &self,
        cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<Vec<NodeHandle>, ProvisionError> {
        self.with_state(|s| {
            s.calls
                .push(format!("query_launch {cluster_name} {}", attempt.launch_id));
            s.reachable()?;
            if s.launch_ids.get(cluster_name) != Some(&attempt.launch_id) {
                return Ok(Vec::new());
            }
            Ok(s.live
                .get(cluster_name)
                .map(|(n, _)| nodes(cluster_name, *n))
                .unwrap_or_default())
        })
    }
    async fn terminate_launch(
        &self,
        cluster_name: &str,
        attempt: &LaunchAttempt,
    ) -> Result<(), ProvisionError> {
        self.with_state(|s| {
            s.calls.push(format!(
                "terminate_launch {cluster_name} {}",
                attempt.launch_id
            ));
            s.reachable()?;
            if s.launch_ids.get(cluster_name) == Some(&attempt.launch_id) {
                s.live.remove(cluster_name);
                s.launch_ids.remove(cluster_name);
            }
            Ok(())
        })
    }
    async fn terminate_foreign(
        &self,
        cluster_name: &str,
        owner_id: &str,
    ) -> Result<(), ProvisionError> {
        self.with_state(|s| {
            s.calls
                .push(format!("terminate_foreign {cluster_name} {owner_id}"));
            s.reachable()?;
            s.foreign
                .remove(&(owner_id.to_owned(), cluster_name.to_owned()));
            Ok(())
        })
    }
    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        self.with_state(|s| {
            s.calls.push(format!("stop {cluster_name}"));
            s.reachable()?;
            match s.live.get_mut(cluster_name) {
                Some(entry) => {
                    entry.1 = NodeState::Stopped;
                    Ok(())
                }
                None => Err(ProvisionError::fatal(format!("no cluster {cluster_name}"))),
            }
        })
    }
    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        self.with_state(|s| {
            s.calls.push(format!("terminate {cluster_name}"));
            s.reachable()?;
            if s.terminate_fails {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    "scripted terminate failure",
                ));
            }
            s.live.remove(cluster_name);
            s.launch_ids.remove(cluster_name);
            Ok(())
        })
    }
    async fn connect_agent(
        &self,
        cluster_name: &str,
        _info: &ClusterInfo,
    ) -> Result<AgentClient, ProvisionError> {
        self.with_state(|s| s.calls.push(format!("connect_agent {cluster_name}")));
        Err(ProvisionError::fatal("the fake cloud runs no agent"))
    }
}

/// A launchable on `cloud` at `region` (and `zone`), for tests.
pub fn launchable(
    cloud: CloudId,
    region: &str,
    zone: Option<&str>,
    instance_type: &str,
    price: f64,
) -> Launchable {
    Launchable {
        cloud,
        region: region.to_owned(),
        zone: zone.map(str::to_owned),
        instance_type: instance_type.to_owned(),
        use_spot: false,
        vcpus: 4.0,
        memory_gib: 16.0,
        accelerators: None,
        hourly_price: price,
    }
}
