//! The Azure [`Provider`]: launch, wait, query, list, stop/start and down of Sky clusters, each
//! cluster one resource group.
//!
//! Network resources and resource groups go through plain ARM REST ([`Arm`]); VMs through
//! `azure_mgmt_compute`'s request builders with `.send()`, whose long-running operations we
//! poll ourselves. Credentials are read on first use, so building the provider costs nothing.
//! What this module does not do: choose placements or retry elsewhere (failover does), or run
//! jobs (the agent does, over SSH).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use futures::future::join_all;
use serde_json::Value;
use sky_core::cloud::CloudId;
use sky_core::provision::throttle::Throttle;
use sky_core::provision::{
    Capabilities, CheckResult, ClusterInfo, FoundCluster, FoundPlacement, HomeOwner, NodeHandle,
    NodeState, Provider, ProvisionError, ProvisionErrorKind, ProvisionRequest,
};
use sky_core::ssh::ConnectOptions;
use sky_core::ssh::vms::Vms;
use tokio::sync::OnceCell;

use azure_mgmt_compute::package_2024_07_01 as compute;

use crate::arm::{self, API_NETWORK, API_RESOURCES, API_SUBSCRIPTIONS, Arm, Poll};
use crate::auth::{CredentialSource, SdkCredential, TokenSource};
use crate::cluster::{self, NodeSpec, VmView};

/// Login on the VMs unless `azure.ssh_user` names another.
pub const DEFAULT_SSH_USER: &str = cluster::ADMIN_USER;
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// Where the provider talks to and who it is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub authority_host: String,
    pub sky_home: PathBuf,
    /// Tags every resource group, so two people sharing a subscription keep separate clusters.
    pub user: String,
    pub credentials: CredentialSource,
    /// The VMs' `adminUsername`, whom Sky logs in as (`azure.ssh_user`, default
    /// [`cluster::ADMIN_USER`]).
    pub ssh_user: String,
    /// A problem with the `azure:` section of the config, reported by `check` instead of panicking.
    pub config_error: Option<String>,
    /// Whose resources this provider tags and acts on (the Sky home's owner id by default).
    pub owner: HomeOwner,
}

/// Clients built once credentials are known.
struct Session {
    arm: Arm,
    compute: compute::Client,
    subscription: String,
}

pub struct AzureProvider {
    settings: Settings,
    session: OnceCell<Arc<Session>>,
    /// Node count of each cluster this process launched, so `wait_instances` knows how many
    /// VMs to expect (a resource group lists only those that were created).
    expected: Mutex<HashMap<String, u32>>,
    /// Sizes the catalog lists as Hyper-V generation 1 only, read on first launch.
    gen1_only: std::sync::OnceLock<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for AzureProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProvider")
            .field("endpoint", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl AzureProvider {
    pub fn new(settings: Settings) -> Self {
        AzureProvider {
            settings,
            session: OnceCell::new(),
            expected: Mutex::new(HashMap::new()),
            gen1_only: std::sync::OnceLock::new(),
        }
    }

    /// Whether `vm_size` boots only Gen1 images. Without a readable catalog every size counts as
    /// Gen2 (true of all current sizes), with a warning.
    fn is_gen1_only(&self, vm_size: &str) -> bool {
        self.gen1_only
            .get_or_init(
                || match sky_core::catalog::Catalog::load(&self.settings.sky_home) {
                    Ok(catalog) => catalog
                        .cloud(sky_core::cloud::CloudId::Azure)
                        .map(|c| {
                            c.instance_types
                                .iter()
                                .filter(|t| {
                                    t.generation
                                        .as_deref()
                                        .is_some_and(|g| g.contains("V1") && !g.contains("V2"))
                                })
                                .map(|t| t.name.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(error = %e, "catalog unreadable: Azure sizes assumed Gen2");
                        Default::default()
                    }
                },
            )
            .contains(vm_size)
    }

    /// The owner id this provider acts for (for tests and tools; empty when it cannot be read).
    pub fn settings_owner(&self) -> String {
        self.settings.owner.get().unwrap_or_default()
    }

    /// This home's resource group of `cluster`.
    pub fn rg(&self, cluster: &str) -> Result<String, ProvisionError> {
        let owner = self.settings.owner.get()?;
        Ok(cluster::resource_group(
            cluster,
            &self.settings.user,
            &owner,
        ))
    }

    async fn session(&self) -> Result<Arc<Session>, ProvisionError> {
        self.session
            .get_or_try_init(|| async {
                if let Some(e) = &self.settings.config_error {
                    return Err(ProvisionError::new(ProvisionErrorKind::Auth, e.clone()));
                }
                let creds = self
                    .settings
                    .credentials
                    .load()
                    .map_err(|e| ProvisionError::new(ProvisionErrorKind::Auth, format!("Azure: {e}")))?
                    .ok_or_else(|| {
                        ProvisionError::new(
                            ProvisionErrorKind::Auth,
                            "Azure: no credentials (add a service principal on the desktop app's Credentials page, set AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_SUBSCRIPTION_ID, or run `az login`)",
                        )
                    })?;
                let http = reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .timeout(std::time::Duration::from_secs(120))
                    .build()
                    .map_err(|e| ProvisionError::fatal(format!("Azure: HTTP client: {e}")))?;
                let subscription = creds.subscription_id().to_owned();
                let tokens = Arc::new(TokenSource::new(http.clone(), &self.settings.authority_host, creds));
                let endpoint = azure_core::Url::parse(&self.settings.endpoint).map_err(|e| {
                    ProvisionError::new(
                        ProvisionErrorKind::Auth,
                        format!("Azure: config azure.endpoint_url '{}' is not a URL: {e}", self.settings.endpoint),
                    )
                })?;
                // Failover decides where to retry; the SDK's own retries would only delay it.
                let compute = compute::Client::builder(Arc::new(SdkCredential(tokens.clone())))
                    .endpoint(endpoint)
                    .retry(azure_core::RetryOptions::none())
                    .build()
                    .map_err(|e| ProvisionError::fatal(format!("Azure: compute client: {e}")))?;
                Ok(Arc::new(Session {
                    arm: Arm::new(http, &self.settings.endpoint, tokens),
                    compute,
                    subscription,
                }))
            })
            .await
            .cloned()
    }

    fn spec(&self, req: &ProvisionRequest) -> Result<NodeSpec, ProvisionError> {
        let l = &req.launchable;
        req.settings.check_labels(CloudId::Azure)?;
        let invalid =
            |message: String| ProvisionError::new(ProvisionErrorKind::InvalidRequest, message);
        let image = match &req.settings.image_id {
            // Sky has no Azure image catalog: SkyPilot's tags mean its default Ubuntu images.
            Some(id) if !id.starts_with("skypilot:") => {
                cluster::image_reference(id).map_err(invalid)?;
                id.clone()
            }
            _ => cluster::default_image(
                l.accelerators.is_some(),
                self.is_gen1_only(&l.instance_type),
            )
            .to_owned(),
        };
        let disk_gb = i32::try_from(req.settings.disk_size_gb).map_err(|_| {
            invalid(format!(
                "disk_size {} GB is too large",
                req.settings.disk_size_gb
            ))
        })?;
        let disk_type = cluster::storage_account_type(&l.instance_type, req.settings.disk_tier)
            .map_err(invalid)?;
        Ok(NodeSpec {
            cluster: req.cluster_name.clone(),
            user: self.settings.user.clone(),
            owner: self.settings.owner.get()?,
            launch_id: req.launch_id.clone(),
            launchable: l.clone(),
            image,
            disk_gb,
            disk_type: disk_type.to_owned(),
            ports: req.settings.inbound_ranges(),
            ssh_public_key: crate::user_public_key(&self.settings.sky_home)?,
            ssh_user: self.settings.ssh_user.clone(),
            labels: req.settings.labels.clone(),
        })
    }

    /// Creates the cluster's network, then every node concurrently, waiting for each VM's
    /// operation. All in-flight work finishes before an error is returned, so the caller's
    /// cleanup never races a half-created VM.
    async fn create(
        &self,
        s: &Session,
        spec: &NodeSpec,
        num_nodes: u32,
    ) -> Result<(), ProvisionError> {
        let arm = &s.arm;
        let rg = self.rg(&spec.cluster)?;
        let where_ = format!(
            "{}{}",
            spec.launchable.region,
            spec.launchable
                .zone
                .as_deref()
                .map(|z| format!(" zone {z}"))
                .unwrap_or_default()
        );
        let rg_path = arm.sub_path(&format!("/resourcegroups/{rg}"));
        if let Some(existing) = arm
            .get(&rg_path, API_RESOURCES, "reading the resource group")
            .await?
            && existing.get("location").and_then(Value::as_str)
                != Some(spec.launchable.region.as_str())
        {
            return Err(ProvisionError::new(
                ProvisionErrorKind::Fatal,
                format!(
                    "Azure: resource group {rg} already exists in {}, not {}; run `sky down {}` first",
                    existing
                        .get("location")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    spec.launchable.region,
                    spec.cluster
                ),
            ));
        }
        arm.put(
            &rg_path,
            API_RESOURCES,
            &cluster::rg_body(spec),
            &format!("create resource group {rg} in {where_}"),
        )
        .await?;
        let net = arm.sub_path(&format!("/resourceGroups/{rg}/providers/Microsoft.Network"));
        let nsg_id = format!("{net}/networkSecurityGroups/{}", cluster::NSG);
        arm.put(
            &nsg_id,
            API_NETWORK,
            &cluster::nsg_body(spec),
            "create the network security group",
        )
        .await?;
        let vnet_id = format!("{net}/virtualNetworks/{}", cluster::VNET);
        arm.put(
            &vnet_id,
            API_NETWORK,
            &cluster::vnet_body(spec, &nsg_id),
            "create the virtual network",
        )
        .await?;
        let subnet_id = format!("{vnet_id}/subnets/{}", cluster::SUBNET);
        let nodes =
            (0..num_nodes).map(|rank| self.create_node(s, spec, rank, &net, &subnet_id, &where_));
        let results = join_all(nodes).await;
        match results.into_iter().find_map(Result::err) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn create_node(
        &self,
        s: &Session,
        spec: &NodeSpec,
        rank: u32,
        net: &str,
        subnet_id: &str,
        where_: &str,
    ) -> Result<(), ProvisionError> {
        let arm = &s.arm;
        let name = cluster::vm_name(&spec.cluster, rank);
        let ip_id = format!("{net}/publicIPAddresses/{name}-ip");
        arm.put(
            &ip_id,
            API_NETWORK,
            &cluster::public_ip_body(spec, rank),
            &format!("create public IP of {name}"),
        )
        .await?;
        let nic_id = format!("{net}/networkInterfaces/{name}-nic");
        arm.put(
            &nic_id,
            API_NETWORK,
            &cluster::nic_body(spec, rank, subnet_id, &ip_id),
            &format!("create NIC of {name}"),
        )
        .await?;
        let what = format!(
            "create VM {name} ({}) in {where_}",
            spec.launchable.instance_type
        );
        let body = cluster::vm_body(spec, rank, &nic_id).map_err(|e| {
            ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!("Azure: {what}: {e}"),
            )
        })?;
        let resp = s
            .compute
            .virtual_machines_client()
            .create_or_update(self.rg(&spec.cluster)?, &name, body, &s.subscription)
            .send()
            .await
            .map_err(|e| arm::from_sdk(&e, &what))?;
        let raw = resp.as_raw_response();
        let poll = sdk_poll(raw.headers());
        tracing::debug!(vm = %name, status = u16::from(raw.status()), "VM create accepted");
        if let Some(poll) = poll {
            arm.wait(&poll, &what).await?;
        }
        Ok(())
    }

    async fn list_vms(&self, s: &Session, rg: &str) -> Result<Option<Vec<VmView>>, ProvisionError> {
        let what = format!("list VMs of {rg}");
        let list = || {
            s.compute
                .virtual_machines_client()
                .list(rg, &s.subscription)
                .expand("instanceView")
                .into_stream()
                .try_collect::<Vec<_>>()
        };
        match Throttle::default()
            .run(&what, list, arm::sdk_throttle_verdict)
            .await
        {
            Ok(pages) => {
                let mut vms: Vec<VmView> = pages
                    .iter()
                    .flat_map(|p| p.value.iter().map(VmView::from_model))
                    .collect();
                vms.sort_by_key(|v| v.rank.unwrap_or(u32::MAX));
                Ok(Some(vms))
            }
            Err(e) => {
                let e = arm::from_sdk(&e, &what);
                if arm::is_not_found(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The node's addresses from its NIC and public IP.
    async fn node(&self, s: &Session, vm: &VmView) -> Result<NodeHandle, ProvisionError> {
        let mut internal_ip = String::new();
        let mut external_ip = None;
        if let Some(nic_id) = &vm.nic_id
            && let Some(nic) = s
                .arm
                .get(nic_id, API_NETWORK, &format!("read NIC of {}", vm.name))
                .await?
        {
            let ipc = nic.pointer("/properties/ipConfigurations/0/properties");
            internal_ip = ipc
                .and_then(|p| p.get("privateIPAddress"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(ip_id) = ipc
                .and_then(|p| p.pointer("/publicIPAddress/id"))
                .and_then(Value::as_str)
                && let Some(ip) = s
                    .arm
                    .get(
                        ip_id,
                        API_NETWORK,
                        &format!("read public IP of {}", vm.name),
                    )
                    .await?
            {
                external_ip = ip
                    .pointer("/properties/ipAddress")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
        Ok(NodeHandle {
            rank: vm.rank.unwrap_or(u32::MAX),
            instance_id: vm.name.clone(),
            internal_ip,
            external_ip,
            local_dir: None,
        })
    }

    async fn nodes(&self, s: &Session, vms: &[VmView]) -> Result<Vec<NodeHandle>, ProvisionError> {
        join_all(vms.iter().map(|vm| self.node(s, vm)))
            .await
            .into_iter()
            .collect()
    }

    /// Runs one power operation (`deallocate` or `start`) on every VM that needs it and waits.
    async fn power(
        &self,
        s: &Session,
        cluster: &str,
        start: bool,
    ) -> Result<usize, ProvisionError> {
        let rg = self.rg(cluster)?;
        let Some(vms) = self.list_vms(s, &rg).await? else {
            return Ok(0);
        };
        let todo: Vec<&VmView> = vms
            .iter()
            .filter(|v| match (start, v.state()) {
                (true, state) => state != NodeState::Running,
                (false, state) => state != NodeState::Stopped,
            })
            .collect();
        let ops = todo.iter().map(|vm| {
            let rg = rg.clone();
            async move {
                let vms = s.compute.virtual_machines_client();
                let verb = if start { "start" } else { "deallocate" };
                let what = format!("{verb} VM {}", vm.name);
                // Power actions repeat safely, so a throttled one is retried in place.
                let send = || {
                    let (vms, rg) = (&vms, rg.clone());
                    async move {
                        if start {
                            vms.start(rg, &vm.name, &s.subscription)
                                .send()
                                .await
                                .map(|r| sdk_poll(r.as_raw_response().headers()))
                        } else {
                            vms.deallocate(rg, &vm.name, &s.subscription)
                                .send()
                                .await
                                .map(|r| sdk_poll(r.as_raw_response().headers()))
                        }
                    }
                };
                let sent = Throttle::default()
                    .run(&what, send, arm::sdk_throttle_verdict)
                    .await;
                match sent.map_err(|e| arm::from_sdk(&e, &what))? {
                    Some(poll) => s.arm.wait(&poll, &what).await,
                    None => Ok(()),
                }
            }
        });
        let results: Result<Vec<()>, ProvisionError> = join_all(ops).await.into_iter().collect();
        results.map(|r| r.len())
    }
}

/// The polling instructions in an SDK response's headers.
fn sdk_poll(headers: &azure_core::headers::Headers) -> Option<Poll> {
    Poll::from_headers(|name| {
        headers.get_optional_string(&azure_core::headers::HeaderName::from(name.to_owned()))
    })
}

#[async_trait::async_trait]
impl Provider for AzureProvider {
    fn cloud(&self) -> CloudId {
        CloudId::Azure
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
        if let Some(e) = &self.settings.config_error {
            return CheckResult {
                enabled: false,
                reason: e.clone(),
            };
        }
        match self.settings.credentials.load() {
            Ok(Some(login)) => CheckResult {
                enabled: true,
                reason: login.describe(),
            },
            Ok(None) => CheckResult {
                enabled: false,
                reason: "no credentials: store a service principal (`az ad sp create-for-rbac` output), set AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION_ID, or run `az login`".into(),
            },
            Err(e) => CheckResult { enabled: false, reason: e },
        }
    }

    async fn verify(&self) -> CheckResult {
        let offline = self.check();
        if !offline.enabled {
            return offline;
        }
        let result = async {
            let s = self.session().await?;
            let path = s.arm.sub_path("");
            s.arm
                .call(
                    reqwest::Method::GET,
                    &path,
                    Some(API_SUBSCRIPTIONS),
                    None,
                    "read the subscription",
                )
                .await
        }
        .await;
        match result {
            Ok(a) => CheckResult {
                enabled: true,
                reason: format!(
                    "{} (subscription '{}' is {})",
                    offline.reason,
                    a.body
                        .get("displayName")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    a.body
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("reachable")
                ),
            },
            Err(e) => CheckResult {
                enabled: false,
                reason: e.message,
            },
        }
    }

    async fn run_instances(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let s = self.session().await?;
        if req.resume_stopped {
            let rg = self.rg(&req.cluster_name)?;
            match self.list_vms(&s, &rg).await? {
                Some(vms) if !vms.is_empty() => {
                    self.expected_set(&req.cluster_name, vms.len() as u32);
                }
                _ => {
                    return Err(ProvisionError::new(
                        ProvisionErrorKind::InvalidRequest,
                        format!(
                            "Azure: cluster {} has no VMs in resource group {rg} to start",
                            req.cluster_name
                        ),
                    ));
                }
            }
            self.power(&s, &req.cluster_name, true).await?;
            return Ok(());
        }
        if req.num_nodes == 0 {
            return Err(ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                "Azure: num_nodes must be at least 1",
            ));
        }
        let spec = self.spec(req)?;
        self.expected_set(&req.cluster_name, req.num_nodes);
        tracing::info!(cluster = %req.cluster_name, region = %spec.launchable.region, nodes = req.num_nodes, "creating Azure cluster");
        self.create(&s, &spec, req.num_nodes).await
    }

    async fn wait_instances(&self, cluster_name: &str) -> Result<ClusterInfo, ProvisionError> {
        let s = self.session().await?;
        let rg = self.rg(cluster_name)?;
        let mut gap = std::time::Duration::from_millis(50);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20 * 60);
        loop {
            let vms = self.list_vms(&s, &rg).await?.unwrap_or_default();
            if let Some(vm) = vms
                .iter()
                .find(|v| v.provisioning_state.as_deref() == Some("Failed"))
            {
                let (code, message) = vm
                    .failure
                    .clone()
                    .unwrap_or(("ProvisioningFailed".into(), String::new()));
                return Err(crate::errors::ArmError {
                    status: None,
                    code,
                    message,
                }
                .into_provision(&format!("VM {}", vm.name)));
            }
            let expected = self.expected_get(cluster_name).unwrap_or(vms.len() as u32);
            if vms.is_empty() || (vms.len() as u32) < expected {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    format!(
                        "Azure: cluster {cluster_name} has {} of {expected} VMs in {rg}",
                        vms.len()
                    ),
                ));
            }
            if vms.iter().all(|v| v.state() == NodeState::Running) {
                return Ok(ClusterInfo::new(self.nodes(&s, &vms).await?));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    format!("Azure: cluster {cluster_name}: VMs not running after 20 minutes"),
                ));
            }
            tokio::time::sleep(gap).await;
            gap = (gap * 2).min(std::time::Duration::from_secs(5));
        }
    }

    async fn query(
        &self,
        cluster_name: &str,
    ) -> Result<Vec<(NodeHandle, NodeState)>, ProvisionError> {
        let s = self.session().await?;
        let Some(vms) = self.list_vms(&s, &self.rg(cluster_name)?).await? else {
            return Ok(Vec::new());
        };
        let nodes = self.nodes(&s, &vms).await?;
        Ok(nodes
            .into_iter()
            .zip(vms.iter().map(VmView::state))
            .collect())
    }

    async fn list_clusters(&self) -> Result<Vec<FoundCluster>, ProvisionError> {
        let s = self.session().await?;
        let groups = self.list_clusters_raw().await?;
        let mut out = Vec::new();
        for g in groups {
            let tag = |k: &str| {
                g.pointer(&format!("/tags/{k}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            // Only groups carrying Sky's owner tag: SkyPilot's and anyone else's never match.
            let (Some(cluster), Some(owner), Some(rg)) = (
                tag(cluster::TAG_CLUSTER),
                tag(cluster::TAG_OWNER),
                g.get("name").and_then(Value::as_str).map(str::to_owned),
            ) else {
                continue;
            };
            let vms = self.list_vms(&s, &rg).await?.unwrap_or_default();
            let launch_ids: Vec<String> = tag(cluster::TAG_LAUNCH).into_iter().collect();
            let placement = vms.first().and_then(|head| {
                Some(FoundPlacement {
                    region: head.location.clone(),
                    zone: head.zone.clone(),
                    instance_type: head.vm_size.clone()?,
                    use_spot: head.spot,
                    stopped: vms.iter().all(|v| v.state() == NodeState::Stopped),
                })
            });
            out.push(FoundCluster {
                name: cluster,
                owner: Some(owner),
                launch_ids,
                nodes: self.nodes(&s, &vms).await?,
                placement,
            });
        }
        out.sort_by(|a, b| (&a.name, &a.owner).cmp(&(&b.name, &b.owner)));
        Ok(out)
    }

    async fn stop(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let s = self.session().await?;
        let n = self.power(&s, cluster_name, false).await?;
        tracing::info!(cluster = %cluster_name, deallocated = n, "stopped Azure cluster");
        Ok(())
    }

    async fn terminate(&self, cluster_name: &str) -> Result<(), ProvisionError> {
        let owner = self.settings.owner.get()?;
        let rg = self.rg(cluster_name)?;
        self.delete_group(cluster_name, &rg, &owner).await
    }

    async fn terminate_foreign(
        &self,
        cluster_name: &str,
        owner_id: &str,
    ) -> Result<(), ProvisionError> {
        // The other home's group name holds its user, unknown here: find it by its tags.
        let groups: Vec<String> = self
            .tagged_groups()
            .await?
            .into_iter()
            .filter(|(c, o, _)| c == cluster_name && o == owner_id)
            .map(|(_, _, rg)| rg)
            .collect();
        for rg in groups {
            self.delete_group(cluster_name, &rg, owner_id).await?;
        }
        Ok(())
    }

    fn cloud_names(&self, cluster_name: &str) -> Vec<sky_core::provision::CloudName> {
        use sky_core::provision::CloudName;
        // Without the owner id (an unreadable state database) the group's name is not known,
        // and saying so beats showing a name that may be wrong.
        let group = self
            .rg(cluster_name)
            .unwrap_or_else(|e| format!("(unknown: {e})"));
        vec![
            CloudName::new("resource group", group),
            CloudName::new(
                "VM and host names",
                format!("{}-<rank>", cluster::host_base(cluster_name)),
            ),
            CloudName::new(
                "autostop identity",
                format!(
                    "the head VM {}'s system-assigned managed identity: Virtual Machine \
                     Contributor (Contributor with --down) on the resource group while autostop \
                     is set, nothing otherwise",
                    cluster::vm_name(cluster_name, 0)
                ),
            ),
        ]
    }

    /// The head deallocates its workers and itself (or deletes the resource group) through its
    /// managed identity; see [`crate::autostop`].
    fn autostop_hook(
        &self,
        _cluster_name: &str,
        info: &ClusterInfo,
    ) -> Option<sky_core::jobs::wire::AutostopHook> {
        let (head, workers) = info.nodes.split_first()?;
        let workers: Vec<String> = workers.iter().map(|n| n.instance_id.clone()).collect();
        Some(crate::autostop::hook(
            &self.settings.endpoint,
            &head.instance_id,
            &workers,
        ))
    }

    async fn autostop_preflight(&self, _down: bool) -> Option<String> {
        let s = self.session().await.ok()?;
        crate::autostop::preflight(&s.arm).await
    }

    /// Grants the head's identity the role the setting needs on the cluster's resource group,
    /// or takes it back when autostop is cancelled.
    async fn prepare_autostop(
        &self,
        cluster_name: &str,
        down: Option<bool>,
    ) -> Result<(), ProvisionError> {
        let s = self.session().await?;
        let rg = self.rg(cluster_name)?;
        let head = cluster::vm_name(cluster_name, 0);
        crate::autostop::grant(&s.arm, cluster_name, &rg, &head, down).await
    }

    fn vms<'a>(&'a self, cluster_name: &'a str, info: &'a ClusterInfo) -> Option<Vms<'a>> {
        Some(Vms {
            sky_home: &self.settings.sky_home,
            cluster_name,
            info,
            user: &self.settings.ssh_user,
            connect: ConnectOptions::from_env(),
            use_internal_ips: false,
            proxy_command: None,
        })
    }
}

impl AzureProvider {
    /// Every resource group in the subscription, as ARM lists them.
    async fn list_clusters_raw(&self) -> Result<Vec<Value>, ProvisionError> {
        let s = self.session().await?;
        let mut groups = Vec::new();
        let mut next = Some(s.arm.sub_path("/resourcegroups"));
        let mut api = Some(API_RESOURCES);
        while let Some(url) = next.take() {
            let page = s
                .arm
                .call(
                    reqwest::Method::GET,
                    &url,
                    api,
                    None,
                    "list resource groups",
                )
                .await?;
            groups.extend(
                page.body
                    .get("value")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            // nextLink carries its own api-version.
            next = page
                .body
                .get("nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
            api = None;
        }
        Ok(groups)
    }

    /// Every resource group carrying Sky's cluster and owner tags: (cluster, owner, group).
    async fn tagged_groups(&self) -> Result<Vec<(String, String, String)>, ProvisionError> {
        Ok(self
            .list_clusters_raw()
            .await?
            .into_iter()
            .filter_map(|g| {
                let tag = |k: &str| {
                    g.pointer(&format!("/tags/{k}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                Some((
                    tag(cluster::TAG_CLUSTER)?,
                    tag(cluster::TAG_OWNER)?,
                    g.get("name").and_then(Value::as_str)?.to_owned(),
                ))
            })
            .collect())
    }

    /// Deletes resource group `rg` of `cluster_name`, after checking that it carries both the
    /// cluster's and `owner`'s tags (a group of that name made by anyone else is refused).
    async fn delete_group(
        &self,
        cluster_name: &str,
        rg: &str,
        owner: &str,
    ) -> Result<(), ProvisionError> {
        let s = self.session().await?;
        let what = format!("delete resource group {rg}");
        let path = s.arm.sub_path(&format!("/resourcegroups/{rg}"));
        let Some(group) = s.arm.get(&path, API_RESOURCES, &what).await? else {
            return Ok(());
        };
        let tag = |k: &str| group.pointer(&format!("/tags/{k}")).and_then(Value::as_str);
        if tag(cluster::TAG_OWNER) != Some(owner) || tag(cluster::TAG_CLUSTER) != Some(cluster_name)
        {
            return Err(ProvisionError::fatal(format!(
                "Azure: resource group {rg} does not carry Sky's tags for cluster {cluster_name} of owner {owner}; not deleting it"
            )));
        }
        match s
            .arm
            .call(
                reqwest::Method::DELETE,
                &path,
                Some(API_RESOURCES),
                None,
                &what,
            )
            .await
        {
            Ok(answer) => {
                s.arm.finish(answer, &what).await?;
            }
            Err(e) if arm::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        // The operation can report done while ARM still lists the group for a moment: `down`
        // promises it is gone.
        for _ in 0..60 {
            if s.arm.get(&path, API_RESOURCES, &what).await?.is_none() {
                self.expected
                    .lock()
                    .map(|mut m| m.remove(cluster_name))
                    .ok();
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        Err(ProvisionError::new(
            ProvisionErrorKind::Transient,
            format!("Azure: {what}: still present after deletion finished"),
        ))
    }
}

impl AzureProvider {
    fn expected_set(&self, cluster: &str, n: u32) {
        if let Ok(mut m) = self.expected.lock() {
            m.insert(cluster.to_owned(), n);
        }
    }

    fn expected_get(&self, cluster: &str) -> Option<u32> {
        self.expected
            .lock()
            .ok()
            .and_then(|m| m.get(cluster).copied())
    }
}
