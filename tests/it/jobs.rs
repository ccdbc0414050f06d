//! `sky exec`, `queue`, `logs` and `cancel` through the real `sky` binary and a real agent on the
//! local cloud: exit codes follow the job, cancel leaves no process behind, unknown clusters and
//! jobs get their own exit codes.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::local_cloud::{Home, sky};

fn run(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = sky(home).args(args).output().expect("sky runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn queue(home: &Path, cluster: &str) -> Vec<Value> {
    let (code, stdout, stderr) = run(home, &["queue", cluster, "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("queue json");
    v["jobs"].as_array().expect("jobs").clone()
}

/// Gone: no /proc entry, or a zombie waiting for its parent.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn exec_queue_logs_and_cancel_on_a_local_cluster() {
    let home = Home::new();
    let h = home.path();
    let (code, stdout, stderr) = run(h, &["launch", "-y", "-c", "jq", "echo first job"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("first job"), "{stdout}");

    // The job's exit code is the command's.
    let (code, stdout, _) = run(h, &["exec", "jq", "echo failing; exit 5"]);
    assert_eq!(code, 5);
    assert!(stdout.contains("failing"), "{stdout}");

    // A detached job whose whole tree must die on cancel.
    let pids = h.join("pids");
    let tree = format!(
        "echo $$ >> {p}; sleep 300 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let (code, _, stderr) = run(h, &["exec", "jq", "-d", &tree]);
    assert_eq!(code, 0, "{stderr}");
    let mut seen = Vec::new();
    for _ in 0..400 {
        seen = std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .collect();
        if seen.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen.len(), 2, "the detached job did not start");

    let jobs = queue(h, "jq");
    let statuses: Vec<&str> = jobs.iter().filter_map(|j| j["status"].as_str()).collect();
    assert_eq!(statuses, vec!["SUCCEEDED", "FAILED", "RUNNING"]);
    assert_eq!(jobs[1]["exit_code"], 5);

    let (code, stdout, _) = run(h, &["logs", "jq", "1"]);
    assert_eq!((code, stdout.trim()), (0, "first job"));
    let (code, _, _) = run(h, &["logs", "jq", "2"]);
    assert_eq!(code, 5);
    let (code, stdout, _) = run(h, &["logs", "jq", "3", "--status"]);
    assert_eq!((code, stdout.trim()), (101, "Job 3: RUNNING"));
    let (code, _, _) = run(h, &["logs", "jq", "2", "--status"]);
    assert_eq!(code, 100);
    let (code, _, _) = run(h, &["logs", "jq", "3", "--no-follow"]);
    assert_eq!(code, 0);

    let (code, stdout, stderr) = run(h, &["cancel", "jq", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Cancelled job(s) 3"), "{stdout}");
    for pid in &seen {
        assert!(gone(*pid), "pid {pid} survived `sky cancel`");
    }
    assert_eq!(queue(h, "jq")[2]["status"], "CANCELLED");
    let (code, _, _) = run(h, &["logs", "jq", "3"]);
    assert_eq!(
        code, 10,
        "following a cancelled job exits with the cancelled code"
    );

    // Table output names the columns and the jobs, newest first.
    let (code, stdout, _) = run(h, &["queue", "jq"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = stdout.lines().skip(2).collect();
    assert!(
        rows[0].trim_start().starts_with('3') && rows[0].contains("CANCELLED"),
        "{stdout}"
    );

    // Unknown job and unknown cluster: their own exit codes and a message naming them.
    let (code, _, stderr) = run(h, &["cancel", "jq", "99"]);
    assert_eq!(code, 9, "{stderr}");
    assert!(stderr.contains("job 99"), "{stderr}");
    let (code, _, stderr) = run(h, &["logs", "jq", "42"]);
    assert_eq!(code, 9, "{stderr}");
    let (code, _, stderr) = run(h, &["queue", "nope"]);
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    let (code, stdout, _) = run(h, &["queue", "nope", "-o", "json"]);
    assert_eq!(code, 7);
    let err: Value = serde_json::from_str(&stdout).expect("json error");
    assert_eq!(err["error"]["code"], "cluster_not_found");
    let (code, _, _) = run(h, &["cancel", "jq", "--all", "-y"]);
    assert_eq!(code, 0);
}

#[test]
fn logs_of_a_multi_node_job_are_prefixed_per_rank() {
    let home = Home::new();
    let h = home.path();
    let (code, stdout, stderr) = run(
        h,
        &[
            "launch",
            "-y",
            "-c",
            "jm",
            "--num-nodes",
            "2",
            "echo hi from $SKYPILOT_NODE_RANK",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, stdout, _) = run(h, &["logs", "jm", "1"]);
    assert_eq!(code, 0);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["(head, rank=0) hi from 0", "(worker1, rank=1) hi from 1"]
    );
}
