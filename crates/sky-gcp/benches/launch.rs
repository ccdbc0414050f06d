//! Launch cost of the GCP provider on the local Compute Engine fake: 1 versus 8 nodes (inserts go
//! out concurrently, so 8 nodes should cost far less than 8 single launches), and a failover
//! through capacity errors in five zones. Measures the client side (SDK, JSON, polling at 5 ms),
//! not GCP's own boot time.

use sky_testkit::gcp_fake as fake;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::cloud::CloudId;
use sky_core::credentials::{GcpCredentials, Secret};
use sky_core::events::NullSink;
use sky_core::provision::failover::{Blocklist, FailoverOptions, provision};
use sky_core::provision::{Launchable, Provider, ProvisionRequest, Registry};
use sky_gcp::GcpProvider;
use sky_gcp::client::{CredentialSource, Settings};

fn credentials() -> GcpCredentials {
    GcpCredentials {
        service_account_json: Secret::new(fake::service_account_json("bench")),
        project_id: "bench".into(),
    }
}

fn launchable(zone: &str) -> Launchable {
    Launchable {
        cloud: CloudId::Gcp,
        region: zone[..zone.len() - 2].to_owned(),
        zone: Some(zone.to_owned()),
        instance_type: "n2-standard-8".into(),
        use_spot: false,
        vcpus: 8.0,
        memory_gib: 32.0,
        accelerators: None,
        hourly_price: 0.39,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let home = tempfile::tempdir().expect("home");
    let fake = rt.block_on(fake::FakeGce::start());
    let provider = Arc::new(GcpProvider::new(
        home.path().to_path_buf(),
        CredentialSource::Fixed(credentials()),
        Settings {
            endpoint: Some(fake.url()),
            poll_interval: Duration::from_millis(5),
            boot_timeout: Duration::from_secs(30),
            ..Settings::default()
        },
    ));
    let mut group = c.benchmark_group("gcp_launch_on_fake");
    group.sample_size(20);
    for nodes in [1u32, 8] {
        group.bench_function(format!("launch_and_down_{nodes}_nodes"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = ProvisionRequest {
                        cluster_name: "bench".into(),
                        num_nodes: nodes,
                        launchable: launchable("us-central1-a"),
                        resume_stopped: false,
                        settings: Default::default(),
                        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
                    };
                    provider.run_instances(&req).await.expect("launch");
                    provider.wait_instances("bench").await.expect("up");
                    provider.terminate("bench").await.expect("down");
                })
            })
        });
    }
    let zones = [
        "us-central1-a",
        "us-central1-b",
        "us-central1-c",
        "us-east1-b",
        "us-east1-c",
    ];
    for z in zones {
        fake.fail_zone(z, fake::FaultKind::Capacity);
    }
    let mut candidates: Vec<Launchable> = zones.iter().map(|z| launchable(z)).collect();
    candidates.push(launchable("us-west1-a"));
    let registry = Registry::new().with(provider.clone());
    group.bench_function("failover_through_5_capacity_errors", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut blocklist = Blocklist::default();
                provision(
                    &registry,
                    "fo",
                    1,
                    &candidates,
                    &mut blocklist,
                    FailoverOptions::default(),
                    &NullSink,
                )
                .await
                .expect("lands in us-west1-a");
                provider.terminate("fo").await.expect("down");
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
