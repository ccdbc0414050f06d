//! The AWS provider's lifecycle against moto through the real SDK: multi-node, spot, stop/start,
//! terminate, listing clusters for orphan detection, and `verify`. Every test ends by listing
//! Sky-tagged instances straight from EC2 to prove nothing was left behind.

mod support;

use sky_core::provision::{NodeState, Provider, ProvisionRequest};
use support::*;

fn request(name: &str, nodes: u32, spot: bool) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: nodes,
        launchable: launchable("us-east-1", Some("us-east-1a"), "m5.large", spot),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_node_launch_stop_start_terminate() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());

    p.run_instances(&request("multi", 3, false))
        .await
        .expect("launch");
    let info = p.wait_instances("multi").await.expect("wait");
    assert_eq!(info.nodes.len(), 3);
    assert_eq!(
        info.nodes.iter().map(|n| n.rank).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(info.nodes.iter().all(|n| !n.internal_ip.is_empty()));
    let ids: Vec<String> = info.nodes.iter().map(|n| n.instance_id.clone()).collect();

    // Launching again (a reconcile after a crash) must not create a second cluster.
    p.run_instances(&request("multi", 3, false))
        .await
        .expect("relaunch");
    assert_eq!(p.query("multi").await.expect("query").len(), 3);

    p.stop("multi").await.expect("stop");
    let states = p.query("multi").await.expect("query stopped");
    assert!(
        states.iter().all(|(_, s)| *s == NodeState::Stopped),
        "{states:?}"
    );

    let mut resume = request("multi", 3, false);
    resume.resume_stopped = true;
    p.run_instances(&resume).await.expect("start");
    let again = p.wait_instances("multi").await.expect("wait after start");
    let again_ids: Vec<String> = again.nodes.iter().map(|n| n.instance_id.clone()).collect();
    assert_eq!(ids, again_ids, "start keeps the same instances, head first");
    // moto gives restarted instances new public addresses, like EC2: the handles must follow.
    let before: Vec<_> = info.nodes.iter().map(|n| n.external_ip.clone()).collect();
    let after: Vec<_> = again.nodes.iter().map(|n| n.external_ip.clone()).collect();
    assert!(after.iter().all(Option::is_some), "{after:?}");
    assert_ne!(before, after, "public IPs must be refreshed after start");

    p.terminate("multi").await.expect("terminate");
    p.terminate("multi").await.expect("terminate is idempotent");
    assert!(p.query("multi").await.expect("query gone").is_empty());
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_nodes_are_requested_as_spot() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    p.run_instances(&request("spotty", 2, true))
        .await
        .expect("launch spot");
    p.wait_instances("spotty").await.expect("wait");
    let client = p.client("us-east-1").expect("client");
    let out = client
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:sky-cluster")
                .values("spotty")
                .build(),
        )
        .send()
        .await
        .expect("describe");
    let lifecycles: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| i.instance_lifecycle().map(|l| l.as_str().to_owned()))
        .collect();
    assert_eq!(lifecycles, vec![Some("spot".to_owned()); 2]);
    p.terminate("spotty").await.expect("terminate");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_unknown_to_the_caller_are_listed_across_regions() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let mut west = request("west", 1, false);
    west.launchable = launchable("us-west-2", None, "m5.large", false);
    p.run_instances(&west).await.expect("launch west");
    p.run_instances(&request("east", 2, false))
        .await
        .expect("launch east");

    // A fresh provider over another Sky home has no region records: it must search.
    let other_home = sky_home();
    let fresh = provider(other_home.path(), &moto.url());
    let listed = fresh.list_clusters().await.expect("list");
    let names: Vec<(&str, usize)> = listed
        .iter()
        .map(|c| (c.name.as_str(), c.nodes.len()))
        .collect();
    assert_eq!(names, vec![("east", 2), ("west", 1)]);
    // What `sky adopt` needs to price the orphan from the catalog.
    let west = listed[1].placement.as_ref().expect("west's placement");
    assert_eq!(
        (
            west.region.as_str(),
            west.instance_type.as_str(),
            west.use_spot,
            west.stopped
        ),
        ("us-west-2", "m5.large", false, false)
    );
    assert!(
        west.zone
            .as_deref()
            .is_some_and(|z| z.starts_with("us-west-2"))
    );
    // They are the first home's, which the listing says; the other home acts on them only
    // when told their owner.
    let owner = p.options().owner.get().expect("owner");
    assert!(
        listed
            .iter()
            .all(|c| c.owner.as_deref() == Some(owner.as_str()))
    );
    fresh.terminate("west").await.expect("nothing of its own");
    assert_eq!(live_tagged(&p).await.len(), 3, "not its clusters to end");
    fresh
        .terminate_foreign("west", &owner)
        .await
        .expect("terminate the named owner's cluster");
    p.terminate("east").await.expect("terminate own");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_asks_ec2_and_check_stays_offline() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let offline = p.check();
    assert!(offline.enabled, "{}", offline.reason);
    let verified = p.verify().await;
    assert!(verified.enabled, "{}", verified.reason);
    assert!(
        verified.reason.contains("DescribeRegions"),
        "{}",
        verified.reason
    );

    // Nothing listens here: verify fails and says so, check does not notice.
    let dead = provider(home.path(), "http://127.0.0.1:9");
    assert!(dead.check().enabled);
    let v = dead.verify().await;
    assert!(!v.enabled);
    assert!(v.reason.contains("DescribeRegions"), "{}", v.reason);
    assert!(
        !v.reason.contains("made-up-"),
        "the secret leaked: {}",
        v.reason
    );
}
