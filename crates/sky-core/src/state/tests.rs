use super::*;
use crate::provision::NodeHandle;
use crate::testing::launchable;

fn info(n: u32) -> ClusterInfo {
    ClusterInfo::new(
        (0..n)
            .map(|rank| NodeHandle {
                rank,
                instance_id: format!("i-{rank}"),
                internal_ip: format!("10.0.0.{rank}"),
                external_ip: None,
                local_dir: None,
            })
            .collect(),
    )
}

#[test]
fn lifecycle_round_trip_keeps_history_and_intervals() {
    let mut db = StateStore::open_in_memory().expect("db");
    let l = launchable(
        CloudId::Aws,
        "us-east-1",
        Some("us-east-1a"),
        "m6i.large",
        0.5,
    );
    let rec = db
        .create("c1", 2, Some(&ResourceChoice::default()), "sky launch", 100)
        .expect("create");
    assert_eq!(
        (rec.status, rec.launchable.clone(), rec.num_nodes),
        (ClusterStatus::Init, None, 2)
    );
    assert_eq!(rec.resources, Some(ResourceChoice::default()));
    assert!(matches!(
        db.create("c1", 1, None, "sky launch", 101),
        Err(StateError::AlreadyExists(_))
    ));

    db.set_provisioned("c1", &l, &info(2), 110)
        .expect("provisioned");
    db.set_status("c1", ClusterStatus::Up, 120, "setup done")
        .expect("up");
    let rec = db.require("c1").expect("exists");
    assert_eq!(rec.launchable.as_ref(), Some(&l));
    assert_eq!(rec.handle.as_ref().map(|h| h.nodes.len()), Some(2));

    db.set_status("c1", ClusterStatus::Stopped, 3710, "sky stop")
        .expect("stop");
    assert!(matches!(
        db.set_status("c1", ClusterStatus::Up, 3800, "bad"),
        Err(StateError::Transition { .. })
    ));
    db.set_status("c1", ClusterStatus::Init, 7310, "sky start")
        .expect("start");
    db.set_provisioned("c1", &l, &info(2), 7310)
        .expect("resumed");
    db.set_status("c1", ClusterStatus::Up, 7320, "setup done")
        .expect("up again");
    db.remove("c1", 9110, "sky down").expect("down");
    assert!(db.get("c1").expect("query").is_none());

    let costs = db.cost_records().expect("costs");
    assert_eq!(costs.len(), 1);
    assert_eq!(
        costs[0].intervals,
        vec![(110, Some(3710)), (7310, Some(9110))]
    );
    assert_eq!(costs[0].terminated_at, Some(9110));
    let kinds: Vec<String> = db
        .events("c1")
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "provisioned",
            "UP",
            "STOPPED",
            "INIT",
            "provisioned",
            "UP",
            "terminated"
        ]
    );
}

#[test]
fn relaunching_a_name_is_a_new_cost_record() {
    let mut db = StateStore::open_in_memory().expect("db");
    let l = launchable(CloudId::Gcp, "us-central1", None, "n2-standard-2", 0.1);
    for (t, _) in [(0, 1), (1000, 2)] {
        db.create("c", 1, None, "sky launch", t).expect("create");
        db.set_provisioned("c", &l, &info(1), t).expect("prov");
        db.remove("c", t + 60, "down").expect("down");
    }
    assert_eq!(db.cost_records().expect("costs").len(), 2);
}

#[test]
fn autostop_and_touch_are_stored() {
    let mut db = StateStore::open_in_memory().expect("db");
    db.create("c", 1, None, "sky launch", 5).expect("create");
    db.touch("c", "sky exec", 50).expect("touch");
    db.set_autostop(
        "c",
        Some(Autostop {
            idle_minutes: 90,
            down: true,
        }),
        51,
    )
    .expect("autostop");
    let rec = db.require("c").expect("exists");
    assert_eq!(
        (rec.last_use_at, rec.last_use_command.as_str()),
        (50, "sky exec")
    );
    assert_eq!(
        rec.autostop,
        Some(Autostop {
            idle_minutes: 90,
            down: true
        })
    );
    db.set_autostop("c", None, 52).expect("cancel");
    assert_eq!(db.require("c").expect("exists").autostop, None);
    assert!(matches!(
        db.touch("nope", "x", 1),
        Err(StateError::NotFound(_))
    ));
}

#[test]
fn a_newer_database_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state.db");
    StateStore::open(&path).expect("fresh db");
    {
        let conn = Connection::open(&path).expect("raw");
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .expect("bump");
    }
    let err = StateStore::open(&path).expect_err("too new");
    let msg = err.to_string();
    assert!(msg.contains("newer than this sky supports"), "{msg}");
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("nested/state.db");
    StateStore::open(&path)
        .expect("open")
        .create("keep", 1, None, "sky launch", 1)
        .expect("create");
    let db = StateStore::open(&path).expect("reopen");
    assert_eq!(db.list().expect("list").len(), 1);
    let v: u32 = db
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, latest_version());
}

#[test]
fn corrupt_json_names_the_column() {
    let mut db = StateStore::open_in_memory().expect("db");
    db.create("c", 1, None, "sky launch", 1).expect("create");
    db.conn
        .execute(
            "UPDATE clusters SET handle_json = '{\"version\": 1}' WHERE name = 'c'",
            [],
        )
        .expect("corrupt");
    let err = db.get("c").expect_err("bad json");
    assert!(err.to_string().contains("handle_json"), "{err}");
}

#[test]
fn names_are_unique_regardless_of_case_and_nothing_is_written_for_the_loser() {
    let mut db = StateStore::open_in_memory().expect("db");
    db.create("Dev", 1, None, "sky launch", 1).expect("create");
    let err = db
        .create("dev", 2, None, "sky launch", 2)
        .expect_err("same name in another case");
    assert!(
        matches!(&err, StateError::NameTaken { requested, existing } if requested == "dev" && existing == "Dev"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("a cluster 'Dev' already exists")
            && text.contains(
                "compared case-insensitively because Azure resource groups and macOS files are"
            ),
        "{text}"
    );
    // The exact name again is still the plain "already exists".
    assert!(matches!(
        db.create("Dev", 1, None, "sky launch", 3),
        Err(StateError::AlreadyExists(_))
    ));
    assert_eq!(db.list().expect("list").len(), 1);
    assert!(db.events("dev").expect("events").is_empty());
    assert_eq!(
        db.name_in_use("DEV").expect("lookup").as_deref(),
        Some("Dev")
    );
    assert_eq!(db.name_in_use("other").expect("lookup"), None);
    // Adopting under another case is refused the same way.
    let l = launchable(CloudId::Aws, "us-east-1", None, "m6i.large", 0.5);
    assert!(matches!(
        db.adopt("DEV", &l, &info(1), false, "sky adopt DEV", 4),
        Err(StateError::NameTaken { .. })
    ));
    // Once the cluster is gone, the name is free in any case.
    db.remove("Dev", 5, "terminated").expect("remove");
    db.create("dev", 1, None, "sky launch", 6)
        .expect("free again");
}

#[test]
fn racing_creates_of_one_name_in_two_cases_let_exactly_one_win() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state.db");
    StateStore::open(&path).expect("first open");
    for round in 0..20 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = [format!("Race{round}"), format!("race{round}")]
            .into_iter()
            .map(|name| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut db = StateStore::open(&path).expect("open");
                    barrier.wait();
                    db.create(&name, 1, None, "sky launch", 1)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(StateError::NameTaken { .. }))),
            "round {round}: {results:?}"
        );
    }
    let db = StateStore::open(&path).expect("reopen");
    assert_eq!(db.list().expect("list").len(), 20);
}

#[test]
fn a_home_that_already_holds_names_in_two_cases_still_opens_and_keeps_both() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state.db");
    {
        // A database as version 1 left it: no case-insensitive index, `Dev` and `dev` both in.
        let db = StateStore::open(&path).expect("open");
        db.conn
            .execute_batch(
                "DROP TABLE bucket_users; DROP TABLE buckets; \
                 DROP TABLE home; ALTER TABLE clusters DROP COLUMN launch_attempts_json; \
                 ALTER TABLE clusters DROP COLUMN unchecked_reason; \
                 ALTER TABLE clusters DROP COLUMN pre_ownership; \
                 DROP INDEX clusters_name_nocase; ALTER TABLE clusters DROP COLUMN name_clash; \
                 PRAGMA user_version = 1;",
            )
            .expect("downgrade to v1");
        for (i, name) in ["Dev", "dev"].into_iter().enumerate() {
            insert_cluster(&db.conn, name, 1, None, "sky launch", i as i64).expect("v1 insert");
        }
    }
    let mut db = StateStore::open(&path).expect("migrates");
    let names: Vec<String> = db
        .list()
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["Dev", "dev"]);
    assert!(
        db.list().expect("list").iter().all(|r| r.pre_ownership),
        "records an older version wrote are marked as launched before ownership tags"
    );
    let fresh = db
        .create("fresh", 1, None, "sky launch", 9)
        .expect("new name");
    assert!(!fresh.pre_ownership);
    assert!(matches!(
        db.create("DEV", 1, None, "sky launch", 9),
        Err(StateError::NameTaken { .. })
    ));
    db.remove("dev", 10, "terminated")
        .expect("the clashing one can go");
}

#[test]
fn concurrent_first_opens_of_a_fresh_home_all_succeed() {
    // Each round is a fresh file, so every round races the creation of the schema itself.
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("home").join("state.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    StateStore::open(&path).and_then(|db| db.list().map(|l| l.len()))
                })
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().expect("no panic").expect("open"), 0);
        }
        let conn = Connection::open(&path).expect("raw");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
        let (version, app): (u32, i32) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), (SELECT application_id FROM pragma_application_id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("header");
        assert_eq!(
            (version, app),
            (latest_version(), crate::home::APPLICATION_ID)
        );
    }
}

#[test]
fn storage_records_keep_their_users_until_released() {
    let mut db = StateStore::open_in_memory().expect("db");
    let rec = StorageRecord {
        name: "sky-ckpt".into(),
        store: crate::storage::StoreKind::S3,
        region: "eu-west-1".into(),
        persistent: false,
        sources: vec!["./data".into()],
        created_at: 0,
        last_used_at: 0,
        clusters: Vec::new(),
    };
    db.record_storage(&rec, "a", 100).expect("a");
    db.record_storage(
        &StorageRecord {
            persistent: true,
            ..rec.clone()
        },
        "b",
        200,
    )
    .expect("b");
    let got = db.storage("sky-ckpt").expect("get").expect("recorded");
    assert_eq!(
        (got.created_at, got.last_used_at, got.persistent),
        (100, 200, true),
        "created_at is kept; the last launch's word on persistent wins"
    );
    assert_eq!(got.clusters, ["a", "b"]);
    let released = db.release_storage("a").expect("release");
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].clusters, ["b"], "the other user remains");
    assert!(db.release_storage("a").expect("again").is_empty());
    db.remove_storage("sky-ckpt").expect("remove");
    assert!(db.storage_list().expect("list").is_empty());
    assert!(db.release_storage("b").expect("gone").is_empty());
}
