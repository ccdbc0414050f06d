//! The Compute Engine calls the provider is made of: list a cluster's instances by label, insert
//! one node, start/stop/delete one instance, ensure the cluster's firewall rule, each waiting for
//! its operation and checking the finished operation's `error`.
//!
//! Every function takes the clients by value so the provider can run them concurrently on tokio
//! tasks. What this module does not do: decide which nodes to create or how to react to a failure
//! (the provider does).

use std::time::Duration;

use google_cloud_compute_v1::client::{Firewalls, Instances};
use google_cloud_compute_v1::model::{Firewall, Instance, Operation, instance, scheduling};
use google_cloud_lro::Poller;
use sky_core::provision::{NodeHandle, NodeState, ProvisionError, ProvisionErrorKind};

use sky_core::provision::throttle::Throttle;

use crate::errors::{from_api, from_operation, is_already_exists, is_not_found, throttle_verdict};
use crate::spec::{LABEL_CLUSTER, LABEL_LAUNCH, LABEL_OWNER, LABEL_RANK, META_CLUSTER_NAME};

/// How often an insert whose answer was lost (transient error) is re-sent with the same request
/// id before the error goes to failover.
const INSERT_TRIES: u32 = 3;

/// One instance of a cluster as listed.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub zone: String,
    pub rank: u32,
    pub cluster_name: String,
    /// The owner id and launch id labels (absent on nodes Sky did not make).
    pub owner: Option<String>,
    pub launch: Option<String>,
    pub status: Option<instance::Status>,
    pub internal_ip: Option<String>,
    pub external_ip: Option<String>,
    /// The machine type's name (the API gives a URL ending in it).
    pub machine_type: Option<String>,
    pub spot: bool,
}

impl Node {
    pub fn from_instance(i: &Instance) -> Option<Node> {
        let name = i.name.clone()?;
        let zone = i.zone.as_deref()?.rsplit('/').next()?.to_owned();
        let rank = i.labels.get(LABEL_RANK)?.parse().ok()?;
        let owner = i.labels.get(LABEL_OWNER).cloned();
        let launch = i.labels.get(LABEL_LAUNCH).cloned();
        let label = i.labels.get(LABEL_CLUSTER)?.clone();
        let cluster_name = i
            .metadata
            .as_ref()
            .and_then(|m| {
                m.items
                    .iter()
                    .find(|it| it.key.as_deref() == Some(META_CLUSTER_NAME))
            })
            .and_then(|it| it.value.clone())
            .unwrap_or(label);
        let nic = i.network_interfaces.first();
        Some(Node {
            name,
            zone,
            rank,
            cluster_name,
            owner,
            launch,
            status: i.status.clone(),
            internal_ip: nic.and_then(|n| n.network_ip.clone()),
            external_ip: nic
                .and_then(|n| n.access_configs.first())
                .and_then(|a| a.nat_ip.clone()),
            machine_type: i
                .machine_type
                .as_deref()
                .and_then(|url| url.rsplit('/').next())
                .map(str::to_owned),
            spot: i.scheduling.as_ref().is_some_and(|s| {
                s.provisioning_model == Some(scheduling::ProvisioningModel::Spot)
                    || s.preemptible == Some(true)
            }),
        })
    }

    pub fn state(&self) -> NodeState {
        use instance::Status as S;
        match &self.status {
            Some(S::Running) => NodeState::Running,
            Some(S::Stopping | S::Suspending) => NodeState::Stopping,
            Some(S::Terminated | S::Stopped | S::Suspended) => NodeState::Stopped,
            _ => NodeState::Pending,
        }
    }

    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            rank: self.rank,
            instance_id: format!("{}/{}", self.zone, self.name),
            internal_ip: self.internal_ip.clone().unwrap_or_default(),
            external_ip: self.external_ip.clone(),
            local_dir: None,
        }
    }
}

/// Which Sky instances a list asks for. Every scope requires Sky's owner label, so instances
/// without it (SkyPilot's, anyone's) never match.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One owner's nodes of the cluster with this [`crate::spec::cluster_id`].
    Cluster { owner: &'a str, cluster_id: &'a str },
    /// What one create attempt of one owner made.
    Launch { owner: &'a str, launch: &'a str },
    /// Every Sky-owned node, whoever the owner.
    AnyOwner,
}

impl Scope<'_> {
    /// The `aggregatedList` filter: parenthesised expressions joined by `AND`.
    pub fn filter(&self) -> String {
        match *self {
            Scope::Cluster { owner, cluster_id } => format!(
                "(labels.{LABEL_OWNER} = \"{owner}\") AND (labels.{LABEL_CLUSTER} = \"{cluster_id}\")"
            ),
            Scope::Launch { owner, launch } => format!(
                "(labels.{LABEL_OWNER} = \"{owner}\") AND (labels.{LABEL_LAUNCH} = \"{launch}\")"
            ),
            Scope::AnyOwner => format!("(labels.{LABEL_OWNER}:*) AND (labels.{LABEL_CLUSTER}:*)"),
        }
    }
}

/// Every Sky instance in the project (all zones) that `scope` names.
pub async fn list(
    client: &Instances,
    project: &str,
    scope: Scope<'_>,
) -> Result<Vec<Node>, ProvisionError> {
    let filter = scope.filter();
    let mut nodes = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let token = page.take();
        let resp = Throttle::default()
            .run(
                "instances.aggregatedList",
                || {
                    client
                        .aggregated_list()
                        .set_project(project)
                        .set_filter(filter.clone())
                        .set_or_clear_page_token(token.clone())
                        .send()
                },
                throttle_verdict,
            )
            .await
            .map_err(|e| from_api("instances.aggregatedList", &e))?;
        for scoped in resp.items.values() {
            nodes.extend(scoped.instances.iter().filter_map(Node::from_instance));
        }
        match resp.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => page = Some(t),
            None => break,
        }
    }
    nodes.sort_by_key(|n| n.rank);
    Ok(nodes)
}

/// One cheap authenticated call: a one-item page of the project's instances.
pub async fn probe(client: &Instances, project: &str) -> Result<(), ProvisionError> {
    client
        .aggregated_list()
        .set_project(project)
        .set_max_results(1u32)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| from_api("instances.aggregatedList", &e))
}

fn check(what: &str, op: Operation) -> Result<(), ProvisionError> {
    match from_operation(what, &op) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Inserts one instance and waits for its operation. A transient failure is re-sent with the same
/// request id, which GCP deduplicates, so a lost answer never makes a second VM.
pub async fn insert(
    client: Instances,
    project: String,
    zone: String,
    body: Instance,
    request_id: String,
    retry_gap: Duration,
) -> Result<(), ProvisionError> {
    let name = body.name.clone().unwrap_or_default();
    let what = format!("insert {name} in {zone}");
    let mut tries = 0;
    loop {
        tries += 1;
        let result = client
            .insert()
            .set_project(project.clone())
            .set_zone(zone.clone())
            .set_request_id(request_id.clone())
            .set_body(body.clone())
            .poller()
            .until_done()
            .await;
        let err = match result {
            Ok(op) => return check(&what, op),
            Err(e) => from_api(&what, &e),
        };
        if err.kind != ProvisionErrorKind::Transient || tries >= INSERT_TRIES {
            return Err(err);
        }
        tracing::debug!(instance = %name, tries, "insert failed transiently, re-sending with the same request id");
        tokio::time::sleep(retry_gap * tries).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Delete,
}

/// Starts, stops or deletes one instance and waits for it; deleting what is gone is `Ok`.
pub async fn act(
    client: Instances,
    project: String,
    zone: String,
    name: String,
    action: Action,
) -> Result<(), ProvisionError> {
    let what = format!("{action:?} {name} in {zone}").to_lowercase();
    // Starting a started, stopping a stopped or deleting a deleted instance is harmless, so a
    // throttled call (or a throttled poll of its operation) is sent again after the wait.
    let call = || {
        let (client, project, zone, name) = (&client, &project, &zone, &name);
        async move {
            match action {
                Action::Start => {
                    client
                        .start()
                        .set_project(project)
                        .set_zone(zone)
                        .set_instance(name)
                        .poller()
                        .until_done()
                        .await
                }
                Action::Stop => {
                    client
                        .stop()
                        .set_project(project)
                        .set_zone(zone)
                        .set_instance(name)
                        .poller()
                        .until_done()
                        .await
                }
                Action::Delete => {
                    client
                        .delete()
                        .set_project(project)
                        .set_zone(zone)
                        .set_instance(name)
                        .poller()
                        .until_done()
                        .await
                }
            }
        }
    };
    let result = Throttle::default().run(&what, call, throttle_verdict).await;
    match result {
        Ok(op) => match from_operation(&what, &op) {
            Some(e) if action == Action::Delete && op.http_error_status_code == Some(404) => {
                tracing::debug!(error = %e, "instance already gone");
                Ok(())
            }
            Some(e) => Err(e),
            None => Ok(()),
        },
        Err(e) if action == Action::Delete && is_not_found(&e) => Ok(()),
        Err(e) => Err(from_api(&what, &e)),
    }
}

/// Creates the cluster's firewall rule; when it exists (a relaunch), patches it to `body` so
/// ports the task now asks for are opened.
pub async fn ensure_firewall(
    client: &Firewalls,
    project: &str,
    body: Firewall,
) -> Result<(), ProvisionError> {
    let name = body.name.clone().unwrap_or_default();
    let what = format!("firewall {name}");
    let exists = match client
        .insert()
        .set_project(project)
        .set_body(body.clone())
        .poller()
        .until_done()
        .await
    {
        Ok(op) => match from_operation(&what, &op) {
            Some(_) if op.http_error_status_code == Some(409) => true,
            Some(e) => return Err(e),
            None => false,
        },
        Err(e) if is_already_exists(&e) => true,
        Err(e) => return Err(from_api(&what, &e)),
    };
    if !exists {
        return Ok(());
    }
    let what = format!("patch firewall {name}");
    match client
        .patch()
        .set_project(project)
        .set_firewall(&name)
        .set_body(body)
        .poller()
        .until_done()
        .await
    {
        Ok(op) => from_operation(&what, &op).map_or(Ok(()), Err),
        Err(e) => Err(from_api(&what, &e)),
    }
}

/// Deletes the cluster's firewall rule; a rule that is gone is `Ok`.
pub async fn delete_firewall(
    client: &Firewalls,
    project: &str,
    name: &str,
) -> Result<(), ProvisionError> {
    let what = format!("delete firewall {name}");
    match client
        .delete()
        .set_project(project)
        .set_firewall(name)
        .poller()
        .until_done()
        .await
    {
        Ok(op) => match from_operation(&what, &op) {
            Some(_) if op.http_error_status_code == Some(404) => Ok(()),
            Some(e) => Err(e),
            None => Ok(()),
        },
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(from_api(&what, &e)),
    }
}
