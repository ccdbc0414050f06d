//! A cluster whose nodes are reached by SSH: the entry point providers call from
//! `Provider::connect_agent` and from their node setup.
//!
//! - [`RemoteCluster::connect`] opens one session per node (in parallel, each patient while sshd
//!   comes up), or reuses the one this process already has ([`super::cache`]);
//!   [`RemoteCluster::connect_head`] only the head's, which is all most commands need.
//! - Everything Sky puts on a node lives in the cluster's own directory there
//!   ([`NodeDir`], `~/.sky-nodes/<cluster>-<id>`), made with a marker on first use; only the
//!   workdir stays at `~/sky_workdir`, where SkyPilot tasks expect it.
//! - [`RemoteCluster::agent`] installs this build's `sky-agent` on the head when missing
//!   (`<node dir>/agent/sky-agent-<version>-<build>`, by SFTP), restarts a daemon older than this
//!   client, and returns an [`AgentClient`] speaking over an exec channel running `sky-agent rpc`.
//! - [`RemoteCluster::grant_worker_access`] gives the head a key of the cluster's own (0600),
//!   installed in the workers' `authorized_keys` and removed at `down`, and returns the [`NodeSpec`]s with which the head's agent runs commands on the workers itself,
//!   so jobs, cancels and kills keep working with the client gone.
//! - [`RemoteCluster::sync_workdir`], [`RemoteCluster::upload_file_mounts`] and
//!   [`RemoteCluster::release`] (stop the agent and its jobs, remove the cluster's directory
//!   from every node, leave the machines and everything else on them alone).
//!
//! What this module does not do: create or delete machines, or decide the head (rank 0 is).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinSet;

use super::cache;
use super::keys::{self, UserKey};
use super::known_hosts::KnownHosts;
use super::node_dir::NodeDir;
use super::session::{SshSession, quote};
use super::sync::{MountUpload, copy_bucket};
use super::{ConnectOptions, SshError, SshTarget};
use crate::jobs::client::{AgentClient, find_agent_binary};
use crate::jobs::wire::{NodeSpec, NodeSsh};
use crate::storage::NodeMounts;

/// Environment variables passed from the client to a daemon the `rpc` starts (test knobs; never
/// secrets).
const FORWARDED_ENV: [&str; 4] = [
    "SKY_AGENT_IDLE_UNIT_SECS",
    "SKY_AGENT_KILL_GRACE_SECS",
    "SKY_AGENT_LOG",
    // Where the head's autostop hook finds the cloud's instance metadata service (a test's fake).
    "SKY_AGENT_IMDS_ENDPOINT",
];

/// One connected node.
#[derive(Debug)]
pub struct RemoteNode {
    pub target: SshTarget,
    pub session: SshSession,
    /// The login's `$HOME` on the node.
    pub home: String,
    key: UserKey,
    /// The cluster's directory exists here with its marker (checked once per connection).
    dir_ready: AtomicBool,
}

#[derive(Debug)]
pub struct RemoteCluster {
    sky_home: PathBuf,
    name: String,
    dir: NodeDir,
    nodes: Vec<Arc<RemoteNode>>,
    /// The agent build to install; `None`: [`find_agent_binary`].
    agent_binary: Option<PathBuf>,
}

/// The key to log in to `target` with: its own identity file, else Sky's key.
fn key_for(sky_home: &Path, target: &SshTarget) -> Result<UserKey, SshError> {
    match &target.identity_file {
        Some(path) => keys::load(path),
        None => keys::load_or_create(sky_home),
    }
}

/// The node's connection: one this process already made for the cluster, else a new one
/// (kept for the rest of the process, see [`super::cache`]).
async fn connect_node(
    sky_home: PathBuf,
    cluster_name: String,
    target: SshTarget,
    opts: ConnectOptions,
) -> Result<Arc<RemoteNode>, SshError> {
    if let Some(node) = cache::get(&sky_home, &cluster_name, &target) {
        return Ok(node);
    }
    let key = key_for(&sky_home, &target)?;
    let known = KnownHosts::for_cluster(&sky_home, &cluster_name);
    let session = SshSession::connect(&target, &key.key, &known, opts).await?;
    let home = session.run("printf %s \"$HOME\"", None).await?;
    if home.is_empty() {
        return Err(SshError::Protocol {
            target: target.to_string(),
            message: "the login has no $HOME".into(),
        });
    }
    let node = Arc::new(RemoteNode {
        target,
        session,
        home,
        key,
        dir_ready: AtomicBool::new(false),
    });
    cache::put(&sky_home, &cluster_name, node.clone());
    Ok(node)
}

/// A build tag for this agent binary: the crate version plus a hash of the file's size and
/// modification time, so a rebuilt agent is uploaded again even when the version did not change.
fn agent_tag(binary: &Path) -> String {
    let meta = std::fs::metadata(binary).ok();
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in size.to_le_bytes().iter().chain(mtime.to_le_bytes().iter()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{:08x}", env!("CARGO_PKG_VERSION"), h as u32)
}

/// `a.b.c` as numbers, for "is the client newer" (suffixes are ignored).
fn version_triple(v: &str) -> (u64, u64, u64) {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// Keeps the SSH session alive as long as the agent client reads from its channel.
struct KeepAlive<R> {
    inner: R,
    _cluster: Arc<RemoteNode>,
}

impl<R: AsyncRead + Unpin> AsyncRead for KeepAlive<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl RemoteCluster {
    /// Connects to every node in parallel; `targets` are in rank order (the head first).
    #[tracing::instrument(name = "remote_connect", level = "debug", skip_all, fields(cluster = cluster_name, nodes = targets.len()))]
    pub async fn connect(
        sky_home: &Path,
        cluster_name: &str,
        targets: &[SshTarget],
        opts: ConnectOptions,
    ) -> Result<RemoteCluster, SshError> {
        let dir = NodeDir::for_cluster(sky_home, cluster_name)?;
        let mut set = JoinSet::new();
        for (rank, target) in targets.iter().enumerate() {
            let fut = connect_node(
                sky_home.to_path_buf(),
                cluster_name.to_owned(),
                target.clone(),
                opts,
            );
            set.spawn(async move { (rank, fut.await) });
        }
        let mut nodes: Vec<Option<Arc<RemoteNode>>> = (0..targets.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (rank, result) = joined.map_err(|e| SshError::Local(e.to_string()))?;
            nodes[rank] = Some(result?);
        }
        Ok(RemoteCluster {
            sky_home: sky_home.to_path_buf(),
            name: cluster_name.to_owned(),
            dir,
            nodes: nodes.into_iter().flatten().collect(),
            agent_binary: None,
        })
    }

    /// Connects to the head only (rank 0): enough to talk to the agent.
    pub async fn connect_head(
        sky_home: &Path,
        cluster_name: &str,
        head: &SshTarget,
        opts: ConnectOptions,
    ) -> Result<RemoteCluster, SshError> {
        Self::connect(sky_home, cluster_name, std::slice::from_ref(head), opts).await
    }

    /// Installs this agent binary instead of the one [`find_agent_binary`] finds.
    pub fn with_agent_binary(mut self, path: PathBuf) -> RemoteCluster {
        self.agent_binary = Some(path);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> &[Arc<RemoteNode>] {
        &self.nodes
    }

    /// The cluster's directory on its nodes.
    pub fn node_dir(&self) -> &NodeDir {
        &self.dir
    }

    /// Makes the cluster's directory (with its marker) on every node that lacks it, all nodes at
    /// once; refuses a directory of that name that is not this cluster's.
    pub async fn ensure_node_dirs(&self) -> Result<(), SshError> {
        let mut set = JoinSet::new();
        for node in self
            .nodes
            .iter()
            .filter(|n| !n.dir_ready.load(Ordering::Acquire))
        {
            let node = node.clone();
            let script = self.dir.ensure_script();
            set.spawn(async move {
                node.session.run(&script, None).await?;
                node.dir_ready.store(true, Ordering::Release);
                Ok::<(), SshError>(())
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| SshError::Local(e.to_string()))??;
        }
        Ok(())
    }

    fn head(&self) -> Result<&Arc<RemoteNode>, SshError> {
        self.nodes
            .first()
            .ok_or_else(|| SshError::Local(format!("cluster '{}' has no nodes", self.name)))
    }

    /// Where the head's agent keeps its jobs, logs and socket (absolute, on the head).
    pub fn agent_home(&self) -> Result<String, SshError> {
        Ok(self.dir.agent_home(&self.head()?.home))
    }

    /// Uploads this build's agent to the head unless that exact build is there; returns its path.
    #[tracing::instrument(level = "debug", skip_all, fields(cluster = %self.name))]
    pub async fn install_agent(&self) -> Result<String, SshError> {
        let head = self.head()?;
        let binary = match &self.agent_binary {
            Some(path) => path.clone(),
            None => find_agent_binary().map_err(|e| SshError::Local(e.to_string()))?,
        };
        let agent_dir = self.dir.agent_dir(&head.home);
        let remote = format!("{agent_dir}/sky-agent-{}", agent_tag(&binary));
        let present = head
            .session
            .exec(&format!("test -x {}", quote(&remote)), None)
            .await?
            .code
            == 0;
        if !present {
            self.ensure_node_dirs().await?;
            head.session
                .run(&format!("mkdir -p {}", quote(&agent_dir)), None)
                .await?;
            tracing::info!(target = %head.target, path = %remote, "uploading sky-agent");
            head.session.upload(&binary, &remote, 0o755).await?;
        }
        Ok(remote)
    }

    async fn open_agent(&self, binary: &str) -> Result<AgentClient, SshError> {
        let head = self.head()?;
        let env: Vec<String> = FORWARDED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={}", quote(&v))))
            .collect();
        let command = format!(
            "cd && exec env {} {} rpc --home {}",
            env.join(" "),
            quote(binary),
            quote(&self.agent_home()?)
        );
        let stream = head.session.open_stream(&command).await?;
        let (reader, writer) = tokio::io::split(stream);
        Ok(AgentClient::new(
            KeepAlive {
                inner: reader,
                _cluster: head.clone(),
            },
            writer,
        ))
    }

    /// The head's agent, installed or upgraded as needed (see the module docs).
    #[tracing::instrument(name = "remote_agent", level = "debug", skip_all, fields(cluster = %self.name))]
    pub async fn agent(&self) -> Result<AgentClient, SshError> {
        let binary = self.install_agent().await?;
        let client = self.open_agent(&binary).await?;
        let agent_err = |e: crate::jobs::client::ClientError| SshError::Protocol {
            target: self.nodes[0].target.to_string(),
            message: format!("agent: {e}"),
        };
        let info = client.info().await.map_err(agent_err)?;
        if version_triple(&info.agent_version) >= version_triple(env!("CARGO_PKG_VERSION")) {
            return Ok(client);
        }
        tracing::info!(running = %info.agent_version, "restarting an older agent daemon");
        let _ = client.shutdown(false).await;
        let _ = client.close().await;
        self.open_agent(&binary).await
    }

    /// Gives the head's agent SSH access to every worker and returns the node list for the
    /// agent's cluster config, head first.
    ///
    /// The head gets a key of this cluster's own (made here, never stored on this machine),
    /// installed in each worker's `~/.ssh/authorized_keys` under the cluster's mark and removed
    /// by `down`: the user's own login key, which opens every cluster, never leaves this machine.
    /// A worker whose sshd does not read `~/.ssh/authorized_keys` (checked by logging in with
    /// the new key) falls back to the key this machine logs in with, and says so.
    #[tracing::instrument(level = "debug", skip_all, fields(cluster = %self.name))]
    pub async fn grant_worker_access(
        &self,
        internal_ips: &[String],
    ) -> Result<Vec<NodeSpec>, SshError> {
        let head = self.head()?;
        // Workers need the directory too: their job groups are recorded there.
        self.ensure_node_dirs().await?;
        let keys_dir = self.dir.keys_dir(&head.home);
        let worker = keys::worker_key(&self.dir.worker_key_mark())?;
        let line = format!("{}\n", worker.public_openssh()?);
        let authorize = self.dir.authorize_worker_key_script();
        // Installed and checked on every worker at once.
        let mut checks = JoinSet::new();
        for (rank, node) in self.nodes.iter().enumerate().skip(1) {
            let (node, line, authorize, worker) = (
                node.clone(),
                line.clone(),
                authorize.clone(),
                worker.clone(),
            );
            let known = KnownHosts::for_cluster(&self.sky_home, &self.name);
            checks.spawn(async move {
                node.session.run(&authorize, Some(line.as_bytes())).await?;
                let opts = ConnectOptions {
                    total_wait: std::time::Duration::from_secs(10),
                    attempt_timeout: std::time::Duration::from_secs(10),
                };
                let works = SshSession::connect(&node.target, &worker.key, &known, opts).await;
                Ok::<_, SshError>((rank, works.err()))
            });
        }
        let mut fallback = std::collections::BTreeSet::new();
        while let Some(joined) = checks.join_next().await {
            let (rank, failed) = joined.map_err(|e| SshError::Local(e.to_string()))??;
            if let Some(e) = failed {
                tracing::warn!(
                    cluster = %self.name,
                    node = %self.nodes[rank].target,
                    error = %e,
                    "the worker does not accept the cluster's own key (its sshd may not read \
                     ~/.ssh/authorized_keys); the head gets this machine's login key for it"
                );
                fallback.insert(rank);
            }
        }
        // Each worker's key goes to the head on stdin (never a command line), all at once: a
        // serial upload per worker made setup on N nodes cost N round trips more than on one.
        let mut set = JoinSet::new();
        for (rank, node) in self.nodes.iter().enumerate().skip(1) {
            let head = head.clone();
            let identity = format!("{keys_dir}/node-{rank}.key");
            let text = if fallback.contains(&rank) {
                node.key.private_openssh()?
            } else {
                worker.private_openssh()?
            };
            let command = format!(
                "umask 077 && mkdir -p {dir} && chmod 700 {dir} && cat > {tmp} && mv -f {tmp} {identity}",
                dir = quote(&keys_dir),
                tmp = quote(&format!("{identity}.part")),
                identity = quote(&identity),
            );
            set.spawn(async move { head.session.run(&command, Some(text.0.as_bytes())).await });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| SshError::Local(e.to_string()))??;
        }
        let specs = self
            .nodes
            .iter()
            .enumerate()
            .map(|(rank, node)| NodeSpec {
                ip: internal_ips
                    .get(rank)
                    .cloned()
                    .unwrap_or_else(|| node.target.host.clone()),
                dir: PathBuf::from(&node.home),
                ssh: (rank > 0).then(|| NodeSsh {
                    host: node.target.host.clone(),
                    port: node.target.port,
                    user: node.target.user.clone(),
                    identity_file: PathBuf::from(format!("{keys_dir}/node-{rank}.key")),
                    known_hosts: PathBuf::from(format!("{keys_dir}/known_hosts")),
                    node_dir: PathBuf::from(self.dir.on(&node.home)),
                }),
            })
            .collect();
        Ok(specs)
    }

    /// Replaces `~/sky_workdir` on every node with `src`, all nodes at once, the tree read once
    /// and streamed (see [`super::archive`]). A node's workdir is replaced only when it is missing
    /// or this cluster created it (recorded in the cluster's directory, so `down` removes it
    /// too); another one is refused, naming the node.
    #[tracing::instrument(level = "debug", skip_all, fields(cluster = %self.name))]
    pub async fn sync_workdir(&self, src: &Path) -> Result<(), SshError> {
        let claim = format!(
            "{}{}",
            self.dir.ensure_script(),
            self.dir.claim_workdir_script()
        );
        let mut set = JoinSet::new();
        for node in &self.nodes {
            let node = node.clone();
            let claim = claim.clone();
            set.spawn(async move {
                node.session.run(&claim, None).await?;
                node.dir_ready.store(true, Ordering::Release);
                Ok::<(), SshError>(())
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| SshError::Local(e.to_string()))??;
        }
        let files = super::sync::upload_workdir(&self.nodes, src).await?;
        tracing::debug!(files, nodes = self.nodes.len(), "workdir synced");
        Ok(())
    }

    /// Places a task's `file_mounts` on every node: each local source is checked first, then read
    /// once and streamed to all nodes at once; each node then copies the buckets itself, the
    /// nodes served at once.
    #[tracing::instrument(level = "debug", skip_all, fields(cluster = %self.name, local = mounts.local.len(), buckets = mounts.buckets.len()))]
    pub async fn upload_file_mounts(&self, mounts: &NodeMounts) -> Result<(), SshError> {
        let prepared: Vec<MountUpload> = mounts
            .local
            .iter()
            .map(|(remote, local)| MountUpload::prepare(remote, local))
            .collect::<Result<_, _>>()?;
        for mount in &prepared {
            mount
                .upload(&self.nodes)
                .await
                .map_err(|e| SshError::Local(format!("file_mounts.{}: {e}", mount.remote)))?;
        }
        let buckets = Arc::new(mounts.buckets.clone());
        let mut set = JoinSet::new();
        for node in &self.nodes {
            let (node, buckets) = (node.clone(), buckets.clone());
            set.spawn(async move {
                for copy in buckets.iter() {
                    copy_bucket(&node.session, copy).await?;
                }
                Ok::<(), SshError>(())
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| SshError::Local(e.to_string()))??;
        }
        Ok(())
    }

    /// Stops the head's agent (killing its jobs), kills leftover job processes this cluster
    /// started on every node and removes the cluster's directory (and `~/sky_workdir` where this
    /// cluster created it); see [`NodeDir::release_script`]. Nothing else on the machines is
    /// touched.
    pub async fn release(&self) -> Result<(), SshError> {
        if let Some(head) = self.nodes.first() {
            let agent_home = self.agent_home()?;
            let alive = head
                .session
                .exec(&format!("test -S {}/agent.sock", quote(&agent_home)), None)
                .await?
                .code
                == 0;
            if alive {
                let binary = self.install_agent().await?;
                if let Ok(client) = self.open_agent(&binary).await {
                    let _ = client.shutdown(true).await;
                    let _ = client.close().await;
                }
            }
        }
        let script = self.dir.release_script();
        let mut set = JoinSet::new();
        for node in &self.nodes {
            let node = node.clone();
            let script = script.clone();
            set.spawn(async move {
                node.dir_ready.store(false, Ordering::Release);
                node.session.run(&script, None).await
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| SshError::Local(e.to_string()))??;
        }
        // The cluster is gone for Sky: its connections must not be reused by a later cluster of
        // the same name (they close with this value).
        drop(cache::forget(&self.sky_home, &self.name));
        Ok(())
    }

    /// Lets go of the nodes; a connection is closed only when nothing else holds it (the
    /// process keeps each node's connection for later calls, see [`super::cache`]).
    pub async fn close(self) {
        for node in self.nodes {
            if let Ok(node) = Arc::try_unwrap(node) {
                node.session.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_triple("0.10.0") > version_triple("0.9.9"));
        assert_eq!(version_triple("1.2.3-dev"), (1, 2, 3));
        assert!(version_triple("garbage") < version_triple("0.0.1"));
    }
}
