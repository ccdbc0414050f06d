//! The SSH runtime and the `ssh` cloud end to end against real sshd "nodes" (see
//! [`crate::ssh_support`]): sessions and uploads, then `sky` itself on a node pool: a 2-node
//! launch with workdir and setup, the job queue, cancel, re-attaching after the client went away,
//! a node's processes killed mid-job, and autostop done by the head's agent.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sky_core::ssh::known_hosts::KnownHosts;
use sky_core::ssh::node_dir::{NODES_ROOT, NodeDir};
use sky_core::ssh::{ConnectOptions, RemoteCluster, SshSession, SshTarget, keys};

use crate::local_cloud::sky;
use crate::ssh_support::{Netns, SshNodes};

/// A SKY_HOME with Sky's key, `n` nodes that accept it and a pool `p` of them. `None` (and a note
/// on stderr) where the harness cannot run.
pub(crate) struct Pool {
    pub home: tempfile::TempDir,
    pub nodes: SshNodes,
}

/// `false` (and a note on stderr) where the harness cannot run; a failure instead under
/// `CI=true`, where a skipped test would pass unnoticed.
pub(crate) fn harness_available() -> bool {
    let Some(why) = crate::ssh_support::unavailable() else {
        return true;
    };
    sky_testkit::require::cannot_run("SSH test", &why);
    false
}

impl Pool {
    pub(crate) fn start(n: usize) -> Option<Pool> {
        Pool::start_with(n, true)
    }

    /// A pool whose sshds read `~/.ssh/authorized_keys` (`user_keys`) or only their own file.
    pub(crate) fn start_with(n: usize, user_keys: bool) -> Option<Pool> {
        if !harness_available() {
            return None;
        }
        let home = tempfile::tempdir().expect("temp dir");
        let key = keys::load_or_create(home.path()).expect("sky key");
        let nodes = SshNodes::start_with(
            n,
            &key.public_openssh().expect("public key"),
            None,
            "127.0.0.1",
            user_keys,
        )
        .expect("sshd nodes start");
        std::fs::write(
            home.path().join("ssh_node_pools.yaml"),
            nodes.pool_yaml("p"),
        )
        .expect("pool file");
        Some(Pool { home, nodes })
    }

    pub(crate) fn path(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn sky(&self) -> assert_cmd::Command {
        let mut cmd = sky(self.path());
        cmd.env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20");
        cmd
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = sky(self.path())
            .args(["down", "--all", "-y", "--purge"])
            .output();
    }
}

pub(crate) fn ok(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("sky runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn queue(pool: &Pool, cluster: &str) -> Vec<Value> {
    let text = ok(pool.sky().args(["queue", cluster, "-o", "json"]));
    let v: Value = serde_json::from_str(&text).expect("queue json");
    v["jobs"].as_array().cloned().unwrap_or_default()
}

fn job(pool: &Pool, cluster: &str, id: u64) -> Value {
    queue(pool, cluster)
        .into_iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("job {id} not in the queue"))
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sky exec -d` on a 2-node cluster; the id from its "job N submitted" progress line.
fn exec_detached(pool: &Pool, cluster: &str, run: &str) -> u64 {
    let out = pool
        .sky()
        .args(["exec", cluster, "-d", "--num-nodes", "2", run])
        .output()
        .expect("sky exec runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text.lines()
        .find_map(|l| {
            let rest = l.split("job ").nth(1)?;
            let (id, tail) = rest.split_once(' ')?;
            tail.starts_with("submitted").then(|| id.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no job id in:\n{text}"))
}

#[test]
fn a_session_runs_commands_pins_host_keys_and_uploads_files() {
    let Some(pool) = Pool::start(1) else { return };
    let node = &pool.nodes.nodes[0];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let key = keys::load_or_create(pool.path()).expect("key");
        let known = KnownHosts::for_cluster(pool.path(), "c");
        let target = SshTarget::new("127.0.0.1", node.port, node.user.clone());
        let opts = ConnectOptions {
            total_wait: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
        };
        let session = SshSession::connect(&target, &key.key, &known, opts)
            .await
            .expect("connects");
        let out = session
            .exec("echo out; echo err >&2; exit 7", None)
            .await
            .expect("exec");
        assert_eq!((out.stdout_text().as_str(), out.code), ("out", 7));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "err");
        let echoed = session
            .run("cat", Some(b"from stdin"))
            .await
            .expect("stdin");
        assert_eq!(echoed, "from stdin");
        session
            .upload_bytes(b"payload", "up/file.txt", 0o600)
            .await
            .expect_err("parent directory missing is an error");
        session.run("mkdir -p up", None).await.expect("mkdir");
        session
            .upload_bytes(b"payload", "up/file.txt", 0o600)
            .await
            .expect("upload");
        let mode = session
            .run("stat -c %a up/file.txt; cat up/file.txt", None)
            .await
            .expect("stat");
        assert_eq!(mode, "600\npayload");
        session.close().await;

        // The recorded host key is enforced: a different one is refused with both fingerprints.
        // It is written as OpenSSH writes known_hosts; a pin of an earlier version (a
        // fingerprint) is enforced the same way.
        let text = std::fs::read_to_string(known.path()).expect("recorded");
        assert!(
            text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", node.port)),
            "{text}"
        );
        std::fs::write(
            known.path(),
            format!("[127.0.0.1]:{} SHA256:AAAA\n", node.port),
        )
        .expect("tamper");
        let err = SshSession::connect(&target, &key.key, &known, opts)
            .await
            .expect_err("mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains("host key of [127.0.0.1]") && msg.contains("SHA256:AAAA"),
            "{msg}"
        );

        // A port nobody listens on fails after bounded retries, naming the target.
        let dead = SshTarget::new("127.0.0.1", 1, "nobody");
        let quick = ConnectOptions {
            total_wait: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(1),
        };
        let err = SshSession::connect(&dead, &key.key, &known, quick)
            .await
            .expect_err("unreachable");
        assert!(
            err.to_string()
                .contains("nobody@127.0.0.1:1 is unreachable after"),
            "{err}"
        );

        // The head agent is installed and answers over the channel.
        std::fs::remove_file(known.path()).expect("reset");
        let cluster = RemoteCluster::connect(pool.path(), "c", std::slice::from_ref(&target), opts)
            .await
            .expect("cluster")
            .with_agent_binary(assert_cmd::cargo::cargo_bin("sky-agent"));
        let client = cluster.agent().await.expect("agent");
        let info = client.info().await.expect("info");
        assert_eq!(info.agent_version, env!("CARGO_PKG_VERSION"));
        assert!(
            info.home.starts_with(&node.home.display().to_string()),
            "{}",
            info.home
        );
        let _ = client.close().await;
        cluster.release().await.expect("release");
        assert!(
            !node.home.join(NODES_ROOT).exists(),
            "release removes the cluster's directory"
        );
    });
}

#[test]
fn two_node_launch_runs_setup_and_run_on_both_nodes_with_the_workdir() {
    let Some(pool) = Pool::start(2) else { return };
    let work = tempfile::tempdir().expect("workdir");
    let wd = work.path().join("wd");
    std::fs::create_dir_all(&wd).expect("mkdir");
    std::fs::write(wd.join("data.txt"), "synced-content").expect("file");
    std::fs::write(wd.join("skip.log"), "noise").expect("file");
    std::fs::write(wd.join(".skyignore"), "*.log\n").expect("ignore");
    // file_mounts: a directory (filtered by its .gitignore, as SkyPilot's rsync does) and a file,
    // both under the remote `~`, in place before setup runs.
    let assets = work.path().join("assets");
    std::fs::create_dir_all(assets.join("inner")).expect("mkdir");
    std::fs::write(assets.join("inner/x.txt"), "mounted-dir").expect("file");
    std::fs::write(assets.join("scratch.tmp"), "noise").expect("file");
    std::fs::write(assets.join(".gitignore"), "*.tmp\n").expect("ignore");
    std::fs::write(work.path().join("app.conf"), "conf-v1").expect("file");
    std::fs::write(
        work.path().join("task.yaml"),
        "resources:\n  infra: ssh/p\nnum_nodes: 2\nworkdir: wd\n\
         file_mounts:\n  ~/mnt/data: assets\n  ~/cfg/app.conf: ./app.conf\n\
         setup: echo \"setup on $(whoami) $(cat ~/cfg/app.conf)\"\n\
         run: |\n  echo \"rank=$SKY_NODE_RANK of $SKY_NUM_NODES sp=$SKYPILOT_NODE_RANK\"\n  echo \"ips=$(echo $SKY_NODE_IPS | tr '\\n' ,)\"\n  cat data.txt; echo\n  ls\n",
    )
    .expect("task");
    let stdout =
        ok(pool
            .sky()
            .current_dir(work.path())
            .args(["launch", "-y", "-c", "duo", "task.yaml"]));
    for (rank, role) in [(0, "head"), (1, "worker1")] {
        let user = &pool.nodes.nodes[rank].user;
        for expected in [
            format!("({role}, rank={rank}) setup on {user} conf-v1"),
            format!("({role}, rank={rank}) rank={rank} of 2 sp={rank}"),
            format!("({role}, rank={rank}) ips=127.0.0.1 127.0.0.1,"),
            format!("({role}, rank={rank}) synced-content"),
        ] {
            assert!(
                stdout.lines().any(|l| l == expected),
                "missing {expected:?} in:\n{stdout}"
            );
        }
        let home = &pool.nodes.nodes[rank].home;
        assert!(
            home.join("sky_workdir/data.txt").is_file(),
            "workdir on node {rank}"
        );
        assert!(
            !home.join("sky_workdir/skip.log").exists(),
            ".skyignore honoured"
        );
        assert_eq!(
            std::fs::read_to_string(home.join("mnt/data/inner/x.txt")).expect("mounted dir"),
            "mounted-dir"
        );
        assert!(
            !home.join("mnt/data/scratch.tmp").exists(),
            ".gitignore honoured"
        );
        assert_eq!(
            std::fs::read_to_string(home.join("cfg/app.conf")).expect("mounted file"),
            "conf-v1"
        );
    }
    // Setup left a log per node on the head.
    let head = &pool.nodes.nodes[0].home;
    let dir = NodeDir::for_cluster(pool.path(), "duo").expect("node dir");
    let agent_home = dir.agent_home(&head.display().to_string());
    let setup_logs: Vec<String> = walk(&Path::new(&agent_home).join("logs"))
        .into_iter()
        .filter(|p| p.contains("setup") && p.ends_with(".log"))
        .collect();
    assert!(
        setup_logs.iter().any(|p| p.ends_with("node-0.log")),
        "{setup_logs:?}"
    );
    assert!(
        setup_logs.iter().any(|p| p.ends_with("node-1.log")),
        "{setup_logs:?}"
    );

    // The head holds a key of the cluster's own for its worker, not the user's login key, and
    // the worker accepts it under the cluster's mark.
    let user_key = std::fs::read_to_string(pool.path().join("ssh/sky-key")).expect("user key");
    let on_head = std::fs::read_to_string(
        Path::new(&dir.keys_dir(&head.display().to_string())).join("node-1.key"),
    )
    .expect("the worker's key on the head");
    assert_ne!(on_head, user_key, "the user's key never reaches the head");
    let worker_keys = pool.nodes.nodes[1].home.join(".ssh/authorized_keys");
    let mark = dir.worker_key_mark();
    let installed = std::fs::read_to_string(&worker_keys).expect("authorized_keys");
    assert_eq!(
        installed.lines().filter(|l| l.ends_with(&mark)).count(),
        1,
        "{installed}"
    );
    // Someone else's key beside it (made now: test keys are never committed).
    let theirs = format!(
        "{}\n",
        keys::worker_key("someone-else")
            .expect("key")
            .public_openssh()
            .expect("public")
    );
    std::fs::write(&worker_keys, format!("{theirs}{installed}")).expect("another key beside it");

    // `down` releases the pool: Sky's files are gone, the machines (users) remain.
    ok(pool.sky().args(["down", "-y", "duo"]));
    for node in &pool.nodes.nodes {
        assert!(!node.home.join(NODES_ROOT).exists() && !node.home.join("sky_workdir").exists());
    }
    assert_eq!(
        std::fs::read_to_string(&worker_keys).expect("authorized_keys"),
        theirs,
        "down removes the cluster's key and only it"
    );
    assert!(!pool.path().join("ssh/clusters/duo.json").exists());
}

/// Every entry under `root` as `path kind detail` lines (links not followed), for comparing a
/// node's copy with the source.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&p).expect("lstat");
            if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&p).expect("readlink");
                out.push(format!("{rel} -> {}", to.display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                let data = std::fs::read(&p).expect("read");
                let mode = meta.permissions().mode() & 0o777;
                out.push(format!("{rel} {mode:o} {}", String::from_utf8_lossy(&data)));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn workdir_sync_and_mounts_stream_long_utf8_names_and_symlinks_to_every_node() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let Some(pool) = Pool::start(2) else { return };
    let work = tempfile::tempdir().expect("workdir");
    let wd = work.path().join("wd");
    let long = format!("{}/{}.txt", "é".repeat(70), "ü".repeat(70)); // > 255 bytes, non-ASCII
    for (rel, body) in [
        ("a.txt", "a"),
        (long.as_str(), "long"),
        ("x.log", "ignored"),
    ] {
        let p = wd.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("file");
    }
    std::fs::write(wd.join("run.sh"), "#!/bin/sh\n").expect("file");
    std::fs::set_permissions(wd.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::write(wd.join(".skyignore"), "*.log\n").expect("ignore");
    std::fs::create_dir_all(wd.join("empty")).expect("empty dir");
    symlink("a.txt", wd.join("rel-link")).expect("link");
    symlink("/nonexistent/target", wd.join("dangling")).expect("link");
    symlink("/etc", wd.join("outside")).expect("link");
    let conf = work.path().join("app.conf");
    std::fs::write(&conf, "conf-v1").expect("file");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let opts = ConnectOptions {
            total_wait: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(5),
        };
        let targets: Vec<SshTarget> = pool
            .nodes
            .nodes
            .iter()
            .map(|n| SshTarget::new("127.0.0.1", n.port, n.user.clone()))
            .collect();
        let cluster = RemoteCluster::connect(pool.path(), "sync", &targets, opts)
            .await
            .expect("cluster");
        // A stale workdir (this cluster's own, from an earlier sync) is replaced whole.
        cluster.sync_workdir(&wd).await.expect("first workdir sync");
        for node in &pool.nodes.nodes {
            let stale = node.home.join("sky_workdir/stale.txt");
            std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
            std::fs::write(&stale, "old").expect("stale");
        }
        cluster.sync_workdir(&wd).await.expect("workdir sync");
        cluster
            .upload_file_mounts(&sky_core::storage::NodeMounts {
                local: vec![
                    ("~/mnt/wd".to_owned(), wd.clone()),
                    ("~/cfg/app.conf".to_owned(), conf.clone()),
                ],
                buckets: Vec::new(),
            })
            .await
            .expect("file mounts");
        let mut expected = tree(&wd);
        expected.retain(|l| !l.starts_with("x.log"));
        for node in &pool.nodes.nodes {
            assert_eq!(
                tree(&node.home.join("sky_workdir")),
                expected,
                "{}",
                node.user
            );
            assert_eq!(tree(&node.home.join("mnt/wd")), expected, "{}", node.user);
            assert_eq!(
                std::fs::read_to_string(node.home.join("cfg/app.conf")).expect("mounted file"),
                "conf-v1"
            );
        }
        // A source that cannot be read fails the sync, naming it.
        let err = cluster
            .sync_workdir(&work.path().join("gone"))
            .await
            .expect_err("missing workdir");
        assert!(err.to_string().contains("is not a directory"), "{err}");
        cluster.release().await.expect("release");
    });
}

#[test]
fn a_worker_whose_sshd_ignores_user_keys_gets_the_login_key_and_jobs_still_run() {
    let Some(pool) = Pool::start_with(2, false) else {
        return;
    };
    let stdout = ok(pool.sky().args([
        "launch",
        "-y",
        "-c",
        "strict",
        "--infra",
        "ssh/p",
        "--num-nodes",
        "2",
        "echo rank=$SKY_NODE_RANK",
    ]));
    assert!(
        stdout.lines().any(|l| l == "(worker1, rank=1) rank=1"),
        "{stdout}"
    );
    ok(pool.sky().args(["down", "-y", "strict"]));
}

#[test]
fn a_pool_host_behind_a_jump_host_is_reached_through_it() {
    if !harness_available() {
        return;
    }
    // The target's sshd listens on the loopback of its own network namespace, which this machine
    // cannot reach; the jump's sshd, in the same namespace, listens on the veth address this
    // machine can. A launch that works went through the jump.
    let netns = match Netns::create() {
        Ok(ns) => ns,
        Err(why) => {
            sky_testkit::require::cannot_run(
                "jump-host test",
                &format!("no network namespace: {why}"),
            );
            return;
        }
    };
    let home = tempfile::tempdir().expect("temp dir");
    let key = keys::load_or_create(home.path()).expect("sky key");
    let public = key.public_openssh().expect("public key");
    let jump = SshNodes::start_in(1, &public, Some(&netns.name), &netns.inside).expect("jump");
    let hidden = SshNodes::start_in(1, &public, Some(&netns.name), "127.0.0.1").expect("target");
    let (j, t) = (&jump.nodes[0], &hidden.nodes[0]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", t.port)).is_err(),
        "the target must not be reachable without the jump"
    );
    std::fs::write(
        home.path().join("ssh_node_pools.yaml"),
        format!(
            "p:\n  hosts:\n    - ip: 127.0.0.1\n      user: {}\n      port: {}\n      proxy_jump: {}@{}:{}\n",
            t.user, t.port, j.user, netns.inside, j.port
        ),
    )
    .expect("pool file");
    let run = |args: &[&str]| {
        let mut cmd = sky(home.path());
        cmd.env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20");
        ok(cmd.args(args))
    };
    let stdout = run(&[
        "launch",
        "-y",
        "-c",
        "hop",
        "--infra",
        "ssh/p",
        "echo hi from $(whoami)",
    ]);
    assert!(
        stdout.lines().any(|l| l == format!("hi from {}", t.user)),
        "{stdout}"
    );
    let known = std::fs::read_to_string(home.path().join("ssh/known_hosts/hop")).expect("pinned");
    assert!(
        known.contains(&format!("[{}]:{}", netns.inside, j.port))
            && known.contains(&format!("[127.0.0.1]:{}", t.port)),
        "both the jump's and the target's host keys are pinned:\n{known}"
    );
    run(&["down", "-y", "hop"]);
    assert!(
        !t.home.join(NODES_ROOT).exists(),
        "down released the target"
    );
}

#[test]
fn cloud_storage_and_missing_file_mounts_are_refused_before_anything_is_created() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("ssh_node_pools.yaml"),
        "p:\n  user: u\n  hosts: [127.0.0.1]\n",
    )
    .expect("pools");
    for (mount, expected) in [
        // Refused from the task alone: no store is asked (this home has no test endpoint).
        (
            "/data:\n    source: s3://bucket/data\n    mode: MOUNT",
            "file_mounts./data.mode: MOUNT of 's3://bucket/data' is not supported yet",
        ),
        (
            "/data:\n    source: gs://sky-b\n    mode: MOUNT_CACHED",
            "file_mounts./data.mode: MOUNT_CACHED of 'gs://sky-b' is not supported yet",
        ),
        (
            "/cfg: ./nowhere.conf",
            "file_mounts./cfg: local path './nowhere.conf' does not exist",
        ),
    ] {
        let task = home.path().join("task.yaml");
        std::fs::write(
            &task,
            format!("resources:\n  infra: ssh/p\nfile_mounts:\n  {mount}\nrun: echo hi\n"),
        )
        .expect("task");
        let out = sky(home.path())
            .current_dir(home.path())
            .args(["launch", "-y", "-c", "fm"])
            .arg(&task)
            .output()
            .expect("sky runs");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mount} must be refused");
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        assert!(!home.path().join("ssh/clusters/fm.json").exists());
    }
}

pub(crate) fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn queue_cancel_reattach_and_a_killed_node_on_a_two_node_pool() {
    let Some(pool) = Pool::start(2) else { return };
    ok(pool.sky().args([
        "launch",
        "-y",
        "-c",
        "q",
        "--infra",
        "ssh/p",
        "--num-nodes",
        "2",
        "echo up",
    ]));

    // A queue of several jobs, all run to completion.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(exec_detached(
            &pool,
            "q",
            &format!("echo job{i} on $SKY_NODE_RANK"),
        ));
    }
    for id in &ids {
        let logs = ok(pool.sky().args(["logs", "q", &id.to_string()]));
        assert!(logs.contains("on 1"), "{logs}");
    }
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| {
            job(&pool, "q", *id)["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["SUCCEEDED"; 3]);

    // Cancel kills the process trees on both nodes.
    let long = exec_detached(&pool, "q", "sleep 300 & sleep 301; wait");
    let worker = &pool.nodes.nodes[1];
    wait_for("the worker's job group", Duration::from_secs(20), || {
        !SshNodes::job_groups(worker).is_empty()
    });
    ok(pool.sky().args(["cancel", "q", &long.to_string(), "-y"]));
    assert_eq!(job(&pool, "q", long)["status"], "CANCELLED");
    wait_for(
        "the worker's sleeps to end",
        Duration::from_secs(20),
        || {
            !SshNodes::processes_of(worker).iter().any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .starts_with("sleep")
            })
        },
    );

    // The client goes away mid-job; the job goes on and `sky logs` re-attaches to the end.
    let mut follower = std::process::Command::new(assert_cmd::cargo::cargo_bin("sky"))
        .env("SKY_HOME", pool.path())
        .env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20")
        .args([
            "exec",
            "q",
            "--num-nodes",
            "2",
            "for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.5; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sky exec starts");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(follower.stdout.take().expect("stdout"));
        while !first.contains("tick1") {
            first.clear();
            if reader.read_line(&mut first).expect("read") == 0 {
                break;
            }
        }
    }
    follower.kill().expect("client killed");
    let _ = follower.wait();
    let last = queue(&pool, "q")
        .into_iter()
        .filter_map(|j| j["id"].as_u64())
        .max()
        .expect("a job");
    let logs = ok(pool.sky().args(["logs", "q", &last.to_string()]));
    assert!(
        logs.contains("(worker1, rank=1) tick6") && logs.contains("(head, rank=0) tick6"),
        "{logs}"
    );
    assert_eq!(job(&pool, "q", last)["status"], "SUCCEEDED");

    // One node's job processes killed mid-job: the job fails, naming the node.
    let doomed = exec_detached(&pool, "q", "sleep 300");
    wait_for("the worker's job group", Duration::from_secs(20), || {
        !SshNodes::job_groups(worker).is_empty()
    });
    for pgid in SshNodes::job_groups(worker) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
    }
    let out = pool
        .sky()
        .args(["logs", "q", &doomed.to_string()])
        .output()
        .expect("logs");
    assert!(!out.status.success(), "a failed job's logs exit non-zero");
    let record = job(&pool, "q", doomed);
    assert_eq!(record["status"], "FAILED", "{record}");
    let message = record["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("127.0.0.1:{}", worker.port)) && message.contains("signal 9"),
        "{message}"
    );
}

#[test]
fn autostop_on_a_pool_is_done_by_the_head_agent() {
    let Some(pool) = Pool::start(1) else { return };
    ok(pool.sky().env("SKY_AGENT_IDLE_UNIT_SECS", "1").args([
        "launch",
        "-y",
        "-c",
        "nap",
        "--infra",
        "ssh/p",
        "-i",
        "1",
        "echo work",
    ]));
    let head = &pool.nodes.nodes[0];
    // The agent releases the head by itself, with no client around.
    wait_for("the head to be released", Duration::from_secs(30), || {
        !head.home.join(NODES_ROOT).exists()
    });
    let view: Value =
        serde_json::from_str(&ok(pool.sky().args(["status", "--refresh", "-o", "json"])))
            .expect("status json");
    assert_eq!(view["clusters"].as_array().map(Vec::len), Some(0), "{view}");
    // The pool is free again.
    ok(pool.sky().args([
        "launch",
        "-y",
        "-c",
        "again",
        "--infra",
        "ssh/p",
        "echo again",
    ]));
}
