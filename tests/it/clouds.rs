//! AWS, GCP and Azure end to end through the real `sky` binary, with their VMs as real SSH hosts
//! (`sky_testkit::hosts`: network namespaces, each with its own address and sshd on port 22):
//! moto behind the fault proxy for AWS, the local REST fakes for GCP and Azure. A launch there
//! syncs the workdir, runs setup and the job on every node over SSH, and `down` leaves nothing.
//! Also the failover that crosses clouds: every AWS zone out of capacity, so the launch lands on
//! GCP and runs there, with no AWS instance left.
//!
//! Root only (namespaces, users, sshd), like the SSH tests: elsewhere they say why on stderr and
//! return. The AWS tests also need `moto_server`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sky_testkit::azure_fake::{self, FakeArm};
use sky_testkit::gcp_fake::{self, FakeGce};
use sky_testkit::hosts::Hosts;
use sky_testkit::moto::{self, Fault};

use crate::local_cloud::sky_process;

/// The tag every Sky instance on AWS carries (sky-aws `TAG_CLUSTER`, Sky's own key).
const AWS_CLUSTER_TAG: &str = "sky-cluster";
pub(crate) const AWS_REGION: &str = "us-east-1";

/// A Sky home, a workdir with a file the job prints, and `n` hosts; torn down on drop.
pub(crate) struct World {
    home: tempfile::TempDir,
    workdir: tempfile::TempDir,
    pub(crate) hosts: Hosts,
    /// Extra environment for every `sky` (credentials of the fakes).
    pub(crate) env: Vec<(String, String)>,
}

impl World {
    pub(crate) fn start(n: usize) -> Option<World> {
        if let Some(why) = sky_testkit::hosts::unavailable() {
            sky_testkit::require::cannot_run("cloud end-to-end test", &why);
            return None;
        }
        let hosts = Hosts::start(n).expect("test hosts start");
        let workdir = tempfile::tempdir().expect("workdir");
        std::fs::write(workdir.path().join("data.txt"), "synced-from-laptop\n").expect("file");
        Some(World {
            home: tempfile::tempdir().expect("SKY_HOME"),
            workdir,
            hosts,
            env: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn config(&self, text: &str) {
        std::fs::write(self.path().join("config.yaml"), text).expect("config.yaml");
    }

    /// A task running setup and `run` on `nodes` nodes with this world's workdir.
    fn task(&self, nodes: u32, resources: &str) -> PathBuf {
        let path = self.path().join("task.yaml");
        std::fs::write(
            &path,
            format!(
                "name: e2e\nnum_nodes: {nodes}\nworkdir: {}\nresources:\n{resources}\
                 setup: echo \"setup done on rank $SKY_NODE_RANK\" > ~/setup-mark\n\
                 run: |\n  echo \"rank=$SKY_NODE_RANK of $SKY_NUM_NODES \
                 ips=$(echo $SKY_NODE_IPS | tr '\\n' ' ')file=$(cat data.txt) \
                 setup=$(cat ~/setup-mark)\"\n",
                self.workdir.path().display()
            ),
        )
        .expect("task.yaml");
        path
    }

    fn sky(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// `sky` as a plain process, with this world's environment.
    pub(crate) fn command(&self) -> std::process::Command {
        let mut cmd = sky_process(self.path());
        // Hosts answer at once; a short connect timeout makes a broken setup fail fast.
        cmd.env("SKY_SSH_CONNECT_TIMEOUT_SECS", "15")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `sky args…` off the runtime (the fakes serve on it meanwhile); its stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let mut cmd = self.sky();
        cmd.args(args);
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("sky runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sky {args:?} failed ({:?}):\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("sky {} took {:?}", args.join(" "), started.elapsed());
        }
        stdout
    }

    /// Runs `sky args…`, which must fail; its stderr.
    pub(crate) async fn refused(&self, args: &[&str]) -> String {
        let mut cmd = self.sky();
        cmd.args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("sky runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "sky {args:?} was accepted: {stderr}");
        stderr
    }

    /// Runs the real OpenSSH client on `host` with the user config under `user_home` (what
    /// `ssh HOST` reads from a terminal; `-F` because OpenSSH finds `~` from the password
    /// database, not `$HOME`); its output.
    async fn openssh(&self, user_home: &Path, host: &str, command: &str) -> std::process::Output {
        let mut cmd = std::process::Command::new("ssh");
        cmd.arg("-F").arg(user_home.join(".ssh/config")).args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            host,
            command,
        ]);
        tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("the OpenSSH client runs")
    }

    /// `ssh HOST COMMAND` through the user config must succeed; its stdout.
    async fn openssh_ok(&self, user_home: &Path, host: &str, command: &str) -> String {
        let out = self.openssh(user_home, host, command).await;
        assert!(
            out.status.success(),
            "ssh {host} {command:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts `ssh CLUSTER` and `ssh CLUSTER-workerN` reach each rank's own machine: each
    /// finds the mark its own setup left in its home.
    async fn assert_ssh_reaches_each_node(&self, user_home: &Path, cluster: &str, nodes: u32) {
        for rank in 0..nodes {
            let host = if rank == 0 {
                cluster.to_owned()
            } else {
                format!("{cluster}-worker{rank}")
            };
            let mark = self.openssh_ok(user_home, &host, "cat ~/setup-mark").await;
            assert_eq!(
                mark.trim(),
                format!("setup done on rank {rank}"),
                "ssh {host}"
            );
        }
    }

    /// Asserts each rank printed its line with the hosts' addresses, the synced file and the
    /// mark its own setup left in its own home.
    fn assert_ranks(&self, stdout: &str, nodes: u32) -> Vec<String> {
        let placed: Vec<String> = self.hosts.placed().into_iter().map(|(_, a)| a).collect();
        assert_eq!(placed.len(), nodes as usize, "{placed:?}");
        let ips_line = stdout
            .lines()
            .find_map(|l| Some(l.split("ips=").nth(1)?.split("file=").next()?.trim()))
            .unwrap_or_else(|| panic!("no ips= in:\n{stdout}"));
        let ips: Vec<String> = ips_line.split_whitespace().map(str::to_owned).collect();
        let mut sorted_ips = ips.clone();
        sorted_ips.sort();
        let mut sorted_placed = placed.clone();
        sorted_placed.sort();
        assert_eq!(
            sorted_ips, sorted_placed,
            "SKY_NODE_IPS are the hosts:\n{stdout}"
        );
        for rank in 0..nodes {
            let expected = format!(
                "rank={rank} of {nodes} ips={ips_line} file=synced-from-laptop setup=setup done on rank {rank}"
            );
            assert!(
                stdout.lines().any(|l| l.ends_with(&expected)),
                "missing {expected:?} in:\n{stdout}"
            );
        }
        ips
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.sky().args(["down", "--all", "-y", "--purge"]).output();
    }
}

pub(crate) fn aws_env(world: &mut World) {
    let (access_key_id, secret) = moto::made_up_credentials();
    world.env.push(("AWS_ACCESS_KEY_ID".into(), access_key_id));
    world.env.push(("AWS_SECRET_ACCESS_KEY".into(), secret));
}

pub(crate) fn aws_config(endpoint: &str, user: &str) -> String {
    format!(
        "aws:\n  endpoint_url: {endpoint}\n  regions: [{AWS_REGION}]\n  \
         image_id: ami-0123456789abcdef0\n  disk_size: 20\n  ssh_user: {user}\n"
    )
}

pub(crate) fn gcp_env(world: &mut World) {
    let key = world.path().join("gcp-sa.json");
    std::fs::write(&key, gcp_fake::service_account_json("sky-test")).expect("service account");
    world.env.push((
        "GOOGLE_APPLICATION_CREDENTIALS".into(),
        key.display().to_string(),
    ));
}

/// The fake ARM's service principal, by the environment variables Azure's SDKs read.
pub(crate) fn azure_env(world: &mut World, secret: &str) {
    for (k, v) in [
        ("AZURE_TENANT_ID", azure_fake::TENANT),
        ("AZURE_CLIENT_ID", azure_fake::CLIENT),
        ("AZURE_CLIENT_SECRET", secret),
        ("AZURE_SUBSCRIPTION_ID", azure_fake::SUBSCRIPTION),
    ] {
        world.env.push((k.into(), v.into()));
    }
}

/// A world of `hosts` hosts with a fake ARM on `ip` (loopback, or the hosts' gateway when the
/// VMs must reach it), whose VMs run on the hosts, and Sky pointed at it with its credentials.
pub(crate) async fn azure_world(hosts: usize, on_gateway: bool) -> Option<(World, FakeArm)> {
    let mut world = World::start(hosts)?;
    let secret = format!("fake-{}", std::process::id());
    let ip = if on_gateway {
        world.hosts.gateway()
    } else {
        "127.0.0.1".to_owned()
    };
    let fake = FakeArm::start_on(&ip, &secret).await;
    fake.set_operation_pace(1, 0);
    fake.with_hosts(world.hosts.clone());
    azure_env(&mut world, &secret);
    world.config(&format!(
        "allowed_clouds: [azure]\n{}",
        azure_config(&fake.url(), &world.hosts.user())
    ));
    Some((world, fake))
}

pub(crate) fn azure_config(endpoint: &str, user: &str) -> String {
    format!(
        "azure:\n  endpoint_url: {endpoint}\n  authority_host: {endpoint}/\n  ssh_user: {user}\n"
    )
}

pub(crate) fn gcp_config(endpoint: &str, user: &str) -> String {
    format!("gcp:\n  endpoint_url: {endpoint}\n  poll_interval_ms: 20\n  ssh_user: {user}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_two_nodes_run_exec_stop_start_and_down_over_ssh() {
    let Some(mut world) = World::start(4) else {
        return;
    };
    let moto = moto::start_moto().await;
    let proxy = moto::start_proxy(moto.port).await;
    proxy.with_hosts(world.hosts.clone());
    aws_env(&mut world);
    world.config(&format!(
        "allowed_clouds: [aws]\n{}",
        aws_config(&proxy.url(), &world.hosts.user())
    ));
    let task = world.task(
        2,
        &format!("  infra: aws/{AWS_REGION}\n  instance_type: m6i.large\n"),
    );
    let task = task.display().to_string();

    // The user's own home, for ~/.ssh/config: a test's SKY_HOME is not the default home, so
    // the launch leaves that file alone until `sky config ssh --on`.
    let user_home = tempfile::tempdir().expect("user home");
    world
        .env
        .push(("HOME".into(), user_home.path().display().to_string()));

    let out = world.ok(&["launch", "-y", "-c", "awse2e", &task]).await;
    let first_ips = world.assert_ranks(&out, 2);
    assert!(!user_home.path().join(".ssh/config").exists());
    let on = world.ok(&["config", "ssh", "--on"]).await;
    assert!(on.contains("`ssh CLUSTER` works"), "{on}");
    // The real OpenSSH client reaches each node by name, trusting the host keys Sky pinned.
    world
        .assert_ssh_reaches_each_node(user_home.path(), "awse2e", 2)
        .await;
    let ip = world.ok(&["status", "--ip", "awse2e"]).await;
    assert_eq!(ip.trim(), first_ips[0], "the head's address");
    let access: serde_json::Value = serde_json::from_str(
        &world
            .ok(&["status", "--endpoints", "awse2e", "-o", "json"])
            .await,
    )
    .expect("json");
    assert_eq!(
        access["hosts"],
        serde_json::json!(["awse2e", "awse2e-worker1"])
    );

    let logs = world.ok(&["logs", "awse2e", "1"]).await;
    assert!(logs.contains("file=synced-from-laptop"), "{logs}");
    let out = world
        .ok(&[
            "exec",
            "awse2e",
            "--num-nodes",
            "2",
            "echo again-$SKY_NODE_RANK",
        ])
        .await;
    assert!(out.contains("again-0") && out.contains("again-1"), "{out}");

    world.ok(&["stop", "awse2e", "-y"]).await;
    assert!(world.hosts.placed().is_empty(), "stopped VMs still run");
    world.ok(&["start", "awse2e", "-y"]).await;
    let out = world
        .ok(&[
            "exec",
            "awse2e",
            "--num-nodes",
            "2",
            "echo after-start rank=$SKY_NODE_RANK ips=$(echo $SKY_NODE_IPS | tr '\\n' ' ')",
        ])
        .await;
    assert!(out.contains("after-start rank=1"), "{out}");
    let new_ips = world.hosts.placed();
    assert_eq!(new_ips.len(), 2);
    assert!(
        new_ips.iter().all(|(_, a)| !first_ips.contains(a)),
        "the restarted nodes have new addresses: {first_ips:?} then {new_ips:?}"
    );
    for (_, addr) in &new_ips {
        assert!(
            out.contains(addr.as_str()),
            "{addr} not in SKY_NODE_IPS:\n{out}"
        );
    }
    // `ssh CLUSTER` follows the new addresses.
    world
        .assert_ssh_reaches_each_node(user_home.path(), "awse2e", 2)
        .await;

    world.ok(&["down", "awse2e", "-y"]).await;
    // Gone with the cluster: its config and its pinned host keys.
    assert!(!world.path().join("ssh/config.d/awse2e").exists());
    assert!(!world.path().join("ssh/known_hosts/awse2e").exists());
    let gone = world.openssh(user_home.path(), "awse2e", "true").await;
    assert!(
        !gone.status.success(),
        "ssh still reaches a torn-down cluster"
    );
    world.ok(&["config", "ssh", "--off"]).await;
    let text = std::fs::read_to_string(user_home.path().join(".ssh/config")).expect("config");
    assert_eq!(text, "", "--off takes out exactly what --on put in");
    assert_eq!(
        moto::live_instances(moto.port, AWS_REGION, AWS_CLUSTER_TAG).await,
        Vec::<String>::new()
    );
    assert!(world.hosts.placed().is_empty());
}

/// A company network: nodes with no public address, reached only through a bastion
/// (`aws.use_internal_ips` and `aws.ssh_proxy_command`, a real `ssh -W` through a jump host in
/// the test namespaces). Every connection Sky makes, and `ssh CLUSTER` after it, goes through the
/// bastion: the proxy command logs each address it was asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_nodes_by_private_address_through_a_bastion() {
    let Some(mut world) = World::start(3) else {
        return;
    };
    let moto = moto::start_moto().await;
    let proxy = moto::start_proxy(moto.port).await;
    proxy.with_hosts(world.hosts.clone());
    aws_env(&mut world);
    // The bastion: one of the hosts, with a key of its own made for this run.
    let bastion = world.hosts.attach("bastion").expect("bastion host");
    let keys = tempfile::tempdir().expect("keys");
    let key = keys.path().join("bastion-key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    world.hosts.authorize("bastion", &public);
    let log = keys.path().join("proxied");
    let user = world.hosts.user();
    let proxy_command = format!(
        "echo %h:%p >> {log} && exec ssh -F /dev/null -i {key} -o BatchMode=yes \
         -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -W %h:%p {user}@{bastion}",
        log = log.display(),
        key = key.display(),
    );
    world.config(&format!(
        "allowed_clouds: [aws]\n{}  use_internal_ips: true\n  ssh_proxy_command:\n    \
         {AWS_REGION}: '{proxy_command}'\n",
        aws_config(&proxy.url(), &user)
    ));
    let user_home = tempfile::tempdir().expect("user home");
    world
        .env
        .push(("HOME".into(), user_home.path().display().to_string()));
    let task = world.task(
        2,
        &format!("  infra: aws/{AWS_REGION}\n  instance_type: m6i.large\n"),
    );
    let out = world
        .ok(&["launch", "-y", "-c", "private", &task.display().to_string()])
        .await;
    for rank in 0..2 {
        assert!(
            out.contains(&format!("rank={rank} of 2")) && out.contains("file=synced-from-laptop"),
            "{out}"
        );
    }
    let nodes: Vec<String> = world
        .hosts
        .placed()
        .into_iter()
        .filter(|(k, _)| k != "bastion")
        .map(|(_, addr)| addr)
        .collect();
    assert_eq!(nodes.len(), 2);
    let proxied = std::fs::read_to_string(&log).expect("the proxy command ran");
    for addr in &nodes {
        assert!(
            proxied.lines().any(|l| l == format!("{addr}:22")),
            "Sky reached {addr} through the bastion:\n{proxied}"
        );
    }
    let ip = world.ok(&["status", "--ip", "private"]).await;
    assert!(
        nodes.contains(&ip.trim().to_owned()),
        "the head's private address: {ip}"
    );

    // `ssh CLUSTER` goes through the same bastion.
    world.ok(&["config", "ssh", "--on"]).await;
    let before = std::fs::read_to_string(&log).expect("log").lines().count();
    world
        .assert_ssh_reaches_each_node(user_home.path(), "private", 2)
        .await;
    let after = std::fs::read_to_string(&log).expect("log").lines().count();
    assert_eq!(after, before + 2, "each ssh went through the bastion");

    world.ok(&["down", "private", "-y"]).await;
    assert_eq!(
        moto::live_instances(moto.port, AWS_REGION, AWS_CLUSTER_TAG).await,
        Vec::<String>::new()
    );
}

/// Waits until `done` holds for what `look` returns, asking every 100 ms for at most `secs`:
/// the cloud's own record reaching a state, not a fixed pause.
pub(crate) async fn until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    secs: u64,
    mut look: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let seen = look().await;
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {seen:?} after {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The head stops its own cluster with no client running: a guest shutdown of every node, with
/// no cloud credentials on the cluster, stops the EC2 instances (and with `--down` terminates
/// them, as `InstanceInitiatedShutdownBehavior` set at `sky autostop` says); refresh then tells
/// why, `start` keeps the setting, and a job running past the idle time keeps the cluster up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_idle_cluster_stops_itself_then_downs_itself() {
    let Some(mut world) = World::start(4) else {
        return;
    };
    let moto = moto::start_moto().await;
    let proxy = moto::start_proxy(moto.port).await;
    proxy.with_hosts(world.hosts.clone());
    aws_env(&mut world);
    // One autostop "minute" lasts one second for the agents this test starts.
    world
        .env
        .push(("SKY_AGENT_IDLE_UNIT_SECS".into(), "1".into()));
    world.config(&format!(
        "allowed_clouds: [aws]\n{}",
        aws_config(&proxy.url(), &world.hosts.user())
    ));
    let task = world.task(
        2,
        &format!("  infra: aws/{AWS_REGION}\n  instance_type: m6i.large\n"),
    );
    let task = task.display().to_string();
    // SkyPilot's and another Sky home's clusters of the same name in the same account: neither
    // the autostop nor the autodown may touch them.
    let foreign = [
        moto::run_foreign_instance(
            moto.port,
            AWS_REGION,
            &[
                ("skypilot-cluster-name", "awsidle"),
                ("skypilot-user", "alice"),
            ],
        )
        .await,
        moto::run_foreign_instance(
            moto.port,
            AWS_REGION,
            &[
                (AWS_CLUSTER_TAG, "awsidle"),
                ("sky-owner", "0123456789abcdef"),
                ("sky-launch", "fedcba9876543210"),
            ],
        )
        .await,
    ];
    // The proxy gives every running instance it lists a test host, foreign ones too (so that no
    // made-up address could ever be dialed); only this home's must be gone from the hosts.
    let foreign_run = || async {
        let mut states = Vec::new();
        for key in ["skypilot-cluster-name", AWS_CLUSTER_TAG] {
            states.extend(moto::instance_states(moto.port, AWS_REGION, key).await);
        }
        foreign
            .iter()
            .all(|id| states.iter().any(|(i, st)| i == id && st == "running"))
    };
    world.ok(&["launch", "-y", "-c", "awsidle", &task]).await;
    world.ok(&["autostop", "awsidle", "-i", "5", "-y"]).await;
    // Busy for longer than the idle time: the job finishes on nodes still up.
    let out = world
        .ok(&["exec", "awsidle", "sleep 8; echo busy-job-done"])
        .await;
    assert!(out.contains("busy-job-done"), "{out}");
    let states = || async {
        let mut all = moto::instance_states(moto.port, AWS_REGION, AWS_CLUSTER_TAG).await;
        all.retain(|(id, _)| !foreign.contains(id));
        all
    };
    let idle_from = Instant::now();
    until("autostop stopping both instances", 60, states, |s| {
        s.len() == 2 && s.iter().all(|(_, st)| st == "stopped")
    })
    .await;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "idle to stopped (5 s idle limit): {:?}",
            idle_from.elapsed()
        );
    }
    assert!(
        world
            .hosts
            .placed()
            .iter()
            .all(|(id, _)| foreign.contains(id)),
        "stopped VMs still run"
    );
    let refreshed = world.ok(&["status", "--refresh"]).await;
    assert!(
        refreshed.contains("autostopped after 5 idle minutes"),
        "{refreshed}"
    );
    assert!(refreshed.contains("STOPPED"), "{refreshed}");
    assert!(foreign_run().await, "autostop touched a foreign instance");

    world.ok(&["start", "awsidle", "-y"]).await;
    let status = world.ok(&["status"]).await;
    assert!(
        status.contains("5m"),
        "autostop kept across start:\n{status}"
    );
    world
        .ok(&["autostop", "awsidle", "-i", "1", "--down", "-y"])
        .await;
    until("autodown terminating both instances", 60, states, |s| {
        s.len() == 2 && s.iter().all(|(_, st)| st == "terminated")
    })
    .await;
    let refreshed = world.ok(&["status", "--refresh"]).await;
    assert!(
        refreshed.contains("autodowned after 1 idle minutes"),
        "{refreshed}"
    );
    let status = world.ok(&["status"]).await;
    assert!(!status.contains("awsidle"), "record removed:\n{status}");
    assert!(
        world
            .hosts
            .placed()
            .iter()
            .all(|(id, _)| foreign.contains(id))
    );
    assert!(
        foreign_run().await,
        "autodown or its refresh touched a foreign instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_two_nodes_setup_run_autostop_start_and_down_over_ssh() {
    let Some(mut world) = World::start(2) else {
        return;
    };
    let fake = FakeGce::start().await;
    fake.with_hosts(world.hosts.clone());
    gcp_env(&mut world);
    // One autostop "minute" lasts one second for the agents this test starts.
    world
        .env
        .push(("SKY_AGENT_IDLE_UNIT_SECS".into(), "1".into()));
    // config.yaml's labels go under the task's, and the task's `config:` turns gVNIC on.
    world.config(&format!(
        "allowed_clouds: [gcp]\n{}  labels: {{team: platform, cost-center: c42}}\n",
        gcp_config(&fake.url(), &world.hosts.user())
    ));
    let task = world.task(
        2,
        "  infra: gcp/us-central1\n  instance_type: n4-standard-2\n  labels: {team: research}\n\
         config:\n  gcp:\n    enable_gvnic: true\n",
    );
    // SkyPilot's and another Sky home's clusters of the same name in the same project: no
    // launch, autostop, start or down of this home's may touch them.
    fake.add_instance(
        "us-central1-b",
        "gcpe2e-4f1a-head",
        serde_json::json!({"skypilot-cluster-name": "gcpe2e"}),
    );
    fake.add_instance(
        "us-central1-c",
        "gcpe2e-0",
        serde_json::json!({"sky-cluster": "gcpe2e", "sky-owner": "0123456789abcdef"}),
    );
    let foreign = ["us-central1-b/gcpe2e-4f1a-head", "us-central1-c/gcpe2e-0"];
    let mine = || {
        let mut s = fake.statuses();
        s.retain(|(id, _)| !foreign.contains(&id.as_str()));
        s
    };
    let foreign_run = || {
        let s = fake.statuses();
        foreign
            .iter()
            .all(|f| s.iter().any(|(id, st)| id == f && st == "RUNNING"))
    };
    let out = world
        .ok(&["launch", "-y", "-c", "gcpe2e", &task.display().to_string()])
        .await;
    world.assert_ranks(&out, 2);
    let placed: Vec<String> = mine().into_iter().map(|(id, _)| id).collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    for zone_name in &placed {
        let (zone, name) = zone_name.split_once('/').expect("zone/name");
        let node = fake.instance(zone, name).expect("instance");
        assert_eq!(node["labels"]["team"], "research", "{node}");
        assert_eq!(node["labels"]["cost-center"], "c42", "{node}");
        assert_eq!(node["networkInterfaces"][0]["nicType"], "GVNIC", "{node}");
    }

    // Autostop: a GCE instance that shuts itself down becomes TERMINATED (stopped), but cannot
    // delete itself, so `--down` is refused rather than set and never done.
    let stderr = world
        .refused(&["autostop", "gcpe2e", "-i", "1", "--down", "-y"])
        .await;
    assert!(stderr.contains("cannot delete itself"), "{stderr}");
    world.ok(&["autostop", "gcpe2e", "-i", "5", "-y"]).await;
    let stopped = || {
        until(
            "autostop stopping both instances",
            60,
            || std::future::ready(mine()),
            |s| s.len() == 2 && s.iter().all(|(_, st)| st == "TERMINATED"),
        )
    };
    let idle_from = Instant::now();
    stopped().await;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "GCP idle to stopped (5 s idle limit): {:?}",
            idle_from.elapsed()
        );
    }
    assert!(world.hosts.placed().is_empty(), "stopped VMs still run");
    let refreshed = world.ok(&["status", "--refresh"]).await;
    assert!(
        refreshed.contains("autostopped after 5 idle minutes"),
        "{refreshed}"
    );
    // Started again, the cluster keeps its autostop: it stops itself once more.
    world.ok(&["start", "gcpe2e", "-y"]).await;
    let status = world.ok(&["status"]).await;
    assert!(
        status.contains("5m"),
        "autostop kept across start:\n{status}"
    );
    stopped().await;
    assert!(world.hosts.placed().is_empty(), "stopped VMs still run");

    assert!(
        foreign_run(),
        "autostop or start touched a foreign instance"
    );

    world.ok(&["down", "gcpe2e", "-y"]).await;
    assert_eq!(mine(), Vec::<(String, String)>::new());
    assert!(world.hosts.placed().is_empty());
    world.ok(&["status", "--refresh"]).await;
    assert!(foreign_run(), "down or refresh touched a foreign instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_two_nodes_setup_run_and_down_over_ssh() {
    let Some((world, fake)) = azure_world(2, false).await else {
        return;
    };
    let task = world.task(
        2,
        "  infra: azure/eastus\n  instance_type: Standard_D2s_v5\n",
    );
    // `_` and `.` are not allowed in Azure host names (the fake refuses them as ARM does): the
    // VMs get a derived name, shown by `status -v`, and the exact name stays Sky's.
    let name = "az_e2e.v2";
    let out = world
        .ok(&["launch", "-y", "-c", name, &task.display().to_string()])
        .await;
    world.assert_ranks(&out, 2);
    let status = world.ok(&["status", "-v"]).await;
    assert!(
        status.contains(&format!("{name} on Azure:"))
            && status.contains("resource group: sky-az_e2e.v2")
            && status.contains("VM and host names: az-e2e-v2-"),
        "{status}"
    );
    let vms: Vec<String> = fake
        .vms()
        .iter()
        .filter_map(|v| {
            v["properties"]["osProfile"]["computerName"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        vms.len() == 2 && vms.iter().all(|h| h.starts_with("az-e2e-v2-")),
        "{vms:?}"
    );
    world.ok(&["down", name, "-y"]).await;
    assert_eq!(fake.resource_count(), 0, "{:?}", fake.groups());
    assert!(world.hosts.placed().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aws_zone_out_of_capacity_fails_over_to_gcp_and_runs_there() {
    let Some(mut world) = World::start(2) else {
        return;
    };
    let moto = moto::start_moto().await;
    let proxy = moto::start_proxy(moto.port).await;
    proxy.with_hosts(world.hosts.clone());
    proxy.set_faults(vec![Fault::run_instances(
        "InsufficientInstanceCapacity",
        500,
    )]);
    let gce = FakeGce::start().await;
    gce.with_hosts(world.hosts.clone());
    aws_env(&mut world);
    gcp_env(&mut world);
    world.config(&format!(
        "allowed_clouds: [aws, gcp]\n{}{}",
        aws_config(&proxy.url(), &world.hosts.user()),
        gcp_config(&gce.url(), &world.hosts.user())
    ));
    // A T4 is cheaper on AWS: the plan puts AWS first, GCP after it.
    let task = world.task(1, "  accelerators: T4:1\n");
    let task = task.display().to_string();
    let plan = world.ok(&["launch", "--dryrun", &task]).await;
    let chosen = plan
        .lines()
        .find(|l| l.contains('✔'))
        .unwrap_or_else(|| panic!("no chosen row in:\n{plan}"));
    assert!(chosen.trim_start().starts_with("AWS"), "{plan}");
    assert!(plan.contains("GCP"), "{plan}");

    let out = world.ok(&["launch", "-y", "-c", "xcloud", &task]).await;
    world.assert_ranks(&out, 1);
    assert!(
        proxy
            .faults_sent()
            .iter()
            .all(|f| f.starts_with("InsufficientInstanceCapacity")),
        "{:?}",
        proxy.faults_sent()
    );
    assert!(!proxy.faults_sent().is_empty(), "AWS was never tried");
    let status = world.ok(&["status", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status).expect("status json");
    assert_eq!(v["clusters"][0]["cloud"], "gcp", "{v}");
    assert_eq!(gce.instances().len(), 1);
    assert_eq!(
        moto::live_instances(moto.port, AWS_REGION, AWS_CLUSTER_TAG).await,
        Vec::<String>::new(),
        "an AWS instance was left behind"
    );

    world.ok(&["down", "xcloud", "-y"]).await;
    assert_eq!(gce.instances(), Vec::<String>::new());
    assert!(world.hosts.placed().is_empty());
}

/// `ordered:` fails over in the user's order: the first choice, out of capacity in every zone,
/// gives way to the second (dearer or not), and the plan shows the second after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_resources_fail_over_to_the_second_choice() {
    let Some(mut world) = World::start(2) else {
        return;
    };
    let moto = moto::start_moto().await;
    let proxy = moto::start_proxy(moto.port).await;
    proxy.with_hosts(world.hosts.clone());
    proxy.set_faults(vec![
        Fault::run_instances("InsufficientInstanceCapacity", 500).instance_type("m6i.xlarge"),
    ]);
    aws_env(&mut world);
    world.config(&format!(
        "allowed_clouds: [aws]\n{}",
        aws_config(&proxy.url(), &world.hosts.user())
    ));
    // The first choice is the dearer one, so only the user's order puts it first.
    let task = world.task(
        1,
        &format!(
            "  ordered:\n    - {{infra: aws/{AWS_REGION}, instance_type: m6i.xlarge}}\n    \
             - {{infra: aws/{AWS_REGION}, instance_type: m6i.large}}\n"
        ),
    );
    let task = task.display().to_string();
    let plan = world.ok(&["launch", "--dryrun", &task]).await;
    let chosen = plan
        .lines()
        .find(|l| l.contains('✔'))
        .unwrap_or_else(|| panic!("no chosen row in:\n{plan}"));
    assert!(chosen.contains("m6i.xlarge"), "{plan}");
    let plan = world.ok(&["launch", "--dryrun", "-o", "json", &task]).await;
    let types: Vec<String> = serde_json::from_str::<serde_json::Value>(&plan)
        .expect("plan json")
        .pointer("/tasks/0/candidates")
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["instance_type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(types, ["m6i.xlarge", "m6i.large"], "{plan}");

    let out = world.ok(&["launch", "-y", "-c", "ordered", &task]).await;
    world.assert_ranks(&out, 1);
    let sent = proxy.faults_sent();
    assert!(!sent.is_empty(), "the first choice was never tried");
    let status = world.ok(&["status", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status).expect("status json");
    assert_eq!(v["clusters"][0]["instance_type"], "m6i.large", "{v}");
    world.ok(&["down", "ordered", "-y"]).await;
    assert_eq!(
        moto::live_instances(moto.port, AWS_REGION, AWS_CLUSTER_TAG).await,
        Vec::<String>::new()
    );
}
