//! A company's AWS network, against moto through the real SDK: `aws.vpc_name` puts the nodes in
//! that VPC's subnet of the zone (and their security group in that VPC), a region without the VPC
//! fails the attempt for the whole region with the reason, `aws.use_internal_ips` gives the nodes
//! no public address, and `aws.security_group_name` names the group: a company's own group is used
//! as it is, never changed and never deleted.

mod support;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification};
use sky_aws::AwsProvider;
use sky_core::config::CloudNetwork;
use sky_core::provision::{BlockScope, Provider, ProvisionRequest};
use support::*;

fn request(name: &str, nodes: u32) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: nodes,
        launchable: launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

fn named(resource: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

/// A VPC named `name` with one subnet in `zone`, as a company's network team would make it.
async fn company_vpc(client: &Client, name: &str, cidr: &str, zone: &str) -> (String, String) {
    let vpc = client
        .create_vpc()
        .cidr_block(cidr)
        .tag_specifications(named(ResourceType::Vpc, name))
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    let subnet = client
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block(cidr.replace(".0.0/16", ".1.0/24"))
        .availability_zone(zone)
        .send()
        .await
        .expect("create subnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_owned();
    (vpc_id, subnet_id)
}

fn provider_with(home: &std::path::Path, endpoint: &str, network: CloudNetwork) -> AwsProvider {
    let mut options = options(home, endpoint);
    options.network = network;
    AwsProvider::new(options)
}

/// (subnet, vpc, public ip, group ids) of each instance of the launch.
async fn placement(
    client: &Client,
    ids: &[String],
) -> Vec<(String, String, Option<String>, Vec<String>)> {
    let out = client
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .expect("describe");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.subnet_id().unwrap_or_default().to_owned(),
                i.vpc_id().unwrap_or_default().to_owned(),
                i.public_ip_address().map(str::to_owned),
                // The primary interface's groups: real EC2 also lists them as the instance's,
                // moto only on the interface.
                i.network_interfaces()
                    .iter()
                    .flat_map(|n| n.groups())
                    .chain(i.security_groups())
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_vpc_takes_the_nodes_and_a_region_without_it_is_blocked_with_the_reason() {
    let moto = start_moto().await;
    let home = sky_home();
    let network = CloudNetwork {
        vpc_name: Some("corp".into()),
        ..CloudNetwork::default()
    };
    let p = provider_with(home.path(), &moto.url(), network);
    let client = p.client("us-east-1").expect("client");
    let (vpc_id, subnet_id) = company_vpc(&client, "corp", "10.20.0.0/16", "us-east-1a").await;

    p.run_instances(&request("invpc", 2)).await.expect("launch");
    let info = p.wait_instances("invpc").await.expect("wait");
    let ids: Vec<String> = info.nodes.iter().map(|n| n.instance_id.clone()).collect();
    let placed = placement(&client, &ids).await;
    assert_eq!(placed.len(), 2);
    for (subnet, vpc, public, groups) in &placed {
        assert_eq!((subnet, vpc), (&subnet_id, &vpc_id));
        assert!(public.is_some(), "public addresses unless use_internal_ips");
        assert_eq!(groups.len(), 1);
    }
    // The cluster's group lives in the VPC.
    let group = client
        .describe_security_groups()
        .group_ids(&placed[0].3[0])
        .send()
        .await
        .expect("group");
    assert_eq!(group.security_groups()[0].vpc_id(), Some(vpc_id.as_str()));

    // No "corp" in us-west-2: the whole region is ruled out, saying why.
    let mut west = request("west", 1);
    west.launchable = launchable("us-west-2", Some("us-west-2a"), "m5.large", false);
    let err = p.run_instances(&west).await.expect_err("no such vpc");
    assert_eq!(err.scope, Some(BlockScope::Region), "{err:?}");
    assert!(
        err.message.contains("no VPC named 'corp' in us-west-2"),
        "{}",
        err.message
    );
    // A zone of the VPC's region without its subnet rules out that zone only.
    let mut b = request("zoneb", 1);
    b.launchable = launchable("us-east-1", Some("us-east-1b"), "m5.large", false);
    let err = p.run_instances(&b).await.expect_err("no subnet there");
    assert_eq!(err.scope, Some(BlockScope::Zone), "{err:?}");
    assert!(
        err.message.contains("has no subnet in us-east-1b"),
        "{}",
        err.message
    );
    assert_eq!(live_any(&p).await.len(), 2, "nothing else was created");

    p.terminate("invpc").await.expect("down");
    let left = client
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .expect("groups");
    let names: Vec<&str> = left
        .security_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    assert_eq!(names, ["default"], "the cluster's group went with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_ips_give_no_public_address_and_a_companys_group_is_used_as_it_is() {
    let moto = start_moto().await;
    let home = sky_home();
    let network = CloudNetwork {
        vpc_name: Some("corp".into()),
        security_group_name: Some("corp-ssh".into()),
        use_internal_ips: true,
        ..CloudNetwork::default()
    };
    let p = provider_with(home.path(), &moto.url(), network);
    let client = p.client("us-east-1").expect("client");
    let (vpc_id, _) = company_vpc(&client, "corp", "10.30.0.0/16", "us-east-1a").await;
    // The company's group: SSH from its own range only.
    let theirs = client
        .create_security_group()
        .group_name("corp-ssh")
        .description("corp")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("group")
        .group_id()
        .expect("id")
        .to_owned();
    client
        .authorize_security_group_ingress()
        .group_id(&theirs)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build(),
        )
        .send()
        .await
        .expect("rule");
    let rules = |c: Client, id: String| async move {
        c.describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .expect("group")
            .security_groups()[0]
            .ip_permissions()
            .to_vec()
    };
    let before = rules(client.clone(), theirs.clone()).await;

    p.run_instances(&request("private", 1))
        .await
        .expect("launch");
    let info = p.wait_instances("private").await.expect("wait");
    let ids: Vec<String> = info.nodes.iter().map(|n| n.instance_id.clone()).collect();
    let placed = placement(&client, &ids).await;
    assert_eq!(placed[0].2, None, "no public address");
    assert_eq!(
        placed[0].3,
        std::slice::from_ref(&theirs),
        "the company's group"
    );
    assert_eq!(info.nodes[0].external_ip, None);
    assert!(!info.nodes[0].internal_ip.is_empty());
    assert_eq!(
        rules(client.clone(), theirs.clone()).await,
        before,
        "Sky never changes a group it did not create"
    );

    p.terminate("private").await.expect("down");
    let still = client
        .describe_security_groups()
        .group_ids(&theirs)
        .send()
        .await
        .expect("the company's group is still there");
    assert_eq!(still.security_groups().len(), 1);
}
