use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::cloud::CloudId::{Aws, Azure, Gcp};
use crate::events::RecordingSink;
use crate::testing::{FakeCloud, Outcome, launchable};
use ProvisionErrorKind::*;

fn render(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| {
            let place = format!(
                "{} {}/{}/{} {}",
                a.number,
                a.cloud.as_str(),
                a.region,
                a.zone.as_deref().unwrap_or("-"),
                a.instance_type
            );
            match &a.outcome {
                AttemptOutcome::Succeeded => format!("{place}: ok"),
                AttemptOutcome::Failed {
                    kind,
                    blocked,
                    cleaned_up,
                    ..
                } => format!(
                    "{place}: {} -> block {blocked}{}",
                    kind.as_str(),
                    if *cleaned_up { " (cleaned up)" } else { "" }
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn candidates() -> Vec<Launchable> {
    vec![
        launchable(Aws, "us-east-1", Some("us-east-1a"), "m6i.large", 0.096),
        launchable(Aws, "us-east-1", Some("us-east-1b"), "m6i.large", 0.096),
        launchable(Aws, "us-west-2", Some("us-west-2a"), "m6i.large", 0.096),
        launchable(
            Gcp,
            "us-central1",
            Some("us-central1-a"),
            "n2-standard-2",
            0.097,
        ),
        launchable(Azure, "eastus", None, "Standard_D2s_v5", 0.098),
    ]
}

struct Run {
    result: Result<(Launchable, ClusterInfo), FailoverError>,
    events: Vec<Event>,
}

fn run_with(fakes: Vec<Arc<FakeCloud>>, options: FailoverOptions) -> Run {
    let mut registry = Registry::new();
    for f in fakes {
        registry = registry.with(f);
    }
    let sink = RecordingSink::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut blocklist = Blocklist::default();
    let result = rt.block_on(provision(
        &registry,
        "c1",
        2,
        &candidates(),
        &mut blocklist,
        options,
        &sink,
    ));
    Run {
        result,
        events: sink.events(),
    }
}

fn attempts_of(run: &Run) -> Vec<Attempt> {
    run.events
        .iter()
        .filter_map(|e| match e {
            Event::FailoverAttempt(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn capacity_moves_to_the_next_zone() {
    let aws =
        Arc::new(FakeCloud::new(Aws).script("us-east-1/us-east-1a", &[Outcome::Fail(Capacity)]));
    let run = run_with(vec![aws.clone()], FailoverOptions::default());
    let (chosen, info) = run.result.as_ref().expect("second zone works");
    assert_eq!(chosen.zone.as_deref(), Some("us-east-1b"));
    assert_eq!(info.nodes.len(), 2);
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: capacity -> block zone us-east-1a (cleaned up)
    2 aws/us-east-1/us-east-1b m6i.large: ok
    ");
    assert_eq!(aws.live().len(), 1);
}

#[test]
fn partial_launch_is_terminated_before_moving_on() {
    let aws = Arc::new(FakeCloud::new(Aws).script(
        "us-east-1/us-east-1a",
        &[Outcome::FailAfterCreating(Transient)],
    ));
    let run = run_with(vec![aws.clone()], FailoverOptions::default());
    assert!(run.result.is_ok());
    assert_eq!(
        aws.calls(),
        [
            "run c1 us-east-1/us-east-1a",
            "wait c1",
            "terminate c1",
            "run c1 us-east-1/us-east-1b",
            "wait c1"
        ]
    );
}

#[test]
fn quota_skips_the_rest_of_the_region() {
    let aws = Arc::new(FakeCloud::new(Aws).script("us-east-1/us-east-1a", &[Outcome::Fail(Quota)]));
    let run = run_with(vec![aws], FailoverOptions::default());
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: quota -> block region us-east-1 (cleaned up)
    2 aws/us-west-2/us-west-2a m6i.large: ok
    ");
}

#[test]
fn auth_skips_the_whole_cloud_and_invalid_request_the_instance_type() {
    let aws = Arc::new(FakeCloud::new(Aws).script("us-east-1", &[Outcome::Fail(Auth)]));
    let gcp = Arc::new(FakeCloud::new(Gcp).script("us-central1", &[Outcome::Fail(InvalidRequest)]));
    let azure = Arc::new(FakeCloud::new(Azure));
    let run = run_with(vec![aws, gcp, azure], FailoverOptions::default());
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: auth -> block cloud AWS (cleaned up)
    2 gcp/us-central1/us-central1-a n2-standard-2: invalid_request -> block instance type n2-standard-2 on GCP (cleaned up)
    3 azure/eastus/- Standard_D2s_v5: ok
    ");
}

#[test]
fn fatal_aborts_after_cleanup() {
    let aws = Arc::new(
        FakeCloud::new(Aws).script("us-east-1/us-east-1a", &[Outcome::FailAfterCreating(Fatal)]),
    );
    let run = run_with(vec![aws.clone()], FailoverOptions::default());
    let err = run.result.as_ref().expect_err("fatal stops failover");
    assert!(matches!(err, FailoverError::Fatal { .. }), "{err:?}");
    assert_eq!(err.attempts().len(), 1);
    assert!(aws.live().is_empty(), "the partial cluster was terminated");
}

#[test]
fn failed_cleanup_aborts_and_says_what_may_be_left() {
    let aws = Arc::new(
        FakeCloud::new(Aws)
            .script(
                "us-east-1/us-east-1a",
                &[Outcome::FailAfterCreating(Capacity)],
            )
            .terminate_fails(),
    );
    let run = run_with(vec![aws.clone()], FailoverOptions::default());
    let err = run
        .result
        .as_ref()
        .expect_err("cannot continue with leaked nodes");
    let msg = err.to_string();
    assert!(
        msg.contains("cleaning up failed") && msg.contains("sky down c1"),
        "{msg}"
    );
    assert_eq!(
        aws.live().len(),
        1,
        "the fake still has the nodes we could not delete"
    );
}

#[test]
fn exhausted_lists_every_attempt() {
    let aws = Arc::new(
        FakeCloud::new(Aws)
            .script("us-east-1", &[Outcome::Fail(Capacity)])
            .script("us-west-2", &[Outcome::Fail(Capacity)]),
    );
    let gcp = Arc::new(FakeCloud::new(Gcp).script("us-central1", &[Outcome::Fail(Quota)]));
    let azure = Arc::new(FakeCloud::new(Azure).script("eastus", &[Outcome::Fail(Transient)]));
    let run = run_with(vec![aws, gcp, azure], FailoverOptions::default());
    let err = run.result.as_ref().expect_err("all fail");
    insta::assert_snapshot!(err.to_string(), @"every candidate failed (5 attempts): aws/us-east-1/us-east-1a capacity, aws/us-east-1/us-east-1b capacity, aws/us-west-2/us-west-2a capacity, gcp/us-central1/us-central1-a quota, azure/eastus transient");
}

#[test]
fn a_cloud_without_provider_is_skipped_as_unavailable() {
    let gcp = Arc::new(FakeCloud::new(Gcp));
    let run = run_with(vec![gcp], FailoverOptions::default());
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: auth -> block cloud AWS
    2 gcp/us-central1/us-central1-a n2-standard-2: ok
    ");
}

#[test]
fn retry_until_up_goes_round_again_keeping_cloud_blocks() {
    let busy_then_free = [
        Outcome::Fail(Capacity),
        Outcome::Fail(Capacity),
        Outcome::Fail(Capacity),
        Outcome::Ok,
    ];
    let aws = Arc::new(
        FakeCloud::new(Aws)
            .script("us-east-1", &busy_then_free)
            .script("us-west-2", &[Outcome::Fail(Capacity)]),
    );
    let gcp = Arc::new(FakeCloud::new(Gcp).script("us-central1", &[Outcome::Fail(Auth)]));
    let azure = Arc::new(FakeCloud::new(Azure).script("eastus", &[Outcome::Fail(Quota)]));
    let options = FailoverOptions {
        retry_until_up: true,
        retry_gap: Duration::ZERO,
        max_rounds: Some(3),
    };
    let run = run_with(vec![aws, gcp.clone(), azure], options);
    assert!(run.result.is_ok(), "{:?}", run.result);
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, Event::RetryRound { round: 2, .. }))
    );
    assert_eq!(
        gcp.calls().iter().filter(|c| c.starts_with("run")).count(),
        1,
        "auth block survives rounds"
    );
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: capacity -> block zone us-east-1a (cleaned up)
    2 aws/us-east-1/us-east-1b m6i.large: capacity -> block zone us-east-1b (cleaned up)
    3 aws/us-west-2/us-west-2a m6i.large: capacity -> block zone us-west-2a (cleaned up)
    4 gcp/us-central1/us-central1-a n2-standard-2: auth -> block cloud GCP (cleaned up)
    5 azure/eastus/- Standard_D2s_v5: quota -> block region eastus (cleaned up)
    6 aws/us-east-1/us-east-1a m6i.large: capacity -> block zone us-east-1a (cleaned up)
    7 aws/us-east-1/us-east-1b m6i.large: ok
    ");
}

#[test]
fn retry_until_up_stops_at_max_rounds() {
    let aws = Arc::new(
        FakeCloud::new(Aws)
            .script("us-east-1", &[Outcome::Fail(Capacity)])
            .script("us-west-2", &[Outcome::Fail(Capacity)]),
    );
    let options = FailoverOptions {
        retry_until_up: true,
        retry_gap: Duration::ZERO,
        max_rounds: Some(2),
    };
    let run = run_with(vec![aws], options);
    let err = run.result.as_ref().expect_err("never frees up");
    // Two rounds of three AWS zones, plus the GCP and Azure candidates with no provider (once).
    assert_eq!(err.attempts().len(), 8, "{}", render(err.attempts()));
}

#[test]
fn empty_candidates_is_an_error() {
    let registry = Registry::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut blocklist = Blocklist::default();
    let err = rt
        .block_on(provision(
            &registry,
            "c",
            1,
            &[],
            &mut blocklist,
            FailoverOptions::default(),
            &crate::events::NullSink,
        ))
        .expect_err("nothing to try");
    assert_eq!(err, FailoverError::NoCandidates);
}

/// Cancels its token when it sees the first event `when` picks, as a user pressing Cancel then
/// would; records everything like [`RecordingSink`].
struct CancelOn {
    when: fn(&Event) -> bool,
    token: CancellationToken,
    inner: RecordingSink,
}

impl EventSink for CancelOn {
    fn emit(&self, event: Event) {
        if (self.when)(&event) {
            self.token.cancel();
        }
        self.inner.emit(event);
    }
}

fn run_cancelling(
    fakes: Vec<Arc<FakeCloud>>,
    options: FailoverOptions,
    when: fn(&Event) -> bool,
    token: CancellationToken,
    watch_for_wait: Option<Arc<FakeCloud>>,
) -> Run {
    let mut registry = Registry::new();
    for f in fakes {
        registry = registry.with(f);
    }
    let sink = CancelOn {
        when,
        token: token.clone(),
        inner: RecordingSink::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut blocklist = Blocklist::default();
    let result = rt.block_on(async {
        let canceller = async {
            // Cancels once the nodes are being waited for (the provider call is in flight).
            if let Some(fake) = watch_for_wait {
                while !fake.calls().iter().any(|c| c.starts_with("wait ")) {
                    tokio::task::yield_now().await;
                }
                token.cancel();
            }
        };
        let settings = |_: &Launchable| crate::provision::NodeSettings::default();
        let cands = candidates();
        let (result, ()) = tokio::join!(
            provision_cancellable(
                &registry,
                "c1",
                2,
                &cands,
                &mut blocklist,
                options,
                &sink,
                &settings,
                &|_: &crate::provision::LaunchAttempt| Ok(()),
                &token,
            ),
            canceller
        );
        result
    });
    Run {
        result,
        events: sink.inner.events(),
    }
}

#[test]
fn cancel_while_nodes_boot_terminates_them_and_tries_nothing_else() {
    let aws = Arc::new(FakeCloud::new(Aws).hang_waiting());
    let run = run_cancelling(
        vec![aws.clone()],
        FailoverOptions::default(),
        |_| false,
        CancellationToken::new(),
        Some(aws.clone()),
    );
    assert!(
        matches!(&run.result, Err(FailoverError::Cancelled { attempts }) if attempts.is_empty()),
        "{:?}",
        run.result
    );
    assert_eq!(
        aws.calls(),
        ["run c1 us-east-1/us-east-1a", "wait c1", "terminate c1"]
    );
    assert!(aws.live().is_empty(), "no VM outlives the cancel");
    assert!(run.events.iter().any(|e| matches!(e,
        Event::Note { message } if message.contains("terminating what was being created at aws/us-east-1/us-east-1a"))));
}

#[test]
fn cancel_while_nodes_boot_with_a_failing_cleanup_says_nodes_may_be_left() {
    let aws = Arc::new(FakeCloud::new(Aws).hang_waiting().terminate_fails());
    let run = run_cancelling(
        vec![aws.clone()],
        FailoverOptions::default(),
        |_| false,
        CancellationToken::new(),
        Some(aws.clone()),
    );
    let Err(FailoverError::Fatal { error, .. }) = &run.result else {
        panic!("expected a fatal cleanup error, got {:?}", run.result);
    };
    assert!(error.message.contains("cleaning up failed"), "{error}");
    assert!(error.message.contains("sky down c1"), "{error}");
}

#[test]
fn cancel_between_attempts_stops_before_the_next_one() {
    let aws = Arc::new(FakeCloud::new(Aws).script("us-east-1", &[Outcome::Fail(Capacity)]));
    let run = run_cancelling(
        vec![aws.clone()],
        FailoverOptions::default(),
        |e| matches!(e, Event::FailoverAttempt(_)),
        CancellationToken::new(),
        None,
    );
    let Err(FailoverError::Cancelled { attempts }) = &run.result else {
        panic!("expected cancelled, got {:?}", run.result);
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(aws.calls(), ["run c1 us-east-1/us-east-1a", "terminate c1"]);
}

#[test]
fn cancel_during_the_retry_wait_ends_it() {
    let aws = Arc::new(
        FakeCloud::new(Aws)
            .script("us-east-1", &[Outcome::Fail(Capacity)])
            .script("us-west-2", &[Outcome::Fail(Capacity)]),
    );
    let options = FailoverOptions {
        retry_until_up: true,
        // Far longer than any test run: only the cancel can end this wait.
        retry_gap: Duration::from_secs(24 * 3600),
        max_rounds: None,
    };
    let aws_only = vec![aws.clone()];
    let run = run_cancelling(
        aws_only,
        options,
        |e| matches!(e, Event::RetryRound { .. }),
        CancellationToken::new(),
        None,
    );
    let Err(FailoverError::Cancelled { attempts }) = &run.result else {
        panic!("expected cancelled, got {:?}", run.result);
    };
    // Round one tried every AWS candidate (the GCP and Azure ones have no provider here).
    assert!(attempts.len() >= 3, "{attempts:?}");
    assert!(aws.live().is_empty());
}

#[test]
fn a_token_cancelled_before_the_start_tries_nothing() {
    let aws = Arc::new(FakeCloud::new(Aws));
    let token = CancellationToken::new();
    token.cancel();
    let run = run_cancelling(
        vec![aws.clone()],
        FailoverOptions::default(),
        |_| false,
        token,
        None,
    );
    assert!(matches!(run.result, Err(FailoverError::Cancelled { .. })));
    assert!(aws.calls().is_empty());
}

/// Runs failover over `cands` with `fakes` and returns what the blocklist learnt.
fn blocked_after(fakes: Vec<Arc<FakeCloud>>, cands: &[Launchable]) -> (Run, Vec<Blocked>) {
    let mut registry = Registry::new();
    for f in fakes {
        registry = registry.with(f);
    }
    let sink = RecordingSink::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut blocklist = Blocklist::default();
    let result = rt.block_on(provision(
        &registry,
        "c1",
        1,
        cands,
        &mut blocklist,
        FailoverOptions::default(),
        &sink,
    ));
    let run = Run {
        result,
        events: sink.events(),
    };
    (run, blocklist.entries().to_vec())
}

fn gpu(mut l: Launchable) -> Launchable {
    l.accelerators = Some(("T4".into(), 1.0));
    l
}

#[test]
fn an_unknown_code_blocks_the_zone_and_failover_goes_on() {
    let aws =
        Arc::new(FakeCloud::new(Aws).script("us-east-1/us-east-1a", &[Outcome::Fail(Unknown)]));
    let (run, blocked) = blocked_after(vec![aws], &candidates());
    let (chosen, _) = run.result.as_ref().expect("the next zone works");
    assert_eq!(chosen.zone.as_deref(), Some("us-east-1b"));
    assert_eq!(
        blocked,
        vec![Blocked::Zone {
            cloud: Aws,
            region: "us-east-1".into(),
            zone: "us-east-1a".into()
        }]
    );
    insta::assert_snapshot!(render(&attempts_of(&run)), @r"
    1 aws/us-east-1/us-east-1a m6i.large: unknown -> block zone us-east-1a (cleaned up)
    2 aws/us-east-1/us-east-1b m6i.large: ok
    ");
}

#[test]
fn an_instance_type_unsupported_in_one_zone_is_blocked_there_only() {
    let cands = vec![
        launchable(Aws, "us-east-1", Some("us-east-1a"), "p3.2xlarge", 3.0),
        launchable(Aws, "us-east-1", Some("us-east-1a"), "g5.xlarge", 1.0),
        launchable(Aws, "us-east-1", Some("us-east-1b"), "p3.2xlarge", 3.0),
    ];
    let aws = Arc::new(FakeCloud::new(Aws).script(
        "us-east-1/us-east-1a",
        &[
            Outcome::FailScoped(InvalidRequest, BlockScope::InstanceTypeInZone),
            Outcome::Ok,
        ],
    ));
    let (run, blocked) = blocked_after(vec![aws], &cands);
    let (chosen, _) = run.result.as_ref().expect("another type in the zone works");
    assert_eq!(chosen.instance_type, "g5.xlarge");
    assert_eq!(
        blocked,
        vec![Blocked::InstanceType {
            cloud: Aws,
            instance_type: "p3.2xlarge".into(),
            region: Some("us-east-1".into()),
            zone: Some("us-east-1a".into()),
        }]
    );
    let mut bl = Blocklist::default();
    bl.block_scope(&cands[0], BlockScope::InstanceTypeInZone);
    assert!(bl.reason(&cands[1]).is_none(), "other types in the zone");
    assert!(bl.reason(&cands[2]).is_none(), "the type in another zone");
}

#[test]
fn a_global_accelerator_quota_blocks_every_gpu_offer_of_the_cloud_at_once() {
    let cands = vec![
        gpu(launchable(
            Gcp,
            "us-central1",
            Some("us-central1-a"),
            "n1-standard-4",
            0.5,
        )),
        gpu(launchable(
            Gcp,
            "us-east1",
            Some("us-east1-b"),
            "n1-standard-4",
            0.5,
        )),
        gpu(launchable(
            Gcp,
            "europe-west4",
            Some("europe-west4-a"),
            "g2-standard-4",
            0.7,
        )),
        gpu(launchable(
            Aws,
            "us-east-1",
            Some("us-east-1a"),
            "g4dn.xlarge",
            0.6,
        )),
    ];
    let gcp = Arc::new(FakeCloud::new(Gcp).script(
        "us-central1/us-central1-a",
        &[Outcome::FailScoped(Quota, BlockScope::Accelerators)],
    ));
    let aws = Arc::new(FakeCloud::new(Aws));
    let (run, blocked) = blocked_after(vec![gcp.clone(), aws], &cands);
    let (chosen, _) = run.result.as_ref().expect("AWS is left");
    assert_eq!(chosen.cloud, Aws);
    assert_eq!(blocked, vec![Blocked::Accelerators(Gcp)]);
    assert_eq!(
        attempts_of(&run).len(),
        2,
        "GCP was tried once, not per region"
    );
    let cpu_only = launchable(Gcp, "us-east1", Some("us-east1-b"), "n2-standard-2", 0.1);
    let mut bl = Blocklist::default();
    bl.block_scope(&cands[0], BlockScope::Accelerators);
    assert!(bl.reason(&cpu_only).is_none(), "CPU offers stay open");
}

#[test]
fn each_scope_blocks_exactly_its_placements() {
    let at = launchable(
        Gcp,
        "us-central1",
        Some("us-central1-a"),
        "n2-standard-2",
        0.1,
    );
    let same_zone_other_type = launchable(
        Gcp,
        "us-central1",
        Some("us-central1-a"),
        "n2-standard-4",
        0.2,
    );
    let same_region_other_zone = launchable(
        Gcp,
        "us-central1",
        Some("us-central1-b"),
        "n2-standard-2",
        0.1,
    );
    let other_region = launchable(Gcp, "us-east1", Some("us-east1-b"), "n2-standard-2", 0.1);
    let other_cloud = launchable(Aws, "us-east-1", Some("us-east-1a"), "n2-standard-2", 0.1);
    let all = [
        &at,
        &same_zone_other_type,
        &same_region_other_zone,
        &other_region,
        &other_cloud,
    ];
    let cases = [
        (BlockScope::Zone, [true, true, false, false, false]),
        (BlockScope::Region, [true, true, true, false, false]),
        (
            BlockScope::InstanceTypeInZone,
            [true, false, false, false, false],
        ),
        (
            BlockScope::InstanceTypeInRegion,
            [true, false, true, false, false],
        ),
        (BlockScope::InstanceType, [true, false, true, true, false]),
        (BlockScope::Cloud, [true, true, true, true, false]),
    ];
    for (scope, expected) in cases {
        let mut bl = Blocklist::default();
        bl.block_scope(&at, scope);
        let got: Vec<bool> = all.iter().map(|l| bl.reason(l).is_some()).collect();
        assert_eq!(got, expected, "{scope:?}");
    }
}

#[test]
fn retry_rounds_forget_local_blocks_but_keep_global_ones() {
    let zoned = gpu(launchable(
        Gcp,
        "us-central1",
        Some("us-central1-a"),
        "a2-highgpu-1g",
        3.0,
    ));
    let mut bl = Blocklist::default();
    bl.block_scope(&zoned, BlockScope::Zone);
    bl.block_scope(&zoned, BlockScope::InstanceTypeInZone);
    bl.block_scope(&zoned, BlockScope::Accelerators);
    bl.forget_transient();
    assert_eq!(bl.entries(), &[Blocked::Accelerators(Gcp)]);
}
