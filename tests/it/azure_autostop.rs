//! Autostop on Azure with the laptop closed: the head deallocates its own cluster, or deletes its
//! resource group, through its system-assigned managed identity, which `sky autostop` grants a
//! role scoped to the cluster's resource group (and cancelling takes back). The fake ARM serves
//! the instance metadata service on the hosts' network, hands a token only to the VM on the
//! calling host, and enforces the role's scope: the head cannot touch another cluster.
//!
//! Root only, like the other cloud end-to-end tests (real SSH hosts in namespaces).

use std::time::Instant;

use sky_testkit::azure_fake::{self, FakeArm};

use crate::clouds::{World, azure_world, until};

/// A world whose fake ARM listens where the hosts can reach it (heads call ARM and IMDS), and
/// whose agents count one autostop "minute" as one second and find IMDS on the fake.
async fn autostop_world(hosts: usize) -> Option<(World, FakeArm)> {
    let (mut world, fake) = azure_world(hosts, true).await?;
    world
        .env
        .push(("SKY_AGENT_IDLE_UNIT_SECS".into(), "1".into()));
    world
        .env
        .push(("SKY_AGENT_IMDS_ENDPOINT".into(), fake.url()));
    Some((world, fake))
}

/// Each VM of `group` (by name) with its power state, as the fake records them.
fn powers(fake: &FakeArm, group: &str) -> Vec<(String, String)> {
    fake.vms()
        .iter()
        .filter(|vm| {
            vm["id"].as_str().is_some_and(|id| {
                id.to_lowercase()
                    .contains(&format!("/resourcegroups/{group}/"))
            })
        })
        .map(|vm| {
            (
                vm["name"].as_str().unwrap_or_default().to_owned(),
                vm["fake:power"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The lower-cased name of this home's resource group of `cluster` (not the foreign ones the
/// test adds).
fn group_of(fake: &FakeArm, cluster: &str) -> String {
    fake.groups()
        .into_iter()
        .find(|g| {
            g.starts_with(&format!("sky-{cluster}-"))
                && !g.ends_with("-alice")
                && !g.ends_with("-0123456789abcdef")
        })
        .unwrap_or_else(|| panic!("no group for {cluster} in {:?}", fake.groups()))
}

/// The role (built-in id) each assignment in `group` gives.
fn roles_in(fake: &FakeArm, group: &str) -> Vec<String> {
    fake.role_assignments()
        .iter()
        .filter(|a| {
            a["properties"]["scope"].as_str().is_some_and(|s| {
                s.to_lowercase()
                    .ends_with(&format!("/resourcegroups/{group}"))
            })
        })
        .filter_map(|a| {
            a["properties"]["roleDefinitionId"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_azure_cluster_deallocates_itself_then_deletes_itself() {
    let Some((world, fake)) = autostop_world(3).await else {
        return;
    };
    let launch = |name: &'static str, nodes: &'static str| {
        [
            "launch",
            "-y",
            "-c",
            name,
            "--infra",
            "azure/eastus",
            "-t",
            "Standard_D2s_v5",
            "--num-nodes",
            nodes,
            "echo",
            "up",
        ]
    };
    // SkyPilot's and another Sky home's clusters of the same name in the same subscription:
    // nothing this home does, its heads' autostop included, may touch them.
    let foreign = ["sky-azidle-alice", "sky-azidle-0123456789abcdef"];
    fake.add_group(
        foreign[0],
        "eastus",
        serde_json::json!({"skypilot-cluster-name": "azidle"}),
    );
    fake.add_group(
        foreign[1],
        "eastus",
        serde_json::json!({"sky-cluster": "azidle", "sky-owner": "0123456789abcdef"}),
    );
    let foreign_left = || {
        foreign
            .iter()
            .all(|g| fake.groups().contains(&(*g).to_owned()))
    };
    world.ok(&launch("azidle", "2")).await;
    world.ok(&launch("bystander", "1")).await;
    let (mine, theirs) = (group_of(&fake, "azidle"), group_of(&fake, "bystander"));
    assert!(
        fake.role_assignments().is_empty(),
        "no role before autostop is set"
    );
    let status = world.ok(&["status", "-v"]).await;
    assert!(status.contains("autostop identity"), "{status}");

    world.ok(&["autostop", "azidle", "-i", "30", "-y"]).await;
    assert_eq!(roles_in(&fake, &mine), [azure_fake::ROLE_VM_CONTRIBUTOR]);
    // The head's identity reaches its own group and nothing else: with the token the metadata
    // service gives the head, another cluster's VM cannot be deallocated.
    let url = fake.url();
    let probe = format!(
        "if [ \"$SKY_NODE_RANK\" = 0 ]; then \
         t=$(curl -sS -H Metadata:true '{url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F' | sed -n 's/.*\"access_token\" *: *\"\\([^\"]*\\)\".*/\\1/p'); \
         own=$(curl -s -o /dev/null -w '%{{http_code}}' -H \"Authorization: Bearer $t\" '{url}/subscriptions/{sub}/resourceGroups/{mine}/providers/Microsoft.Compute/virtualMachines/azidle-1?api-version=2024-07-01'); \
         other=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST --data '' -H \"Authorization: Bearer $t\" '{url}/subscriptions/{sub}/resourceGroups/{theirs}/providers/Microsoft.Compute/virtualMachines/bystander-0/deallocate?api-version=2024-07-01'); \
         echo \"own=$own other=$other\"; fi",
        sub = azure_fake::SUBSCRIPTION,
    );
    let out = world.ok(&["exec", "azidle", &probe]).await;
    assert!(out.contains("own=200 other=403"), "{out}");

    // Idle for 5 "minutes" (seconds): the head deallocates both VMs; no client is running.
    world.ok(&["autostop", "azidle", "-i", "5", "-y"]).await;
    let idle_from = Instant::now();
    let deallocated = || {
        until(
            "autostop deallocating both VMs",
            60,
            || {
                // Azure finishes an accepted deallocation whether or not anyone polls it.
                fake.settle();
                std::future::ready(powers(&fake, &mine))
            },
            |p| p.len() == 2 && p.iter().all(|(_, power)| power == "deallocated"),
        )
    };
    deallocated().await;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "Azure idle to deallocated (5 s idle limit): {:?}",
            idle_from.elapsed()
        );
    }
    assert!(
        powers(&fake, &theirs).iter().all(|(_, p)| p == "running"),
        "{:?}",
        powers(&fake, &theirs)
    );
    let refreshed = world.ok(&["status", "--refresh"]).await;
    assert!(
        refreshed.contains("autostopped after 5 idle minutes"),
        "{refreshed}"
    );

    // Started again it keeps its autostop; with --down the head deletes its resource group.
    world.ok(&["start", "azidle", "-y"]).await;
    let status = world.ok(&["status"]).await;
    assert!(
        status.contains("5m"),
        "autostop kept across start:\n{status}"
    );
    world
        .ok(&["autostop", "azidle", "-i", "1", "--down", "-y"])
        .await;
    assert_eq!(roles_in(&fake, &mine), [azure_fake::ROLE_CONTRIBUTOR]);
    until(
        "autodown deleting the resource group",
        60,
        || {
            fake.settle();
            std::future::ready(fake.groups())
        },
        |groups| !groups.contains(&mine),
    )
    .await;
    let refreshed = world.ok(&["status", "--refresh"]).await;
    assert!(
        refreshed.contains("autodowned after 1 idle minutes"),
        "{refreshed}"
    );
    assert!(
        roles_in(&fake, &mine).is_empty(),
        "the role went with the group"
    );
    assert!(
        foreign_left(),
        "a foreign group was touched: {:?}",
        fake.groups()
    );
    assert!(
        powers(&fake, &theirs).iter().all(|(_, p)| p == "running"),
        "the other cluster was touched"
    );

    // Cancelling takes the role back.
    world.ok(&["autostop", "bystander", "-i", "30", "-y"]).await;
    assert_eq!(roles_in(&fake, &theirs).len(), 1);
    world.ok(&["autostop", "bystander", "--cancel", "-y"]).await;
    assert!(roles_in(&fake, &theirs).is_empty());
    world.ok(&["down", "bystander", "-y"]).await;
    assert_eq!(
        fake.resource_count(),
        foreign.len(),
        "only the foreign groups are left: {:?}",
        fake.groups()
    );
    assert!(
        foreign_left(),
        "a foreign group was touched: {:?}",
        fake.groups()
    );
}

/// Where the user may not create role assignments (a Contributor, as in many companies), the
/// head cannot be given the right to deallocate: a launch with `-i` runs and says autostop is
/// off, `sky autostop` is refused with the reason, and nothing looks set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostop_is_refused_where_the_account_forbids_role_assignments() {
    let Some((world, fake)) = autostop_world(1).await else {
        return;
    };
    fake.forbid_role_assignments();
    let mut cmd = world.command();
    cmd.args([
        "launch",
        "-y",
        "-c",
        "nogrant",
        "--infra",
        "azure/eastus",
        "-t",
        "Standard_D2s_v5",
        "-i",
        "5",
        "echo",
        "ran-anyway",
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("sky runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ran-anyway"), "{stdout}");
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("autostop is not set on 'nogrant'")
            && said.contains("Microsoft.Authorization/roleAssignments/write"),
        "{said}"
    );
    // Said before anything was created: the permissions were read before the group was made.
    assert!(
        stderr.contains("autostop cannot be set on Azure in this account"),
        "{stderr}"
    );
    let requests = fake.requests();
    let asked = requests
        .iter()
        .position(|r| r.ends_with("/providers/Microsoft.Authorization/permissions"));
    let created = requests
        .iter()
        .position(|r| r.starts_with("PUT ") && r.contains("/resourcegroups/"));
    assert!(
        asked.zip(created).is_some_and(|(a, c)| a < c),
        "{requests:?}"
    );
    let status = world.ok(&["status", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert!(v["clusters"][0]["autostop"].is_null(), "{v}");

    let refused = world
        .refused(&["autostop", "nogrant", "-i", "5", "-y"])
        .await;
    assert!(refused.contains("autostop stays off"), "{refused}");
    assert!(fake.role_assignments().is_empty());
    world.ok(&["down", "nogrant", "-y"]).await;
}
