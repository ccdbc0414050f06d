//! Cluster names Azure would refuse as they are (`_`, `.`, 63 characters: Linux host names allow
//! no `_` and at most 64 characters with the rank) launch through the real SDK against the ARM
//! fake, which validates `computerName` as ARM does; `down`, `refresh` and the orphan listing
//! find the same resources again from the name alone.

mod common;

use sky_core::provision::{NodeState, Provider};

use common::{env, launchable, request};

async fn launch_query_list_and_down(cluster: &str) {
    let e = env().await;
    let p = &e.provider;
    p.run_instances(&request(cluster, 2, launchable("eastus", None, false)))
        .await
        .unwrap_or_else(|err| panic!("{cluster}: {err}"));
    let info = p.wait_instances(cluster).await.expect("wait");
    assert_eq!(info.nodes.len(), 2);
    for vm in e.fake.vms() {
        let host = vm["properties"]["osProfile"]["computerName"]
            .as_str()
            .expect("computerName");
        assert!(
            host.len() <= 64 && !host.contains(['_', '.']),
            "{cluster} -> {host}"
        );
        assert_eq!(vm["name"], host, "the VM is named as its host");
        assert_eq!(
            vm["tags"]["sky-cluster"], cluster,
            "the exact name is in the tag"
        );
    }
    let states: Vec<NodeState> = p
        .query(cluster)
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Running, NodeState::Running]);
    let found = p.list_clusters().await.expect("list");
    assert_eq!(
        found.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        [cluster],
        "orphan listing reports the Sky name, not the derived one"
    );
    let names = p.cloud_names(cluster);
    assert_eq!(names[0].what, "resource group");
    assert_eq!(e.fake.groups(), [names[0].name.clone()]);
    p.terminate(cluster).await.expect("down");
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn a_name_with_underscore_and_dot_launches_and_goes_down() {
    launch_query_list_and_down("my_cluster.v2").await;
}

#[tokio::test]
async fn a_63_character_name_launches_and_goes_down() {
    launch_query_list_and_down(&format!("a{}", "b".repeat(62))).await;
}

#[tokio::test]
async fn names_differing_only_in_underscore_or_dash_get_separate_groups_and_vms() {
    let e = env().await;
    let p = &e.provider;
    for cluster in ["my_cluster", "my-cluster"] {
        p.run_instances(&request(cluster, 1, launchable("eastus", None, false)))
            .await
            .expect("launch");
        p.wait_instances(cluster).await.expect("wait");
    }
    assert_eq!(e.fake.groups().len(), 2, "{:?}", e.fake.groups());
    let mut hosts: Vec<String> = e
        .fake
        .vms()
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    p.terminate("my_cluster").await.expect("down one");
    assert_eq!(
        p.query("my-cluster").await.expect("query").len(),
        1,
        "the other is untouched"
    );
    p.terminate("my-cluster").await.expect("down other");
    assert_eq!(e.fake.resource_count(), 0);
}
