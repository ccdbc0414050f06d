//! Round trip through the real agent: submit `true`, follow its log to the end (job terminal),
//! over a spawned `sky-agent rpc` bridge. Also the cost of one `queue` request, the floor of
//! every CLI call on a warm daemon.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::jobs::client::{AgentClient, LogEvent};
use sky_core::jobs::wire::{ClusterConfig, NodeSpec};
use sky_core::jobs::{JobSpec, NodeCapacity};

fn config(dir: &Path) -> ClusterConfig {
    ClusterConfig {
        cluster_name: "bench".into(),
        cloud: "local".into(),
        region: None,
        zone: None,
        nodes: vec![NodeSpec {
            ip: "127.0.0.1".into(),
            dir: dir.join("node-0"),
            ssh: None,
        }],
        capacity: NodeCapacity {
            cpus: 64.0,
            accelerators: Default::default(),
        },
        autostop_hook: None,
    }
}

fn bench(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return;
    };
    let home = dir.path().join("node-0").join(".sky-agent");
    let agent = Path::new(env!("CARGO_BIN_EXE_sky-agent"));
    let Ok(client) = rt.block_on(async { AgentClient::spawn_local(agent, &home) }) else {
        return;
    };
    if rt.block_on(client.configure(config(dir.path()))).is_err() {
        return;
    }
    c.bench_function("submit_true_until_terminal", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = client.submit(JobSpec::command("true")).await.ok()?;
                let mut logs = client.tail(Some(id), Vec::new(), true).await.ok()?;
                while let Some(Ok(event)) = logs.next().await {
                    if matches!(event, LogEvent::JobEnd(_)) {
                        break;
                    }
                }
                Some(())
            })
        })
    });
    c.bench_function("queue_request", |b| {
        b.iter(|| rt.block_on(client.queue()).map(|q| q.len()).unwrap_or(0))
    });
    c.bench_function("spawn_rpc_and_info", |b| {
        b.iter(|| {
            rt.block_on(async {
                let c = AgentClient::spawn_local(agent, &home).ok()?;
                let info = c.info().await.ok()?;
                c.close().await.ok()?;
                Some(info.pid)
            })
        })
    });
    let _ = rt.block_on(client.shutdown(true));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
