//! The crash-point matrix: a real 2-node `sky launch` killed with SIGKILL right after its Nth
//! request to the cloud took effect (before the answer reached it), for every N of the launch,
//! on AWS (moto behind the fault proxy), GCP and Azure (the REST fakes). After each kill the
//! cloud finishes what it was asked ([`settle`](FakeGce::settle)), and then `status --refresh`
//! runs three ways, in this order:
//! - (b) the CLI with no credentials for that cloud,
//! - (c) the desktop app's background refresh (the facade as the app opens it, in a process
//!   whose environment holds no cloud login; what its watcher calls every minute),
//! - (a) the CLI with the launch's own credentials.
//!
//! After each, two counts must be 0: instances of this home that are neither in a record (its
//! node ids or its recorded launch ids) nor listed as an orphan, and records removed while their
//! instances still live. The matrix is printed and written to
//! `$CARGO_TARGET_TMPDIR/crash-points-<cloud>.md`.
//!
//! Between rows the cluster is taken down (`down`, or `down --orphan`), and the cloud must hold
//! nothing of it: a row that cannot be cleaned is a finding too.
//!
//! Root only, like the other cloud end-to-end tests: the nodes are real SSH hosts, so the
//! uninterrupted launch that counts the requests runs the job for real.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sky_testkit::azure_fake::FakeArm;
use sky_testkit::crash::CrashAfter;
use sky_testkit::gcp_fake::FakeGce;
use sky_testkit::moto::{self, FaultProxy, Moto};

use crate::clouds::{AWS_REGION, World, aws_config, aws_env, azure_world, gcp_config, gcp_env};

const CLUSTER: &str = "cp";

/// The cloud under test, asked directly (not through Sky) what it holds.
enum Fake {
    Aws { moto: Moto, proxy: FaultProxy },
    Gcp(FakeGce),
    Azure(FakeArm),
}

/// A live instance of this home: its id as Sky records it, and the launch id it is tagged with.
#[derive(Debug, Clone)]
struct Live {
    id: String,
    launch: Option<String>,
}

impl Fake {
    fn crash(&self) -> &CrashAfter {
        match self {
            Fake::Aws { proxy, .. } => &proxy.crash,
            Fake::Gcp(f) => &f.crash,
            Fake::Azure(f) => &f.crash,
        }
    }

    /// Lets the cloud finish every operation it accepted, as a real one does with no client.
    fn settle(&self) {
        match self {
            // EC2 acts on a call before answering it.
            Fake::Aws { .. } => {}
            Fake::Gcp(f) => f.settle(),
            Fake::Azure(f) => f.settle(),
        }
    }

    async fn live(&self) -> Vec<Live> {
        const LAUNCH: &str = sky_core::provision::owner::TAG_LAUNCH;
        match self {
            Fake::Aws { moto, .. } => {
                moto::live_instances_with(moto.port, AWS_REGION, "sky-owner", LAUNCH)
                    .await
                    .into_iter()
                    .map(|(id, launch)| Live { id, launch })
                    .collect()
            }
            // Every instance there is Sky's (this test creates no other), in any status: a
            // stopped one still keeps its disk.
            Fake::Gcp(f) => f
                .instances()
                .into_iter()
                .map(|zone_name| {
                    let (zone, name) = zone_name.split_once('/').expect("zone/name");
                    let launch = f
                        .instance(zone, name)
                        .and_then(|i| i["labels"][LAUNCH].as_str().map(str::to_owned));
                    Live {
                        id: zone_name.clone(),
                        launch,
                    }
                })
                .collect(),
            Fake::Azure(f) => f
                .vms()
                .iter()
                .map(|vm| Live {
                    id: vm["name"].as_str().unwrap_or_default().to_owned(),
                    launch: vm["tags"][LAUNCH].as_str().map(str::to_owned),
                })
                .collect(),
        }
    }

    /// What else the cloud holds of the cluster once its VMs are gone (AWS security groups, GCP
    /// firewall rules, Azure resource groups with their public IPs that bill), to check the
    /// clean-up between rows.
    async fn leftovers(&self) -> Vec<String> {
        match self {
            Fake::Aws { moto, .. } => moto::security_groups(moto.port, AWS_REGION).await,
            Fake::Gcp(f) => f.firewalls(),
            Fake::Azure(f) => f.groups(),
        }
    }

    /// The environment variables that give `sky` this cloud's login.
    fn credential_vars(&self) -> &'static [&'static str] {
        match self {
            Fake::Aws { .. } => &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            Fake::Gcp(_) => &["GOOGLE_APPLICATION_CREDENTIALS"],
            Fake::Azure(_) => &["AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"],
        }
    }
}

/// A record as the state database holds it: the node ids and launch ids that prove its nodes.
#[derive(Debug, Clone)]
struct Record {
    name: String,
    ids: BTreeSet<String>,
    launches: BTreeSet<String>,
    unchecked: Option<String>,
}

fn records(world: &World) -> Vec<Record> {
    let db = sky_core::state::StateStore::open(&world.path().join("state.db")).expect("state db");
    db.list()
        .expect("records")
        .into_iter()
        .map(|r| Record {
            ids: r
                .handle
                .iter()
                .flat_map(|h| h.nodes.iter().map(|n| n.instance_id.clone()))
                .collect(),
            launches: r
                .launch_attempts
                .iter()
                .map(|a| a.launch_id.clone())
                .collect(),
            unchecked: r.unchecked,
            name: r.name,
        })
        .collect()
}

/// What one refresh left: the two counts that must be 0, and what became of the record.
#[derive(Debug, Default)]
struct Outcome {
    unaccounted: Vec<String>,
    lost: Vec<String>,
    record: String,
}

impl Outcome {
    fn cell(&self) -> String {
        format!(
            "{} / {} ({})",
            self.unaccounted.len(),
            self.lost.len(),
            self.record
        )
    }
    fn ok(&self) -> bool {
        self.unaccounted.is_empty() && self.lost.is_empty()
    }
}

async fn judge(fake: &Fake, world: &World, before: &[Record], orphans: &[String]) -> Outcome {
    let live = fake.live().await;
    let after = records(world);
    let in_record = |i: &Live| {
        after.iter().any(|r| {
            r.ids.contains(&i.id) || i.launch.as_ref().is_some_and(|l| r.launches.contains(l))
        })
    };
    let unaccounted = live
        .iter()
        .filter(|i| !in_record(i) && !orphans.contains(&i.id))
        .map(|i| i.id.clone())
        .collect();
    let lost = before
        .iter()
        .filter(|r| !after.iter().any(|a| a.name == r.name))
        .filter(|r| {
            live.iter().any(|i| {
                r.ids.contains(&i.id) || i.launch.as_ref().is_some_and(|l| r.launches.contains(l))
            })
        })
        .map(|r| r.name.clone())
        .collect();
    let record = match after.iter().find(|r| r.name == CLUSTER) {
        None => format!("no record, {} live", live.len()),
        Some(r) if r.unchecked.is_some() => format!("kept unchecked, {} live", live.len()),
        Some(_) => format!("kept, {} live", live.len()),
    };
    Outcome {
        unaccounted,
        lost,
        record,
    }
}

/// `sky status --refresh -o json`, with or without the cloud's login; the orphans' node ids.
async fn cli_refresh(world: &World, fake: &Fake, with_login: bool) -> Vec<String> {
    let mut cmd = world.command();
    cmd.args(["status", "--refresh", "-o", "json"]);
    if !with_login {
        for var in fake.credential_vars() {
            cmd.env_remove(var);
        }
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("sky runs");
    assert!(
        out.status.success(),
        "status --refresh (login: {with_login}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    v["orphans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["instance_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect()
}

/// The desktop app's background refresh: the facade opened as `AppState::sky` opens it, over
/// the same home, in this test's process (whose environment holds no cloud login), and the
/// call its watcher makes.
async fn desktop_refresh(world: &World) {
    let paths = sky_core::config::Paths::with_home(world.path());
    let config = sky_core::config::SkyConfig::load(&paths).expect("config.yaml");
    let options = sky_core::api::SkyOptions::from_config(&config);
    let registry = sky_clouds::registry(&paths, &config);
    let clock = std::sync::Arc::new(sky_core::clock::SystemClock);
    let sky = sky_core::api::Sky::open(paths, registry, clock, options).expect("open the facade");
    sky.status(&[], true, &sky_core::events::NullSink)
        .await
        .expect("the desktop's refresh");
}

/// Takes the row's cluster down however it was left, then checks the cloud holds nothing of it.
async fn clean(world: &World, fake: &Fake, row: usize) {
    if records(world).iter().any(|r| r.name == CLUSTER) {
        world.ok(&["down", CLUSTER, "-y"]).await;
    }
    if !fake.live().await.is_empty() {
        world.ok(&["down", "--orphan", CLUSTER, "-y"]).await;
    }
    fake.settle();
    let live = fake.live().await;
    let left = fake.leftovers().await;
    assert!(
        live.is_empty() && left.is_empty(),
        "row {row}: after down the cloud still holds {live:?} {left:?}"
    );
}

/// Runs `args` once unharmed to count its requests (`before` brings the cluster to where the
/// command starts from), then once per N killed after its Nth request; a row of the matrix each.
async fn rows(
    world: &World,
    fake: &Fake,
    what: &str,
    args: &[&str],
    before: &[&str],
    table: &mut String,
    failures: &mut Vec<String>,
) {
    if !before.is_empty() {
        world.ok(before).await;
    }
    fake.crash().arm(None);
    world.ok(args).await;
    let requests = fake.crash().disarm();
    clean(world, fake, 0).await;
    assert!(!requests.is_empty(), "`{what}` made no request");
    let _ = writeln!(
        table,
        "\n## `{what}` killed after its Nth request (of {} unharmed)\n\n\
         | N | killed after | live after kill | (b) CLI, no login | (c) desktop refresh | (a) CLI, same login |\n\
         |---|---|---|---|---|---|",
        requests.len()
    );
    for n in 1..=requests.len() {
        if !before.is_empty() {
            world.ok(before).await;
        }
        fake.crash().arm(Some(n));
        let mut cmd = world.command();
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn sky");
        fake.crash().target(child.id());
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("reap sky");
        let fired = fake.crash().fired();
        let seen = fake.crash().disarm();
        fake.settle();
        let at = if fired {
            seen.last().cloned().unwrap_or_default()
        } else {
            format!("(not killed: ended {status} after {} requests)", seen.len())
        };
        let live = fake.live().await.len();

        let before = records(world);
        let orphans = cli_refresh(world, fake, false).await;
        let b = judge(fake, world, &before, &orphans).await;
        let before = records(world);
        desktop_refresh(world).await;
        let c = judge(fake, world, &before, &[]).await;
        let before = records(world);
        let orphans = cli_refresh(world, fake, true).await;
        let a = judge(fake, world, &before, &orphans).await;
        let _ = writeln!(
            table,
            "| {n} | `{at}` | {live} | {} | {} | {} |",
            b.cell(),
            c.cell(),
            a.cell()
        );
        for (who, o) in [("b", &b), ("c", &c), ("a", &a)] {
            if !o.ok() {
                failures.push(format!(
                    "`{what}` N={n} after `{at}`, refresh ({who}): unaccounted {:?}, lost {:?}",
                    o.unaccounted, o.lost
                ));
            }
        }
        clean(world, fake, n).await;
    }
}

async fn matrix(cloud: &str, world: World, fake: Fake, placement: &[&str]) {
    let mut launch = vec!["launch", "-y", "-c", CLUSTER, "--num-nodes", "2"];
    launch.extend_from_slice(placement);
    launch.extend_from_slice(&["echo", "crash-point"]);
    let down = ["down", CLUSTER, "-y"];

    let mut table = format!(
        "# Crash points: {cloud}, a 2-node cluster\n\n\
         Each cell: unaccounted instances / lost records (what became of the record).\n"
    );
    let mut failures = Vec::new();
    rows(
        &world,
        &fake,
        "launch",
        &launch,
        &[],
        &mut table,
        &mut failures,
    )
    .await;
    rows(
        &world,
        &fake,
        "down",
        &down,
        &launch,
        &mut table,
        &mut failures,
    )
    .await;

    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-points-{cloud}.md"));
    std::fs::write(&file, &table).expect("write the matrix");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{table}\n(written to {})", file.display());
    }
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_launch_killed_after_every_request_leaves_nothing_untracked() {
    let Some(mut world) = World::start(2) else {
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
    let fake = Fake::Aws { moto, proxy };
    matrix(
        "aws",
        world,
        fake,
        &["--infra", "aws/us-east-1", "-t", "m6i.large"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_launch_killed_after_every_request_leaves_nothing_untracked() {
    let Some(mut world) = World::start(2) else {
        return;
    };
    let fake = FakeGce::start().await;
    fake.with_hosts(world.hosts.clone());
    gcp_env(&mut world);
    world.config(&format!(
        "allowed_clouds: [gcp]\n{}",
        gcp_config(&fake.url(), &world.hosts.user())
    ));
    matrix(
        "gcp",
        world,
        Fake::Gcp(fake),
        &["--infra", "gcp/us-central1", "-t", "n4-standard-2"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_launch_killed_after_every_request_leaves_nothing_untracked() {
    let Some((world, fake)) = azure_world(2, false).await else {
        return;
    };
    matrix(
        "azure",
        world,
        Fake::Azure(fake),
        &["--infra", "azure/eastus", "-t", "Standard_D2s_v5"],
    )
    .await;
}
