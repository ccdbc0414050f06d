//! Failover and error mapping with EC2 errors injected by the proxy in front of moto: capacity
//! of one instance type walks its zones then regions then the next candidate, quota skips the region, throttling is
//! retried in place, auth stops using AWS, and HTTP 500 reaches failover without SDK retries.
//! Every test ends by listing Sky-tagged instances straight from EC2.

mod support;

use std::sync::Arc;

use sky_core::events::{AttemptOutcome, NullSink};
use sky_core::provision::failover::{Blocklist, FailoverError, FailoverOptions, provision};
use sky_core::provision::{Launchable, Provider, ProvisionErrorKind, ProvisionRequest, Registry};
use support::*;

fn registry(p: sky_aws::AwsProvider) -> (Registry, Arc<sky_aws::AwsProvider>) {
    let p = Arc::new(p);
    (Registry::new().with(p.clone()), p)
}

fn failed_kinds(e: &FailoverError) -> Vec<ProvisionErrorKind> {
    e.attempts()
        .iter()
        .filter_map(|a| match &a.outcome {
            AttemptOutcome::Failed { kind, .. } => Some(*kind),
            AttemptOutcome::Succeeded => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_fails_over_zone_then_region_then_next_type() {
    let moto = start_moto().await;
    let proxy = start_proxy(moto.port).await;
    let home = sky_home();
    let (reg, p) = registry(provider(home.path(), &proxy.url()));
    proxy.set_faults(vec![
        Fault::run_instances("InsufficientInstanceCapacity", 500).instance_type("p3.2xlarge"),
        Fault::run_instances("InsufficientInstanceCapacity", 500)
            .zone("us-east-1a")
            .instance_type("m5.large"),
        Fault::run_instances("InsufficientInstanceCapacity", 500)
            .zone("us-east-1b")
            .instance_type("m5.large"),
    ]);
    let candidates: Vec<Launchable> = vec![
        launchable("us-east-1", Some("us-east-1a"), "p3.2xlarge", false),
        launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
        launchable("us-east-1", Some("us-east-1b"), "m5.large", false),
        launchable("us-west-2", Some("us-west-2a"), "m5.large", false),
    ];
    let mut blocklist = Blocklist::default();
    let (chosen, info) = provision(
        &reg,
        "fo",
        2,
        &candidates,
        &mut blocklist,
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("failover reaches us-west-2");
    assert_eq!(chosen.region, "us-west-2");
    assert_eq!(info.nodes.len(), 2);
    // One RunInstances per attempt (500s not retried by the SDK behind failover's back). EC2's
    // capacity error names one instance type in one zone, so the p3 failure in us-east-1a
    // leaves the m5 candidate there to be tried (and fail on its own).
    assert_eq!(proxy.count("RunInstances"), 4);
    assert_eq!(proxy.faults_sent().len(), 3);
    let live = live_tagged(&p).await;
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|(r, _)| r == "us-west-2"), "{live:?}");
    p.terminate("fo").await.expect("terminate");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_skips_the_region_and_auth_stops_aws() {
    let moto = start_moto().await;
    let proxy = start_proxy(moto.port).await;
    let home = sky_home();
    let (reg, p) = registry(provider(home.path(), &proxy.url()));
    proxy.set_faults(vec![
        Fault::run_instances("VcpuLimitExceeded", 400).region("us-east-1"),
        Fault::run_instances("AuthFailure", 401).region("us-east-2"),
    ]);
    let candidates = vec![
        launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
        // Same region, other zone: the quota block must skip it without a call.
        launchable("us-east-1", Some("us-east-1b"), "m5.large", false),
        launchable("us-east-2", Some("us-east-2a"), "m5.large", false),
        // After an auth failure nothing else on AWS is tried.
        launchable("us-west-2", Some("us-west-2a"), "m5.large", false),
    ];
    let err = provision(
        &reg,
        "quota",
        1,
        &candidates,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect_err("every candidate fails");
    assert_eq!(
        failed_kinds(&err),
        vec![ProvisionErrorKind::Quota, ProvisionErrorKind::Auth]
    );
    assert_eq!(proxy.count("RunInstances"), 2);
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_in_place_then_reported_as_transient() {
    let moto = start_moto().await;
    let proxy = start_proxy(moto.port).await;
    let home = sky_home();
    let p = provider(home.path(), &proxy.url());
    let req = ProvisionRequest {
        cluster_name: "throttled".into(),
        num_nodes: 2,
        launchable: launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    };
    proxy.set_faults(vec![
        Fault::run_instances("RequestLimitExceeded", 503).times(3),
    ]);
    p.run_instances(&req)
        .await
        .expect("succeeds after three throttles");
    assert_eq!(proxy.count("RunInstances"), 4);
    assert_eq!(
        p.wait_instances("throttled")
            .await
            .expect("wait")
            .nodes
            .len(),
        2
    );
    p.terminate("throttled").await.expect("terminate");

    // Throttled beyond the bound (4 retries): a transient error, and nothing launched.
    proxy.set_faults(vec![Fault::run_instances("RequestLimitExceeded", 503)]);
    let err = p.run_instances(&req).await.expect_err("gives up");
    assert_eq!(err.kind, ProvisionErrorKind::Transient, "{err}");
    assert!(err.message.contains("RequestLimitExceeded"), "{err}");
    assert_eq!(proxy.count("RunInstances"), 4 + 5);
    p.terminate("throttled").await.expect("terminate");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_reach_failover_as_their_kinds() {
    let moto = start_moto().await;
    let proxy = start_proxy(moto.port).await;
    let home = sky_home();
    let p = provider(home.path(), &proxy.url());
    let cases = [
        (
            "InsufficientInstanceCapacity",
            500,
            ProvisionErrorKind::Capacity,
        ),
        ("InternalError", 500, ProvisionErrorKind::Transient),
        ("InstanceLimitExceeded", 400, ProvisionErrorKind::Quota),
        (
            "MaxSpotInstanceCountExceeded",
            400,
            ProvisionErrorKind::Quota,
        ),
        ("Unsupported", 400, ProvisionErrorKind::InvalidRequest),
        (
            "InvalidParameterCombination",
            400,
            ProvisionErrorKind::InvalidRequest,
        ),
        ("SpotMaxPriceTooLow", 400, ProvisionErrorKind::Capacity),
        ("UnauthorizedOperation", 403, ProvisionErrorKind::Auth),
    ];
    for (i, (code, status, kind)) in cases.into_iter().enumerate() {
        proxy.set_faults(vec![Fault::run_instances(code, status)]);
        let req = ProvisionRequest {
            cluster_name: format!("kind{i}"),
            num_nodes: 1,
            launchable: launchable("us-east-1", Some("us-east-1c"), "m5.large", false),
            resume_stopped: false,
            settings: Default::default(),
            launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
        };
        let before = proxy.count("RunInstances");
        let err = p.run_instances(&req).await.expect_err(code);
        assert_eq!(err.kind, kind, "{code}: {err}");
        assert!(err.message.contains(code), "{err}");
        assert!(err.message.contains("us-east-1c"), "{err}");
        assert_eq!(
            proxy.count("RunInstances") - before,
            1,
            "{code} was retried"
        );
    }
    assert!(live_tagged(&p).await.is_empty());
}
