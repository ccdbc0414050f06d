//! Issue 5's benchmark against real sshd nodes from the test harness (root needed): `sky exec` of
//! `echo hi` on an UP 1-node pool cluster, and `sky launch` with a 2 s `setup` on 1 vs 4 nodes
//! (setup runs on every node at once, so 4 nodes should cost about what 1 does).
//!
//! Run: `cargo bench -p sky-tests --bench ssh` (release `sky`; build it first with
//! `cargo build --release -p sky-cli -p sky-agent`), or point `SKY_BENCH_BIN` at another `sky`
//! (e.g. `target/debug/sky`) to measure that build. Prints medians of several runs. What this
//! bench does not do: assert anything about the figures (machines differ), or run without root.

#[path = "../it/ssh_support.rs"]
#[allow(dead_code)]
mod ssh_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ssh_support::SshNodes;

const LAUNCH_RUNS: usize = 3;
const EXEC_RUNS: usize = 10;

fn sky_bin() -> PathBuf {
    std::env::var_os("SKY_BENCH_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| assert_cmd::cargo::cargo_bin("sky"), PathBuf::from)
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// `sky` on the bench's home; with `SKY_BENCH_TRACE_DIR` set, each call writes its timeline
/// (Chrome trace) to `<dir>/<call number>.json`, to see where a slow run spends its time.
fn sky(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(sky_bin());
    cmd.env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env("SKY_SSH_CONNECT_TIMEOUT_SECS", "20")
        .env_remove("SKY_DEV")
        .env_remove("SKY_TIMELINE_FILE_PATH");
    if let Some(dir) = std::env::var_os("SKY_BENCH_TRACE_DIR").filter(|v| !v.is_empty()) {
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        cmd.env(
            "SKY_TIMELINE_FILE_PATH",
            Path::new(&dir).join(format!("{n:02}.json")),
        );
    }
    cmd
}

fn timed(cmd: &mut std::process::Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("sky runs");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[allow(clippy::print_stdout)]
fn main() {
    if let Some(why) = ssh_support::unavailable() {
        println!("ssh bench skipped: {why}");
        return;
    }
    let bin = sky_bin();
    if !bin.is_file() {
        println!(
            "ssh bench skipped: {} is not built (cargo build --release -p sky-cli -p sky-agent)",
            bin.display()
        );
        return;
    }
    println!("sky binary: {}", bin.display());
    let home = tempfile::tempdir().expect("home");
    let key = sky_core::ssh::keys::load_or_create(home.path()).expect("key");
    let nodes = SshNodes::start(4, &key.public_openssh().expect("pub")).expect("nodes");
    let one = format!(
        "one:\n  hosts:\n    - ip: 127.0.0.1\n      user: {}\n      port: {}\n",
        nodes.nodes[0].user, nodes.nodes[0].port
    );
    std::fs::write(
        home.path().join("ssh_node_pools.yaml"),
        format!("{one}{}", nodes.pool_yaml("four")),
    )
    .expect("pools");
    let task = home.path().join("setup.yaml");
    std::fs::write(&task, "setup: sleep 2\nrun: echo done\n").expect("task");

    let mut setup = Vec::new();
    for (pool, n) in [("one", 1), ("four", 4)] {
        let mut runs = Vec::new();
        for _ in 0..LAUNCH_RUNS {
            runs.push(timed(
                sky(home.path())
                    .args(["launch", "-y", "-c", "bench", "--infra"])
                    .arg(format!("ssh/{pool}"))
                    .args(["--num-nodes", &n.to_string()])
                    .arg(&task),
            ));
            timed(sky(home.path()).args(["down", "-y", "bench"]));
        }
        setup.push((n, runs));
    }

    timed(sky(home.path()).args([
        "launch",
        "-y",
        "-c",
        "up",
        "--infra",
        "ssh/one",
        "echo warm",
    ]));
    let execs: Vec<Duration> = (0..EXEC_RUNS)
        .map(|_| timed(sky(home.path()).args(["exec", "up", "echo hi"])))
        .collect();
    timed(sky(home.path()).args(["down", "-y", "up"]));

    for (n, runs) in setup {
        let all: Vec<String> = runs.iter().map(|d| format!("{:.2}", secs(*d))).collect();
        println!(
            "launch with `setup: sleep 2` on {n} node(s): median {:.2} s (runs: {} s)",
            secs(median(runs)),
            all.join(", ")
        );
    }
    let min = execs.iter().min().copied().unwrap_or_default();
    println!(
        "sky exec 'echo hi' on an UP 1-node ssh cluster: median {:.0} ms, min {:.0} ms ({EXEC_RUNS} runs)",
        secs(median(execs)) * 1e3,
        secs(min) * 1e3
    );
}
