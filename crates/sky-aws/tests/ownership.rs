//! Ownership against moto through the real SDK and the `Sky` facade: instances SkyPilot made
//! (its `skypilot-cluster-name` tag) and instances another Sky home made (another owner id),
//! some under the same cluster names as this home's, survive every command of this home:
//! refresh (with an interrupted launch found by its launch id), down, `down --orphan`, adopt.
//! Also: a relaunch in a second region keeps the first region's nodes in view, and a record
//! whose cloud does not answer survives refresh, marked.

mod support;

use std::sync::Arc;

use sky_core::api::{Sky, SkyOptions};
use sky_core::clock::SystemClock;
use sky_core::config::Paths;
use sky_core::events::NullSink;
use sky_core::provision::owner::new_launch_id;
use sky_core::provision::{LaunchAttempt, Provider, ProvisionRequest, Registry};
use sky_core::state::{ClusterStatus, STATE_DB_FILE, StateStore};
use support::*;

fn request(name: &str, region: &str, nodes: u32, launch_id: &str) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: nodes,
        launchable: launchable(region, None, "m6i.large", false),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: launch_id.into(),
    }
}

fn sky_over(home: &std::path::Path, p: Arc<sky_aws::AwsProvider>) -> Sky {
    Sky::open(
        Paths::with_home(home),
        Registry::new().with(p),
        Arc::new(SystemClock),
        SkyOptions::default(),
    )
    .expect("sky")
}

/// What a `sky launch` killed right after its create call leaves: the INIT record with the
/// attempt (written before the call), and the nodes, tagged with the attempt's launch id.
async fn interrupted_launch(
    home: &std::path::Path,
    p: &sky_aws::AwsProvider,
    name: &str,
    region: &str,
) -> LaunchAttempt {
    let attempt = LaunchAttempt {
        launch_id: new_launch_id().expect("id"),
        cloud: sky_core::cloud::CloudId::Aws,
        region: region.into(),
        zone: None,
    };
    let mut db = StateStore::open(&home.join(STATE_DB_FILE)).expect("db");
    db.create(name, 2, None, "sky launch", 1).expect("record");
    db.add_launch_attempt(name, &attempt, 1).expect("attempt");
    p.run_instances(&request(name, region, 2, &attempt.launch_id))
        .await
        .expect("create");
    attempt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skypilots_and_other_homes_instances_survive_every_command() {
    let moto = start_moto().await;
    let home = sky_home();
    let mine = Arc::new(provider(home.path(), &moto.url()));
    let sky = sky_over(home.path(), mine.clone());

    // SkyPilot's 2-node `dev`, as SkyPilot tags it.
    let skypilot = create_foreign(
        &mine,
        "us-east-1",
        2,
        &[
            ("skypilot-cluster-name", "dev"),
            ("ray-node-type", "head"),
            ("skypilot-user", "alice"),
        ],
    )
    .await;
    // Another Sky home's `dev` and `train` in the same account.
    let other_home = sky_home();
    let theirs = provider(other_home.path(), &moto.url());
    let their_owner = theirs.options().owner.get().expect("their owner");
    theirs
        .run_instances(&request(
            "dev",
            "us-east-1",
            2,
            &new_launch_id().expect("id"),
        ))
        .await
        .expect("their dev");
    theirs
        .run_instances(&request(
            "train",
            "us-west-2",
            1,
            &new_launch_id().expect("id"),
        ))
        .await
        .expect("their train");
    let foreign = live_any(&mine).await;
    assert_eq!(foreign.len(), 5, "{foreign:?}");
    let all_foreign_alive = |live: &[String]| foreign.iter().all(|id| live.contains(id));

    // This home's `dev`, launched and killed after its create call.
    interrupted_launch(home.path(), &mine, "dev", "us-east-1").await;
    assert_eq!(live_any(&mine).await.len(), 7);
    // None of the foreign clusters is this home's orphan; the other home's are listed apart.
    assert!(sky.orphans().await.expect("orphans").is_empty());
    let listed: Vec<(String, Option<String>)> = sky
        .foreign_clusters()
        .await
        .expect("foreign")
        .into_iter()
        .map(|o| (o.name, o.owner))
        .collect();
    assert_eq!(
        listed,
        [
            ("dev".to_owned(), Some(their_owner.clone())),
            ("train".to_owned(), Some(their_owner.clone()))
        ]
    );

    // Refresh finds the interrupted launch by its launch id and ends only it.
    let view = sky.status(&[], true, &NullSink).await.expect("refresh");
    assert!(view.clusters.is_empty(), "{view:?}");
    let live = live_any(&mine).await;
    assert_eq!(live.len(), 5, "{live:?}");
    assert!(all_foreign_alive(&live));

    // A launched `dev` of this home (recorded UP), then `down dev`.
    let launch_id = new_launch_id().expect("id");
    mine.run_instances(&request("dev", "us-east-1", 2, &launch_id))
        .await
        .expect("launch dev");
    let info = mine.wait_instances("dev").await.expect("wait");
    {
        let mut db = StateStore::open(&home.path().join(STATE_DB_FILE)).expect("db");
        db.create("dev", 2, None, "sky launch", 2).expect("record");
        let l = launchable("us-east-1", None, "m6i.large", false);
        db.set_provisioned("dev", &l, &info, 3).expect("nodes");
        db.set_status("dev", ClusterStatus::Up, 3, "up")
            .expect("up");
    }
    let view = sky.status(&[], true, &NullSink).await.expect("refresh");
    assert_eq!(view.clusters.len(), 1, "{view:?}");
    assert!(view.changes.is_empty(), "{:?}", view.changes);
    sky.down("dev", false, &NullSink).await.expect("down");
    let live = live_any(&mine).await;
    assert_eq!(live.len(), 5, "{live:?}");
    assert!(all_foreign_alive(&live));

    // An orphan of this home (a lost record): listed, adopted, downed; nothing else moves.
    mine.run_instances(&request(
        "lost",
        "us-east-1",
        1,
        &new_launch_id().expect("id"),
    ))
    .await
    .expect("lost");
    mine.wait_instances("lost").await.expect("wait lost");
    let orphans = sky.orphans().await.expect("orphans");
    let names: Vec<&str> = orphans.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["lost"]);
    // `down --orphan dev`: SkyPilot's and the other home's `dev` are not this home's orphans.
    let err = sky
        .terminate_orphan("dev", &NullSink)
        .await
        .expect_err("no orphan dev here");
    assert!(
        matches!(err, sky_core::api::SkyError::ClusterNotFound(_)),
        "{err}"
    );
    sky.adopt_orphan("lost", &NullSink).await.expect("adopt");
    sky.down("lost", false, &NullSink).await.expect("down lost");
    assert!(all_foreign_alive(&live_any(&mine).await));

    // Acting on another home's cluster takes naming its owner, and ends only that cluster.
    sky.terminate_foreign("train", &their_owner, &NullSink)
        .await
        .expect("named owner");
    let live = live_any(&mine).await;
    assert_eq!(live.len(), 4, "{live:?}");
    assert!(
        skypilot.iter().all(|id| live.contains(id)),
        "SkyPilot's dev runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaunch_in_another_region_keeps_the_first_regions_nodes_in_view() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    p.run_instances(&request(
        "hop",
        "us-east-1",
        1,
        &new_launch_id().expect("id"),
    ))
    .await
    .expect("first region");
    p.run_instances(&request(
        "hop",
        "us-west-2",
        1,
        &new_launch_id().expect("id"),
    ))
    .await
    .expect("second region");
    assert_eq!(p.query("hop").await.expect("query").len(), 2);
    p.terminate("hop").await.expect("terminate");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_cloud_does_not_answer_survives_refresh_marked() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    interrupted_launch(home.path(), &p, "dev", "us-east-1").await;
    // This process reaches no EC2 (nothing listens there): it cannot check the record.
    let unreachable = Arc::new(provider(home.path(), "http://127.0.0.1:9"));
    let sky = sky_over(home.path(), unreachable);
    let view = sky.status(&[], true, &NullSink).await.expect("refresh");
    assert_eq!(view.clusters.len(), 1, "{view:?}");
    let why = view.clusters[0].unchecked.clone().expect("marked");
    assert!(why.contains("AWS did not answer"), "{why}");
    assert_eq!(live_tagged(&p).await.len(), 2, "nodes untouched");
    // With the cloud back, the same record is reconciled: nodes found by launch id, ended.
    let sky = sky_over(home.path(), Arc::new(provider(home.path(), &moto.url())));
    let view = sky.status(&[], true, &NullSink).await.expect("refresh");
    assert!(view.clusters.is_empty(), "{view:?}");
    assert!(live_tagged(&p).await.is_empty());
}

/// The tag values of instance `id`, asked of EC2 directly.
async fn tags_of(p: &sky_aws::AwsProvider, id: &str) -> std::collections::BTreeMap<String, String> {
    let client = p.client("us-east-1").expect("client");
    let out = client
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// A cluster an earlier Sky launched (SkyPilot's tag only, no owner id) is claimed at refresh by
/// the instance ids its record holds, and is managed again; SkyPilot's instances under the same
/// name are not touched, and a record whose instance is tagged for another name stays refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_launched_before_ownership_tags_is_claimed_by_its_recorded_ids() {
    use sky_core::provision::{ClusterInfo, NodeHandle};
    let moto = start_moto().await;
    let home = sky_home();
    let mine = Arc::new(provider(home.path(), &moto.url()));
    let sky = sky_over(home.path(), mine.clone());
    let legacy = [("skypilot-cluster-name", "old")];
    let old_ids = create_foreign(&mine, "us-east-1", 2, &legacy).await;
    let skypilot = create_foreign(&mine, "us-east-1", 1, &legacy).await;
    let wrong = create_foreign(
        &mine,
        "us-east-1",
        1,
        &[("skypilot-cluster-name", "someone-elses")],
    )
    .await;
    {
        let mut db = StateStore::open(&home.path().join(STATE_DB_FILE)).expect("db");
        for (name, ids) in [("old", &old_ids), ("mislabelled", &wrong)] {
            let nodes = ids
                .iter()
                .enumerate()
                .map(|(rank, id)| NodeHandle {
                    rank: u32::try_from(rank).expect("rank"),
                    instance_id: id.clone(),
                    internal_ip: "10.0.0.1".into(),
                    external_ip: None,
                    local_dir: None,
                })
                .collect();
            let n = u32::try_from(ids.len()).expect("nodes");
            db.create(name, n, None, "sky launch", 1).expect("record");
            db.set_provisioned(
                name,
                &launchable("us-east-1", None, "m5.large", false),
                &ClusterInfo::new(nodes),
                1,
            )
            .expect("provisioned");
            db.set_pre_ownership(name, true)
                .expect("as migration 3 marks it");
        }
    }
    let view = sky.status(&[], true, &NullSink).await.expect("refresh");
    let old = view.clusters.iter().find(|c| c.name == "old").expect("old");
    assert_eq!(old.unchecked, None, "{view:?}");
    assert!(
        view.changes
            .iter()
            .any(|c| c.cluster == "old" && c.message.contains("now carry this home's tags")),
        "{view:?}"
    );
    let owner = mine.options().owner.get().expect("owner");
    for id in &old_ids {
        let tags = tags_of(&mine, id).await;
        assert_eq!(tags.get("sky-owner"), Some(&owner), "{tags:?}");
        assert_eq!(tags.get("sky-cluster").map(String::as_str), Some("old"));
    }
    assert!(!tags_of(&mine, &skypilot[0]).await.contains_key("sky-owner"));
    let mislabelled = view
        .clusters
        .iter()
        .find(|c| c.name == "mislabelled")
        .expect("kept");
    assert!(
        mislabelled
            .unchecked
            .as_deref()
            .is_some_and(|u| u.contains("before ownership tags")),
        "{view:?}"
    );
    assert!(!tags_of(&mine, &wrong[0]).await.contains_key("sky-owner"));

    // Managed again: down ends exactly the claimed instances.
    sky.down("old", false, &NullSink).await.expect("down");
    let live: Vec<String> =
        sky_testkit::moto::live_instances(moto.port, "us-east-1", "skypilot-cluster-name").await;
    assert!(
        live.contains(&skypilot[0]) && live.contains(&wrong[0]),
        "{live:?}"
    );
    assert!(old_ids.iter().all(|id| !live.contains(id)), "{live:?}");
    sky.down("mislabelled", false, &NullSink)
        .await
        .expect_err("still refused");
}
