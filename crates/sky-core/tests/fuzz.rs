//! Property-based fuzzing on stable Rust (proptest) of the decoders that read untrusted input:
//! task YAML, the agent's wire messages, the catalog file, the v8 CSV catalog and the three
//! clouds' price-list pages. The property is the same everywhere: any input is either accepted
//! or refused with an error; nothing panics, loops or grows without bound.
//!
//! Inputs are generated from each format's own vocabulary (field names, protocol keys, extreme
//! numbers, deep nesting, long UTF-8 scalars) and by mutating real, valid inputs (the embedded
//! catalogs and the fixtures), which reaches far deeper than random bytes alone. Every file in
//! `tests/fuzz_corpus/` (the regression corpus: inputs that once broke a decoder or sit on a
//! limit) is replayed through every decoder on each run.
//!
//! Cases per target: `SKY_FUZZ_CASES` (CI's default run keeps to seconds per target; the longer
//! run in the session report sets it to hundreds of thousands).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sky_core::catalog::{fetch, format, v8csv};
use sky_core::jobs::wire;
use sky_core::task::{self, StaticVocabulary};

fn cases() -> u32 {
    std::env::var("SKY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

/// One line per target for the CI log (`scripts/test.sh` shows these tests' output).
#[allow(clippy::print_stderr)]
fn report(target: &str, started: std::time::Instant) {
    report_n(target, u64::from(cases()), started);
}

#[allow(clippy::print_stderr)]
fn report_n(target: &str, inputs: u64, started: std::time::Instant) {
    eprintln!(
        "fuzz {target}: {inputs} generated inputs, 0 failures, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        // Failures are reported with their shrunk input; persisted copies would land outside
        // the corpus directory, so the corpus is curated by hand instead.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Every decoder, fed `bytes` (as UTF-8 where it takes text): none may panic.
fn every_decoder(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = task::parse_chain(&text, "fuzz.yaml", &StaticVocabulary::default());
    let _ = wire::parse_request(&text);
    let _ = wire::parse_response(&text);
    let _ = format::decode(bytes);
    let _ = v8csv::parse_accelerator_names(bytes);
    let _ = fetch::aws::region_index_path(bytes);
    let _ = fetch::aws::region_files(bytes);
    let _ = fetch::aws::parse_region_file(bytes);
    let _ = fetch::azure::parse_page(bytes);
    let _ = fetch::gcp::parse_page(bytes);
}

const TASK_KEYS: &[&str] = &[
    "name",
    "run",
    "setup",
    "workdir",
    "num_nodes",
    "resources",
    "envs",
    "secrets",
    "file_mounts",
    "cpus",
    "memory",
    "accelerators",
    "cloud",
    "region",
    "zone",
    "disk_size",
    "disk_tier",
    "ports",
    "use_spot",
    "image_id",
    "any_of",
    "ordered",
    "instance_type",
    "url",
    "ref",
    "infra",
    "labels",
    "job_recovery",
    "autostop",
    "config",
    "<<",
    "? ",
    "",
];

/// A scalar as YAML writes it: numbers at and past every integer limit, odd floats, YAML 1.1
/// words, anchors, tags and UTF-8 of every width.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("-0x8000000000000000".to_owned()),
        Just("0x7fffffffffffffff".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("1e400".to_owned()),
        Just("-.inf".to_owned()),
        Just(".nan".to_owned()),
        Just("0o777".to_owned()),
        Just("~".to_owned()),
        Just("yes".to_owned()),
        Just("*a".to_owned()),
        Just("&a x".to_owned()),
        Just("!!binary aGk=".to_owned()),
        "[a-z0-9 _.:/-]{0,12}",
        "\\PC{0,24}".prop_map(|s| format!("{s:?}")),
        "[\\u{80}-\\u{10FFFF}]{1,8}",
    ]
}

/// A YAML tree in flow style (which block-style parsers read too), keys from the task schema.
fn yaml_tree() -> impl Strategy<Value = String> {
    scalar().prop_recursive(8, 256, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(TASK_KEYS), inner), 0..8).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
    })
}

/// A task document: top-level keys in block style, values flow trees; sometimes several
/// documents (a chain) or a stray line of YAML punctuation.
fn task_doc() -> impl Strategy<Value = String> {
    let doc = prop::collection::vec((prop::sample::select(TASK_KEYS), yaml_tree()), 0..10)
        .prop_map(|kv| {
            kv.iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect::<String>()
        });
    (
        prop::collection::vec(doc, 1..4),
        prop::option::of("[-:?*&!|>%@`'\"{}\\[\\], \n#]{0,16}"),
    )
        .prop_map(|(docs, junk)| {
            let mut s = docs.join("---\n");
            if let Some(j) = junk {
                s.push_str(&j);
            }
            s
        })
}

#[test]
fn task_yaml_never_panics() {
    let started = std::time::Instant::now();
    runner()
        .run(&task_doc(), |yaml| {
            let _ = task::parse_chain(&yaml, "fuzz.yaml", &StaticVocabulary::default());
            Ok(())
        })
        .expect("task YAML decoder");
    report("task YAML decoder", started);
}

#[test]
fn deep_and_wide_yaml_is_refused_with_a_limit_not_a_crash() {
    // Past the documented limits (depth 64, 10 000 entries): an error naming the limit.
    for yaml in [
        format!("run: {}x{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!(
            "envs: {{{}}}\n",
            (0..20_000)
                .map(|i| format!("k{i}: v"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ] {
        let err = task::parse_chain(&yaml, "fuzz.yaml", &StaticVocabulary::default())
            .expect_err("over a limit");
        assert!(err.to_string().contains("limit"), "{err}");
    }
}

/// A JSON value with the wire protocol's keys, nested.
fn wire_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    const KEYS: &[&str] = &[
        "id",
        "method",
        "params",
        "result",
        "error",
        "kind",
        "message",
        "version",
        "job",
        "name",
        "run",
        "envs",
        "num_nodes",
        "lines",
        "status",
        "exit_code",
        "follow",
        "offset",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 128, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

#[test]
fn wire_messages_never_panic() {
    let started = std::time::Instant::now();
    runner()
        .run(
            &prop_oneof![wire_json().prop_map(|v| v.to_string()), "\\PC{0,64}",],
            |line| {
                let _ = wire::parse_request(&line);
                let _ = wire::parse_response(&line);
                Ok(())
            },
        )
        .expect("wire decoder");
    report("wire decoder", started);
}

/// `valid` with a few bytes overwritten, inserted or cut: inputs that get past the headers.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut out = valid.clone();
        for (at, byte, how) in edits {
            let at = at.min(out.len());
            match how {
                0 if at < out.len() => out[at] = byte,
                1 => out.insert(at, byte),
                _ => out.truncate(at),
            }
        }
        out
    })
}

#[test]
fn the_catalog_file_decoder_never_panics() {
    let started = std::time::Instant::now();
    let catalog = sky_core::catalog::Catalog::embedded().expect("embedded catalog");
    let valid = format::encode(catalog.cloud(sky_core::CloudId::Aws).expect("aws catalog"));
    runner()
        .run(
            &prop_oneof![mutated(valid), prop::collection::vec(any::<u8>(), 0..512)],
            |bytes| {
                let _ = format::decode(&bytes);
                Ok(())
            },
        )
        .expect("catalog decoder");
    report("catalog decoder", started);
}

#[test]
fn the_price_list_parsers_never_panic() {
    let started = std::time::Instant::now();
    let fixtures: &[(&str, &[u8])] = &[
        (
            "aws",
            include_bytes!("fixtures/catalog/aws_region_us-east-1.json"),
        ),
        (
            "aws-index",
            include_bytes!("fixtures/catalog/aws_region_index.json"),
        ),
        (
            "azure",
            include_bytes!("fixtures/catalog/azure_retail_page1.json"),
        ),
        (
            "gcp",
            include_bytes!("fixtures/catalog/gcp_skus_page1.json"),
        ),
    ];
    for (name, valid) in fixtures {
        runner()
            .run(&mutated(valid.to_vec()), |bytes| {
                let _ = fetch::aws::parse_region_file(&bytes);
                let _ = fetch::aws::region_files(&bytes);
                let _ = fetch::aws::region_index_path(&bytes);
                let _ = fetch::azure::parse_page(&bytes);
                let _ = fetch::gcp::parse_page(&bytes);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    report_n(
        "price-list parsers (mutants of 4 fixtures)",
        u64::from(cases()) * fixtures.len() as u64,
        started,
    );
}

#[test]
fn the_v8_csv_catalog_parser_never_panics() {
    let started = std::time::Instant::now();
    const HEADER: &str = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone\n";
    let row = (
        "[a-z0-9.]{0,12}",
        prop::option::of("[A-Z0-9]{1,6}"),
        "[-0-9.e]{0,8}",
        "[-0-9.e]{0,8}",
        "[-0-9.e]{0,8}",
        "[-0-9.eNa]{0,8}",
        "[a-z0-9-]{0,12}",
    )
        .prop_map(|(t, acc, n, cpu, mem, price, region)| {
            format!(
                "{t},{},{n},{cpu},{mem},,{price},{price},{region},{region}a\n",
                acc.unwrap_or_default()
            )
        });
    runner()
        .run(&prop::collection::vec(row, 0..20), |rows| {
            let csv = format!("{HEADER}{}", rows.concat());
            let _ = v8csv::parse_cloud(
                sky_core::CloudId::Aws,
                sky_core::catalog::CatalogSource {
                    description: "fuzz".into(),
                    data_date: "2026-01-01".into(),
                    partial_coverage: None,
                },
                csv.as_bytes(),
                None,
                Vec::new(),
            );
            let _ = v8csv::parse_accelerator_names(csv.as_bytes());
            Ok(())
        })
        .expect("v8 CSV parser");
    report("v8 CSV parser", started);
}

#[test]
fn the_regression_corpus_passes_every_decoder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        every_decoder(&std::fs::read(&path).expect("corpus file"));
        n += 1;
    }
    assert!(
        n >= 5,
        "the corpus lost its files ({n} in {})",
        dir.display()
    );
}
