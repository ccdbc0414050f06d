//! `sky launch --dryrun` as a person runs it: the table, the exact JSON contract, errors with
//! their exit codes, and `allowed_clouds` from `$SKY_HOME/config.yaml`.

use assert_cmd::Command;
use serde_json::Value;

fn sky(home: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("sky").expect("the sky binary is built");
    cmd.env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SKY_DEV");
    // Cloud credentials from the environment would change the note under the table.
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_CLIENT_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn table_marks_the_chosen_row_and_lists_each_clouds_best() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args(["launch", "--dryrun", "-y", "--gpus", "V100:1", "echo hi"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Considered resources (1 node):");
    assert!(lines[1].starts_with(" INFRA"), "{text}");
    assert!(
        lines[2].contains("GCP (us-central1-a)")
            && lines[2].contains("n1-highmem-8")
            && lines[2].ends_with('✔'),
        "{text}"
    );
    assert!(
        lines[3].contains("AWS (us-east-1)") && lines[3].contains("p3.2xlarge"),
        "{text}"
    );
    assert!(
        lines[4].contains("Azure (eastus)") && lines[4].contains("Standard_NC6s_v3"),
        "{text}"
    );
    assert!(
        lines.contains(&"Dry run: nothing was launched (optimize target: cost)."),
        "{text}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(
            "Note: no cloud has credentials here (see `sky check`), so `sky launch` would run \
             this on this machine (the local cloud)."
        ),
        "the comparison covers every cloud, the launch only configured ones"
    );
}

#[test]
fn json_has_exactly_the_documented_shape() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args([
            "launch",
            "--dryrun",
            "-o",
            "json",
            "--num-nodes",
            "2",
            "echo hi",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["target"], "cost");
    let task = &body["tasks"][0];
    let keys: Vec<&String> = task.as_object().expect("task object").keys().collect();
    assert_eq!(keys, ["candidates", "chosen", "name", "num_nodes"]);
    assert_eq!(task["num_nodes"], 2);
    let chosen = &task["chosen"];
    assert_eq!(
        chosen.to_string(),
        r#"{"accelerators":null,"cloud":"gcp","hourly_price":0.3628,"instance_type":"n4-standard-8","memory_gib":32.0,"region":"us-central1","total_hourly_price":0.7256,"use_spot":false,"vcpus":8.0,"zone":"us-central1-a"}"#
    );
    assert_eq!(&task["candidates"][0], chosen);
    let prices: Vec<f64> = task["candidates"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["total_hourly_price"].as_f64())
        .collect();
    assert!(
        prices.windows(2).all(|w| w[0] <= w[1]),
        "candidates are best first"
    );
    // The raw text keeps the documented key order.
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(raw.starts_with(r#"{"target":"cost","tasks":[{"name":"sky-cmd","num_nodes":2,"chosen":{"cloud":"gcp","region":"us-central1","zone":"us-central1-a","instance_type":"n4-standard-8","accelerators":null,"vcpus":8.0"#), "{raw}");
}

#[test]
fn infeasible_and_invalid_tasks_exit_non_zero_with_a_json_error() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args(["launch", "--dryrun", "-o", "json", "--cpus", "7", "echo hi"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["error"]["code"], "no_feasible_resources");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("nothing satisfies cpus 7; nearest offers without it:"),
        "{message}"
    );

    let out = sky(home.path())
        .args([
            "launch",
            "--dryrun",
            "-o",
            "json",
            "--instance-type",
            "m6i.2xlarg",
            "echo hi",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["error"]["code"], "invalid_task");
}

#[test]
fn allowed_clouds_limit_the_comparison() {
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        home.path().join("config.yaml"),
        "allowed_clouds:\n  - aws\n",
    )
    .expect("write config");
    let out = sky(home.path())
        .args([
            "launch", "--dryrun", "-o", "json", "--gpus", "V100", "echo hi",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    let clouds: Vec<&str> = body["tasks"][0]["candidates"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["cloud"].as_str())
        .collect();
    assert!(
        !clouds.is_empty() && clouds.iter().all(|c| *c == "aws"),
        "{clouds:?}"
    );
}

#[test]
fn a_chain_gets_one_plan_per_task() {
    let home = tempfile::tempdir().expect("temp dir");
    let task = home.path().join("chain.yaml");
    std::fs::write(&task, "name: a\nresources:\n  infra: gcp\noutputs:\n  gs://x: 1000\nrun: echo a\n---\nname: b\nresources:\n  cpus: 8+\nrun: echo b\n").expect("write");
    let out = sky(home.path())
        .args(["launch", "--dryrun", "-o", "json"])
        .arg(&task)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    let tasks = body["tasks"].as_array().expect("array");
    assert_eq!(tasks.len(), 2);
    // 1000 GB out of GCP would cost $120: the second task stays on GCP.
    assert_eq!(tasks[1]["chosen"]["cloud"], "gcp");
}

/// `--explain`: the offers cheaper than the pick, each with the optimizer's reason, counted by
/// kind, in the text and (as `why_not_cheaper`) in the JSON.
#[test]
fn explain_names_why_each_cheaper_offer_was_not_taken() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args(["launch", "--dryrun", "--explain", "--cpus", "8+", "echo hi"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let why = text
        .lines()
        .find(|l| l.starts_with("Why not cheaper: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        why.contains("ruled out by") && why.contains(" vcpus"),
        "{why}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  ") && l.ends_with("the task needs 8+")),
        "{text}"
    );

    let out = sky(home.path())
        .args([
            "launch",
            "--dryrun",
            "--explain",
            "--cpus",
            "8+",
            "-o",
            "json",
            "echo hi",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let chosen = v["tasks"][0]["chosen"]["hourly_price"]
        .as_f64()
        .expect("price");
    let w = &v["why_not_cheaper"][0];
    let offers = w["offers"].as_array().expect("offers");
    assert!(!offers.is_empty() && w["cheaper"].as_u64() > Some(0), "{w}");
    for o in offers {
        assert!(
            o["hourly_price"].as_f64().is_some_and(|p| p < chosen),
            "{o}"
        );
        assert!(o["reason"].as_str().is_some_and(|r| !r.is_empty()), "{o}");
    }

    // Only with --dryrun.
    let out = sky(home.path())
        .args(["launch", "--explain", "-y", "echo hi"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
}
