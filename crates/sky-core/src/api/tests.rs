//! Facade behaviour that needs no agent, against `FakeCloud`: refresh reconciliation, stop and
//! down, and the errors front ends branch on.

use std::sync::Arc;

use super::*;
use crate::events::RecordingSink;
use crate::provision::{ClusterInfo, NodeState, Provider, ProvisionRequest};
use crate::testing::{FakeCloud, ManualClock, launchable};

struct World {
    _home: tempfile::TempDir,
    fake: Arc<FakeCloud>,
    clock: Arc<ManualClock>,
    sky: Sky,
}

fn world() -> World {
    world_with(FakeCloud::new(CloudId::Aws))
}

fn world_with(fake: FakeCloud) -> World {
    let home = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(fake);
    let clock = Arc::new(ManualClock::new(1_000));
    let registry = Registry::new().with(fake.clone());
    let sky = Sky::open(
        Paths::with_home(home.path()),
        registry,
        clock.clone(),
        SkyOptions::default(),
    )
    .expect("sky");
    World {
        _home: home,
        fake,
        clock,
        sky,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A cluster that is UP on the fake, as a finished launch leaves it.
fn up_cluster(w: &World, name: &str) {
    let l = launchable(
        CloudId::Aws,
        "us-east-1",
        Some("us-east-1a"),
        "m6i.large",
        0.1,
    );
    let req = ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: 2,
        launchable: l.clone(),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: format!("test-launch-{name}"),
    };
    let info: ClusterInfo = rt().block_on(async {
        w.fake.run_instances(&req).await.expect("fake run");
        w.fake.wait_instances(name).await.expect("fake wait")
    });
    let mut db = w.sky.db().expect("db");
    db.create(name, 2, None, "test", w.clock.now())
        .expect("create");
    db.set_provisioned(name, &l, &info, w.clock.now())
        .expect("provisioned");
    db.set_status(name, ClusterStatus::Up, w.clock.now(), "test")
        .expect("up");
}

#[test]
fn refresh_follows_the_provider_and_says_what_changed() {
    let w = world();
    for name in ["same", "stopped", "gone"] {
        up_cluster(&w, name);
    }
    w.fake.set_node_state("stopped", NodeState::Stopped);
    w.fake.forget("gone");
    let sink = RecordingSink::default();
    let view = rt()
        .block_on(w.sky.status(&[], true, &sink))
        .expect("status");
    let changes: Vec<(String, Option<ClusterStatus>)> = view
        .changes
        .iter()
        .map(|c| (c.cluster.clone(), c.to))
        .collect();
    assert_eq!(
        changes,
        [
            ("gone".to_owned(), None),
            ("stopped".to_owned(), Some(ClusterStatus::Stopped))
        ]
    );
    let names: Vec<(String, ClusterStatus)> = view
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.status))
        .collect();
    assert_eq!(
        names,
        [
            ("same".to_owned(), ClusterStatus::Up),
            ("stopped".to_owned(), ClusterStatus::Stopped)
        ]
    );
}

#[test]
fn stop_then_down_reach_the_provider_and_cost_is_kept() {
    let w = world();
    up_cluster(&w, "c");
    let sink = RecordingSink::default();
    w.clock.advance(1800);
    rt().block_on(w.sky.stop("c", &sink)).expect("stop");
    assert_eq!(
        w.fake.live().get("c").map(|(_, s)| *s),
        Some(NodeState::Stopped)
    );
    w.clock.advance(3600);
    rt().block_on(w.sky.down("c", false, &sink)).expect("down");
    assert!(w.fake.live().is_empty());
    let report = w.sky.cost_report().expect("report");
    assert_eq!(report.clusters.len(), 1);
    assert_eq!(
        report.clusters[0].running_seconds, 1800,
        "stopped time is not billed"
    );
    assert!((report.total_cost - 0.1 * 2.0 * 0.5).abs() < 1e-9);
}

#[test]
fn errors_carry_their_codes() {
    let w = world();
    let sink = RecordingSink::default();
    let err = rt()
        .block_on(w.sky.stop("nope", &sink))
        .expect_err("unknown");
    assert_eq!(err.code(), ErrorCode::ClusterNotFound);
    let err = w.sky.list(&["nope".into()]).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "cluster 'nope' not found (see `sky status`)"
    );
    up_cluster(&w, "held");
    let _held = ClusterLock::acquire(
        &w.sky.paths.sky_home().join("locks"),
        "held",
        Duration::ZERO,
        || {},
    )
    .expect("lock");
    let busy = Sky::open(
        Paths::with_home(w.sky.paths.sky_home()),
        Registry::new().with(w.fake.clone()),
        w.clock.clone(),
        SkyOptions {
            lock_timeout: Duration::ZERO,
            ..SkyOptions::default()
        },
    )
    .expect("second facade");
    let err = rt()
        .block_on(busy.down("held", false, &sink))
        .expect_err("busy");
    assert_eq!(err.code(), ErrorCode::ClusterBusy);
    assert!(sink.events().contains(&Event::WaitingForLock {
        cluster: "held".into()
    }));
}

#[test]
fn autostop_is_refused_where_the_head_cannot_stop_itself() {
    let w = world();
    let sink = RecordingSink::default();
    // The fake's nodes are remote VMs and it has no command of its own for autostop: running
    // this machine's `sky stop` on that head would do nothing while the cluster billed on.
    up_cluster(&w, "vm");
    let setting = crate::state::Autostop {
        idle_minutes: 10,
        down: false,
    };
    let err = rt()
        .block_on(w.sky.autostop("vm", Some(setting), &sink))
        .expect_err("no hook");
    assert_eq!(err.code(), ErrorCode::InvalidTask);
    let message = err.to_string();
    assert!(
        message.contains("AWS clusters cannot stop themselves") && message.contains("sky stop vm"),
        "{message}"
    );
    let rec = w.sky.require("vm").expect("still there");
    assert_eq!(rec.autostop, None, "nothing was recorded");
    assert_eq!(rec.status, ClusterStatus::Up);
}

/// The smallest task: `run: echo hi`.
fn echo_hi() -> crate::task::Task {
    let vocab = crate::task::StaticVocabulary::default();
    crate::task::parse_chain("run: echo hi\n", "task.yaml", &vocab)
        .expect("task")
        .remove(0)
}

#[test]
fn a_launch_cancelled_before_it_starts_creates_nothing() {
    let w = world();
    let task = echo_hi();
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let opts = LaunchOptions {
        cluster_name: Some("never".into()),
        ..LaunchOptions::default()
    };
    let err = rt()
        .block_on(
            w.sky
                .launch_cancellable(&task, &opts, &RecordingSink::default(), &cancel),
        )
        .expect_err("cancelled");
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(err.to_string(), "launch of cluster 'never' cancelled");
    assert!(w.sky.db().expect("db").get("never").expect("get").is_none());
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
}

#[test]
fn a_launch_cancelled_while_nodes_boot_terminates_them_and_forgets_the_cluster() {
    let w = world_with(FakeCloud::new(CloudId::Aws).hang_waiting());
    let task = echo_hi();
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = LaunchOptions {
        cluster_name: Some("booting".into()),
        ..LaunchOptions::default()
    };
    let sink = RecordingSink::default();
    let err = rt()
        .block_on(async {
            let press_cancel = async {
                // The user presses Cancel while the provider is still booting the nodes.
                while !w.fake.calls().iter().any(|c| c == "wait booting") {
                    tokio::task::yield_now().await;
                }
                cancel.cancel();
            };
            let (result, ()) = tokio::join!(
                w.sky.launch_cancellable(&task, &opts, &sink, &cancel),
                press_cancel
            );
            result
        })
        .expect_err("cancelled");
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(
        err.to_string(),
        "launch of cluster 'booting' cancelled; the nodes it created were terminated"
    );
    assert!(w.fake.live().is_empty(), "a VM outlived the cancel");
    assert_eq!(
        w.fake.calls().last().map(String::as_str),
        Some("terminate booting")
    );
    assert!(
        w.sky
            .db()
            .expect("db")
            .get("booting")
            .expect("get")
            .is_none()
    );
}

/// Presses Cancel the moment the launch starts restarting a stopped cluster's nodes.
struct CancelWhenStarting(tokio_util::sync::CancellationToken);

impl EventSink for CancelWhenStarting {
    fn emit(&self, event: Event) {
        if matches!(
            event,
            Event::StageStarted {
                stage: crate::events::Stage::Start,
                ..
            }
        ) {
            self.0.cancel();
        }
    }
}

#[test]
fn a_launch_cancelled_while_restarting_a_stopped_cluster_stops_it_again() {
    let w = world();
    up_cluster(&w, "parked");
    rt().block_on(w.sky.stop("parked", &RecordingSink::default()))
        .expect("stop");
    let task = echo_hi();
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = LaunchOptions {
        cluster_name: Some("parked".into()),
        ..LaunchOptions::default()
    };
    let err = rt()
        .block_on(w.sky.launch_cancellable(
            &task,
            &opts,
            &CancelWhenStarting(cancel.clone()),
            &cancel,
        ))
        .expect_err("cancelled");
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(
        err.to_string(),
        "launch of cluster 'parked' cancelled; it was stopped again, as it was before the launch"
    );
    // The start request was not abandoned; its nodes were stopped again right after, and the
    // record says STOPPED: nothing bills that was not billing before the launch.
    let calls = w.fake.calls();
    let tail: Vec<&str> = calls
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "resume parked us-east-1/us-east-1a",
            "wait parked",
            "stop parked"
        ],
        "{calls:?}"
    );
    let rec = w.sky.require("parked").expect("kept");
    assert_eq!(rec.status, ClusterStatus::Stopped);
}

#[tokio::test]
async fn a_cancel_drops_the_stage_where_it_stood() {
    let cancel = tokio_util::sync::CancellationToken::new();
    let fire = cancel.clone();
    let stage = async {
        fire.cancel();
        // A transfer that would never end on its own.
        std::future::pending::<()>().await;
        Ok(())
    };
    assert_eq!(
        super::launch::unless_cancelled(&cancel, stage)
            .await
            .expect("no error"),
        None
    );
}

#[tokio::test]
async fn an_uncancelled_stage_gives_its_result() {
    let cancel = tokio_util::sync::CancellationToken::new();
    assert_eq!(
        super::launch::unless_cancelled(&cancel, async { Ok(7) })
            .await
            .expect("no error"),
        Some(7)
    );
    let failed = super::launch::unless_cancelled::<()>(&cancel, async {
        Err(crate::api::SkyError::InvalidRequest("bad".into()))
    })
    .await;
    assert!(failed.is_err());
}

#[test]
fn a_launch_whose_agent_cannot_start_says_its_nodes_still_run() {
    // The fake cloud creates nodes but runs no agent: bring-up fails after the nodes exist.
    let w = world();
    let sink = RecordingSink::default();
    let opts = LaunchOptions {
        cluster_name: Some("noagent".into()),
        ..LaunchOptions::default()
    };
    let err = rt()
        .block_on(w.sky.launch(&echo_hi(), &opts, &sink))
        .expect_err("no agent");
    assert!(err.to_string().contains("runs no agent"), "{err}");
    assert!(
        sink.events().contains(&Event::Note {
            message:
                "cluster 'noagent' keeps its nodes running (and billing) in INIT: `sky launch \
                      -c noagent ...` tries again on them, `sky down noagent` terminates them"
                    .into()
        }),
        "{:?}",
        sink.events()
    );
    assert!(w.fake.live().contains_key("noagent"), "the nodes are kept");
    let rec = w.sky.require("noagent").expect("recorded");
    assert_eq!(rec.status, ClusterStatus::Init);
}

#[test]
fn a_launch_under_a_taken_name_in_another_case_or_a_bad_name_touches_nothing() {
    let w = world();
    up_cluster(&w, "Dev");
    let task = echo_hi();
    let sink = RecordingSink::default();
    let calls_before = w.fake.calls().len();
    for (name, code, says) in [
        (
            "dev",
            ErrorCode::InvalidTask,
            "a cluster 'Dev' already exists",
        ),
        ("DEV", ErrorCode::InvalidTask, "compared case-insensitively"),
        (
            "my cluster",
            ErrorCode::InvalidTask,
            "invalid cluster name 'my cluster'",
        ),
    ] {
        let opts = LaunchOptions {
            cluster_name: Some(name.into()),
            ..LaunchOptions::default()
        };
        let err = w.sky.preview_launch(&task, &opts).expect_err(name);
        assert!(err.to_string().contains(says), "{err}");
        let err = rt()
            .block_on(w.sky.launch(&task, &opts, &sink))
            .expect_err(name);
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(
            !w.sky
                .paths()
                .sky_home()
                .join("locks")
                .join(format!("{name}.lock"))
                .exists(),
            "no lock file for {name}"
        );
    }
    assert_eq!(w.fake.calls().len(), calls_before, "{:?}", w.fake.calls());
    let names: Vec<String> = w
        .sky
        .list(&[])
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Dev"]);
}

#[test]
fn commands_refuse_names_that_would_leave_the_locks_directory() {
    let w = world();
    let err = rt()
        .block_on(w.sky.down("../../x", false, &RecordingSink::default()))
        .expect_err("traversal");
    assert!(
        err.to_string().contains("it cannot be a file name"),
        "{err}"
    );
    assert!(!w.sky.paths().sky_home().join("locks/../../x.lock").exists());
}

#[test]
fn a_start_that_finds_no_capacity_leaves_the_cluster_stopped_and_intact() {
    use crate::testing::Outcome;
    let w = world_with(FakeCloud::new(CloudId::Aws).script(
        "us-east-1/us-east-1a",
        &[
            Outcome::Ok,
            Outcome::Fail(crate::provision::ProvisionErrorKind::Capacity),
        ],
    ));
    up_cluster(&w, "c");
    let sink = RecordingSink::default();
    rt().block_on(w.sky.stop("c", &sink)).expect("stop");
    let before = w.sky.db().expect("db").get("c").expect("get").expect("rec");
    let err = rt()
        .block_on(w.sky.start("c", &sink))
        .expect_err("no capacity");
    assert!(
        matches!(&err, SkyError::StartFailed { stopped_again: true, source, .. }
            if source.kind == crate::provision::ProvisionErrorKind::Capacity),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::ResourcesUnavailable);
    let text = err.to_string();
    assert!(text.contains("still STOPPED"), "{text}");
    assert!(text.contains("sky start c"), "{text}");
    let after = w.sky.db().expect("db").get("c").expect("get").expect("rec");
    assert_eq!(after.status, ClusterStatus::Stopped);
    assert_eq!(after.launchable, before.launchable, "placement kept");
    assert_eq!(after.handle, before.handle, "nodes kept");
    assert_eq!(
        w.fake.live().get("c").copied(),
        Some((2, NodeState::Stopped)),
        "the nodes are still there, stopped"
    );
}

#[test]
fn a_workdir_that_cannot_be_synced_is_refused_before_anything_is_created() {
    let w = world();
    let vocab = crate::task::StaticVocabulary::default();
    let missing = tempfile::tempdir().expect("tmp").path().join("gone");
    let sink = RecordingSink::default();
    for (yaml, says) in [
        (
            "workdir: {url: 'https://example.com/r.git'}\nrun: echo hi\n".to_owned(),
            "git workdirs (https://example.com/r.git) are not supported yet",
        ),
        (
            format!("workdir: {}\nrun: echo hi\n", missing.display()),
            "No such file or directory",
        ),
    ] {
        let task = crate::task::parse_chain(&yaml, "task.yaml", &vocab)
            .expect("task")
            .remove(0);
        let opts = LaunchOptions {
            cluster_name: Some("wd".into()),
            ..LaunchOptions::default()
        };
        let err = w.sky.preview_launch(&task, &opts).expect_err("preview");
        assert!(err.to_string().contains(says), "{err}");
        let err = rt()
            .block_on(w.sky.launch(&task, &opts, &sink))
            .expect_err("launch");
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
    assert!(w.sky.db().expect("db").get("wd").expect("get").is_none());
}
