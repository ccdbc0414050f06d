use std::path::Path;

use super::*;
use crate::state::StateStore;

/// The tables of SkyPilot 0.14's `~/.sky/state.db` that tell it apart (its `clusters` columns
/// as it creates them), and one row.
pub(crate) const SKYPILOT_STATE_DB: &str = r#"
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('005');
CREATE TABLE clusters (name TEXT PRIMARY KEY, launched_at INTEGER, handle BLOB, last_use TEXT,
  status TEXT, autostop INTEGER DEFAULT -1, to_down INTEGER DEFAULT 0, metadata TEXT DEFAULT '{}',
  owner TEXT DEFAULT null, cluster_hash TEXT DEFAULT null, storage_mounts_metadata BLOB DEFAULT null,
  cluster_ever_up INTEGER DEFAULT 0, status_updated_at INTEGER DEFAULT null,
  config_hash TEXT DEFAULT null, user_hash TEXT DEFAULT null, workspace TEXT DEFAULT 'default');
CREATE TABLE cluster_history (cluster_hash TEXT PRIMARY KEY, name TEXT, num_nodes int,
  requested_resources BLOB, launched_resources BLOB, usage_intervals BLOB, user_hash TEXT);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE storage (name TEXT PRIMARY KEY, launched_at INTEGER, handle BLOB, last_use TEXT, status TEXT);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, password TEXT, created_at INTEGER);
CREATE TABLE ssh_keys (user_hash TEXT PRIMARY KEY, ssh_public_key TEXT, ssh_private_key TEXT);
INSERT INTO clusters (name, launched_at, status, cluster_hash, user_hash)
  VALUES ('dev', 1700000000, 'UP', 'abc123', 'u1');
"#;

fn skypilot_db(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(SKYPILOT_STATE_DB).expect("schema");
}

/// A state database as a Sky version before application ids wrote it: Sky's schema, id 0.
fn earlier_sky_db(path: &Path) {
    drop(StateStore::open(path).expect("open"));
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.pragma_update(None, "application_id", 0)
        .expect("clear id");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

#[test]
fn owners_are_told_apart_by_header_then_by_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sky = dir.path().join("sky/state.db");
    drop(StateStore::open(&sky).expect("open"));
    assert_eq!(state_db_owner(&sky), DbOwner::Sky);
    assert_eq!(owner::header_application_id(&sky), Some(APPLICATION_ID));

    let earlier = dir.path().join("earlier/state.db");
    std::fs::create_dir_all(earlier.parent().expect("p")).expect("dir");
    earlier_sky_db(&earlier);
    assert_eq!(owner::header_application_id(&earlier), Some(0));
    assert_eq!(state_db_owner(&earlier), DbOwner::Sky);

    let skypilot = dir.path().join("skypilot/state.db");
    skypilot_db(&skypilot);
    let before = std::fs::read(&skypilot).expect("bytes");
    assert_eq!(state_db_owner(&skypilot), DbOwner::SkyPilot);
    assert_eq!(
        std::fs::read(&skypilot).expect("bytes"),
        before,
        "read only"
    );

    let text = dir.path().join("text.db");
    std::fs::write(&text, "not a database").expect("write");
    assert!(matches!(state_db_owner(&text), DbOwner::Unknown(_)));
}

#[test]
fn sky_refuses_to_open_skypilots_database_and_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    skypilot_db(&db);
    let before = std::fs::read(&db).expect("bytes");
    let err = StateStore::open(&db).expect_err("not Sky's");
    let text = err.to_string();
    assert!(
        text.contains("is not Sky's state database") && text.contains("clusters"),
        "{text}"
    );
    assert_eq!(std::fs::read(&db).expect("bytes"), before);
}

#[test]
fn an_earlier_sky_home_moves_once_and_keeps_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (legacy, new_home) = (dir.path().join(".sky"), dir.path().join("share/sky"));
    earlier_sky_db(&legacy.join(STATE_DB));
    std::fs::create_dir_all(legacy.join("ssh")).expect("ssh");
    std::fs::write(legacy.join("ssh/sky-key"), "key").expect("key");
    std::fs::write(legacy.join("config.yaml"), "allowed_clouds: [aws]\n").expect("config");
    // Before the move, the header does not say Sky yet: the default is the new home.
    assert_eq!(resolve_between(&legacy, new_home.clone()), new_home);

    let moved = migrate_between(&legacy, &new_home).expect("migrate");
    assert_eq!(
        moved,
        Some(LegacyHome::Moved {
            from: legacy.clone(),
            to: new_home.clone()
        })
    );
    assert!(
        moved
            .expect("some")
            .message()
            .starts_with("moved Sky's home from")
    );
    assert!(!legacy.exists());
    assert_eq!(
        std::fs::read_to_string(new_home.join("ssh/sky-key")).expect("key"),
        "key"
    );
    assert_eq!(state_db_owner(&new_home.join(STATE_DB)), DbOwner::Sky);
    assert_eq!(migrate_between(&legacy, &new_home).expect("again"), None);
}

#[test]
fn a_shared_or_busy_earlier_home_is_kept_in_use_where_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (legacy, new_home) = (dir.path().join(".sky"), dir.path().join("share/sky"));
    earlier_sky_db(&legacy.join(STATE_DB));
    std::fs::create_dir_all(legacy.join("generated")).expect("foreign dir");
    let kept = migrate_between(&legacy, &new_home).expect("migrate");
    let Some(LegacyHome::Kept { path, reason }) = kept else {
        panic!("expected Kept, got {kept:?}");
    };
    assert_eq!(path, legacy);
    assert!(reason.contains("generated"), "{reason}");
    assert!(legacy.join(STATE_DB).is_file() && !new_home.exists());
    // Proven Sky's and stamped: the process keeps using it rather than starting empty.
    assert_eq!(resolve_between(&legacy, new_home.clone()), legacy);

    std::fs::remove_dir(legacy.join("generated")).expect("rm");
    std::fs::create_dir_all(legacy.join("local/dev/node-0")).expect("local cluster");
    let kept = migrate_between(&legacy, &new_home).expect("migrate");
    assert!(
        matches!(&kept, Some(LegacyHome::Kept { reason, .. }) if reason.contains("local clusters")),
        "{kept:?}"
    );
}

#[test]
fn skypilots_home_is_never_moved_only_pointed_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (legacy, new_home) = (dir.path().join(".sky"), dir.path().join("share/sky"));
    skypilot_db(&legacy.join(STATE_DB));
    std::fs::write(legacy.join("config.yaml"), "allowed_clouds: [aws]\n").expect("config");
    let before = std::fs::read(legacy.join(STATE_DB)).expect("bytes");
    let found = migrate_between(&legacy, &new_home).expect("migrate");
    assert_eq!(
        found,
        Some(LegacyHome::SkyPilotFound {
            path: legacy.clone(),
            files: vec!["config.yaml".into()]
        })
    );
    assert_eq!(std::fs::read(legacy.join(STATE_DB)).expect("bytes"), before);
    assert!(!new_home.exists());
    assert_eq!(resolve_between(&legacy, new_home.clone()), new_home);
}

#[test]
fn import_validates_refuses_overwrites_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (skypilot, home) = (dir.path().join(".sky"), dir.path().join("home"));
    std::fs::create_dir_all(&skypilot).expect("dir");
    let config = "allowed_clouds: [aws, kubernetes]\njobs: {controller: {}}\n";
    let pools = "lab:\n  hosts: [10.1.2.3]\n  user: me\n";
    std::fs::write(skypilot.join("config.yaml"), config).expect("config");
    std::fs::write(skypilot.join("ssh_node_pools.yaml"), pools).expect("pools");
    let paths = Paths::with_home(&home);

    let report = import_skypilot(&paths, Some(&skypilot), false).expect("import");
    assert_eq!(report.imported(), 2);
    assert_eq!(
        std::fs::read_to_string(home.join("config.yaml")).expect("c"),
        config
    );
    assert_eq!(
        std::fs::read_to_string(home.join("ssh_node_pools.yaml")).expect("p"),
        pools
    );
    // Same bytes again: nothing to do, no --force needed.
    let again = import_skypilot(&paths, Some(&skypilot), false).expect("again");
    assert_eq!(again.imported(), 0);
    assert!(matches!(again.files[0], ImportedFile::Unchanged { .. }));

    std::fs::write(home.join("config.yaml"), "allowed_clouds: [gcp]\n").expect("edit");
    let err = import_skypilot(&paths, Some(&skypilot), false).expect_err("exists");
    assert!(err.to_string().contains("--force"), "{err}");
    let forced = import_skypilot(&paths, Some(&skypilot), true).expect("force");
    assert!(matches!(
        forced.files[0],
        ImportedFile::Imported { replaced: true, .. }
    ));

    // An invalid file stops the whole import before anything is written.
    std::fs::write(skypilot.join("config.yaml"), "allowed_clouds: [gpc]\n").expect("bad");
    std::fs::remove_file(home.join("ssh_node_pools.yaml")).expect("rm");
    let err = import_skypilot(&paths, Some(&skypilot), true).expect_err("invalid");
    assert!(err.to_string().contains("unknown cloud 'gpc'"), "{err}");
    assert!(!home.join("ssh_node_pools.yaml").exists());

    let err = import_skypilot(&Paths::with_home(&skypilot), Some(&skypilot), false)
        .expect_err("same home");
    assert!(matches!(err, ImportError::SameHome { .. }), "{err}");
}
