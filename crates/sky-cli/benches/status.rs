//! Whole-process `sky status` and `sky status -o json` with 1,000 clusters in the state database
//! (SkyPilot 0.14.1 takes about 6 s for an empty `sky status` on the reference machine).

use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::cloud::CloudId;
use sky_core::provision::{ClusterInfo, Launchable, NodeHandle};
use sky_core::state::{ClusterStatus, StateStore};

fn populate(home: &std::path::Path, n: u32) {
    let mut db = StateStore::open(&home.join("state.db")).expect("state db");
    for i in 0..n {
        let name = format!("cluster-{i:04}");
        db.create(&name, 2, None, "sky launch", 1_700_000_000)
            .expect("record");
        let launchable = Launchable {
            cloud: CloudId::Aws,
            region: "us-east-1".into(),
            zone: Some("us-east-1a".into()),
            instance_type: "m6i.2xlarge".into(),
            use_spot: i % 3 == 0,
            vcpus: 8.0,
            memory_gib: 32.0,
            accelerators: None,
            hourly_price: 0.384,
        };
        let nodes = (0..2)
            .map(|rank| NodeHandle {
                rank,
                instance_id: format!("i-{i:04}-{rank}"),
                internal_ip: format!("10.0.{}.{rank}", i % 250),
                external_ip: None,
                local_dir: None,
            })
            .collect();
        db.set_provisioned(&name, &launchable, &ClusterInfo::new(nodes), 1_700_000_100)
            .expect("provisioned");
        db.set_status(&name, ClusterStatus::Up, 1_700_000_200, "bench")
            .expect("up");
    }
}

fn bench(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("temp dir");
    populate(home.path(), 1000);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sky"))
            .env("SKY_HOME", home.path())
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success() && out.stdout.len() > 1000,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut group = c.benchmark_group("whole_process_1000_clusters");
    group.sample_size(30);
    group.bench_function("sky status", |b| b.iter(|| run(&["status"])));
    group.bench_function("sky status -o json", |b| {
        b.iter(|| run(&["status", "-o", "json"]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
