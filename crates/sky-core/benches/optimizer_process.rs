//! Whole-process `sky launch --dryrun`: spawns the release binary (build it first with
//! `cargo build --release -p sky-cli`), the way a person runs it. Skipped with a note when the
//! binary is missing, so `cargo bench -p sky-core` never fails for it.

use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

fn sky_binary() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/sky");
    path.is_file().then_some(path)
}

fn benches(c: &mut Criterion) {
    let Some(sky) = sky_binary() else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping process benchmarks: build target/release/sky first");
        }
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let task = home.path().join("task.yaml");
    std::fs::write(&task, "resources:\n  accelerators: V100:1\nrun: echo hi\n")
        .expect("write task");
    for (name, output) in [
        ("process_launch_dryrun_table", "table"),
        ("process_launch_dryrun_json", "json"),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let out = Command::new(&sky)
                    .args(["launch", "--dryrun", "-y", "-o", output])
                    .arg(&task)
                    .env("SKY_HOME", home.path())
                    .output()
                    .expect("sky runs");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            })
        });
    }
}

criterion_group! {
    name = process_benches;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(process_benches);
