//! Parity with SkyPilot 0.14.1, frozen: `tests/peer/compare.py --write tests/peer/parity.json`
//! records every task on which Sky and SkyPilot agreed (same cloud, instance type, spot flag,
//! price to $0.0001, a placement among SkyPilot's equally cheapest, or both refusing). This test
//! replays those tasks through the real `sky launch --dryrun -o json`, so CI checks parity
//! without Python.

use assert_cmd::Command;
use serde_json::Value;

const PARITY: &str = include_str!("../peer/parity.json");

fn dryrun_json(home: &std::path::Path, task: &std::path::Path) -> Value {
    let out = Command::cargo_bin("sky")
        .expect("the sky binary is built")
        .args(["launch", "--dryrun", "-y", "-o", "json"])
        .arg(task)
        .env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SKY_DEV")
        .output()
        .expect("sky runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn same_choice(expected: &Value, got: &Value) -> Result<(), String> {
    for key in ["cloud", "region", "zone", "instance_type", "use_spot"] {
        if expected[key] != got[key] {
            return Err(format!(
                "{key}: expected {} got {}",
                expected[key], got[key]
            ));
        }
    }
    let (e, g) = (
        expected["hourly_price"].as_f64(),
        got["hourly_price"].as_f64(),
    );
    match (e, g) {
        (Some(e), Some(g)) if (e - g).abs() <= 1e-4 => Ok(()),
        _ => Err(format!("hourly_price: expected {e:?} got {g:?}")),
    }
}

#[test]
fn dryrun_choices_match_the_frozen_skypilot_parity_set() {
    let cases: serde_json::Map<String, Value> =
        serde_json::from_str(PARITY).expect("parity.json parses");
    assert!(
        cases.len() >= 60,
        "the parity set shrank to {} tasks",
        cases.len()
    );
    let home = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let task = home.path().join(format!("{name}.yaml"));
        std::fs::write(&task, case["yaml"].as_str().expect("yaml text")).expect("write task");
        let got = dryrun_json(home.path(), &task);
        let expected = &case["plan"];
        if expected.get("error").is_some() {
            if got.get("error").is_none() {
                failures.push(format!(
                    "{name}: SkyPilot refuses, Sky chose {}",
                    got["tasks"][0]["chosen"]
                ));
            }
            continue;
        }
        let (Some(want), Some(tasks)) = (expected["tasks"].as_array(), got["tasks"].as_array())
        else {
            failures.push(format!("{name}: expected a plan, got {got}"));
            continue;
        };
        if want.len() != tasks.len() {
            failures.push(format!(
                "{name}: {} tasks planned, expected {}",
                tasks.len(),
                want.len()
            ));
            continue;
        }
        for (i, (w, t)) in want.iter().zip(tasks).enumerate() {
            if let Err(why) = same_choice(w, &t["chosen"]) {
                failures.push(format!("{name} task {i}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} parity regressions:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
