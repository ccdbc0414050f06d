//! The node scripts run for real by `/bin/sh` against a temporary `$HOME` (Linux: they read
//! `/proc`), so what `down` and autostop remove and kill is checked without SSH.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;

fn sh(home: &Path, script: &str) -> (i32, String) {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("HOME", home)
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start_time(pid: u32) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(") ").expect("comm") + 2..];
    rest.split(' ').nth(19).expect("field 22").to_owned()
}

/// A `sleep` leading its own process group, as the worker wrapper starts jobs.
fn group_leader(program: &Path) -> Child {
    Command::new(program)
        .arg("300")
        .process_group(0)
        .spawn()
        .expect("spawn")
}

fn ended(child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn tree_hash(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(tree_hash(&p));
        } else {
            out.push((p.display().to_string(), fs::read(&p).expect("read")));
        }
    }
    out.sort();
    out
}

#[test]
fn the_directory_is_unique_per_cluster_and_per_client_home_and_the_id_is_kept() {
    let a = tempfile::tempdir().expect("tmp");
    let b = tempfile::tempdir().expect("tmp");
    let id = home_id(a.path()).expect("id");
    assert_eq!(home_id(a.path()).expect("again"), id, "made once");
    assert_ne!(home_id(b.path()).expect("other"), id);
    let one = NodeDir::for_cluster(a.path(), "dev").expect("dir");
    assert!(one.rel().starts_with(".sky-nodes/dev-"), "{}", one.rel());
    assert_ne!(
        one.rel(),
        NodeDir::for_cluster(b.path(), "dev").expect("dir").rel()
    );
    assert_ne!(
        one.rel(),
        NodeDir::for_cluster(a.path(), "dev2").expect("dir").rel()
    );
    assert_eq!(
        one.agent_home("/home/u/"),
        format!("/home/u/{}/agent/home", one.rel())
    );
}

#[cfg(target_os = "linux")]
#[test]
fn release_ends_only_what_the_cluster_started_and_removes_only_its_own() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    // What is not the cluster's: SkyPilot's home, the client's Sky home, another file.
    fs::create_dir_all(h.join(".sky")).expect("mkdir");
    fs::write(h.join(".sky/state.db"), "skypilot").expect("write");
    let client = h.join("client-home");
    let nd = NodeDir::for_cluster(&client, "c").expect("dir");
    fs::write(client.join("state.db"), "sky").expect("write");
    let before = tree_hash(h);

    let (code, err) = sh(h, &nd.ensure_script());
    assert_eq!(code, 0, "{err}");
    let d = h.join(nd.rel());
    assert!(d.join(MARKER).is_file());
    let (code, err) = sh(h, &(nd.ensure_script() + &nd.claim_workdir_script()));
    assert_eq!(code, 0, "{err}");
    fs::create_dir_all(h.join(WORKDIR_NAME)).expect("workdir");
    fs::write(h.join(WORKDIR_NAME).join("f"), "x").expect("write");

    // Ours: a job group recorded with its start time, and an agent run from the directory.
    fs::create_dir_all(d.join("procs")).expect("mkdir");
    fs::create_dir_all(d.join("agent/home")).expect("mkdir");
    fs::copy("/bin/sleep", d.join("agent/sky-agent-test")).expect("copy");
    let mut job = group_leader(Path::new("/bin/sleep"));
    let mut agent = group_leader(&d.join("agent/sky-agent-test"));
    // Not ours: a recorded pid whose start time differs (the kernel reused it), and an "agent"
    // pid that belongs to a program outside the directory.
    let mut recycled = group_leader(Path::new("/bin/sleep"));
    let mut stranger = group_leader(Path::new("/bin/sleep"));
    fs::write(
        d.join("procs/1"),
        format!("{} {}\n", job.id(), start_time(job.id())),
    )
    .expect("write");
    let wrong: u64 = start_time(recycled.id()).parse::<u64>().expect("ticks") + 1;
    fs::write(d.join("procs/2"), format!("{} {wrong}\n", recycled.id())).expect("write");
    fs::write(d.join("procs/3"), format!("{}\n", stranger.id())).expect("write");
    fs::write(d.join("agent/home/agent.pid"), format!("{}\n", agent.id())).expect("write");

    let (code, err) = sh(h, &nd.release_script());
    assert_eq!(code, 0, "{err}");
    assert!(ended(&mut job), "the recorded job group is killed");
    assert!(ended(&mut agent), "the cluster's agent is ended");
    assert!(
        recycled.try_wait().expect("wait").is_none(),
        "a pid whose start time changed is not signalled"
    );
    assert!(
        stranger.try_wait().expect("wait").is_none(),
        "a pid without a recorded start time is not signalled"
    );
    let _ = recycled.kill();
    let _ = stranger.kill();
    let _ = recycled.wait();
    let _ = stranger.wait();
    assert!(!d.exists() && !h.join(WORKDIR_NAME).exists());
    assert!(!h.join(NODES_ROOT).exists(), "the empty parent goes too");
    let mut after = tree_hash(h);
    after.retain(|(p, _)| !p.ends_with(HOME_ID_FILE));
    let mut before = before;
    before.retain(|(p, _)| !p.ends_with(HOME_ID_FILE));
    assert_eq!(before, after, "nothing else changed");
    // Released already: a second release (autostop then down) is a no-op.
    assert_eq!(sh(h, &nd.release_script()).0, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn release_refuses_what_it_cannot_prove_is_the_clusters() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let client = h.join("client");
    let nd = NodeDir::for_cluster(&client, "c").expect("dir");
    let d = h.join(nd.rel());

    // No marker: somebody else's directory of the same name.
    fs::create_dir_all(&d).expect("mkdir");
    fs::write(d.join("theirs"), "x").expect("write");
    let (code, err) = sh(h, &nd.release_script());
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("no owner file"), "{err}");
    assert!(d.join("theirs").exists());
    let (code, err) = sh(h, &nd.ensure_script());
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("refusing to use it"), "{err}");
    fs::remove_dir_all(&d).expect("rm");

    // The directory holding the client's Sky home (as a host sharing it under another path
    // sees it): refused even with a valid marker.
    assert_eq!(sh(h, &nd.ensure_script()).0, 0);
    let shared = d.join("mnt");
    fs::create_dir_all(shared.join("ssh")).expect("mkdir");
    fs::copy(client.join(HOME_ID_FILE), shared.join(HOME_ID_FILE)).expect("copy");
    let (code, err) = sh(h, &nd.release_script());
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("holds the client's Sky home"), "{err}");
    fs::remove_dir_all(&shared).expect("rm");

    // A workdir that is really the login's home (a symlink to it): left alone.
    let (code, err) = sh(h, &(nd.ensure_script() + &nd.claim_workdir_script()));
    assert_eq!(code, 0, "{err}");
    std::os::unix::fs::symlink(h, h.join(WORKDIR_NAME)).expect("symlink");
    let (code, err) = sh(h, &nd.release_script());
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("login's home"), "{err}");
    fs::remove_file(h.join(WORKDIR_NAME)).expect("rm");

    // A workdir this cluster did not create is neither claimed nor removed.
    fs::remove_file(d.join(WORKDIR_MARK)).expect("rm");
    fs::create_dir_all(h.join(WORKDIR_NAME)).expect("mkdir");
    let (code, err) = sh(h, &(nd.ensure_script() + &nd.claim_workdir_script()));
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("was not created by cluster c"), "{err}");
    assert_eq!(sh(h, &nd.release_script()).0, 0);
    assert!(h.join(WORKDIR_NAME).is_dir() && !d.exists());
    assert!(client.join(HOME_ID_FILE).is_file());
}
