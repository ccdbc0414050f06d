//! The real agent binary, driven through `AgentClient` over `sky-agent rpc`, with real processes
//! in temp dirs: FIFO order and concurrency, cancel of whole process trees, multi-node
//! environments, log following, autostop, recovery after `kill -9`, setup and its cancel,
//! secrets, versions.
//!
//! Waits are bounded polls for an observable condition; no assertion depends on how long
//! something took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sky_core::jobs::client::{AgentClient, LogEvent};
use sky_core::jobs::wire::{AutostopHook, ClusterConfig, NodeSpec, SetupSpec};
use sky_core::jobs::{
    AutostopSetting, JobDemand, JobId, JobRecord, JobSpec, JobStatus, NodeCapacity,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const AGENT: &str = env!("CARGO_BIN_EXE_sky-agent");

struct Cluster {
    dir: tempfile::TempDir,
    nodes: usize,
    envs: Vec<(&'static str, String)>,
}

impl Cluster {
    fn new(nodes: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..nodes {
            std::fs::create_dir_all(dir.path().join(format!("node-{i}"))).expect("node dir");
        }
        Cluster {
            dir,
            nodes,
            envs: vec![("SKY_AGENT_KILL_GRACE_SECS", "1".into())],
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.path().join("node-0").join(".sky-agent")
    }

    fn config(&self, cpus: f64) -> ClusterConfig {
        ClusterConfig {
            cluster_name: "t".into(),
            cloud: "local".into(),
            region: None,
            zone: None,
            nodes: (0..self.nodes)
                .map(|i| NodeSpec {
                    ip: "127.0.0.1".into(),
                    dir: self.path().join(format!("node-{i}")),
                    ssh: None,
                })
                .collect(),
            capacity: NodeCapacity {
                cpus,
                accelerators: BTreeMap::new(),
            },
            autostop_hook: None,
        }
    }

    fn client(&self) -> AgentClient {
        let mut cmd = tokio::process::Command::new(AGENT);
        cmd.arg("rpc").arg("--home").arg(self.home());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        AgentClient::spawn(cmd).expect("spawn agent")
    }

    async fn start(&self, cpus: f64) -> AgentClient {
        let client = self.client();
        client
            .configure(self.config(cpus))
            .await
            .expect("configure");
        client
    }

    fn daemon_pid(&self) -> i32 {
        std::fs::read_to_string(self.home().join("agent.pid"))
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop the daemon and its jobs even when a test failed half-way.
        if let Ok(text) = std::fs::read_to_string(self.home().join("agent.pid"))
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn job(run: &str, cpus: f64) -> JobSpec {
    JobSpec {
        demand: JobDemand {
            cpus,
            ..JobDemand::default()
        },
        ..JobSpec::command(run)
    }
}

async fn wait_for<F: FnMut() -> bool>(what: &str, mut done: F) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

async fn wait_terminal(client: &AgentClient, id: JobId) -> JobRecord {
    let mut logs = client.tail(Some(id), Vec::new(), true).await.expect("tail");
    while let Some(event) = logs.next().await {
        if let LogEvent::JobEnd(end) = event.expect("log event") {
            assert!(end.status.is_terminal());
            break;
        }
    }
    client.status(&[id]).await.expect("status").remove(0)
}

/// A pid is gone when /proc no longer lists it or it is a zombie waiting to be reaped.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_jobs_run_fifo_with_the_concurrency_that_fits() {
    let cluster = Cluster::new(1);
    let client = cluster.start(1.0).await;
    let d = cluster.path().display();
    // Jobs 1 and 2 each wait for the other's marker: they only finish if they run at once.
    let meet = |me: &str, other: &str| {
        format!(
            "touch {d}/{me}; for i in $(seq 400); do [ -f {d}/{other} ] && exit 0; sleep 0.05; done; exit 1"
        )
    };
    let ids = vec![
        client.submit(job(&meet("a", "b"), 0.5)).await.expect("1"),
        client.submit(job(&meet("b", "a"), 0.5)).await.expect("2"),
        // Needs the whole node: runs alone, after 1 and 2, before 4 and 5.
        client.submit(job("sleep 0.2", 1.0)).await.expect("3"),
        client.submit(job(&meet("c", "e"), 0.5)).await.expect("4"),
        client.submit(job(&meet("e", "c"), 0.5)).await.expect("5"),
    ];
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(wait_terminal(&client, *id).await);
    }
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
        assert_eq!(j.exit_code, Some(0));
    }
    let span = |j: &JobRecord| (j.started_at.expect("start"), j.ended_at.expect("end"));
    let (s3, e3) = span(&jobs[2]);
    for other in [0, 1] {
        assert!(
            span(&jobs[other]).1 <= s3,
            "job 3 started before job {} ended",
            other + 1
        );
    }
    for other in [3, 4] {
        assert!(
            span(&jobs[other]).0 >= e3,
            "job {} started while job 3 ran",
            other + 1
        );
    }
    let starts: Vec<f64> = jobs.iter().map(|j| span(j).0).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "not FIFO: {starts:?}"
    );
    let queue = client.queue().await.expect("queue");
    assert_eq!(queue.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_whole_process_tree() {
    let cluster = Cluster::new(1);
    let client = cluster.start(0.5).await;
    let pids = cluster.path().join("pids");
    let stubborn = cluster.path().join("stubborn");
    // A child in the background, a grandchild, and the shell itself.
    let run = format!(
        "echo $$ >> {p}; (echo $BASHPID >> {p}; sleep 300 & echo $! >> {p}; wait) & sleep 300 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let running = client.submit(job(&run, 0.5)).await.expect("submit");
    let queued = client.submit(job("echo never", 0.5)).await.expect("submit");
    wait_for("the job's processes", || read_pids(&pids).len() == 4).await;
    let all = read_pids(&pids);
    assert!(all.iter().all(|p| !gone(*p)));

    let cancelled = client
        .cancel(Some(&[queued, running]))
        .await
        .expect("cancel");
    assert_eq!(cancelled, vec![queued, running]);
    for pid in &all {
        assert!(gone(*pid), "pid {pid} survived cancel");
    }
    let records = client.status(&[running, queued]).await.expect("status");
    assert!(
        records.iter().all(|j| j.status == JobStatus::Cancelled),
        "{records:?}"
    );
    assert_eq!(records[1].started_at, None);

    // A job that ignores SIGTERM is killed after the grace period.
    let run = format!(
        "trap '' TERM; echo $$ > {s}; while true; do sleep 0.1; done",
        s = stubborn.display()
    );
    let id = client.submit(job(&run, 0.5)).await.expect("submit");
    wait_for("the stubborn job", || read_pids(&stubborn).len() == 1).await;
    client.cancel(None).await.expect("cancel all");
    assert!(gone(read_pids(&stubborn)[0]));
    let rec = client.status(&[id]).await.expect("status").remove(0);
    assert_eq!(rec.status, JobStatus::Cancelled);

    let err = client
        .cancel(Some(&[JobId(99)]))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), sky_core::ErrorCode::JobNotFound);
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_node_jobs_see_their_rank_and_cluster() {
    let cluster = Cluster::new(2);
    std::fs::create_dir_all(cluster.path().join("node-1/sky_workdir")).expect("workdir");
    let client = cluster.start(2.0).await;
    let mut spec = JobSpec::command(
        "echo \"rank=$SKYPILOT_NODE_RANK sky=$SKY_NODE_RANK n=$SKYPILOT_NUM_NODES \
         ips=$(echo \"$SKYPILOT_NODE_IPS\" | paste -sd,) job=$SKY_JOB_ID \
         cluster=$SKY_CLUSTER_NAME task=$SKYPILOT_TASK_ID model=$MODEL pwd=$(pwd)\"",
    );
    spec.num_nodes = 2;
    spec.envs.insert("MODEL".into(), "llama".into());
    let id = client.submit(spec).await.expect("submit");
    let mut logs = client.tail(Some(id), Vec::new(), true).await.expect("tail");
    let mut lines = BTreeMap::new();
    let mut end = None;
    while let Some(event) = logs.next().await {
        match event.expect("event") {
            LogEvent::Chunk(chunk) => {
                assert_eq!(chunk.num_nodes, 2);
                for line in chunk.lines {
                    lines.insert(line.rank, line.text);
                }
            }
            LogEvent::JobEnd(e) => end = Some(e),
            LogEvent::SetupEnd(_) => panic!("not a setup"),
        }
    }
    assert_eq!(end.map(|e| e.status), Some(JobStatus::Succeeded));
    for rank in 0..2u32 {
        let line = &lines[&rank];
        assert!(
            line.starts_with(&format!(
                "rank={rank} sky={rank} n=2 ips=127.0.0.1,127.0.0.1 job={id} cluster=t task=sky-"
            )),
            "{line}"
        );
        assert!(line.contains(&format!("_t_{id} model=llama")), "{line}");
    }
    let node0 = cluster.path().join("node-0").canonicalize().expect("canon");
    let node1 = cluster
        .path()
        .join("node-1/sky_workdir")
        .canonicalize()
        .expect("canon");
    assert!(
        lines[&0].ends_with(&format!("pwd={}", node0.display())),
        "{}",
        lines[&0]
    );
    assert!(
        lines[&1].ends_with(&format!("pwd={}", node1.display())),
        "{}",
        lines[&1]
    );

    // A job that cannot fit is refused at once with a reason.
    let mut too_big = JobSpec::command("true");
    too_big.num_nodes = 3;
    let err = client.submit(too_big).await.expect_err("does not fit");
    assert!(err.to_string().contains("3 nodes"), "{err}");
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_until_the_end_and_resume_from_offsets() {
    let cluster = Cluster::new(1);
    let client = cluster.start(1.0).await;
    let gate = cluster.path().join("gate");
    let run = format!(
        "echo first; while [ ! -f {g} ]; do sleep 0.05; done; printf 'second\\npartial'; exit 3",
        g = gate.display()
    );
    let id = client.submit(job(&run, 0.5)).await.expect("submit");
    let mut logs = client.tail(Some(id), Vec::new(), true).await.expect("tail");
    let mut seen = Vec::new();
    let mut offsets = Vec::new();
    let mut end = None;
    while let Some(event) = logs.next().await {
        match event.expect("event") {
            LogEvent::Chunk(chunk) => {
                if seen.is_empty() {
                    // The job is blocked on the gate: following must have delivered "first".
                    std::fs::write(&gate, "").expect("open gate");
                }
                seen.extend(chunk.lines.into_iter().map(|l| l.text));
                offsets = chunk.offsets;
            }
            LogEvent::JobEnd(e) => end = Some(e),
            LogEvent::SetupEnd(_) => panic!("not a setup"),
        }
    }
    assert_eq!(seen, vec!["first", "second", "partial"]);
    let end = end.expect("end");
    assert_eq!((end.status, end.exit_code), (JobStatus::Failed, Some(3)));
    // Resuming from the first line's offset gives the rest, without following.
    let mut rest = client.tail(Some(id), vec![6], false).await.expect("tail");
    let mut texts = Vec::new();
    while let Some(Ok(LogEvent::Chunk(c))) = rest.next().await {
        texts.extend(c.lines.into_iter().map(|l| l.text));
    }
    assert_eq!(texts, vec!["second", "partial"]);
    assert_eq!(offsets, vec![20]);
    // No job id: the latest job.
    let mut latest = client
        .tail(None, vec![20], false)
        .await
        .expect("tail latest");
    assert!(matches!(latest.next().await, Some(Ok(LogEvent::JobEnd(e))) if e.job_id == id));
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostop_fires_after_idle_time_and_not_while_busy() {
    let mut cluster = Cluster::new(1);
    cluster
        .envs
        .push(("SKY_AGENT_IDLE_UNIT_SECS", "0.2".into()));
    let marker = cluster.path().join("stopped");
    let mut config = cluster.config(1.0);
    let hook = |what: &str| {
        vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!(
                "date +%s.%N > {m}.tmp && echo {what} >> {m}.tmp && mv {m}.tmp {m}",
                m = marker.display()
            ),
        ]
    };
    config.autostop_hook = Some(AutostopHook {
        stop: hook("stop"),
        down: hook("down"),
    });
    let client = cluster.client();
    client.configure(config).await.expect("configure");
    let id = client.submit(job("sleep 1", 0.5)).await.expect("submit");
    client
        .set_autostop(AutostopSetting {
            idle_minutes: 1,
            down: true,
        })
        .await
        .expect("autostop");
    let info = client.info().await.expect("info");
    assert_eq!(info.idle_unit_seconds, 0.2);
    assert!(info.autostop.is_some_and(|a| a.down));
    let record = wait_terminal(&client, id).await;
    wait_for("the autostop hook", || marker.exists()).await;
    let text = std::fs::read_to_string(&marker).expect("marker");
    let mut parts = text.lines();
    let fired_at: f64 = parts.next().and_then(|t| t.parse().ok()).expect("time");
    assert_eq!(parts.next(), Some("down"));
    assert!(
        fired_at >= record.ended_at.expect("ended"),
        "autostop fired while a job was running"
    );
    client.shutdown(false).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_kill_9_fails_lost_jobs_and_goes_on() {
    let cluster = Cluster::new(1);
    let client = cluster.start(0.5).await;
    let pids = cluster.path().join("pids");
    let run = format!("echo $$ > {p}; sleep 300", p = pids.display());
    let lost = client.submit(job(&run, 0.5)).await.expect("submit");
    let mut with_secret = job("echo has secret", 0.5);
    with_secret
        .secrets
        .0
        .insert("TOKEN".into(), "never-on-disk-7f3a".into());
    let secret_job = client.submit(with_secret).await.expect("submit");
    let plain = client
        .submit(job("echo survived", 0.5))
        .await
        .expect("submit");
    wait_for("the running job", || read_pids(&pids).len() == 1).await;
    let old = cluster.daemon_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    drop(client);
    wait_for("the old daemon to die", || gone(old)).await;

    let client = cluster.client();
    let info = client.info().await.expect("info of the new daemon");
    assert_ne!(info.pid as i32, old);
    let lost_rec = client.status(&[lost]).await.expect("status").remove(0);
    assert_eq!(lost_rec.status, JobStatus::FailedDriver);
    assert!(
        gone(read_pids(&pids)[0]),
        "the lost job's process must be killed"
    );
    let secret_rec = client
        .status(&[secret_job])
        .await
        .expect("status")
        .remove(0);
    assert_eq!(secret_rec.status, JobStatus::FailedDriver);
    assert!(secret_rec.message.unwrap_or_default().contains("secrets"));
    let plain_rec = wait_terminal(&client, plain).await;
    assert_eq!(plain_rec.status, JobStatus::Succeeded);
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_job_and_nothing_else() {
    let cluster = Cluster::new(1);
    let client = cluster.start(1.0).await;
    // The expected value is split so the full secret never appears in the stored command.
    let mut spec = job("[ \"$TOKEN\" = \"$HEAD$TAIL\" ] && echo token-ok", 0.5);
    spec.envs.insert("HEAD".into(), "s3cr3t-".into());
    spec.envs.insert("TAIL".into(), "9d2c".into());
    spec.secrets.0.insert("TOKEN".into(), "s3cr3t-9d2c".into());
    let id = client.submit(spec).await.expect("submit");
    let rec = wait_terminal(&client, id).await;
    assert_eq!(rec.status, JobStatus::Succeeded);
    assert!(!rec.envs.contains_key("TOKEN"));
    client.shutdown(false).await.expect("shutdown");
    let mut stack = vec![cluster.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("s3cr3t-9d2c"),
                    "secret written to {}",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_on_every_node_with_a_log_each() {
    let cluster = Cluster::new(2);
    let client = cluster.start(1.0).await;
    let spec = SetupSpec {
        commands: "echo setup on $SKYPILOT_NODE_RANK; exit $SKYPILOT_NODE_RANK".into(),
        envs: BTreeMap::new(),
        secrets: Default::default(),
    };
    let mut stream = client.setup(spec).await.expect("setup");
    let mut lines = Vec::new();
    let mut result = None;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            LogEvent::Chunk(c) => lines.extend(c.lines.into_iter().map(|l| (l.rank, l.text))),
            LogEvent::SetupEnd(r) => result = Some(r),
            LogEvent::JobEnd(_) => panic!("not a job"),
        }
    }
    lines.sort();
    assert_eq!(
        lines,
        vec![(0, "setup on 0".to_string()), (1, "setup on 1".to_string())]
    );
    let result = result.expect("result");
    assert_eq!(result.exit_codes, vec![0, 1]);
    assert!(!result.succeeded());
    assert!(Path::new(&result.log_dir).join("node-1.log").is_file());
    client.shutdown(false).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_setup_kills_every_node_setup_tree_and_ends_the_setup() {
    let cluster = Cluster::new(2);
    let client = cluster.start(1.0).await;
    let pids = cluster.path().join("setup-pids");
    // Per node: the shell, a background child and a grandchild; one of them ignores SIGTERM.
    let commands = format!(
        "echo $$ >> {p}; (trap '' TERM; echo $BASHPID >> {p}; sleep 600 & echo $! >> {p}; wait) & wait",
        p = pids.display()
    );
    let spec = SetupSpec {
        commands,
        envs: BTreeMap::new(),
        secrets: Default::default(),
    };
    let mut stream = client.setup(spec).await.expect("setup");
    wait_for("both nodes' setup processes", || {
        read_pids(&pids).len() == 6
    })
    .await;
    let all = read_pids(&pids);

    client.cancel_setup().await.expect("cancel setup");
    for pid in &all {
        assert!(gone(*pid), "setup pid {pid} survived cancel_setup");
    }
    let mut result = None;
    while let Some(event) = stream.next().await {
        if let LogEvent::SetupEnd(r) = event.expect("event") {
            result = Some(r);
        }
    }
    let result = result.expect("the cancelled setup still reports its end");
    assert_eq!(result.exit_codes.len(), 2);
    assert!(!result.succeeded(), "{:?}", result.exit_codes);
    // Nothing left to cancel is not an error.
    client.cancel_setup().await.expect("second cancel");
    client.shutdown(true).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_kill_jobs_also_kills_a_running_setup() {
    let cluster = Cluster::new(1);
    let client = cluster.start(1.0).await;
    let pids = cluster.path().join("setup-pids");
    let spec = SetupSpec {
        commands: format!(
            "echo $$ >> {p}; sleep 600 & echo $! >> {p}; wait",
            p = pids.display()
        ),
        envs: BTreeMap::new(),
        secrets: Default::default(),
    };
    let _stream = client.setup(spec).await.expect("setup");
    wait_for("the setup processes", || read_pids(&pids).len() == 2).await;
    client.shutdown(true).await.expect("shutdown");
    for pid in read_pids(&pids) {
        assert!(gone(pid), "setup pid {pid} survived shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_protocol_refuses_other_versions_and_reports_unconfigured() {
    let cluster = Cluster::new(1);
    let mut child = tokio::process::Command::new(AGENT)
        .arg("rpc")
        .arg("--home")
        .arg(cluster.home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    stdin
        .write_all(
            b"{\"v\":2,\"id\":1,\"op\":\"warp\"}\n{\"v\":1,\"id\":2,\"op\":\"submit\",\"run\":\"true\"}\n{\"v\":1,\"id\":3,\"op\":\"shutdown\"}\n",
        )
        .await
        .expect("write");
    drop(stdin);
    let mut lines = BufReader::new(stdout).lines();
    let mut answers = BTreeMap::new();
    while let Some(line) = lines.next_line().await.expect("read") {
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        answers.insert(v["id"].as_u64().expect("id"), v);
    }
    assert_eq!(answers[&1]["error"]["kind"], "unsupported_version");
    assert!(
        answers[&1]["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("version 2")
    );
    assert_eq!(answers[&2]["error"]["kind"], "not_configured");
    assert_eq!(answers[&3]["ok"]["kind"], "done");
    assert!(child.wait().await.expect("wait").success());
}
