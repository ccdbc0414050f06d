//! Cluster names GCP would refuse as they are (capitals, `_`, `.`, 63 characters: instance names
//! must match `[a-z]([-a-z0-9]{0,61}[a-z0-9])?` with the rank) launch through the real
//! `google-cloud-compute-v1` client against the fake, which validates names and labels as
//! Compute Engine does; query, the orphan listing and `down` find them again from the name alone.

use std::sync::Arc;
use std::time::Duration;

use sky_core::cloud::CloudId;
use sky_core::credentials::{GcpCredentials, Secret};
use sky_core::provision::{Launchable, NodeState, Provider, ProvisionRequest};
use sky_gcp::GcpProvider;
use sky_gcp::client::{CredentialSource, Settings};
use sky_testkit::gcp_fake::{self as fake, FakeGce};

async fn provider(fake: &FakeGce, home: &tempfile::TempDir) -> Arc<GcpProvider> {
    let creds = GcpCredentials {
        service_account_json: Secret::new(fake::service_account_json("sky-test")),
        project_id: "sky-test".into(),
    };
    let settings = Settings {
        endpoint: Some(fake.url()),
        poll_interval: Duration::from_millis(5),
        boot_timeout: Duration::from_secs(10),
        ..Settings::default()
    };
    Arc::new(GcpProvider::new(
        home.path().to_path_buf(),
        CredentialSource::Fixed(creds),
        settings,
    ))
}

fn request(cluster: &str, nodes: u32) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: nodes,
        launchable: Launchable {
            cloud: CloudId::Gcp,
            region: "us-central1".into(),
            zone: Some("us-central1-a".into()),
            instance_type: "n2-standard-8".into(),
            use_spot: false,
            vcpus: 8.0,
            memory_gib: 32.0,
            accelerators: None,
            hourly_price: 0.39,
        },
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
