//! Cluster names GCP would refuse as they are (capitals, `_`, `.`, 63 characters: instance names
//! must match `[a-z]([-a-z0-9]{0,61}[a-z0-9])?` with the rank) launch through the real
//! `google-cloud-compute-v1` client against the fake, which validates names and labels as
//! Compute Engine does; query, the orphan listing and `down` find them again from the name alone.

mod support;

use std::sync::Arc;

use sky_core::provision::{NodeState, Provider, ProvisionRequest};
use sky_gcp::GcpProvider;
use sky_testkit::gcp_fake::FakeGce;
use support::{n2_in, provider_over};

async fn provider(fake: &FakeGce, home: &tempfile::TempDir) -> Arc<GcpProvider> {
    Arc::new(provider_over(fake, home.path()))
}

fn request(cluster: &str, nodes: u32) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: nodes,
        launchable: n2_in("us-central1-a"),
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

async fn launch_list_and_down(cluster: &str) {
    let fake = FakeGce::start().await;
    let home = tempfile::tempdir().expect("temp SKY_HOME");
    let p = provider(&fake, &home).await;
    p.run_instances(&request(cluster, 2))
        .await
        .unwrap_or_else(|e| panic!("{cluster}: {e}"));
    let info = p.wait_instances(cluster).await.expect("running");
    assert_eq!(info.nodes.len(), 2);
    let instances = fake.instances();
    assert_eq!(instances.len(), 2, "{instances:?}");
    let names = p.cloud_names(cluster);
    let pattern = &names[0].name;
    let base = pattern.trim_end_matches("-<rank>");
    for name in instances.iter().map(|i| i.rsplit('/').next().unwrap_or(i)) {
        assert!(
            name.len() <= 63 && name.starts_with(base),
            "{cluster} -> {name}"
        );
    }
    let states: Vec<NodeState> = p
        .query(cluster)
        .await
        .expect("query")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [NodeState::Running; 2]);
    let found = p.list_clusters().await.expect("list");
    assert_eq!(
        found.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        [cluster],
        "the orphan listing reports the exact Sky name"
    );
    p.terminate(cluster).await.expect("down");
    assert!(fake.instances().is_empty());
    assert!(fake.firewalls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_capitals_underscore_and_dot_launches_and_goes_down() {
    launch_list_and_down("My_Cluster.v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_63_character_name_launches_and_goes_down() {
    launch_list_and_down(&format!("a{}", "b".repeat(62))).await;
}
