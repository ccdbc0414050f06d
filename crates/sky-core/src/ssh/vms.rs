//! The SSH half of a cloud provider whose nodes are VMs reached on port 22 of their public address
//! (private when they have none) with Sky's user key: the bodies of `Provider::connect_agent`,
//! `agent_nodes`, `sync_workdir` and `sync_file_mounts` that AWS, GCP and Azure share, and the one mapping of
//! [`SshError`] to failover's error kinds.
//!
//! What this module does not do: create the VMs or put the key on them (each provider does, in
//! its cloud's own way), or decide the login name (each image has its own).

use std::path::Path;

use super::{ConnectOptions, RemoteCluster, SshError, SshTarget};
use crate::jobs::client::AgentClient;
use crate::jobs::wire::NodeSpec;
use crate::provision::{ClusterInfo, ProvisionError, ProvisionErrorKind};

impl From<SshError> for ProvisionError {
    /// A node that cannot be reached yet may come up (failover may try elsewhere or later);
    /// anything else about SSH is final.
    fn from(e: SshError) -> Self {
        let kind = match e {
            SshError::Unreachable { .. } => ProvisionErrorKind::Transient,
            _ => ProvisionErrorKind::Fatal,
        };
        ProvisionError::new(kind, e.to_string())
    }
}

/// A cluster's VMs as SSH sees them: where Sky's state lives, the cluster, and the login.
#[derive(Debug, Clone, Copy)]
pub struct Vms<'a> {
    pub sky_home: &'a Path,
    pub cluster_name: &'a str,
    pub info: &'a ClusterInfo,
    pub user: &'a str,
    pub connect: ConnectOptions,
    /// Reach the nodes by their private addresses even when they have public ones
    /// (`use_internal_ips`).
    pub use_internal_ips: bool,
    /// `ssh_proxy_command` for the cluster's region.
    pub proxy_command: Option<&'a str>,
}

impl Vms<'_> {
    /// Every node, head first; an error when a node has no address yet.
    pub fn targets(&self) -> Result<Vec<SshTarget>, ProvisionError> {
        let targets: Vec<SshTarget> = self
            .info
            .nodes
            .iter()
            .map(|n| {
                let host = match &n.external_ip {
                    Some(public) if !self.use_internal_ips => public.clone(),
                    _ => n.internal_ip.clone(),
                };
                let mut target = SshTarget::new(host, 22, self.user);
                target.proxy_command = self.proxy_command.map(str::to_owned);
                target
            })
            .collect();
        if targets.is_empty() || targets.iter().any(|t| t.host.is_empty()) {
            return Err(ProvisionError::fatal(format!(
                "cluster {} has a node without an address (or no nodes); run `sky status --refresh`",
                self.cluster_name
            )));
        }
        Ok(targets)
    }

    /// `Provider::connect_agent`: installs (or upgrades) the head's agent and opens its channel.
    pub async fn connect_agent(&self) -> Result<AgentClient, ProvisionError> {
        let targets = self.targets()?;
        let head = RemoteCluster::connect_head(
            self.sky_home,
            self.cluster_name,
            &targets[0],
            self.connect,
        )
        .await?;
        Ok(head.agent().await?)
    }

    /// `Provider::agent_nodes`: gives the head's agent SSH access to the workers.
    pub async fn agent_nodes(&self) -> Result<Vec<NodeSpec>, ProvisionError> {
        let cluster = self.connect_all().await?;
        let ips: Vec<String> = self
            .info
            .nodes
            .iter()
            .map(|n| n.internal_ip.clone())
            .collect();
        let specs = cluster.grant_worker_access(&ips).await;
        cluster.close().await;
        Ok(specs?)
    }

    /// `Provider::sync_workdir`: uploads `src` to every node.
    pub async fn sync_workdir(&self, src: &Path) -> Result<(), ProvisionError> {
        let cluster = self.connect_all().await?;
        let synced = cluster.sync_workdir(src).await;
        cluster.close().await;
        Ok(synced?)
    }

    /// `Provider::sync_file_mounts`: places local files and directories, and bucket copies, on
    /// every node.
    pub async fn sync_file_mounts(
        &self,
        mounts: &crate::storage::NodeMounts,
    ) -> Result<(), ProvisionError> {
        if mounts.is_empty() {
            return Ok(());
        }
        let cluster = self.connect_all().await?;
        let synced = cluster.upload_file_mounts(mounts).await;
        cluster.close().await;
        Ok(synced?)
    }

    async fn connect_all(&self) -> Result<RemoteCluster, ProvisionError> {
        Ok(RemoteCluster::connect(
            self.sky_home,
            self.cluster_name,
            &self.targets()?,
            self.connect,
        )
        .await?)
    }
}
