//! The cluster-name rule through the real `sky` binary on the local cloud: names are unique in a
//! home regardless of case, and a name that breaks the rule is refused before anything exists.

use crate::local_cloud::{Home, sky};

/// Every file or directory a launch of `name` could have left under the home.
fn traces(home: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    [
        home.join("local").join(name),
        home.join("locks").join(format!("{name}.lock")),
        home.join("ssh").join("known_hosts").join(name),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

#[test]
fn dev_then_dev_in_another_case_is_refused_and_creates_nothing() {
    let home = Home::new();
    let first = sky(home.path())
        .args(["launch", "-y", "-c", "Dev", "echo first"])
        .output()
        .expect("runs");
    assert!(
        first.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr)
    );
    let second = sky(home.path())
        .args(["launch", "-y", "-c", "dev", "echo second"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a cluster 'Dev' already exists")
            && stderr.contains(
                "names are compared case-insensitively because Azure resource groups and macOS files are"
            ),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("second"),
        "nothing ran"
    );
    assert_eq!(traces(home.path(), "dev"), Vec::<std::path::PathBuf>::new());
    let status = sky(home.path())
        .args(["status", "-o", "json"])
        .output()
        .expect("runs");
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let names: Vec<&str> = view["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Dev"]);
}

#[test]
fn a_name_breaking_the_rule_is_refused_with_the_rule_before_anything_is_written() {
    let home = Home::new();
    for (name, problem) in [
        ("my cluster", "' ' is not allowed"),
        ("1st", "it starts with '1'"),
        ("../escape", "'/' is not allowed"),
    ] {
        let out = sky(home.path())
            .args(["launch", "-y", "-c", name, "echo never"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid cluster name '{name}'"))
                && stderr.contains(problem)
                && stderr.contains("cluster names are 1-63 characters"),
            "{stderr}"
        );
        assert!(traces(home.path(), name).is_empty(), "{name}");
    }
    assert!(!home.path().join("local").exists());
    assert!(!home.path().join("escape.lock").exists());
}

#[test]
fn commands_on_a_name_that_could_leave_the_home_are_refused() {
    let home = Home::new();
    let out = sky(home.path())
        .args(["down", "--orphan", "-y", "../../outside"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it cannot be a file name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!home.path().join("locks/../../outside.lock").exists());
}
