//! The GCP provider through the real `google-cloud-compute-v1` client against the local fake of
//! the Compute Engine API: launch, spot, stop/start, down, reconcile, orphans, request-id
//! deduplication, and failover across zones, regions and clouds with injected faults. Every test
//! ends by checking that the fake holds no instance it should not.

mod support;

use sky_testkit::gcp_fake as fake;

use std::sync::Arc;

use fake::{FakeGce, FaultKind};
use sky_core::cloud::CloudId;
use sky_core::events::{AttemptOutcome, NullSink};
use sky_core::provision::failover::{Blocklist, FailoverError, FailoverOptions, provision};
use sky_core::provision::{HomeOwner, LaunchAttempt};
use sky_core::provision::{
    Launchable, NodeState, Provider, ProvisionErrorKind, ProvisionRequest, Registry,
};
use sky_core::testing::FakeCloud;
use sky_gcp::GcpProvider;
use support::{n2_in, provider_over};

struct Env {
    fake: FakeGce,
    provider: Arc<GcpProvider>,
    /// The owner id of the provider's Sky home.
    owner: String,
    _home: tempfile::TempDir,
}

async fn env() -> Env {
    let fake = FakeGce::start().await;
    let home = tempfile::tempdir().expect("temp SKY_HOME");
    let provider = Arc::new(provider_over(&fake, home.path()));
    let owner = HomeOwner::of_home(home.path()).get().expect("owner");
    Env {
        fake,
        provider,
        owner,
        _home: home,
    }
}

/// The name of the firewall rule of `owner`'s `cluster`.
fn fw(cluster: &str, owner: &str) -> String {
    sky_gcp::spec::firewall_name(&sky_gcp::spec::cluster_id(cluster), owner)
}

fn request(cluster: &str, nodes: u32, l: Launchable) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: nodes,
        launchable: l,
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_node_launch_query_and_idempotent_down() {
    let e = env().await;
    // Operations stay RUNNING for three polls, as real inserts do for a while.
    e.fake.set_op_polls(3);
    let p = &e.provider;
    assert!(p.check().enabled, "{}", p.check().reason);
    assert!(p.verify().await.enabled);
    p.run_instances(&request("train", 3, n2_in("us-central1-a")))
        .await
        .expect("launch");
    let info = p.wait_instances("train").await.expect("running");
    assert_eq!(info.nodes.len(), 3);
    assert_eq!(info.head().map(|h| h.rank), Some(0));
    assert!(info.nodes.iter().all(|n| n.external_ip.is_some()));
    let head = e
        .fake
        .instance("us-central1-a", "train-0")
        .expect("head exists");
    assert_eq!(head["labels"]["sky-cluster"], "train");
    assert_eq!(head["labels"]["sky-node-type"], "head");
    assert_eq!(
        head["machineType"],
        "zones/us-central1-a/machineTypes/n2-standard-8"
    );
    assert_eq!(head["disks"][0]["initializeParams"]["diskSizeGb"], "256");
    assert!(
        head["metadata"]["items"][0]["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("sky:ssh-ed25519 "))
    );
    assert_eq!(head["labels"]["sky-owner"], e.owner.as_str());
    assert!(head["labels"]["sky-launch"].is_string(), "{head}");
    assert_eq!(e.fake.firewalls(), [fw("train", &e.owner)]);
    let states: Vec<NodeState> = p
        .query("train")
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Running; 3]);
    // One insert per node, each polled through zone operations.
    assert_eq!(
        e.fake
            .count_exact("POST /compute/v1/projects/sky-test/zones/us-central1-a/instances"),
        3
    );
    assert!(
        e.fake
            .count_calls("GET /compute/v1/projects/sky-test/zones/us-central1-a/operations/")
            >= 9
    );

    p.terminate("train").await.expect("down");
    assert!(e.fake.instances().is_empty());
    assert!(e.fake.firewalls().is_empty());
    p.terminate("train").await.expect("down again is fine");
    assert!(p.query("train").await.expect("query").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_gpu_nodes_ask_for_spot_and_terminate_on_maintenance() {
    let e = env().await;
    let mut l = n2_in("us-central1-b");
    l.instance_type = "n1-standard-8".into();
    l.use_spot = true;
    l.accelerators = Some(("T4".into(), 1.0));
    e.provider
        .run_instances(&request("spot1", 1, l))
        .await
        .expect("spot launch");
    e.provider.wait_instances("spot1").await.expect("running");
    let i = e.fake.instance("us-central1-b", "spot1-0").expect("node");
    assert_eq!(i["scheduling"]["provisioningModel"], "SPOT");
    assert_eq!(i["scheduling"]["onHostMaintenance"], "TERMINATE");
    assert_eq!(
        i["guestAccelerators"][0]["acceleratorType"],
        "zones/us-central1-b/acceleratorTypes/nvidia-tesla-t4"
    );
    assert!(
        i["disks"][0]["initializeParams"]["sourceImage"]
            .as_str()
            .is_some_and(|s| s.contains("gpu")),
        "{}",
        i["disks"][0]
    );
    e.provider.terminate("spot1").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_start_refreshes_addresses() {
    let e = env().await;
    let p = &e.provider;
    let l = n2_in("europe-west4-a");
    p.run_instances(&request("st", 2, l.clone()))
        .await
        .expect("launch");
    let before = p.wait_instances("st").await.expect("up");
    p.stop("st").await.expect("stop");
    let states: Vec<NodeState> = p
        .query("st")
        .await
        .expect("q")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Stopped; 2]);
    p.stop("st")
        .await
        .expect("stopping a stopped cluster is fine");
    let mut again = request("st", 2, l);
    again.resume_stopped = true;
    p.run_instances(&again).await.expect("start");
    let after = p.wait_instances("st").await.expect("up again");
    assert_eq!(after.nodes.len(), 2);
    assert_ne!(
        before.nodes[0].external_ip, after.nodes[0].external_ip,
        "ephemeral IPs change across stop/start"
    );
    assert_eq!(
        e.fake
            .count_exact("POST /compute/v1/projects/sky-test/zones/europe-west4-a/instances"),
        2,
        "no new inserts on start"
    );
    p.terminate("st").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

/// A start GCE cannot place (the zone out of capacity, reported in the operation) is a capacity
/// error, not a fatal one, and leaves that node stopped with its disk; a later start works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_out_of_capacity_is_capacity_and_leaves_the_node_stopped() {
    let e = env().await;
    let p = &e.provider;
    let l = n2_in("europe-west4-a");
    p.run_instances(&request("full", 2, l.clone()))
        .await
        .expect("launch");
    p.wait_instances("full").await.expect("up");
    p.stop("full").await.expect("stop");
    e.fake.fail_start_in("europe-west4-a");
    let mut again = request("full", 2, l);
    again.resume_stopped = true;
    let err = p.run_instances(&again).await.expect_err("no room to start");
    assert_eq!(err.kind, ProvisionErrorKind::Capacity, "{err}");
    assert!(
        err.to_string().contains("ZONE_RESOURCE_POOL_EXHAUSTED"),
        "{err}"
    );
    let states: Vec<String> = e.fake.statuses().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        states.iter().filter(|s| *s == "TERMINATED").count(),
        1,
        "{states:?}"
    );
    // Once there is room, a start of the whole cluster brings both up.
    p.run_instances(&again)
        .await
        .expect("start once there is room");
    p.wait_instances("full").await.expect("up again");
    assert!(
        e.fake.statuses().iter().all(|(_, s)| s == "RUNNING"),
        "{:?}",
        e.fake.statuses()
    );
    p.terminate("full").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

/// A stop or delete GCE accepts and then fails in its operation fails `stop` / `terminate` with
/// GCE's code, leaving the instance as it was (so the record keeps pointing at it); the next
/// call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_or_delete_failing_in_its_operation_is_reported_and_can_be_retried() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("opf", 1, n2_in("us-east1-b")))
        .await
        .expect("launch");
    p.wait_instances("opf").await.expect("up");
    e.fake.fail_action_in("stop", "us-east1-b");
    let err = p.stop("opf").await.expect_err("stop fails");
    assert!(err.message.contains("INTERNAL_ERROR"), "{err}");
    assert!(
        e.fake.statuses().iter().all(|(_, s)| s != "TERMINATED"),
        "{:?}",
        e.fake.statuses()
    );
    p.stop("opf").await.expect("stop again");
    assert!(
        e.fake.statuses().iter().all(|(_, s)| s == "TERMINATED"),
        "{:?}",
        e.fake.statuses()
    );
    e.fake.fail_action_in("delete", "us-east1-b");
    let err = p.terminate("opf").await.expect_err("delete fails");
    assert!(err.message.contains("INTERNAL_ERROR"), "{err}");
    assert_eq!(e.fake.instances().len(), 1, "the instance is still there");
    p.terminate("opf").await.expect("delete again");
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_sees_outside_changes_and_orphans_are_listed() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("My_Job.1", 2, n2_in("us-east1-b")))
        .await
        .expect("launch");
    p.wait_instances("My_Job.1").await.expect("up");
    p.run_instances(&request("other", 1, n2_in("us-west1-a")))
        .await
        .expect("launch");
    p.wait_instances("other").await.expect("up");
    // A spot preemption, done behind Sky's back.
    let names = e.fake.instances();
    let worker = names.iter().find(|n| n.ends_with("-1")).expect("worker");
    let (zone, name) = worker.split_once('/').expect("zone/name");
    e.fake.set_status(zone, name, "TERMINATED");
    let q = p.query("My_Job.1").await.expect("query");
    assert_eq!(
        q.iter().map(|(h, s)| (h.rank, *s)).collect::<Vec<_>>(),
        [(0, NodeState::Running), (1, NodeState::Stopped)]
    );
    let clusters = p.list_clusters().await.expect("list");
    let listed: Vec<(&str, usize)> = clusters
        .iter()
        .map(|c| (c.name.as_str(), c.nodes.len()))
        .collect();
    assert_eq!(
        listed,
        [("My_Job.1", 2), ("other", 1)],
        "exact Sky names come back"
    );
    // What `sky adopt` needs to price the orphan from the catalog.
    let other = clusters[1].placement.as_ref().expect("placement");
    assert_eq!(
        (
            other.region.as_str(),
            other.zone.as_deref(),
            other.instance_type.as_str()
        ),
        ("us-west1", Some("us-west1-a"), "n2-standard-8")
    );
    assert!(!other.use_spot && !other.stopped);
    p.terminate("My_Job.1").await.expect("down");
    p.terminate("other").await.expect("down");
    assert!(p.list_clusters().await.expect("list").is_empty());
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_insert_answer_is_resent_with_the_same_request_id() {
    let e = env().await;
    e.fake.fail_zone("us-central1-c", FaultKind::LostAnswer);
    e.provider
        .run_instances(&request("dedup", 1, n2_in("us-central1-c")))
        .await
        .expect("launch survives a lost answer");
    e.provider.wait_instances("dedup").await.expect("up");
    assert_eq!(e.fake.instances(), ["us-central1-c/dedup-0"]);
    assert_eq!(e.fake.state().duplicate_inserts, 1);
    e.provider.terminate("dedup").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_launch_is_cleaned_up_and_reports_capacity() {
    let e = env().await;
    // The first two inserts in the zone work, the third finds the zone exhausted.
    e.fake
        .fail_zone_after("us-central1-a", FaultKind::Capacity, 2);
    let err = e
        .provider
        .run_instances(&request("part", 4, n2_in("us-central1-a")))
        .await
        .expect_err("the zone runs out");
    assert_eq!(err.kind, ProvisionErrorKind::Capacity, "{err}");
    assert!(
        err.message.contains("ZONE_RESOURCE_POOL_EXHAUSTED"),
        "{err}"
    );
    assert!(
        e.fake.instances().is_empty(),
        "left: {:?}",
        e.fake.instances()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_map_to_kinds() {
    for (fault, kind) in [
        (FaultKind::Quota, ProvisionErrorKind::Quota),
        (FaultKind::QuotaHttp, ProvisionErrorKind::Quota),
        (FaultKind::CapacityDetails, ProvisionErrorKind::Capacity),
        (FaultKind::Auth, ProvisionErrorKind::Auth),
        (FaultKind::Unavailable, ProvisionErrorKind::Transient),
    ] {
        let e = env().await;
        e.fake.fail_zone("asia-east1-a", fault);
        let err = e
            .provider
            .run_instances(&request("k", 1, n2_in("asia-east1-a")))
            .await
            .expect_err("fault injected");
        assert_eq!(err.kind, kind, "{fault:?}: {err}");
        assert!(!err.message.contains("PRIVATE KEY"), "{err}");
        e.provider.terminate("k").await.expect("cleanup");
        assert!(e.fake.instances().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_walks_zones_then_regions_then_succeeds() {
    let e = env().await;
    e.fake.fail_zone("us-central1-a", FaultKind::Capacity);
    e.fake
        .fail_zone("us-central1-b", FaultKind::CapacityDetails);
    e.fake.fail_zone("us-east1-b", FaultKind::Quota);
    let candidates = [
        n2_in("us-central1-a"),
        n2_in("us-central1-b"),
        n2_in("us-east1-b"),
        n2_in("us-east1-c"),
        n2_in("us-west1-a"),
    ];
    let registry = Registry::new().with(e.provider.clone());
    let mut blocklist = Blocklist::default();
    let (chosen, info) = provision(
        &registry,
        "fo",
        2,
        &candidates,
        &mut blocklist,
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("lands in us-west1");
    assert_eq!(chosen.zone.as_deref(), Some("us-west1-a"));
    assert_eq!(info.nodes.len(), 2);
    // us-east1-c was skipped: quota in us-east1-b blocks the whole region.
    assert_eq!(
        e.fake
            .count_calls("POST /compute/v1/projects/sky-test/zones/us-east1-c"),
        0
    );
    assert_eq!(e.fake.instances(), ["us-west1-a/fo-0", "us-west1-a/fo-1"]);
    e.provider.terminate("fo").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_leaves_gcp_on_auth_errors_for_another_cloud() {
    let e = env().await;
    e.fake.fail_zone("us-central1-a", FaultKind::Auth);
    let other = Arc::new(FakeCloud::new(CloudId::Aws));
    let registry = Registry::new().with(e.provider.clone()).with(other.clone());
    let mut aws = n2_in("us-east-1a");
    aws.cloud = CloudId::Aws;
    let candidates = [n2_in("us-central1-a"), n2_in("us-central1-b"), aws];
    let mut blocklist = Blocklist::default();
    let (chosen, _) = provision(
        &registry,
        "x",
        1,
        &candidates,
        &mut blocklist,
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("lands on the other cloud");
    assert_eq!(chosen.cloud, CloudId::Aws);
    assert_eq!(
        e.fake
            .count_calls("POST /compute/v1/projects/sky-test/zones/us-central1-b"),
        0
    );
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_zone_out_of_capacity_exhausts_with_nothing_left() {
    let e = env().await;
    let zones = ["us-central1-a", "us-central1-b", "us-central1-c"];
    for z in zones {
        e.fake.fail_zone_after(z, FaultKind::Capacity, 1);
    }
    let candidates: Vec<Launchable> = zones.iter().map(|z| n2_in(z)).collect();
    let registry = Registry::new().with(e.provider.clone());
    let err = provision(
        &registry,
        "full",
        3,
        &candidates,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect_err("nowhere has room");
    let FailoverError::Exhausted { attempts } = &err else {
        panic!("expected exhaustion, got {err}");
    };
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| matches!(
        a.outcome,
        AttemptOutcome::Failed {
            kind: ProvisionErrorKind::Capacity,
            cleaned_up: true,
            ..
        }
    )));
    assert!(
        e.fake.instances().is_empty(),
        "left: {:?}",
        e.fake.instances()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_image_and_ports_are_what_the_task_asked() {
    use sky_core::provision::NodeSettings;
    use sky_core::resources::{DiskTier, PortRange};
    let e = env().await;
    let p = &e.provider;
    let mut req = request("tuned", 1, n2_in("us-central1-a"));
    req.settings = NodeSettings {
        disk_size_gb: 500,
        disk_tier: Some(DiskTier::High),
        ports: vec![
            PortRange {
                start: 8080,
                end: 8080,
            },
            PortRange {
                start: 9000,
                end: 9010,
            },
        ],
        image_id: Some("projects/debian-cloud/global/images/family/debian-12".into()),
        ..NodeSettings::default()
    };
    p.run_instances(&req).await.expect("launch");
    p.wait_instances("tuned").await.expect("running");
    let head = e
        .fake
        .instance("us-central1-a", "tuned-0")
        .expect("head exists");
    let init = &head["disks"][0]["initializeParams"];
    assert_eq!(init["diskSizeGb"], "500", "int64 travels as a string");
    assert_eq!(init["diskType"], "zones/us-central1-a/diskTypes/pd-ssd");
    assert_eq!(
        init["sourceImage"],
        "projects/debian-cloud/global/images/family/debian-12"
    );
    let rule = e
        .fake
        .firewall(&fw("tuned", &e.owner))
        .expect("the cluster's rule");
    assert_eq!(
        rule["allowed"][0]["ports"],
        serde_json::json!(["22", "8080", "9000-9010"])
    );
    assert_eq!(head["tags"]["items"], rule["targetTags"]);

    // A relaunch asking for another port patches the existing rule.
    req.settings.ports.push(PortRange {
        start: 7000,
        end: 7000,
    });
    req.num_nodes = 2;
    p.run_instances(&req).await.expect("grow with another port");
    let rule = e
        .fake
        .firewall(&fw("tuned", &e.owner))
        .expect("the cluster's rule");
    assert_eq!(
        rule["allowed"][0]["ports"],
        serde_json::json!(["22", "7000", "8080", "9000-9010"])
    );
    p.terminate("tuned").await.expect("down");
    assert!(e.fake.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skypilots_and_other_homes_nodes_are_never_this_homes() {
    let e = env().await;
    let p = &e.provider;
    // SkyPilot's `dev`, labelled as SkyPilot labels it.
    e.fake.add_instance(
        "us-central1-a",
        "dev-2ea4-head",
        serde_json::json!({"skypilot-cluster-name": "dev", "ray-node-type": "head"}),
    );
    // Another Sky home's `dev` in the same project.
    let other_home = tempfile::tempdir().expect("other home");
    let theirs = provider_over(&e.fake, other_home.path());
    let their_owner = HomeOwner::of_home(other_home.path())
        .get()
        .expect("their owner");
    theirs
        .run_instances(&request("dev", 1, n2_in("us-central1-b")))
        .await
        .expect("their dev");
    theirs.wait_instances("dev").await.expect("their dev runs");
    // This home's `dev`.
    p.run_instances(&request("dev", 2, n2_in("us-central1-c")))
        .await
        .expect("our dev");
    p.wait_instances("dev").await.expect("our dev runs");
    assert_eq!(p.query("dev").await.expect("query").len(), 2, "only ours");
    let mut listed: Vec<(String, Option<String>, usize)> = p
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.name, c.owner, c.nodes.len()))
        .collect();
    listed.sort();
    let mut want = vec![
        ("dev".to_owned(), Some(e.owner.clone()), 2),
        ("dev".to_owned(), Some(their_owner.clone()), 1),
    ];
    want.sort();
    assert_eq!(listed, want, "SkyPilot's node is never listed");

    p.terminate("dev").await.expect("down ours");
    assert_eq!(
        e.fake.instances(),
        ["us-central1-a/dev-2ea4-head", "us-central1-b/dev-0"]
    );
    assert!(
        e.fake.firewall(&fw("dev", &their_owner)).is_some(),
        "their rule stays"
    );
    assert!(e.fake.firewall(&fw("dev", &e.owner)).is_none());

    p.terminate_foreign("dev", &their_owner)
        .await
        .expect("named owner");
    assert_eq!(e.fake.instances(), ["us-central1-a/dev-2ea4-head"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_attempt_is_found_by_its_launch_id() {
    let e = env().await;
    let p = &e.provider;
    let req = request("half", 2, n2_in("us-east1-b"));
    p.run_instances(&req).await.expect("launch");
    let attempt = LaunchAttempt {
        launch_id: req.launch_id.clone(),
        cloud: CloudId::Gcp,
        region: "us-east1".into(),
        zone: Some("us-east1-b".into()),
    };
    let other = LaunchAttempt {
        launch_id: "0000000000000000".into(),
        ..attempt.clone()
    };
    assert_eq!(p.query_launch("half", &attempt).await.expect("q").len(), 2);
    assert!(p.query_launch("half", &other).await.expect("q").is_empty());
    p.terminate_launch("half", &other).await.expect("nothing");
    assert_eq!(e.fake.instances().len(), 2);
    p.terminate_launch("half", &attempt).await.expect("end it");
    assert!(e.fake.instances().is_empty());
    assert!(e.fake.firewalls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_reads_and_deletes_are_retried_in_place_not_read_as_auth() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("rl", 2, n2_in("us-central1-a")))
        .await
        .expect("launch");
    // Google's current error model: 403 with details[].reason = RATE_LIMIT_EXCEEDED, which
    // earlier builds read as an auth failure (blocking the whole cloud).
    e.fake.throttle("GET", 2);
    let info = p
        .wait_instances("rl")
        .await
        .expect("up, through rate-limited reads");
    assert_eq!(info.nodes.len(), 2);
    e.fake.throttle("GET", 2);
    e.fake.throttle("DELETE", 2);
    p.terminate("rl")
        .await
        .expect("down, through rate-limited deletes");
    assert!(e.fake.instances().is_empty());
    assert_eq!(
        e.fake.state().throttled,
        6,
        "every throttled call was retried"
    );
}
