//! A company's GCP network, through the real client against the Compute Engine fake:
//! `gcp.vpc_name` puts the nodes (and the cluster's firewall rule) in that network and the
//! region's subnetwork, a region without a subnetwork of it is ruled out with the reason, a
//! network that does not exist rules out GCP, and `gcp.use_internal_ips` gives the nodes no
//! external address.

mod support;

use sky_core::config::{CloudNetwork, ProxyCommand};
use sky_core::provision::{BlockScope, Provider, ProvisionRequest};
use sky_testkit::gcp_fake::FakeGce;
use support::{PROJECT, n2_in, provider_with_network};

fn request(cluster: &str, zone: &str) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: 2,
        launchable: n2_in(zone),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_network_and_its_subnetwork_take_the_nodes_with_internal_addresses_only() {
    let fake = FakeGce::start().await;
    fake.add_network(PROJECT, "corp", false);
    fake.add_subnetwork(PROJECT, "us-central1", "corp-central", "corp");
    let home = tempfile::tempdir().expect("home");
    let p = provider_with_network(
        &fake,
        home.path(),
        CloudNetwork {
            vpc_name: Some("corp".into()),
            use_internal_ips: true,
            ssh_proxy_command: Some(ProxyCommand::PerRegion(
                [
                    (
                        "us-central1".to_owned(),
                        Some("ssh -W %h:%p bastion".to_owned()),
                    ),
                    ("europe-west4".to_owned(), None),
                ]
                .into(),
            )),
            ..CloudNetwork::default()
        },
    );
    p.run_instances(&request("invpc", "us-central1-a"))
        .await
        .expect("launch");
    let info = p.wait_instances("invpc").await.expect("running");
    assert_eq!(info.nodes.len(), 2);
    for node in &info.nodes {
        assert_eq!(node.external_ip, None, "no external address");
        let name = node.instance_id.split_once('/').expect("zone/name").1;
        let body = fake.instance_named(name).expect("instance");
        let nic = &body["networkInterfaces"][0];
        assert_eq!(
            nic["network"], "projects/sky-test/global/networks/corp",
            "{nic}"
        );
        assert_eq!(
            nic["subnetwork"], "projects/sky-test/regions/us-central1/subnetworks/corp-central",
            "{nic}"
        );
        assert!(
            nic.get("accessConfigs")
                .is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)),
            "{nic}"
        );
    }
    // Sky (and `ssh CLUSTER`) reach the nodes by their internal addresses through the proxy
    // command of their region.
    let targets = p
        .ssh_targets("invpc", &info)
        .expect("nodes reached over SSH")
        .expect("targets");
    for (target, node) in targets.iter().zip(&info.nodes) {
        assert_eq!(target.host, node.internal_ip);
        assert_eq!(
            target.proxy_command.as_deref(),
            Some("ssh -W %h:%p bastion")
        );
    }
    let rules = fake.firewalls();
    assert_eq!(rules.len(), 1);
    let rule = fake.firewall(&rules[0]).expect("rule");
    assert_eq!(rule["network"], "projects/sky-test/global/networks/corp");

    // No subnetwork of corp in europe-west4: that region is ruled out, saying why.
    let err = p
        .run_instances(&request("eu", "europe-west4-a"))
        .await
        .expect_err("no subnetwork there");
    assert_eq!(err.scope, Some(BlockScope::Region), "{err:?}");
    assert!(
        err.message
            .contains("'corp' has no subnetwork in europe-west4"),
        "{}",
        err.message
    );
    // Stop and start an instance that has no external address.
    p.stop("invpc").await.expect("stop");
    let mut again = request("invpc", "us-central1-a");
    again.resume_stopped = true;
    p.run_instances(&again).await.expect("start");
    let info = p.wait_instances("invpc").await.expect("running again");
    assert!(info.nodes.iter().all(|n| n.external_ip.is_none()));
    p.terminate("invpc").await.expect("down");
    assert_eq!(fake.instances(), Vec::<String>::new());
    assert!(fake.firewalls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_does_not_exist_rules_out_gcp() {
    let fake = FakeGce::start().await;
    let home = tempfile::tempdir().expect("home");
    let p = provider_with_network(
        &fake,
        home.path(),
        CloudNetwork {
            vpc_name: Some("nope".into()),
            ..CloudNetwork::default()
        },
    );
    let err = p
        .run_instances(&request("none", "us-central1-a"))
        .await
        .expect_err("no such network");
    assert_eq!(err.scope, Some(BlockScope::Cloud), "{err:?}");
    assert!(
        err.message.contains("no VPC network 'nope'"),
        "{}",
        err.message
    );
    assert_eq!(fake.instances(), Vec::<String>::new());
    assert!(fake.firewalls().is_empty(), "nothing was created");
}
