//! Benchmarks on moto (through the real SDK): launching 1 vs 8 nodes (one RunInstances, waited
//! for together, so the ratio should be near 1), and failover through 5 capacity errors injected
//! by the test proxy (no sleeps between attempts beyond the answers themselves).
//! Only launch + wait (or the failover walk) is timed; terminating happens outside the clock.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::events::NullSink;
use sky_core::provision::failover::{Blocklist, FailoverOptions, provision};
use sky_core::provision::{Provider, ProvisionRequest, Registry};
use support::*;

fn launch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto = rt.block_on(start_moto());
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let mut group = c.benchmark_group("aws_launch_moto");
    group.sample_size(10);
    for nodes in [1u32, 8] {
        group.bench_function(format!("{nodes}_nodes"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let name = format!("bench{nodes}-{i}");
                    let req = ProvisionRequest {
                        cluster_name: name.clone(),
                        num_nodes: nodes,
                        launchable: launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
                        resume_stopped: false,
                        settings: Default::default(),
                        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
                    };
                    let start = Instant::now();
                    rt.block_on(async {
                        p.run_instances(&req).await.expect("launch");
                        p.wait_instances(&name).await.expect("wait");
                    });
                    total += start.elapsed();
                    rt.block_on(p.terminate(&name)).expect("terminate");
                    reset_moto(moto.port);
                }
                total
            });
        });
    }
    group.finish();
}

fn failover(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto = rt.block_on(start_moto());
    let proxy = rt.block_on(start_proxy(moto.port));
    let home = sky_home();
    let p = std::sync::Arc::new(provider(home.path(), &proxy.url()));
    let registry = Registry::new().with(p.clone());
    let zones = [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
        "us-east-1d",
        "us-east-1e",
    ];
    let mut candidates: Vec<_> = zones
        .iter()
        .map(|z| launchable("us-east-1", Some(z), "m5.large", false))
        .collect();
    candidates.push(launchable(
        "us-east-2",
        Some("us-east-2a"),
        "m5.large",
        false,
    ));
    let mut group = c.benchmark_group("aws_failover_moto");
    group.sample_size(10);
    group.bench_function("5_capacity_errors_then_success", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                proxy.set_faults(
                    zones
                        .iter()
                        .map(|z| Fault::run_instances("InsufficientInstanceCapacity", 500).zone(z))
                        .collect(),
                );
                let name = format!("fo-{i}");
                let start = Instant::now();
                let (chosen, _) = rt
                    .block_on(provision(
                        &registry,
                        &name,
                        1,
                        &candidates,
                        &mut Blocklist::default(),
                        FailoverOptions::default(),
                        &NullSink,
                    ))
                    .expect("failover reaches us-east-2");
                total += start.elapsed();
                assert_eq!(chosen.region, "us-east-2");
                rt.block_on(p.terminate(&name)).expect("terminate");
                reset_moto(moto.port);
            }
            total
        });
    });
    group.finish();
}

/// Empties moto between samples. moto keeps terminated instances and scans all of them on every
/// filtered DescribeInstances, so without this each launch pays for every earlier one, and the
/// 8-node case (run after the 1-node one, with 8x the leftovers) measures moto's backlog.
fn reset_moto(port: u16) {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    sock.write_all(
        b"POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .expect("send reset");
    let mut answer = String::new();
    sock.read_to_string(&mut answer).expect("read reset answer");
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "moto reset: {answer}"
    );
}

criterion_group!(benches, launch, failover);
criterion_main!(benches);
