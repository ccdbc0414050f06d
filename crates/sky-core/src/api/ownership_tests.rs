//! The ownership and partial-view rules of refresh, down and the orphan commands, against
//! `FakeCloud`: a record is removed only when every cloud it may have reached answered; an
//! interrupted launch is found by its launch id; other Sky homes' clusters are never this home's
//! orphans and are acted on only when their owner is named.

use std::sync::Arc;

use super::*;
use crate::events::RecordingSink;
use crate::provision::{LaunchAttempt, Provider, ProvisionErrorKind, ProvisionRequest};
use crate::testing::{FakeCloud, ManualClock, launchable};

struct World {
    _home: tempfile::TempDir,
    fakes: Vec<Arc<FakeCloud>>,
    clock: Arc<ManualClock>,
    sky: Sky,
}

fn world(fakes: Vec<FakeCloud>) -> World {
    let home = tempfile::tempdir().expect("tmp");
    let fakes: Vec<Arc<FakeCloud>> = fakes.into_iter().map(Arc::new).collect();
    let mut registry = Registry::new();
    for f in &fakes {
        registry = registry.with(f.clone());
    }
    let clock = Arc::new(ManualClock::new(1_000));
    let sky = Sky::open(
        Paths::with_home(home.path()),
        registry,
        clock.clone(),
        SkyOptions::default(),
    )
    .expect("sky");
    World {
        _home: home,
        fakes,
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

/// What a launch killed right after its create call leaves: an INIT record holding the attempt
/// (written before the call), and nodes in the cloud tagged with its launch id.
fn interrupted_launch(w: &World, fake: &FakeCloud, name: &str, region: &str) -> LaunchAttempt {
    let l = launchable(fake.cloud(), region, None, "m6i.large", 0.1);
    let attempt = LaunchAttempt {
        launch_id: crate::provision::owner::new_launch_id().expect("id"),
        cloud: fake.cloud(),
        region: region.into(),
        zone: None,
    };
    {
        let mut db = w.sky.db().expect("db");
        db.create(name, 2, None, "sky launch", w.clock.now())
            .expect("create");
        db.add_launch_attempt(name, &attempt, w.clock.now())
            .expect("attempt");
    }
    let req = ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: 2,
        launchable: l,
        resume_stopped: false,
        settings: Default::default(),
        launch_id: attempt.launch_id.clone(),
    };
    rt().block_on(fake.run_instances(&req)).expect("fake run");
    attempt
}

#[test]
fn an_interrupted_launch_is_found_by_its_launch_id_and_cleaned_up() {
    let w = world(vec![FakeCloud::new(CloudId::Aws)]);
    let aws = w.fakes[0].clone();
    interrupted_launch(&w, &aws, "dev", "us-east-1");
    let view = rt()
        .block_on(w.sky.status(&[], true, &RecordingSink::default()))
        .expect("status");
    assert!(view.clusters.is_empty(), "{view:?}");
    assert_eq!(view.changes.len(), 1);
    assert!(
        view.changes[0].message.contains("terminated 2 node(s)"),
        "{}",
        view.changes[0].message
    );
    assert!(aws.live().is_empty());
    // Found by launch id, never by asking for the name alone.
    assert!(
        aws.calls()
            .iter()
            .any(|c| c.starts_with("query_launch dev ")),
        "{:?}",
        aws.calls()
    );
}

#[test]
fn a_record_whose_cloud_cannot_be_asked_survives_refresh_marked_with_why() {
    // The CLI launched on AWS with credentials from its environment and was killed after the
    // create call; this process (the desktop app) has no AWS credentials.
    let creator = FakeCloud::new(CloudId::Aws);
    let w = world(vec![FakeCloud::disabled(CloudId::Aws)]);
    interrupted_launch(&w, &creator, "dev", "us-east-1");
    let view = rt()
        .block_on(w.sky.status(&[], true, &RecordingSink::default()))
        .expect("status");
    assert_eq!(view.clusters.len(), 1, "{view:?}");
    let why = view.clusters[0].unchecked.clone().expect("marked");
    assert!(why.contains("AWS cannot be asked"), "{why}");
    assert_eq!(view.changes[0].to, Some(ClusterStatus::Init));
    assert!(creator.live().contains_key("dev"), "nodes untouched");
    // `down` refuses rather than forget nodes it cannot see.
    let err = rt()
        .block_on(w.sky.down("dev", false, &RecordingSink::default()))
        .expect_err("cannot check");
    assert!(err.to_string().contains("cannot be checked"), "{err}");
    assert!(w.sky.db().expect("db").get("dev").expect("get").is_some());
}

#[test]
fn a_cloud_that_does_not_answer_keeps_every_record_it_may_hold() {
    let w = world(vec![
        FakeCloud::new(CloudId::Aws).unreachable(ProvisionErrorKind::Transient),
    ]);
    let aws = w.fakes[0].clone();
    // A provisioned record (UP) and an interrupted one, both on the unreachable cloud.
    {
        let l = launchable(CloudId::Aws, "us-east-1", None, "m6i.large", 0.1);
        let info = crate::provision::ClusterInfo::new(Vec::new());
        let mut db = w.sky.db().expect("db");
        db.create("up", 1, None, "test", 1).expect("create");
        db.set_provisioned("up", &l, &info, 1).expect("prov");
        db.set_status("up", ClusterStatus::Up, 1, "test")
            .expect("up");
        db.create("init", 1, None, "test", 1).expect("create");
        db.add_launch_attempt(
            "init",
            &LaunchAttempt {
                launch_id: "0011223344556677".into(),
                cloud: CloudId::Aws,
                region: "us-east-1".into(),
                zone: None,
            },
            1,
        )
        .expect("attempt");
    }
    let view = rt()
        .block_on(w.sky.status(&[], true, &RecordingSink::default()))
        .expect("refresh does not fail as a whole");
    let kept: Vec<(&str, ClusterStatus, bool)> = view
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.status, c.unchecked.is_some()))
        .collect();
    assert_eq!(
        kept,
        [
            ("init", ClusterStatus::Init, true),
            ("up", ClusterStatus::Up, true)
        ]
    );
    assert!(
        view.clusters[0]
            .unchecked
            .as_deref()
            .is_some_and(|w| w.contains("did not answer (transient)")),
        "{:?}",
        view.clusters[0].unchecked
    );
    drop(aws);
}

#[test]
fn a_record_without_attempts_never_reached_a_cloud_and_goes_without_asking_by_name() {
    let w = world(vec![FakeCloud::new(CloudId::Aws)]);
    let aws = w.fakes[0].clone();
    // Someone else's `dev` in the same account (another tool, another home).
    aws.add_foreign("ffeeddccbbaa9988", "dev", 2);
    w.sky
        .db()
        .expect("db")
        .create("dev", 2, None, "sky launch", 1)
        .expect("create");
    let view = rt()
        .block_on(w.sky.status(&[], true, &RecordingSink::default()))
        .expect("status");
    assert!(view.clusters.is_empty(), "{view:?}");
    assert_eq!(aws.foreign().len(), 1, "the other home's dev still runs");
    assert!(
        !aws.calls().iter().any(|c| c.starts_with("terminate")),
        "{:?}",
        aws.calls()
    );
}

#[test]
fn other_homes_clusters_are_listed_apart_and_ended_only_when_their_owner_is_named() {
    let w = world(vec![FakeCloud::new(CloudId::Aws)]);
    let aws = w.fakes[0].clone();
    let other = "ffeeddccbbaa9988";
    aws.add_foreign(other, "dev", 2);
    aws.add_foreign(other, "train", 1);
    let sink = RecordingSink::default();
    let orphans = rt().block_on(w.sky.orphans()).expect("orphans");
    assert!(orphans.is_empty(), "{orphans:?}");
    let foreign = rt().block_on(w.sky.foreign_clusters()).expect("foreign");
    let listed: Vec<(&str, Option<&str>)> = foreign
        .iter()
        .map(|o| (o.name.as_str(), o.owner.as_deref()))
        .collect();
    assert_eq!(listed, [("dev", Some(other)), ("train", Some(other))]);
    // Neither `down --orphan` nor adopt reaches them.
    let err = rt()
        .block_on(w.sky.terminate_orphan("dev", &sink))
        .expect_err("not ours");
    assert!(matches!(err, SkyError::ClusterNotFound(_)), "{err}");
    let err = rt()
        .block_on(w.sky.adopt_orphan("dev", &sink))
        .expect_err("not ours");
    assert!(matches!(err, SkyError::ClusterNotFound(_)), "{err}");
    // Naming our own id, a wrong owner or a malformed one is refused.
    let own = w.sky.owner_id().expect("owner");
    assert!(
        rt().block_on(w.sky.terminate_foreign("dev", &own, &sink))
            .is_err()
    );
    assert!(
        rt().block_on(w.sky.terminate_foreign("dev", "0000000000000000", &sink))
            .is_err()
    );
    assert!(
        rt().block_on(w.sky.terminate_foreign("dev", "Robert'); DROP", &sink))
            .is_err()
    );
    assert_eq!(aws.foreign().len(), 2);
    rt().block_on(w.sky.terminate_foreign("dev", other, &sink))
        .expect("named owner");
    let left: Vec<String> = aws.foreign().into_keys().map(|(_, n)| n).collect();
    assert_eq!(left, ["train"]);
}

#[test]
fn launch_attempts_and_the_unchecked_mark_persist_in_the_record() {
    let w = world(vec![FakeCloud::new(CloudId::Aws)]);
    let attempt = LaunchAttempt {
        launch_id: "0011223344556677".into(),
        cloud: CloudId::Gcp,
        region: "us-central1".into(),
        zone: Some("us-central1-a".into()),
    };
    let mut db = w.sky.db().expect("db");
    db.create("c", 1, None, "test", 1).expect("create");
    db.add_launch_attempt("c", &attempt, 2).expect("attempt");
    db.set_unchecked("c", Some("no GCP credentials"))
        .expect("mark");
    let rec = db.require("c").expect("rec");
    assert_eq!(rec.launch_attempts, [attempt]);
    assert_eq!(rec.unchecked.as_deref(), Some("no GCP credentials"));
    assert!(
        db.events("c")
            .expect("events")
            .iter()
            .any(|e| e.kind == "launch-attempt" && e.message.contains("0011223344556677"))
    );
    let owner = db.owner_id().expect("owner");
    assert_eq!(owner.len(), 16, "{owner}");
    assert!(crate::provision::owner::is_valid_id(&owner));
}

#[test]
fn a_cluster_launched_before_ownership_tags_is_kept_and_never_acted_on() {
    // An UP AWS record written by a version before migration 3, whose nodes (like SkyPilot's)
    // carry no owner id.
    let w = world(vec![FakeCloud::new(CloudId::Aws)]);
    let aws = w.fakes[0].clone();
    {
        let l = launchable(CloudId::Aws, "us-east-1", None, "m6i.large", 0.1);
        let info = crate::provision::ClusterInfo::new(Vec::new());
        let mut db = w.sky.db().expect("db");
        db.create("old", 1, None, "test", 1).expect("create");
        db.set_provisioned("old", &l, &info, 1).expect("prov");
        db.raw_connection()
            .execute_batch("UPDATE clusters SET pre_ownership = 1 WHERE name = 'old'")
            .expect("as migration 3 marks it");
    }
    let sink = RecordingSink::default();
    let view = rt()
        .block_on(w.sky.status(&[], true, &sink))
        .expect("status");
    assert_eq!(view.clusters.len(), 1, "kept: {view:?}");
    let why = view.clusters[0].unchecked.clone().expect("marked");
    assert!(why.contains("before ownership tags"), "{why}");
    for (what, err) in [
        (
            "stop",
            rt().block_on(w.sky.stop("old", &sink)).expect_err("stop"),
        ),
        (
            "down",
            rt().block_on(w.sky.down("old", false, &sink))
                .expect_err("down"),
        ),
    ] {
        assert!(err.to_string().contains("--purge"), "{what}: {err}");
    }
    assert!(
        !aws.calls()
            .iter()
            .any(|c| c.starts_with("stop") || c.starts_with("terminate")),
        "nothing asked of the cloud: {:?}",
        aws.calls()
    );
    // The user ends the nodes by hand, then removes the record explicitly.
    rt().block_on(w.sky.down("old", true, &sink))
        .expect("purge");
    assert!(w.sky.db().expect("db").get("old").expect("get").is_none());
}
