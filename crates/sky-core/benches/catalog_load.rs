//! How long loading the embedded catalog takes (every cloud, decoded from the compiled-in
//! `.skycat` files), and the `sky show-gpus A100` listing over it.

use criterion::{Criterion, criterion_group, criterion_main};
use sky_core::catalog::Catalog;
use sky_core::catalog::gpus::{self, GpuFilter};

fn load(c: &mut Criterion) {
    c.bench_function("catalog_embedded_load_all_clouds", |b| {
        b.iter(|| Catalog::embedded().expect("embedded catalog decodes"));
    });
    let catalog = Catalog::embedded().expect("embedded catalog decodes");
    c.bench_function("show_gpus_a100_listing", |b| {
        b.iter(|| {
            gpus::list_gpu_offers(
                &catalog,
                &GpuFilter {
                    name: Some("A100"),
                    ..GpuFilter::default()
                },
            )
        });
    });
    c.bench_function("show_gpus_counts", |b| {
        b.iter(|| gpus::accelerator_counts(&catalog, &GpuFilter::default()));
    });
}

criterion_group!(benches, load);
criterion_main!(benches);
