//! Where a launch's instances go in a region's network: `aws.vpc_name` (a VPC found by its `Name`
//! tag), the subnet in the attempted zone, and whether the instances get public addresses
//! (`aws.use_internal_ips: true` gives them none). Without either key, nothing is looked up and
//! EC2 places the instances in the default VPC as before.
//!
//! A region without the named VPC, or a zone without a subnet of it, fails the attempt with that
//! scope and the reason, so failover moves on and the launch's attempts say why. What this module
//! does not do: create VPCs or subnets (a company's network is theirs), or change routes.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Subnet};
use sky_core::config::CloudNetwork;
use sky_core::provision::{BlockScope, ProvisionError, ProvisionErrorKind};

use crate::errors::provision_error;

/// The network part of one RunInstances call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPlacement {
    /// The named VPC; `None`: the region's default VPC.
    pub vpc_id: Option<String>,
    /// The subnet to launch into; `None`: EC2's choice in the zone (default VPC only).
    pub subnet_id: Option<String>,
    /// Ask for a public address (an explicit network interface carries the choice).
    pub public_ip: bool,
}

fn unavailable(scope: BlockScope, message: String) -> ProvisionError {
    ProvisionError::new(ProvisionErrorKind::InvalidRequest, message).with_scope(scope)
}

/// Resolves `network` in `region` for an attempt in `zone` (`None`: any zone of the region).
pub async fn place(
    client: &Client,
    network: &CloudNetwork,
    region: &str,
    zone: Option<&str>,
) -> Result<NetworkPlacement, ProvisionError> {
    let public_ip = !network.use_internal_ips;
    if network.vpc_name.is_none() && public_ip {
        return Ok(NetworkPlacement {
            public_ip,
            ..NetworkPlacement::default()
        });
    }
    let vpc_id = match &network.vpc_name {
        Some(name) => Some(vpc_named(client, name, region).await?),
        None => None,
    };
    let mut filters = vec![match &vpc_id {
        Some(id) => Filter::builder().name("vpc-id").values(id).build(),
        // Internal addresses in the default VPC: its default subnets.
        None => Filter::builder()
            .name("default-for-az")
            .values("true")
            .build(),
    }];
    if let Some(zone) = zone {
        filters.push(
            Filter::builder()
                .name("availability-zone")
                .values(zone)
                .build(),
        );
    }
    let subnets = client
        .describe_subnets()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| provision_error("DescribeSubnets", &e))?;
    let where_ = zone.unwrap_or(region);
    let network_name = network
        .vpc_name
        .as_deref()
        .map_or_else(|| "the default VPC".to_owned(), |n| format!("VPC '{n}'"));
    let subnet = pick_subnet(subnets.subnets(), public_ip).ok_or_else(|| {
        unavailable(
            if zone.is_some() {
                BlockScope::Zone
            } else {
                BlockScope::Region
            },
            format!("{network_name} has no subnet in {where_} (aws.vpc_name)"),
        )
    })?;
    Ok(NetworkPlacement {
        vpc_id,
        subnet_id: subnet.subnet_id().map(str::to_owned),
        public_ip,
    })
}

/// The id of the one VPC whose `Name` tag is `name` in the client's region.
async fn vpc_named(client: &Client, name: &str, region: &str) -> Result<String, ProvisionError> {
    let out = client
        .describe_vpcs()
        .filters(Filter::builder().name("tag:Name").values(name).build())
        .send()
        .await
        .map_err(|e| provision_error("DescribeVpcs", &e))?;
    let ids: Vec<&str> = out.vpcs().iter().filter_map(|v| v.vpc_id()).collect();
    match ids.as_slice() {
        [id] => Ok((*id).to_owned()),
        [] => Err(unavailable(
            BlockScope::Region,
            format!(
                "no VPC named '{name}' in {region} (aws.vpc_name); this region cannot take the cluster"
            ),
        )),
        many => Err(unavailable(
            BlockScope::Region,
            format!(
                "{} VPCs are named '{name}' in {region} ({}); name one VPC only (aws.vpc_name)",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

/// A subnet that can take instances: with addresses left, and (when public addresses are wanted)
/// one that gives them by default first; the one with most free addresses among equals.
fn pick_subnet(subnets: &[Subnet], public_ip: bool) -> Option<&Subnet> {
    subnets
        .iter()
        .filter(|s| s.available_ip_address_count().unwrap_or(1) > 0)
        .max_by_key(|s| {
            let maps_public = s.map_public_ip_on_launch().unwrap_or(false);
            (
                public_ip == maps_public,
                s.available_ip_address_count().unwrap_or(0),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, free: i32, public: bool) -> Subnet {
        Subnet::builder()
            .subnet_id(id)
            .available_ip_address_count(free)
            .map_public_ip_on_launch(public)
            .build()
    }

    #[test]
    fn subnets_that_match_the_address_choice_and_have_room_come_first() {
        let all = [
            subnet("full", 0, true),
            subnet("private", 200, false),
            subnet("public", 10, true),
        ];
        assert_eq!(
            pick_subnet(&all, true).and_then(|s| s.subnet_id()),
            Some("public")
        );
        assert_eq!(
            pick_subnet(&all, false).and_then(|s| s.subnet_id()),
            Some("private")
        );
        assert!(pick_subnet(&[subnet("full", 0, true)], true).is_none());
    }
}
