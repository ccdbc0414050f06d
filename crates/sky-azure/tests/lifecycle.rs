//! The Azure provider's lifecycle against the local ARM fake: launch (multi-node, spot), wait,
//! query, stop/start, down, reconcile after changes behind Sky's back, orphans, credentials.

mod common;

use sky_core::provision::{NodeState, Provider, ProvisionErrorKind};

use common::{env, launchable, provider_for, request};

#[tokio::test]
async fn multi_node_launch_creates_a_tagged_group_and_reports_nodes_head_first() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("c1", 3, launchable("eastus", None, false)))
        .await
        .expect("launch");
    let info = p.wait_instances("c1").await.expect("wait");
    let ranks: Vec<u32> = info.nodes.iter().map(|n| n.rank).collect();
    assert_eq!(ranks, [0, 1, 2]);
    assert_eq!(
        info.nodes
            .iter()
            .map(|n| n.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["c1-0", "c1-1", "c1-2"]
    );
    for n in &info.nodes {
        assert!(n.internal_ip.starts_with("10.0.0."), "{n:?}");
        assert!(
            n.external_ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("20.1.")),
            "{n:?}"
        );
    }
    let owner = e.provider.settings_owner();
    assert_eq!(e.fake.groups(), [format!("sky-c1-tester-{owner}")]);
    let vms = e.fake.vms();
    assert_eq!(vms.len(), 3);
    let head = vms.iter().find(|v| v["name"] == "c1-0").expect("head");
    assert_eq!(head["tags"]["sky-cluster"], "c1");
    assert_eq!(head["tags"]["sky-user"], "tester");
    assert_eq!(head["tags"]["sky-owner"], owner.as_str());
    assert!(head["tags"]["sky-launch"].is_string(), "{head}");
    assert_eq!(head["tags"]["sky-role"], "head");
    assert_eq!(
        head["properties"]["hardwareProfile"]["vmSize"],
        "Standard_D2s_v5"
    );
    assert!(head["properties"].get("priority").is_none());
    let key =
        &head["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"];
    assert!(
        key.as_str().is_some_and(|k| k.starts_with("ssh-ed25519 ")),
        "{key}"
    );
    // Every PUT named an api-version and the VM PUT went out once per node (no re-sent PUTs).
    let vm_puts = e
        .fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/virtualMachines/"))
        .count();
    assert_eq!(vm_puts, 3);
}

#[tokio::test]
async fn spot_nodes_ask_for_spot_priority_with_deallocation_and_a_zone() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("sp", 1, launchable("westus2", Some("2"), true)))
        .await
        .expect("launch");
    p.wait_instances("sp").await.expect("wait");
    let vm = &e.fake.vms()[0];
    assert_eq!(vm["properties"]["priority"], "Spot");
    assert_eq!(vm["properties"]["evictionPolicy"], "Deallocate");
    assert_eq!(vm["properties"]["billingProfile"]["maxPrice"], -1.0);
    assert_eq!(vm["zones"], serde_json::json!(["2"]));
    assert_eq!(vm["location"], "westus2");
}

#[tokio::test]
async fn stop_deallocates_and_start_resumes_the_same_nodes() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("ss", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    let before = p.wait_instances("ss").await.expect("wait");
    p.stop("ss").await.expect("stop");
    let states: Vec<NodeState> = p
        .query("ss")
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Stopped, NodeState::Stopped]);
    let mut resume = request("ss", 2, launchable("eastus", None, false));
    resume.resume_stopped = true;
    p.run_instances(&resume).await.expect("start");
    let after = p.wait_instances("ss").await.expect("wait after start");
    assert_eq!(before, after, "same VMs and addresses after a restart");
    assert_eq!(e.fake.vms().len(), 2, "start creates nothing new");
}

#[tokio::test]
async fn down_deletes_the_resource_group_and_leaves_nothing() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("dn", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    p.wait_instances("dn").await.expect("wait");
    assert!(e.fake.resource_count() > 0);
    p.terminate("dn").await.expect("down");
    assert_eq!(e.fake.resource_count(), 0);
    assert!(p.query("dn").await.expect("query").is_empty());
    // Idempotent: a cluster already gone is fine.
    p.terminate("dn").await.expect("down again");
}

#[tokio::test]
async fn query_reflects_changes_made_behind_skys_back() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("rc", 2, launchable("eastus", None, true)))
        .await
        .expect("launch");
    p.wait_instances("rc").await.expect("wait");
    // A spot eviction deallocates one worker.
    e.fake.set_power("rc-1", "deallocated");
    let q = p.query("rc").await.expect("query");
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].1, NodeState::Running);
    assert_eq!(q[1].1, NodeState::Stopped);
    assert_eq!(q[1].0.instance_id, "rc-1");
    e.fake.set_power("rc-0", "deallocating");
    assert_eq!(
        p.query("rc").await.expect("query")[0].1,
        NodeState::Stopping
    );
}

#[tokio::test]
async fn list_clusters_finds_sky_owned_groups_only() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("orphan", 1, launchable("eastus", None, false)))
        .await
        .expect("launch");
    p.wait_instances("orphan").await.expect("wait");
    // A group with Sky's old tags but no owner (SkyPilot-style, or made by hand) and an
    // unrelated group share the subscription: neither is listed.
    e.fake.add_group(
        "sky-orphan-bob",
        "eastus",
        serde_json::json!({"sky-cluster": "orphan", "sky-user": "bob"}),
    );
    e.fake
        .add_group("my-web-app", "eastus", serde_json::json!({}));
    let clusters = p.list_clusters().await.expect("list");
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].name, "orphan");
    assert_eq!(clusters[0].owner, Some(e.provider.settings_owner()));
    assert_eq!(clusters[0].nodes.len(), 1);
    assert_eq!(clusters[0].nodes[0].instance_id, "orphan-0");
    let placement = clusters[0].placement.as_ref().expect("placement");
    assert_eq!(
        (placement.region.as_str(), placement.instance_type.as_str()),
        ("eastus", "Standard_D2s_v5")
    );
    assert!(!placement.use_spot && !placement.stopped, "{placement:?}");
}

#[tokio::test]
async fn check_is_offline_and_verify_gets_a_token_and_reads_the_subscription() {
    let e = env().await;
    let p = &e.provider;
    let offline = p.check();
    assert!(offline.enabled, "{}", offline.reason);
    assert!(
        e.fake.requests().is_empty(),
        "check must not touch the network"
    );
    let online = p.verify().await;
    assert!(online.enabled, "{}", online.reason);
    assert!(
        online.reason.contains("Fake subscription"),
        "{}",
        online.reason
    );
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_that_does_not_echo_the_secret() {
    let e = env().await;
    let wrong = "not-the-right-secret-value";
    let p = common::provider_for(&e.fake, &e.home, wrong);
    let v = p.verify().await;
    assert!(!v.enabled);
    assert!(v.reason.contains("invalid_client"), "{}", v.reason);
    assert!(!v.reason.contains(wrong));
    let err = p
        .run_instances(&request("x", 1, launchable("eastus", None, false)))
        .await
        .expect_err("no token");
    assert_eq!(err.kind, ProvisionErrorKind::Auth);
    assert!(!err.message.contains(wrong), "{}", err.message);
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn a_revoked_token_is_an_auth_error() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("rv", 1, launchable("eastus", None, false)))
        .await
        .expect("launch");
    e.fake.revoke_tokens();
    let err = p.query("rv").await.expect_err("revoked");
    assert_eq!(err.kind, ProvisionErrorKind::Auth);
    assert!(
        err.message.contains("InvalidAuthenticationToken"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn the_users_key_is_created_on_first_launch_and_installed_on_every_node() {
    let e = env().await;
    e.provider
        .run_instances(&request("nk", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    let public =
        std::fs::read_to_string(e.home.path().join("ssh/sky-key.pub")).expect("key created");
    for vm in e.fake.vms() {
        let key = &vm["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0];
        assert_eq!(key["keyData"].as_str(), Some(public.trim()));
        assert_eq!(key["path"], "/home/azureuser/.ssh/authorized_keys");
    }
}

#[tokio::test]
async fn a_bad_endpoint_in_config_disables_the_cloud_with_a_reason() {
    let home = tempfile::tempdir().expect("home");
    let paths = sky_core::config::Paths::with_home(home.path());
    let config = sky_core::config::SkyConfig::parse("azure:\n  endpoint_url: 42\n", "config.yaml")
        .expect("config");
    let settings = sky_azure::settings(
        &paths,
        &config,
        sky_azure::CredentialSource::KeychainThenEnv,
    );
    let p = sky_azure::AzureProvider::new(settings);
    let c = p.check();
    assert!(!c.enabled);
    assert!(
        c.reason.contains("azure.endpoint_url") && c.reason.contains("42"),
        "{}",
        c.reason
    );
}

#[tokio::test]
async fn another_homes_cluster_of_the_same_name_is_listed_apart_and_never_deleted() {
    let e = env().await;
    let p = &e.provider;
    // Another Sky home of the same local user launches `dev` in the same subscription.
    let other_home = tempfile::tempdir().expect("other home");
    let theirs = provider_for(&e.fake, &other_home, &e.secret);
    theirs
        .run_instances(&request("dev", 1, launchable("eastus", None, false)))
        .await
        .expect("their dev");
    theirs.wait_instances("dev").await.expect("their dev runs");
    let their_owner = theirs.settings_owner();
    // SkyPilot's `dev` group (its own tags).
    e.fake.add_group(
        "sky-dev-tester-skypilot",
        "eastus",
        serde_json::json!({"skypilot-cluster-name": "dev"}),
    );
    p.run_instances(&request("dev", 1, launchable("eastus", None, false)))
        .await
        .expect("our dev");
    p.wait_instances("dev").await.expect("our dev runs");
    assert_eq!(e.fake.groups().len(), 3, "{:?}", e.fake.groups());
    assert_eq!(p.query("dev").await.expect("query").len(), 1);
    let owners: Vec<Option<String>> = p
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.owner)
        .collect();
    assert_eq!(owners.len(), 2, "{owners:?}");
    assert!(owners.contains(&Some(their_owner.clone())));

    p.terminate("dev").await.expect("down ours");
    let mut left = e.fake.groups();
    left.sort();
    let mut want = vec![
        theirs.rg("dev").expect("rg"),
        "sky-dev-tester-skypilot".to_owned(),
    ];
    want.sort();
    assert_eq!(left, want);
    p.terminate_foreign("dev", &their_owner)
        .await
        .expect("named owner");
    assert_eq!(e.fake.groups(), ["sky-dev-tester-skypilot"]);
}

/// A start Compute cannot place is accepted and then fails in its operation
/// (`AllocationFailed`): a capacity error naming the code and the VM, the VMs left deallocated
/// with their disks; a later start brings the same VMs up.
#[tokio::test]
async fn a_start_out_of_capacity_is_capacity_and_leaves_the_vms_deallocated() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("cap", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    let before = p.wait_instances("cap").await.expect("wait");
    p.stop("cap").await.expect("stop");
    e.fake.fail_power("start", "AllocationFailed", 1);
    let mut resume = request("cap", 2, launchable("eastus", None, false));
    resume.resume_stopped = true;
    let err = p
        .run_instances(&resume)
        .await
        .expect_err("no room to start");
    assert_eq!(err.kind, ProvisionErrorKind::Capacity, "{err}");
    assert!(
        err.message.contains("AllocationFailed") && err.message.contains("start VM cap-"),
        "{err}"
    );
    let states: Vec<NodeState> = p
        .query("cap")
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == NodeState::Stopped).count(),
        1,
        "the refused VM stays deallocated: {states:?}"
    );
    p.run_instances(&resume)
        .await
        .expect("start once there is room");
    let after = p.wait_instances("cap").await.expect("up again");
    assert_eq!(before, after, "the same VMs, disks and addresses");
    assert_eq!(e.fake.vms().len(), 2, "nothing new was created");
}

/// A deallocate that fails in its operation fails `stop` with Compute's code, and a later stop
/// deallocates every VM.
#[tokio::test]
async fn a_failed_deallocate_fails_stop_with_the_code_and_a_retry_stops() {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request("dea", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    p.wait_instances("dea").await.expect("wait");
    e.fake.fail_power("deallocate", "OperationNotAllowed", 1);
    let err = p.stop("dea").await.expect_err("deallocate refused");
    assert!(
        err.message.contains("OperationNotAllowed") && err.message.contains("deallocate VM dea-"),
        "{err}"
    );
    p.stop("dea").await.expect("stop again");
    let states: Vec<NodeState> = p
        .query("dea")
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Stopped, NodeState::Stopped]);
}
