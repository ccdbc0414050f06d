//! Launch benchmark on the local ARM fake: wall time of `run_instances` + `wait_instances` (and
//! `terminate`) for 1 and 8 nodes. Two paces: an instant fake (client overhead only) and one whose
//! operations each take one `Retry-After: 1` poll (so the figure shows whether nodes are created
//! concurrently: 8 nodes should cost about what 1 does). Run with `cargo bench -p sky-azure`.

#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use sky_core::provision::Provider;

async fn once(nodes: u32, polls: u32, retry_after: u64, round: usize) -> (Duration, Duration) {
    let e = common::env().await;
    e.fake.set_operation_pace(polls, retry_after);
    let name = format!("bench{round}");
    let req = common::request(&name, nodes, common::launchable("eastus", None, false));
    let started = Instant::now();
    e.provider.run_instances(&req).await.expect("launch");
    let info = e.provider.wait_instances(&name).await.expect("wait");
    let launch = started.elapsed();
    assert_eq!(info.nodes.len(), nodes as usize);
    let started = Instant::now();
    e.provider.terminate(&name).await.expect("down");
    (launch, started.elapsed())
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (label, polls, retry_after, rounds) in
        [("instant fake", 0, 0, 20), ("1 s per operation", 1, 1, 2)]
    {
        for nodes in [1u32, 8] {
            let mut launches = Vec::new();
            let mut downs = Vec::new();
            for round in 0..rounds {
                let (l, d) = rt.block_on(once(nodes, polls, retry_after, round));
                launches.push(l);
                downs.push(d);
            }
            launches.sort();
            downs.sort();
            println!(
                "azure launch, {label}, {nodes} node(s): median {:?} (min {:?}, max {:?}, n={rounds}); down median {:?}",
                launches[rounds / 2],
                launches[0],
                launches[rounds - 1],
                downs[rounds / 2]
            );
        }
    }
}
