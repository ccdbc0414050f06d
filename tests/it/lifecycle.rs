//! Cluster lifecycle through the real `sky` binary on the local cloud: stop, start, down, cost
//! report, autostop, crash recovery with `status --refresh`, and bad input with its exit codes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::local_cloud::{Home, sky};

fn status(home: &Home) -> Value {
    let out = sky(home.path())
        .args(["status", "-o", "json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn cluster_status(home: &Home, name: &str) -> Option<String> {
    status(home)["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
}

fn ok(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stop_start_down_and_the_cost_report_remembers() {
    let home = Home::new();
    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "life", "echo hi"]));
    assert_eq!(cluster_status(&home, "life").as_deref(), Some("UP"));
    ok(sky(home.path()).args(["stop", "life", "-y"]));
    assert_eq!(cluster_status(&home, "life").as_deref(), Some("STOPPED"));
    assert!(
        home.path().join("local/life/node-0").is_dir(),
        "stop keeps the node"
    );
    ok(sky(home.path()).args(["start", "life"]));
    assert_eq!(cluster_status(&home, "life").as_deref(), Some("UP"));
    // Reuse: a second launch on the UP cluster runs there.
    let out = sky(home.path())
        .args(["launch", "-y", "-c", "life", "echo again"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("again"));
    ok(sky(home.path()).args(["down", "life", "-y"]));
    assert_eq!(cluster_status(&home, "life"), None);
    assert!(
        !home.path().join("local/life").exists(),
        "down removes the nodes"
    );
    let out = sky(home.path())
        .args(["cost-report", "-o", "json"])
        .output()
        .expect("runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let lines = report["clusters"].as_array().expect("clusters");
    assert_eq!(lines.len(), 1, "{report}");
    assert_eq!(
        (
            lines[0]["name"].as_str(),
            lines[0]["alive"].as_bool(),
            lines[0]["cost"].as_f64()
        ),
        (Some("life"), Some(false), Some(0.0))
    );
}

#[test]
fn autostop_fires_and_stops_the_cluster() {
    let home = Home::new();
    // One autostop "minute" lasts one second for this test's agent.
    ok(sky(home.path()).env("SKY_AGENT_IDLE_UNIT_SECS", "1").args([
        "launch",
        "-y",
        "-c",
        "idle",
        "-i",
        "1",
        "echo work",
    ]));
    let view = status(&home);
    assert_eq!(
        view["clusters"][0]["autostop"],
        serde_json::json!({"idle_minutes": 1, "down": false})
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster_status(&home, "idle").as_deref() != Some("STOPPED") {
        assert!(
            Instant::now() < deadline,
            "autostop did not fire: {}",
            status(&home)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        home.path().join("local/idle/node-0").is_dir(),
        "autostop stops, it does not delete"
    );
}

/// Autostop that cannot be forgotten: `resources.autostop` in the task file sets it with no
/// flag, a config.yaml `autostop` default covers tasks that say nothing, `autostop: false` in a
/// task overrides that default, and `-i` overrides both.
#[test]
fn autostop_from_the_task_file_and_the_config_default() {
    let home = Home::new();
    let autostop_of = |name: &str| {
        status(&home)["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["autostop"].clone())
            .expect("cluster listed")
    };
    let task = |name: &str, resources: &str| {
        let path = home.path().join(format!("{name}.yaml"));
        std::fs::write(&path, format!("resources:\n{resources}run: echo {name}\n")).expect("task");
        path.display().to_string()
    };
    let from_task = task("fromtask", "  autostop: {idle_minutes: 90, down: true}\n");
    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "fromtask", &from_task]));
    assert_eq!(
        autostop_of("fromtask"),
        serde_json::json!({"idle_minutes": 90, "down": true})
    );

    std::fs::write(home.path().join("config.yaml"), "autostop: 2h\n").expect("config");
    let silent = task("silent", "  cpus: 1+\n");
    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "silent", &silent]));
    assert_eq!(
        autostop_of("silent"),
        serde_json::json!({"idle_minutes": 120, "down": false})
    );
    let off = task("off", "  autostop: false\n");
    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "off", &off]));
    assert_eq!(autostop_of("off"), Value::Null);
    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "flag", "-i", "7", &from_task]));
    assert_eq!(
        autostop_of("flag"),
        serde_json::json!({"idle_minutes": 7, "down": false})
    );

    // A bad value is refused before anything is launched, naming the field and its forms.
    let bad = task("bad", "  autostop: 10 minutes\n");
    let out = sky(home.path())
        .args(["launch", "-y", "-d", "-c", "bad", &bad])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resources.autostop: unknown unit 'minutes'"),
        "{stderr}"
    );
    assert!(!status(&home).to_string().contains("\"bad\""));
    std::fs::write(home.path().join("config.yaml"), "autostop: {idle: 3}\n").expect("config");
    let out = sky(home.path()).args(["status"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.yaml:1:12: autostop.idle: unknown field"),
        "{stderr}"
    );
    std::fs::remove_file(home.path().join("config.yaml")).expect("config");
    ok(sky(home.path()).args(["down", "--all", "-y"]));
}

#[test]
fn refresh_cleans_up_after_a_launch_killed_before_recording_nodes() {
    let home = Home::new();
    // The state a `kill -9` leaves between "attempt recorded" and "nodes recorded": an INIT
    // record without placement but with the launch attempt written before the create call, and
    // node directories the provider had started to create.
    {
        let mut db = sky_core::state::StateStore::open(&home.path().join("state.db")).expect("db");
        db.create("crashed", 2, None, "sky launch", 1)
            .expect("record");
        let attempt = sky_core::provision::owner::LaunchAttempt {
            launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
            cloud: sky_core::CloudId::Local,
            region: "local".into(),
            zone: None,
        };
        db.add_launch_attempt("crashed", &attempt, 1)
            .expect("attempt");
    }
    for rank in 0..2 {
        std::fs::create_dir_all(home.path().join(format!("local/crashed/node-{rank}")))
            .expect("node dir");
    }
    let out = sky(home.path())
        .args(["status", "--refresh", "-o", "json"])
        .output()
        .expect("runs");
    let view: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(view["clusters"], serde_json::json!([]), "{view}");
    let change = &view["changes"][0];
    assert_eq!(
        (
            change["cluster"].as_str(),
            change["from"].as_str(),
            change["to"].as_str()
        ),
        (Some("crashed"), Some("INIT"), None)
    );
    assert!(
        change["message"]
            .as_str()
            .unwrap_or_default()
            .contains("terminated 2 node(s) of launch "),
        "{view}"
    );
    assert!(!home.path().join("local/crashed").exists());
}

#[test]
fn kill_9_during_launch_then_refresh_leaves_a_consistent_state() {
    let home = Home::new();
    let bin = assert_cmd::cargo::cargo_bin("sky");
    let mut child = std::process::Command::new(bin)
        .env("SKY_HOME", home.path())
        .args(["launch", "-y", "-c", "killed", "sleep 30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill as soon as the record exists (somewhere between INIT and the job's start).
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster_status(&home, "killed").is_none() {
        assert!(
            Instant::now() < deadline,
            "launch never recorded the cluster"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    ok(sky(home.path()).args(["status", "--refresh"]));
    // Whatever phase it died in, the record now matches what exists.
    match cluster_status(&home, "killed").as_deref() {
        None => assert!(
            !home.path().join("local/killed").exists(),
            "no record, so no nodes"
        ),
        Some(s) => {
            assert!(["INIT", "UP", "STOPPED"].contains(&s));
            assert!(
                home.path().join("local/killed/node-0").is_dir(),
                "a record has its nodes"
            );
        }
    }
    ok(sky(home.path()).args(["down", "--all", "-y"]));
    assert!(!home.path().join("local/killed").exists());
}

#[test]
fn bad_input_gets_its_message_and_exit_code() {
    let home = Home::new();
    let out = sky(home.path())
        .args(["stop", "nope", "-y"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster 'nope' not found"));

    ok(sky(home.path()).args(["launch", "-y", "-d", "-c", "one", "echo"]));
    let out = sky(home.path())
        .args(["launch", "-y", "-c", "one", "--num-nodes", "3", "echo"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(11));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "task does not fit cluster 'one': the task needs 3 nodes and the cluster has 1"
        ),
        "{stderr}"
    );

    // Another command holds the cluster: this one says it waits, then gives up.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.path().join("locks/one.lock"))
        .expect("lock file");
    lock.lock().expect("hold the lock");
    let out = sky(home.path())
        .env("SKY_LOCK_TIMEOUT", "1")
        .args(["stop", "one", "-y"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(8));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting") && stderr.contains("cluster 'one' is busy"),
        "{stderr}"
    );
    drop(lock);

    let out = sky(home.path())
        .args(["launch", "-c", "../evil", "-y", "echo"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid cluster name '../evil'"));

    // Destructive commands never hang on a prompt without a terminal.
    let out = sky(home.path())
        .args(["down", "one"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass -y"));
    assert_eq!(cluster_status(&home, "one").as_deref(), Some("UP"));
}

#[test]
fn ctrl_c_during_setup_cancels_the_launch_and_tears_down_what_it_created() {
    let home = Home::new();
    let task = home.path().join("slow.yaml");
    std::fs::write(&task, "setup: sleep 30\nrun: echo never\n").expect("task");
    let launch = std::process::Command::new(assert_cmd::cargo::cargo_bin("sky"))
        .env("SKY_HOME", home.path())
        .env("NO_COLOR", "1")
        .args(["launch", "-y", "-c", "intr", "--cloud", "local"])
        .arg(&task)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sky launch starts");
    // The cluster is UP before its setup starts; give setup a moment to be under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster_status(&home, "intr").as_deref() != Some("UP") {
        assert!(Instant::now() < deadline, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &launch.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let started = Instant::now();
    let out = launch.wait_with_output().expect("sky launch ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cancel waited for setup's 30 s: {stderr}"
    );
    assert!(
        stderr.contains("cancelling the launch of 'intr'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the nodes it created were terminated"),
        "{stderr}"
    );
    assert_eq!(cluster_status(&home, "intr"), None, "{}", status(&home));
}

/// `-o json` on the commands that change clusters or jobs: one document on stdout saying what
/// happened, the same exit codes as the table output, errors as `{"error": {code, message}}`.
#[test]
fn lifecycle_commands_speak_json() {
    let home = Home::new();
    let json = |args: &[&str]| -> (Option<i32>, Value) {
        let out = sky(home.path()).args(args).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let doc = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "sky {args:?}: not one JSON document ({e}):\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), doc)
    };
    ok(sky(home.path()).args(["launch", "-y", "-c", "j", "echo hi"]));
    assert_eq!(
        json(&["stop", "j", "-y", "-o", "json"]),
        (
            Some(0),
            serde_json::json!({"clusters": [{"name": "j", "result": "stopped"}]})
        )
    );
    assert_eq!(
        json(&["start", "j", "-o", "json"]),
        (
            Some(0),
            serde_json::json!({"clusters": [{"name": "j", "result": "started"}]})
        )
    );
    assert_eq!(
        json(&["autostop", "j", "-i", "5", "-o", "json"]),
        (
            Some(0),
            serde_json::json!({"cluster": "j", "autostop": {"idle_minutes": 5, "down": false}})
        )
    );
    let (code, job) = json(&["logs", "j", "--status", "-o", "json"]);
    assert_eq!(
        (code, &job["status"]),
        (Some(0), &serde_json::json!("SUCCEEDED")),
        "{job}"
    );
    assert_eq!(
        json(&["cancel", "j", "--all", "-y", "-o", "json"]),
        (
            Some(0),
            serde_json::json!({"cluster": "j", "cancelled": []})
        )
    );
    let (code, err) = json(&["down", "nope", "-y", "-o", "json"]);
    assert_eq!(
        (code, &err["error"]["code"]),
        (Some(7), &serde_json::json!("cluster_not_found"))
    );
    assert_eq!(
        json(&["down", "j", "-y", "-o", "json"]),
        (
            Some(0),
            serde_json::json!({"clusters": [{"name": "j", "result": "terminated"}]})
        )
    );
}
