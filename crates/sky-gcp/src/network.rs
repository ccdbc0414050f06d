//! Where a launch's instances go in a project's networks: `gcp.vpc_name` (`NAME`, or
//! `HOST_PROJECT/NAME` for a shared VPC), the subnetwork of the attempted region, and whether the
//! instances get external addresses (`gcp.use_internal_ips: true` gives them none). Without
//! either key nothing is looked up: the `default` network, as before.
//!
//! GCP networks are global and their subnetworks regional, so a network that does not exist
//! rules out GCP for the launch, and a region without a subnetwork of it rules out that region,
//! each with the reason, and failover moves on. An auto-mode network has a subnetwork in every
//! region and needs none named. What this module does not do: create networks or subnetworks.

use google_cloud_compute_v1::client::{Networks, Subnetworks};
use sky_core::config::CloudNetwork;
use sky_core::provision::{BlockScope, ProvisionError, ProvisionErrorKind};

use crate::errors::{from_api, is_not_found};

/// The network part of every instance (and of the cluster's firewall rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlacement {
    /// The network, as the instance body and the firewall rule name it.
    pub network: String,
    /// The region's subnetwork of a custom-mode network; `None`: GCP picks (auto mode).
    pub subnetwork: Option<String>,
    /// Give each node an external address (a one-to-one NAT access config).
    pub public_ip: bool,
}

fn unavailable(scope: BlockScope, message: String) -> ProvisionError {
    ProvisionError::new(ProvisionErrorKind::InvalidRequest, message).with_scope(scope)
}

/// `NAME` in `project`, or `PROJECT/NAME` in that host project.
fn split(vpc: &str, project: &str) -> (String, String) {
    match vpc.split_once('/') {
        Some((host, name)) => (host.to_owned(), name.to_owned()),
        None => (project.to_owned(), vpc.to_owned()),
    }
}

/// Resolves `network` for a launch in `region` of `project`.
pub async fn place(
    networks: &Networks,
    subnetworks: &Subnetworks,
    network: &CloudNetwork,
    project: &str,
    region: &str,
) -> Result<NetworkPlacement, ProvisionError> {
    let public_ip = !network.use_internal_ips;
    let Some(vpc) = &network.vpc_name else {
        return Ok(NetworkPlacement {
            network: "global/networks/default".into(),
            subnetwork: None,
            public_ip,
        });
    };
    let (host, name) = split(vpc, project);
    let found = match networks
        .get()
        .set_project(&host)
        .set_network(&name)
        .send()
        .await
    {
        Ok(n) => n,
        Err(e) if is_not_found(&e) => {
            return Err(unavailable(
                BlockScope::Cloud,
                format!(
                    "no VPC network '{name}' in project {host} (gcp.vpc_name); networks are \
                     global, so GCP cannot take the cluster"
                ),
            ));
        }
        Err(e) => return Err(from_api(&format!("network {name}"), &e)),
    };
    let url = format!("projects/{host}/global/networks/{name}");
    if found.auto_create_subnetworks == Some(true) {
        return Ok(NetworkPlacement {
            network: url,
            subnetwork: None,
            public_ip,
        });
    }
    let mut token = String::new();
    loop {
        let page = subnetworks
            .list()
            .set_project(&host)
            .set_region(region)
            .set_page_token(token.clone())
            .send()
            .await
            .map_err(|e| from_api(&format!("subnetworks of {region}"), &e))?;
        if let Some(sub) = page.items.iter().find(|s| {
            s.network
                .as_deref()
                .is_some_and(|n| n.ends_with(&format!("/global/networks/{name}")))
        }) {
            let sub_name = sub.name.clone().unwrap_or_default();
            return Ok(NetworkPlacement {
                network: url,
                subnetwork: Some(format!(
                    "projects/{host}/regions/{region}/subnetworks/{sub_name}"
                )),
                public_ip,
            });
        }
        match page.next_page_token {
            Some(next) if !next.is_empty() => token = next,
            _ => break,
        }
    }
    Err(unavailable(
        BlockScope::Region,
        format!(
            "VPC network '{name}' has no subnetwork in {region} (gcp.vpc_name); this region cannot \
             take the cluster"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_shared_vpc_names_its_host_project() {
        assert_eq!(split("corp", "p"), ("p".into(), "corp".into()));
        assert_eq!(split("host/corp", "p"), ("host".into(), "corp".into()));
    }
}
