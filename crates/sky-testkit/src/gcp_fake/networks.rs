//! VPC networks and subnetworks as Compute Engine keeps them, enough to check what Sky asks for:
//! `networks.get`, `subnetworks.list` of a region, and the checks an instance insert or a firewall
//! insert makes of the network it names (it must exist; a custom-mode network needs a subnetwork
//! of the instance's region). Every project has the auto-mode `default` network unless a test
//! says otherwise.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Reply, api_error, reply};

/// One network: auto mode (a subnetwork in every region, none to name) or custom mode.
#[derive(Debug, Clone)]
pub(super) struct FakeNetwork {
    pub auto: bool,
}

#[derive(Debug, Clone)]
pub(super) struct FakeSubnet {
    pub project: String,
    pub region: String,
    pub name: String,
    pub network: String,
}

#[derive(Debug, Default)]
pub(super) struct Networks {
    /// By `project/name`; `default` is implied unless listed here.
    pub networks: BTreeMap<String, Option<FakeNetwork>>,
    pub subnets: Vec<FakeSubnet>,
}

const BASE: &str = "https://www.googleapis.com/compute/v1";

impl Networks {
    fn network(&self, project: &str, name: &str) -> Option<FakeNetwork> {
        match self.networks.get(&format!("{project}/{name}")) {
            Some(found) => found.clone(),
            None if name == "default" => Some(FakeNetwork { auto: true }),
            None => None,
        }
    }

    /// `GET projects/P/global/networks/NAME`.
    pub fn get(&self, project: &str, name: &str) -> Reply {
        match self.network(project, name) {
            Some(n) => reply(
                200,
                json!({
                    "kind": "compute#network",
                    "name": name,
                    "selfLink": format!("{BASE}/projects/{project}/global/networks/{name}"),
                    "autoCreateSubnetworks": n.auto,
                    "subnetworks": self.subnets.iter()
                        .filter(|s| s.project == project && s.network == name)
                        .map(|s| format!("{BASE}/projects/{project}/regions/{}/subnetworks/{}", s.region, s.name))
                        .collect::<Vec<_>>(),
                }),
            ),
            None => not_found(&format!("projects/{project}/global/networks/{name}")),
        }
    }

    /// `GET projects/P/regions/R/subnetworks`.
    pub fn list_subnets(&self, project: &str, region: &str) -> Reply {
        let items: Vec<Value> = self
            .subnets
            .iter()
            .filter(|s| s.project == project && s.region == region)
            .map(|s| {
                json!({
                    "kind": "compute#subnetwork",
                    "name": s.name,
                    "region": format!("{BASE}/projects/{project}/regions/{region}"),
                    "network": format!("{BASE}/projects/{project}/global/networks/{}", s.network),
                    "ipCidrRange": "10.10.0.0/20",
                })
            })
            .collect();
        reply(
            200,
            json!({"kind": "compute#subnetworkList", "id": format!("projects/{project}/regions/{region}/subnetworks"), "items": items}),
        )
    }

    /// The checks an insert makes of the network it names (`None`: acceptable).
    pub fn check_network(&self, project: &str, network: &str) -> Option<Reply> {
        let (p, name) = parse(network, project, "networks")?;
        self.network(&p, &name)
            .is_none()
            .then(|| not_found(&format!("projects/{p}/global/networks/{name}")))
    }

    /// An instance's interfaces: each network exists, a custom-mode one names a subnetwork of
    /// the instance's region that belongs to it.
    pub fn check_instance(&self, project: &str, zone: &str, instance: &Value) -> Option<Reply> {
        let region = zone.rsplit_once('-').map_or(zone, |(r, _)| r);
        let nics = instance.get("networkInterfaces")?.as_array()?;
        for (i, nic) in nics.iter().enumerate() {
            let network = nic
                .get("network")
                .and_then(Value::as_str)
                .unwrap_or("global/networks/default");
            if let Some(refused) = self.check_network(project, network) {
                return Some(refused);
            }
            let (p, name) = parse(network, project, "networks")?;
            let auto = self.network(&p, &name).is_some_and(|n| n.auto);
            let sub = nic.get("subnetwork").and_then(Value::as_str);
            match sub {
                None if !auto => {
                    return Some(api_error(
                        400,
                        "invalid",
                        &format!(
                            "Invalid value for field 'resource.networkInterfaces[{i}]': ''. Subnetwork should be specified for custom subnetmode network"
                        ),
                    ));
                }
                None => {}
                Some(sub) => {
                    let found = parse_subnet(sub, project).and_then(|(sp, sr, sn)| {
                        self.subnets
                            .iter()
                            .find(|s| s.project == sp && s.region == sr && s.name == sn)
                    });
                    match found {
                        None => return Some(not_found(sub)),
                        Some(s) if s.region != region || s.network != name => {
                            return Some(api_error(
                                400,
                                "invalid",
                                &format!(
                                    "Invalid value for field 'resource.networkInterfaces[{i}].subnetwork': '{sub}'. The referenced subnetwork resource is in a different network or region."
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        None
    }
}

fn not_found(what: &str) -> Reply {
    api_error(
        404,
        "notFound",
        &format!("The resource '{what}' was not found"),
    )
}

/// `(project, name)` of `global/networks/N`, `projects/P/global/networks/N` or a full URL.
fn parse(path: &str, project: &str, kind: &str) -> Option<(String, String)> {
    let path = path.trim_start_matches(BASE).trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["global", k, name] if *k == kind => Some((project.to_owned(), (*name).to_owned())),
        ["projects", p, "global", k, name] if *k == kind => {
            Some(((*p).to_owned(), (*name).to_owned()))
        }
        _ => None,
    }
}

/// `(project, region, name)` of `regions/R/subnetworks/S`, `projects/P/regions/R/...` or a URL.
fn parse_subnet(path: &str, project: &str) -> Option<(String, String, String)> {
    let path = path.trim_start_matches(BASE).trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["regions", r, "subnetworks", s] => {
            Some((project.to_owned(), (*r).to_owned(), (*s).to_owned()))
        }
        ["projects", p, "regions", r, "subnetworks", s] => {
            Some(((*p).to_owned(), (*r).to_owned(), (*s).to_owned()))
        }
        _ => None,
    }
}
