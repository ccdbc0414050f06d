//! Optimizer benchmarks over the embedded catalog: one task, a 50-task chain, and building the
//! index the optimizer queries.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::CloudId;
use sky_core::catalog::Catalog;
use sky_core::optimizer::{self, Blocklist, CatalogIndex, Inputs, Target, TaskRequest};
use sky_core::resources::{AcceleratorRequest, ResourceChoice, Resources};

const CLOUDS: [CloudId; 3] = [CloudId::Aws, CloudId::Gcp, CloudId::Azure];

fn task(accelerator: Option<(&str, f64)>) -> TaskRequest {
    let resources = Resources {
        accelerators: accelerator.map(|(name, count)| AcceleratorRequest {
            name: name.to_owned(),
            count,
        }),
        ..Resources::default()
    };
    let mut t = TaskRequest::new(ResourceChoice {
        options: vec![resources],
        ..ResourceChoice::default()
    });
    t.outputs_gigabytes = Some(10.0);
    t
}

fn benches(c: &mut Criterion) {
    let catalog = Catalog::embedded().expect("embedded catalog decodes");
    let blocklist = Blocklist::default();
    c.bench_function("index_build_full_catalog", |b| {
        b.iter(|| black_box(CatalogIndex::new(&catalog)))
    });
    let index = CatalogIndex::new(&catalog);
    let inputs = Inputs {
        index: &index,
        enabled_clouds: &CLOUDS,
        blocklist: &blocklist,
        target: Target::Cost,
    };
    let default_task = [task(None)];
    c.bench_function("optimize_one_task_default", |b| {
        b.iter(|| black_box(optimizer::plan(inputs, &default_task).expect("feasible")))
    });
    let gpu_task = [task(Some(("V100", 1.0)))];
    c.bench_function("optimize_one_task_v100", |b| {
        b.iter(|| black_box(optimizer::plan(inputs, &gpu_task).expect("feasible")))
    });
    let chain: Vec<TaskRequest> = (0..50)
        .map(|i| match i % 5 {
            0 => task(Some(("V100", 1.0))),
            1 => task(Some(("T4", 1.0))),
            2 => task(Some(("A100", 8.0))),
            _ => task(None),
        })
        .collect();
    c.bench_function("optimize_chain_50_tasks", |b| {
        b.iter(|| black_box(optimizer::plan(inputs, &chain).expect("feasible")))
    });
    c.bench_function("load_catalog_index_and_optimize_one_task", |b| {
        b.iter(|| {
            let catalog = Catalog::embedded().expect("embedded catalog decodes");
            let index = CatalogIndex::new(&catalog);
            let inputs = Inputs {
                index: &index,
                enabled_clouds: &CLOUDS,
                blocklist: &blocklist,
                target: Target::Cost,
            };
            black_box(optimizer::plan(inputs, &gpu_task).expect("feasible"))
        })
    });
}

criterion_group!(optimizer_benches, benches);
criterion_main!(optimizer_benches);
