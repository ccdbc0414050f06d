//! Sky in a home it shares, through the real `sky` binary on the local cloud: beside a SkyPilot
//! home in `~/.sky` (whose files must come out byte-identical), and opened by eight processes at
//! once on a fresh home (no schema error, an intact database).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// Every file under `dir` with its bytes, sorted: what "byte-identical" compares.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `sky` as a user whose home is `home`, with no `SKY_HOME`: Sky picks its default home there.
fn sky_as_user(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("sky").expect("the sky binary is built");
    cmd.env("HOME", home)
        .env_remove("SKY_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SKY_DEV")
        .env("NO_COLOR", "1");
    cmd
}

/// Downs every cluster of the user's default Sky home at the end, so no agent outlives the test.
struct User(tempfile::TempDir);

impl Drop for User {
    fn drop(&mut self) {
        let _ = sky_as_user(self.0.path())
            .args(["down", "--all", "-y", "--purge"])
            .output();
    }
}

/// A SkyPilot home as SkyPilot 0.x leaves it: `state.db` with its own `clusters` table and a
/// row, `config.yaml`, `ssh_node_pools.yaml`, a key.
fn skypilot_home(home: &Path) {
    let sky = home.join(".sky");
    std::fs::create_dir_all(sky.join("generated")).expect("mkdir");
    let db = rusqlite::Connection::open(sky.join("state.db")).expect("skypilot db");
    db.execute_batch(
        "CREATE TABLE clusters (name TEXT PRIMARY KEY, launched_at INTEGER, handle BLOB, \
         last_use TEXT, status TEXT, autostop INTEGER DEFAULT -1, to_down INTEGER DEFAULT 0, \
         metadata TEXT DEFAULT '{}', owner TEXT DEFAULT null, cluster_hash TEXT DEFAULT null);
         CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT);
         INSERT INTO clusters (name, launched_at, status) VALUES ('dev', 1700000000, 'UP');",
    )
    .expect("skypilot schema");
    drop(db);
    std::fs::write(sky.join("config.yaml"), "aws:\n  vpc_name: corp-vpc\n").expect("config");
    std::fs::write(
        sky.join("ssh_node_pools.yaml"),
        "lab:\n  user: me\n  hosts: [10.0.0.9]\n",
    )
    .expect("pools");
    std::fs::write(sky.join("generated/ssh-key"), "not a real key\n").expect("key");
}

#[test]
fn the_whole_local_lifecycle_beside_a_skypilot_home_leaves_its_files_byte_identical() {
    let user = User(tempfile::tempdir().expect("home"));
    let home = user.0.path();
    skypilot_home(home);
    let before = files(&home.join(".sky"));
    // `dev` is also SkyPilot's cluster name: Sky's `dev` is its own.
    for args in [
        vec!["status"],
        vec!["launch", "-y", "-c", "dev", "echo sky-ran"],
        vec!["exec", "dev", "echo again"],
        vec!["queue", "dev"],
        vec!["status", "--refresh"],
        vec!["down", "-y", "dev"],
        vec!["cost-report"],
    ] {
        let out = sky_as_user(home).args(&args).output().expect("runs");
        assert!(out.status.success(), "sky {args:?}: {}", text(&out));
    }
    assert_eq!(
        files(&home.join(".sky")),
        before,
        "SkyPilot's files changed"
    );
    assert!(
        home.join(".local/share/sky/state.db").is_file(),
        "Sky's own home is the platform data directory"
    );
}

#[test]
fn eight_processes_opening_a_fresh_home_at_once_all_work_and_leave_an_intact_database() {
    for round in 0..3 {
        let home = crate::local_cloud::Home::new();
        let children: Vec<_> = (0..8)
            .map(|i| {
                let args: Vec<String> = match i % 4 {
                    0 => vec![
                        "launch".into(),
                        "-y".into(),
                        "-c".into(),
                        format!("r{i}"),
                        "echo hi".into(),
                    ],
                    1 => vec!["status".into()],
                    2 => vec!["down".into(), "-y".into(), format!("r{}", i - 2)],
                    _ => vec!["status".into(), "-o".into(), "json".into()],
                };
                let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sky"));
                cmd.env("SKY_HOME", home.path())
                    .env("NO_COLOR", "1")
                    .env_remove("SKY_DEV")
                    .args(&args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                (args, cmd.spawn().expect("spawn"))
            })
            .collect();
        for (args, child) in children {
            let out = child.wait_with_output().expect("wait");
            let all = text(&out);
            assert!(
                !all.contains("state database") && !all.contains("already exists"),
                "round {round}: sky {args:?}: {all}"
            );
            match args[0].as_str() {
                // A `down` may run before or after the launch of its name: either it downs the
                // cluster or it says there is none. Nothing else.
                "down" => assert!(
                    out.status.success()
                        || all.contains("does not exist")
                        || all.contains("not found"),
                    "round {round}: sky {args:?}: {all}"
                ),
                _ => assert!(out.status.success(), "round {round}: sky {args:?}: {all}"),
            }
        }
        let db = rusqlite::Connection::open(home.path().join("state.db")).expect("db");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "round {round}");
    }
}
