//! The AWS provider through the real `sky` binary (built with the `aws` feature, as the test
//! command builds it) against moto: `sky check` asks EC2, a launch killed with `kill -9` while it
//! waits for its nodes is cleaned up by `sky status --refresh`, and orphans are listed, adopted
//! with `sky adopt` or terminated with `sky down --orphan`.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sky_core::provision::{Provider, ProvisionRequest};
use support::*;

fn sky(home: &Path) -> Command {
    let creds = test_credentials();
    let mut cmd = Command::new(sky_binary());
    cmd.env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env("SKY_MINIMIZE_LOGGING", "1")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.expose())
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("SKY_DEV");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run sky");
    assert!(
        out.status.success(),
        "sky failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write_config(home: &Path, endpoint: &str) {
    let regions = TEST_REGIONS.join(", ");
    std::fs::write(
        home.join("config.yaml"),
        format!(
            "allowed_clouds: [aws]\naws:\n  endpoint_url: {endpoint}\n  regions: [{regions}]\n  image_id: ami-0123456789abcdef0\n  disk_size: 20\n"
        ),
    )
    .expect("write config.yaml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_asks_ec2() {
    let moto = start_moto().await;
    let home = sky_home();
    write_config(home.path(), &moto.url());
    let out = run(sky(home.path()).args(["check", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let aws = v["clouds"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["cloud"] == "aws"))
        .cloned()
        .expect("aws row");
    assert_eq!(aws["enabled"], true, "{aws}");
    assert!(
        aws["reason"]
            .as_str()
            .is_some_and(|r| r.contains("DescribeRegions")),
        "{aws}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_launch_then_refresh_leaves_nothing_behind() {
    let moto = start_moto().await;
    let proxy = start_proxy(moto.port).await;
    let home = sky_home();
    write_config(home.path(), &proxy.url());
    let p = provider(home.path(), &moto.url());

    // Freeze the launch while it waits for its nodes: they exist, the record has no placement.
    proxy.hold_after("RunInstances", "DescribeInstances");
    let mut child = sky(home.path())
        .args([
            "launch",
            "-c",
            "k9",
            "--infra",
            "aws/us-east-1",
            "-t",
            "m6i.large",
            "--num-nodes",
            "2",
            "-y",
            "echo",
            "hi",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sky launch");
    let mut waited = 0;
    while !proxy.is_blocking() {
        if let Some(status) = child.try_wait().expect("poll sky launch") {
            panic!("sky launch ended before it waited for its nodes: {status}");
        }
        waited += 1;
        assert!(waited < 1200, "sky launch never reached RunInstances");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("kill -9 sky launch");
    child.wait().expect("reap sky launch");
    assert_eq!(
        live_tagged(&p).await.len(),
        2,
        "the killed launch left its nodes"
    );
    proxy.release();

    let out = run(sky(home.path()).args(["status", "--refresh", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["clusters"], serde_json::json!([]), "{v}");
    assert!(
        v["changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["cluster"] == "k9" && c["to"].is_null())),
        "{v}"
    );
    assert!(live_tagged(&p).await.is_empty());
}

/// A 2-node cluster of the test's Sky home (its owner id) launched through a separate directory,
/// so the home's database has no record of it, as after a lost record: an orphan for the test's
/// home. The directory is returned so it lives as long as the provider using it.
async fn launch_elsewhere(
    moto: &Moto,
    home: &Path,
    cluster: &str,
    instance_type: &str,
) -> (tempfile::TempDir, sky_aws::AwsProvider) {
    let elsewhere = sky_home();
    let mut o = options(elsewhere.path(), &moto.url());
    o.owner = sky_core::provision::HomeOwner::of_home(home);
    let p = sky_aws::AwsProvider::new(o);
    p.run_instances(&ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: 2,
        launchable: launchable("us-west-2", Some("us-west-2b"), instance_type, false),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    })
    .await
    .expect("launch behind this home's back");
    (elsewhere, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_reported_and_terminated_on_request() {
    let moto = start_moto().await;
    let home = sky_home();
    write_config(home.path(), &moto.url());
    let (_elsewhere, p) = launch_elsewhere(&moto, home.path(), "stray", "m5.large").await;

    let out = run(sky(home.path()).args(["status", "--refresh"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Orphans"), "{text}");
    assert!(
        text.contains("stray on AWS: 2 x m5.large in us-west-2 (i-"),
        "{text}"
    );
    let out = run(sky(home.path()).args(["status", "--refresh", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["orphans"][0]["name"], "stray", "{v}");

    // A name that is not an orphan is refused, nothing is touched.
    let out = sky(home.path())
        .args(["down", "--orphan", "nosuch", "-y"])
        .output()
        .expect("run sky");
    assert!(!out.status.success());
    assert_eq!(live_tagged(&p).await.len(), 2);

    run(sky(home.path()).args(["down", "--orphan", "stray", "-y"]));
    assert!(live_tagged(&p).await.is_empty());
    let out = run(sky(home.path()).args(["status", "--refresh"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Orphans"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_orphan_is_priced_stopped_and_torn_down_like_any_cluster() {
    let moto = start_moto().await;
    let home = sky_home();
    write_config(home.path(), &moto.url());
    let (_elsewhere, p) = launch_elsewhere(&moto, home.path(), "found", "m6i.large").await;
    p.wait_instances("found").await.expect("running");

    // Unknown names are refused before anything is recorded.
    let out = sky(home.path())
        .args(["adopt", "nosuch"])
        .output()
        .expect("run sky");
    assert!(!out.status.success());

    run(sky(home.path()).args(["adopt", "found"]));
    let out = run(sky(home.path()).args(["status", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let c = &v["clusters"][0];
    assert_eq!(c["name"], "found", "{v}");
    assert_eq!(c["status"], "UP", "{v}");
    assert_eq!(c["instance_type"], "m6i.large", "{v}");
    assert_eq!(c["num_nodes"], 2, "{v}");
    assert!(c["hourly_price"].as_f64().is_some_and(|p| p > 0.05), "{v}");
    let out = run(sky(home.path()).args(["status", "--refresh"]));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Orphans"),
        "an adopted cluster is no orphan"
    );

    // Now an ordinary cluster: stop reaches the cloud, down leaves nothing.
    run(sky(home.path()).args(["stop", "found", "-y"]));
    let states = p.query("found").await.expect("query");
    assert!(
        states
            .iter()
            .all(|(_, s)| *s != sky_core::provision::NodeState::Running),
        "{states:?}"
    );
    run(sky(home.path()).args(["down", "found", "-y"]));
    assert!(live_tagged(&p).await.is_empty());
}
