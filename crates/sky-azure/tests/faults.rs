//! Injected Azure faults, synchronous and as Failed operations, classified by code and driven
//! through the core's failover: zones, then regions, then giving up; nothing left behind.

mod common;
use sky_testkit::azure_fake as fake;

use std::sync::Arc;

use sky_core::events::{AttemptOutcome, NullSink};
use sky_core::provision::failover::{self, Blocklist, FailoverError, FailoverOptions};
use sky_core::provision::{Provider, ProvisionErrorKind, Registry};

use common::{env, launchable, request};
use fake::{Fault, Mode};

const CASES: &[(&str, ProvisionErrorKind)] = &[
    ("SkuNotAvailable", ProvisionErrorKind::Capacity),
    ("AllocationFailed", ProvisionErrorKind::Capacity),
    ("ZonalAllocationFailed", ProvisionErrorKind::Capacity),
    (
        "OverconstrainedAllocationRequest",
        ProvisionErrorKind::Capacity,
    ),
    ("QuotaExceeded", ProvisionErrorKind::Quota),
    ("OperationNotAllowed", ProvisionErrorKind::Quota),
    ("AuthorizationFailed", ProvisionErrorKind::Auth),
    ("InvalidAuthenticationToken", ProvisionErrorKind::Auth),
];

fn sync_status(code: &str) -> u16 {
    match code {
        "AuthorizationFailed" => 403,
        "InvalidAuthenticationToken" => 401,
        "SkuNotAvailable" | "QuotaExceeded" | "OperationNotAllowed" => 409,
        _ => 400,
    }
}

#[tokio::test]
async fn every_fault_maps_to_its_kind_both_synchronously_and_as_a_failed_operation() {
    for (code, kind) in CASES {
        for mode in [Mode::Sync(sync_status(code)), Mode::Async] {
            let e = env().await;
            e.fake.inject(Fault::new(code, mode));
            let p = &e.provider;
            let result = match p
                .run_instances(&request("f", 2, launchable("eastus", None, false)))
                .await
            {
                Ok(()) => p.wait_instances("f").await.map(|_| ()),
                Err(err) => Err(err),
            };
            let err = result.expect_err("fault injected");
            assert_eq!(err.kind, *kind, "{code} {mode:?}: {}", err.message);
            assert!(
                err.message.contains(code),
                "{code} {mode:?}: {}",
                err.message
            );
            assert!(
                err.message.contains("eastus"),
                "names the place: {}",
                err.message
            );
            p.terminate("f").await.expect("cleanup");
            assert_eq!(e.fake.resource_count(), 0, "{code} {mode:?} leaked");
        }
    }
}

fn registry(p: &Arc<sky_azure::AzureProvider>) -> Registry {
    Registry::new().with(p.clone() as Arc<dyn Provider>)
}

#[tokio::test]
async fn failover_moves_to_the_next_zone_after_a_zonal_allocation_failure() {
    let e = env().await;
    e.fake.inject(
        Fault::new("ZonalAllocationFailed", Mode::Async)
            .in_region("eastus")
            .in_zone("1"),
    );
    let cands = [
        launchable("eastus", Some("1"), false),
        launchable("eastus", Some("2"), false),
        launchable("westus2", None, false),
    ];
    let (won, info) = failover::provision(
        &registry(&e.provider),
        "fz",
        2,
        &cands,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("second zone works");
    assert_eq!(won.zone.as_deref(), Some("2"));
    assert_eq!(info.nodes.len(), 2);
    let vms = e.fake.vms();
    assert_eq!(vms.len(), 2, "the failed zone's VMs were cleaned up");
    assert!(vms.iter().all(|v| v["zones"] == serde_json::json!(["2"])));
}

#[tokio::test]
async fn failover_skips_the_region_on_quota_and_lands_in_the_next_region() {
    let e = env().await;
    e.fake
        .inject(Fault::new("QuotaExceeded", Mode::Sync(409)).in_region("eastus"));
    let cands = [
        launchable("eastus", Some("1"), false),
        launchable("eastus", Some("2"), false),
        launchable("westus2", None, false),
    ];
    let mut blocklist = Blocklist::default();
    let (won, _) = failover::provision(
        &registry(&e.provider),
        "fr",
        1,
        &cands,
        &mut blocklist,
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("next region works");
    assert_eq!(won.region, "westus2");
    assert!(
        blocklist.reason(&cands[1]).is_some(),
        "the whole region is blocked"
    );
    assert_eq!(e.fake.groups(), [e.provider.rg("fr").expect("rg")]);
    assert_eq!(e.fake.vms()[0]["location"], "westus2");
}

#[tokio::test]
async fn a_node_failing_mid_launch_is_cleaned_up_with_the_rest() {
    let e = env().await;
    // Exactly one of four VM creations ends Failed.
    e.fake
        .inject(Fault::new("AllocationFailed", Mode::Async).times(1));
    let cands = [launchable("eastus", None, false)];
    let err = failover::provision(
        &registry(&e.provider),
        "pm",
        4,
        &cands,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect_err("one node failed");
    let FailoverError::Exhausted { attempts } = &err else {
        panic!("expected exhaustion, got {err:?}");
    };
    let AttemptOutcome::Failed {
        kind, cleaned_up, ..
    } = &attempts[0].outcome
    else {
        panic!("attempt failed");
    };
    assert_eq!(*kind, ProvisionErrorKind::Capacity);
    assert!(cleaned_up);
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn auth_failure_blocks_azure_and_everything_fails_cleanly() {
    let e = env().await;
    e.fake
        .inject(Fault::new("AuthorizationFailed", Mode::Sync(403)));
    let cands = [
        launchable("eastus", None, false),
        launchable("westus2", None, false),
    ];
    let err = failover::provision(
        &registry(&e.provider),
        "au",
        1,
        &cands,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect_err("no permission");
    assert_eq!(
        err.attempts().len(),
        1,
        "the second region on the same cloud is skipped: {err}"
    );
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn every_candidate_out_of_capacity_exhausts_with_nothing_left() {
    let e = env().await;
    e.fake
        .inject(Fault::new("SkuNotAvailable", Mode::Sync(409)));
    let cands = [
        launchable("eastus", None, true),
        launchable("westus2", None, true),
    ];
    let err = failover::provision(
        &registry(&e.provider),
        "ex",
        2,
        &cands,
        &mut Blocklist::default(),
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect_err("exhausted");
    assert!(matches!(err, FailoverError::Exhausted { .. }), "{err:?}");
    assert_eq!(err.attempts().len(), 2);
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn throttled_reads_polls_power_actions_and_deletes_are_retried_in_place() {
    let e = env().await;
    let p = &e.provider;
    // Compute's 429 with Retry-After on every kind of call that repeats safely.
    for method in ["GET", "POST", "DELETE"] {
        e.fake.throttle(method, 2, 0);
    }
    p.run_instances(&request("th", 2, launchable("eastus", None, false)))
        .await
        .expect("launch");
    let info = p
        .wait_instances("th")
        .await
        .expect("wait, through throttled polls");
    assert_eq!(info.nodes.len(), 2);
    p.stop("th")
        .await
        .expect("stop, through throttled power actions");
    e.fake.throttle("POST", 2, 0);
    p.run_instances(&sky_core::provision::ProvisionRequest {
        resume_stopped: true,
        ..request("th", 2, launchable("eastus", None, false))
    })
    .await
    .expect("start");
    e.fake.throttle("DELETE", 2, 0);
    e.fake.throttle("GET", 2, 0);
    p.terminate("th")
        .await
        .expect("down, through throttled deletes");
    assert!(
        e.fake.throttled_count() >= 10,
        "{}",
        e.fake.throttled_count()
    );
    assert_eq!(e.fake.resource_count(), 0, "nothing left behind");
}

#[tokio::test]
async fn a_throttled_create_blocks_only_its_zone_not_the_region_as_a_quota_would() {
    let e = env().await;
    e.fake.throttle("PUT", 1, 0);
    let cands = [
        launchable("eastus", Some("1"), false),
        launchable("eastus", Some("2"), false),
        launchable("westus2", None, false),
    ];
    let mut blocklist = Blocklist::default();
    let (won, _) = failover::provision(
        &registry(&e.provider),
        "tc",
        1,
        &cands,
        &mut blocklist,
        FailoverOptions::default(),
        &NullSink,
    )
    .await
    .expect("the next zone works");
    assert_eq!(
        (won.region.as_str(), won.zone.as_deref()),
        ("eastus", Some("2"))
    );
    // A quota would have blocked all of eastus and landed in westus2; throttling blocks zone 1.
    assert!(blocklist.reason(&cands[2]).is_none(), "westus2 untouched");
    assert_eq!(
        e.fake.throttled_count(),
        1,
        "a create is not retried in place"
    );
}
