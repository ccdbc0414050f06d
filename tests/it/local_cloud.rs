//! The local cloud end to end through the real `sky` binary and a real `sky-agent`: multi-node
//! launches, job environment, exit codes and the examples.

use std::path::Path;

use assert_cmd::Command;

pub(crate) fn sky(home: &Path) -> Command {
    Command::from_std(sky_process(home))
}

/// The same `sky`, as a plain process (to spawn it and know its pid).
pub(crate) fn sky_process(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sky"));
    cmd.env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SKY_DEV")
        .env_remove("SKY_AGENT_IDLE_UNIT_SECS");
    cmd
}

/// Tears every cluster of a test's SKY_HOME down at the end, so no agent outlives the test.
pub(crate) struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = sky(self.dir.path())
            .args(["down", "--all", "-y", "--purge"])
            .output();
    }
}

#[test]
fn two_node_launch_shows_both_ranks_and_their_environment() {
    let home = Home::new();
    let run = r#"echo "rank=$SKY_NODE_RANK of $SKY_NUM_NODES cluster=$SKY_CLUSTER_NAME job=$SKY_JOB_ID sp=$SKYPILOT_NODE_RANK ips=$SKY_NODE_IPS""#;
    let out = sky(home.path())
        .args(["launch", "-y", "-c", "duo", "--num-nodes", "2", run])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (role, rank) in [("head", 0), ("worker1", 1)] {
        let expected = format!(
            "({role}, rank={rank}) rank={rank} of 2 cluster=duo job=1 sp={rank} ips=127.0.0.1"
        );
        assert!(
            stdout.lines().any(|l| l == expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // SKY_NODE_IPS holds one IP per line, as SkyPilot's SKYPILOT_NODE_IPS does.
    assert!(
        stdout.lines().any(|l| l == "(worker1, rank=1) 127.0.0.1"),
        "{stdout}"
    );
    for rank in 0..2 {
        assert!(home.path().join(format!("local/duo/node-{rank}")).is_dir());
    }
}

#[test]
fn launch_exits_with_the_jobs_exit_code() {
    let home = Home::new();
    let out = sky(home.path())
        .args(["launch", "-y", "-c", "fails", "echo before; exit 3"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("before"));
}

#[test]
fn example_with_setup_and_workdir_runs_in_the_synced_workdir() {
    let home = Home::new();
    // A copy of the example, plus a file its .skyignore excludes.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        examples.join("setup_workdir.yaml"),
        work.path().join("setup_workdir.yaml"),
    )
    .expect("copy task");
    let wd = work.path().join("workdir");
    std::fs::create_dir_all(wd.join("data")).expect("mkdir");
    for f in [".skyignore", "data/greeting.txt"] {
        std::fs::copy(examples.join("workdir").join(f), wd.join(f)).expect("copy workdir");
    }
    std::fs::write(wd.join("ignored.log"), "noise").expect("write");
    let out = sky(home.path())
        .current_dir(work.path())
        .args(["launch", "-y", "-c", "wd", "setup_workdir.yaml"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("setup done"), "{stdout}");
    assert!(stdout.contains("hello from the workdir"), "{stdout}");
    assert!(
        !stdout.contains("ignored.log"),
        "the .skyignore'd file must not be synced:\n{stdout}"
    );
    let synced = home.path().join("local/wd/node-0/sky_workdir");
    assert!(synced.join("data/greeting.txt").is_file());
    assert!(!synced.join("ignored.log").exists());
}

#[test]
fn a_task_that_fits_nowhere_is_refused_with_its_exit_code() {
    let home = Home::new();
    let out = sky(home.path())
        .args([
            "launch",
            "-y",
            "-c",
            "gpu",
            "--gpus",
            "A100:1",
            "nvidia-smi",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no enabled cloud can run this task") && stderr.contains("A100:1"),
        "{stderr}"
    );
    let status = sky(home.path())
        .args(["status", "-o", "json"])
        .output()
        .expect("runs");
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(
        (&view["clusters"], &view["changes"]),
        (&serde_json::json!([]), &serde_json::json!([])),
        "nothing half-written: {view}"
    );
}
