//! SSH pools that clean only their own (issue 14), against real sshd nodes (see
//! [`crate::ssh_support`]): a pool host that is this machine reached as the user whose home holds
//! the client's Sky home and a SkyPilot `~/.sky`; two launches racing for a one-host pool; a
//! recorded job pid that the kernel has since given to another process.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sky_core::ssh::node_dir::{NODES_ROOT, NodeDir, PROCS, START_TIME_FN};
use sky_core::ssh::{ConnectOptions, RemoteCluster, SshTarget, keys};

use crate::ssh::{Pool, harness_available, ok};
use crate::ssh_support::SshNodes;

/// Every file under `dir` with its bytes, sorted, skipping `skip` (a subtree).
fn files(dir: &Path, skip: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p == skip {
            continue;
        }
        if p.is_dir() && !p.is_symlink() {
            out.extend(files(&p, skip));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn down_on_a_host_sharing_the_clients_home_leaves_that_home_and_skypilots_intact() {
    if !harness_available() {
        return;
    }
    let keys_home = tempfile::tempdir().expect("tmp");
    let key = keys::load_or_create(keys_home.path()).expect("key");
    let nodes = SshNodes::start(1, &key.public_openssh().expect("public")).expect("sshd");
    let node = &nodes.nodes[0];
    let home = node.home.clone();
    // The client's Sky home inside the very home the pool host logs in to, Sky's key in it, and
    // SkyPilot's home beside it.
    let sky_home = home.join(".config/sky");
    std::fs::create_dir_all(sky_home.join("ssh")).expect("mkdir");
    for f in ["sky-key", "sky-key.pub"] {
        std::fs::copy(
            keys_home.path().join("ssh").join(f),
            sky_home.join("ssh").join(f),
        )
        .expect("copy key");
    }
    std::fs::write(sky_home.join("ssh_node_pools.yaml"), nodes.pool_yaml("p")).expect("pools");
    std::fs::create_dir_all(home.join(".sky/.sky")).expect("mkdir");
    std::fs::write(home.join(".sky/state.db"), "SkyPilot's database").expect("write");
    std::fs::write(home.join(".sky/config.yaml"), "allowed_clouds: [aws]\n").expect("write");
    std::fs::write(home.join(".bashrc"), "export X=1\n").expect("write");
    std::fs::create_dir_all(home.join("src")).expect("mkdir");
    std::fs::write(home.join("src/data.txt"), "payload").expect("write");
    std::fs::write(
        home.join("task.yaml"),
        "resources:\n  infra: ssh/p\nworkdir: src\nrun: cat data.txt\n",
    )
    .expect("task");
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:", node.user))
        .arg(&home)
        .status()
        .expect("chown");
    assert!(status.success());
    let gid: u32 = sky_testkit::hosts::run(Command::new("id").arg("-g").arg(&node.user))
        .expect("gid")
        .parse()
        .expect("number");
    // `sky` runs as that same user, with that home.
    let sky = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("sky"))
            .args(args)
            .current_dir(&home)
            .env("HOME", &home)
            .env("SKY_HOME", &sky_home)
            .env("NO_COLOR", "1")
            .env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20")
            .env_remove("SKY_DEV")
            .env_remove("SKY_AGENT_IDLE_UNIT_SECS")
            .uid(node.uid)
            .gid(gid)
            .output()
            .expect("sky runs");
        assert!(out.status.success(), "sky {args:?} failed:\n{}", text(&out));
        text(&out)
    };
    sky(&["status"]);
    let before = files(&home, &sky_home);
    let skypilot = files(&home.join(".sky"), Path::new("/nonexistent"));
    let key_bytes = std::fs::read(sky_home.join("ssh/sky-key")).expect("key");

    let out = sky(&["launch", "-y", "-c", "mine", "task.yaml"]);
    assert!(out.lines().any(|l| l == "payload"), "{out}");
    let dir = NodeDir::for_cluster(&sky_home, "mine").expect("dir");
    assert!(home.join(dir.rel()).join("owner").is_file());
    assert!(home.join("sky_workdir/data.txt").is_file());

    sky(&["down", "-y", "mine"]);
    assert!(
        !home.join(NODES_ROOT).exists(),
        "the cluster's directory went"
    );
    assert!(
        !home.join("sky_workdir").exists(),
        "the workdir it created went"
    );
    assert_eq!(
        files(&home.join(".sky"), Path::new("/nonexistent")),
        skypilot
    );
    assert_eq!(files(&home, &sky_home), before, "the home is as it was");
    assert_eq!(
        std::fs::read(sky_home.join("ssh/sky-key")).expect("key"),
        key_bytes
    );
    let view = sky(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&view).expect("status json");
    assert_eq!(v["clusters"].as_array().map(Vec::len), Some(0), "{view}");
}

#[test]
fn two_launches_racing_for_a_one_host_pool_exactly_one_wins() {
    let Some(pool) = Pool::start(1) else { return };
    // The state database exists before the race (a fresh one opened by two processes at once is
    // another issue's).
    ok(pool.sky().arg("status"));
    let launch = |name: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("sky"))
            .env("SKY_HOME", pool.path())
            .env("NO_COLOR", "1")
            .env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20")
            .env_remove("SKY_DEV")
            .args(["launch", "-y", "-c", name, "--infra", "ssh/p", "echo up"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sky launch starts")
    };
    let (a, b) = (launch("ra"), launch("rb"));
    let results = [
        ("ra", a.wait_with_output().expect("a")),
        ("rb", b.wait_with_output().expect("b")),
    ];
    let winners: Vec<&str> = results
        .iter()
        .filter(|(_, o)| o.status.success())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one launch wins:\n{}\n---\n{}",
        text(&results[0].1),
        text(&results[1].1)
    );
    let winner = winners[0];
    let (_, lost) = results.iter().find(|(n, _)| *n != winner).expect("a loser");
    let node = &pool.nodes.nodes[0];
    let expected = format!(
        "pool busy: host {}@127.0.0.1:{} is used by cluster '{winner}'",
        node.user, node.port
    );
    assert!(
        text(lost).contains(&expected),
        "{expected:?} not in:\n{}",
        text(lost)
    );
    // The loser's clean-up did not release the winner's host.
    let out = ok(pool.sky().args(["exec", winner, "echo still here"]));
    assert!(out.lines().any(|l| l == "still here"), "{out}");
    assert!(
        pool.path()
            .join(format!("ssh/clusters/{winner}.json"))
            .is_file()
    );
    ok(pool.sky().args(["down", "-y", winner]));
}

#[test]
fn release_does_not_kill_a_recorded_pid_that_now_belongs_to_another_process() {
    let Some(pool) = Pool::start(1) else { return };
    let node = &pool.nodes.nodes[0];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let target = SshTarget::new("127.0.0.1", node.port, node.user.clone());
        let opts = ConnectOptions {
            total_wait: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
        };
        let cluster =
            RemoteCluster::connect(pool.path(), "pids", std::slice::from_ref(&target), opts)
                .await
                .expect("connect");
        cluster.ensure_node_dirs().await.expect("node dir");
        let session = &cluster.nodes()[0].session;
        let procs = format!(
            "{}/{PROCS}",
            cluster.node_dir().on(&node.home.display().to_string())
        );
        // Two job groups as the worker wrapper starts them; one recorded with its real start
        // time, the other with a start time it does not have (as when the pid was reused).
        let spawn = |file: &'static str, skew: u32| {
            format!(
                "{START_TIME_FN}\nmkdir -p '{procs}'\nsetsid sleep 300 </dev/null >/dev/null 2>&1 &\n\
                 pid=$!; st=$(start_time $pid); echo \"$pid $((st + {skew}))\" > '{procs}/{file}'; echo $pid"
            )
        };
        let ours: i32 = session
            .run(&spawn("ours", 0), None)
            .await
            .expect("spawn")
            .parse()
            .expect("pid");
        let reused: i32 = session
            .run(&spawn("reused", 7), None)
            .await
            .expect("spawn")
            .parse()
            .expect("pid");
        cluster.release().await.expect("release");
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
                state != Some(Some('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(ours) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!alive(ours), "the group recorded with its start time is killed");
        assert!(alive(reused), "a pid with another start time is left alone");
        assert!(!node.home.join(NODES_ROOT).exists());
        let _ = Command::new("kill").arg(reused.to_string()).status();
        cluster.close().await;
    });
}
