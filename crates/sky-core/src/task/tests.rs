//! Task parser tests: every valid fixture snapshotted as parsed, every invalid one with its exact
//! message, and the command-line overrides. The vocabulary is hand-made (a few real names per
//! cloud) so that these tests do not depend on the catalog's contents.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::*;
use crate::cloud::CloudId;

fn vocab() -> StaticVocabulary {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let zones = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(z, r)| ((*z).to_owned(), (*r).to_owned()))
            .collect()
    };
    let types = |v: &[(&str, f64, f64)]| {
        v.iter()
            .map(|(n, c, m)| ((*n).to_owned(), *c, *m))
            .collect()
    };
    let accs = |v: &[(&str, f64)]| v.iter().map(|(n, m)| ((*n).to_owned(), Some(*m))).collect();
    StaticVocabulary {
        clouds: vec![
            CloudWords {
                cloud: CloudId::Aws,
                regions: s(&["us-east-1", "us-west-2", "eu-west-1"]),
                zones: zones(&[
                    ("us-east-1a", "us-east-1"),
                    ("us-east-1b", "us-east-1"),
                    ("us-west-2a", "us-west-2"),
                ]),
                instance_types: types(&[
                    ("m6i.2xlarge", 8.0, 32.0),
                    ("p3.2xlarge", 8.0, 61.0),
                    ("p4d.24xlarge", 96.0, 1152.0),
                ]),
                accelerators: accs(&[("V100", 16.0), ("A100", 40.0), ("A10G", 24.0)]),
            },
            CloudWords {
                cloud: CloudId::Gcp,
                regions: s(&["us-central1", "us-east1", "europe-west4"]),
                zones: zones(&[
                    ("us-central1-a", "us-central1"),
                    ("us-central1-b", "us-central1"),
                    ("us-east1-b", "us-east1"),
                ]),
                instance_types: types(&[
                    ("n2-standard-8", 8.0, 32.0),
                    ("a2-highgpu-8g", 96.0, 680.0),
                ]),
                accelerators: accs(&[
                    ("A100", 40.0),
                    ("A100-80GB", 80.0),
                    ("H100", 80.0),
                    ("V100", 16.0),
                    ("tpu-v4-8", 32.0),
                ]),
            },
            CloudWords {
                cloud: CloudId::Azure,
                regions: s(&["eastus", "westus2"]),
                zones: Vec::new(),
                instance_types: types(&[
                    ("Standard_D8s_v5", 8.0, 32.0),
                    ("Standard_NV36ads_A10_v5", 36.0, 440.0),
                ]),
                accelerators: accs(&[("A10", 24.0), ("A100-80GB", 80.0), ("A100-80GB-SXM", 80.0)]),
            },
        ],
    }
}

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tasks")
        .join(kind);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("fixture directory exists")
        .map(|e| e.expect("readable fixture entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("readable fixture"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn valid_fixtures_parse_as_skypilot_reads_them() {
    let vocab = vocab();
    let files = fixtures("valid");
    assert!(
        files.len() >= 10,
        "expected the valid fixtures, found {}",
        files.len()
    );
    for (name, text) in files {
        let chain = parse_chain_with(&text, &name, &vocab, &TaskOverrides::default())
            .unwrap_or_else(|e| panic!("{name} should parse: {e}"));
        let stem = name.trim_end_matches(".yaml").to_owned();
        insta::assert_json_snapshot!(format!("valid__{stem}"), chain);
    }
}

#[test]
fn invalid_fixtures_fail_with_exact_messages() {
    let vocab = vocab();
    let mut report = String::new();
    for (name, text) in fixtures("invalid") {
        match parse_chain(&text, &name, &vocab) {
            Ok(_) => panic!("{name} should be rejected"),
            Err(e) => writeln!(report, "{e}").expect("writing to a String cannot fail"),
        }
    }
    insta::assert_snapshot!("invalid_messages", report);
}

#[test]
fn error_carries_structured_position() {
    let text = "name: train\nresources:\n  infra: aws\n\n  cpus: 8+\n  accelerators: A1000\n";
    let err = parse_chain(text, "task.yaml", &vocab()).expect_err("unknown accelerator");
    assert_eq!(err.path, "resources.accelerators");
    assert_eq!((err.line, err.column), (Some(6), Some(17)));
    assert_eq!(err.code(), crate::ErrorCode::InvalidTask);
    assert_eq!(
        err.to_string(),
        "task.yaml:6:17: resources.accelerators: unknown accelerator 'A1000' (did you mean 'A100'?)"
    );
}

#[test]
fn secrets_never_show_in_debug_or_json() {
    let text = "secrets:\n  HF_TOKEN: hf_super_secret\nrun: echo\n";
    let tasks = parse_chain(text, "t.yaml", &vocab()).expect("valid");
    let debug = format!("{:?}", tasks[0]);
    let json = serde_json::to_string(&tasks[0]).expect("serializable");
    assert!(!debug.contains("hf_super_secret") && !json.contains("hf_super_secret"));
    assert_eq!(tasks[0].secrets["HF_TOKEN"].expose(), "hf_super_secret");
}

#[test]
fn substituted_secrets_stay_out_of_errors() {
    // Built at run time so no secret-shaped literal sits in the tree.
    let canary = format!("canary{}", std::process::id());
    let text =
        format!("secrets:\n  TOKEN: {canary}\nfile_mounts:\n  /data/${{TOKEN}}: [1]\nrun: echo\n");
    let err = parse_chain(&text, "t.yaml", &vocab()).expect_err("a list is no mount");
    let shown = err.to_string();
    assert!(!shown.contains(&canary), "{shown}");
    assert!(shown.contains("file_mounts./data/${TOKEN}"), "{shown}");
    let text = format!("secrets:\n  TOKEN: {canary}\nworkdir: [${{TOKEN}}]\nrun: echo\n");
    let err = parse_chain(&text, "t.yaml", &vocab()).expect_err("a list is no workdir");
    assert!(!err.to_string().contains(&canary), "{err}");
    let mut secrets = BTreeMap::new();
    secrets.insert("A".to_owned(), Secret::new("abc"));
    secrets.insert("B".to_owned(), Secret::new("abcdef"));
    secrets.insert("E".to_owned(), Secret::new(""));
    assert_eq!(redact_secrets("x abcdef abc", &secrets), "x ${B} ${A}");
}

#[test]
fn from_command_is_a_default_task() {
    let task = Task::from_command("echo hi");
    assert_eq!(task.name.as_deref(), Some("sky-cmd"));
    assert_eq!(task.run.as_deref(), Some("echo hi"));
    assert_eq!(task.resources, ResourceChoice::default());
    assert_eq!(task.num_nodes, 1);
}

fn overridden(text: &str, o: &TaskOverrides) -> Result<Vec<Task>, TaskError> {
    parse_chain_with(text, "task.yaml", &vocab(), o).map(|c| c.tasks)
}

#[test]
fn overrides_replace_fields_in_every_alternative() {
    let text = "resources:\n  infra: gcp/us-central1\n  any_of:\n    - accelerators: A100:8\n    - accelerators: V100:8\nrun: x\n";
    let o = TaskOverrides {
        infra: Some("aws".to_owned()),
        cpus: Some("8+".to_owned()),
        use_spot: Some(true),
        ports: vec!["8080,8081".to_owned(), "9000".to_owned()],
        num_nodes: Some(2),
        name: Some("renamed".to_owned()),
        envs: vec![("A".to_owned(), "1".to_owned())],
        ..TaskOverrides::default()
    };
    let tasks = overridden(text, &o).expect("valid overrides");
    let task = &tasks[0];
    assert_eq!((task.num_nodes, task.name.as_deref()), (2, Some("renamed")));
    assert_eq!(task.envs["A"], "1");
    assert_eq!(task.resources.options.len(), 2);
    for r in &task.resources.options {
        // --infra aws clears the file's region, as SkyPilot's --infra does.
        assert_eq!(
            (r.placement.cloud, r.placement.region.as_deref()),
            (Some(CloudId::Aws), None)
        );
        assert!(r.use_spot);
        assert_eq!(r.ports.len(), 2);
    }
}

#[test]
fn gpus_override_collapses_alternatives_and_is_validated() {
    let text = "resources:\n  accelerators: {A100: 8, V100: 8}\nrun: x\n";
    let o = TaskOverrides {
        gpus: Some("h100:8".to_owned()),
        ..TaskOverrides::default()
    };
    let tasks = overridden(text, &o).expect("valid");
    let options = &tasks[0].resources.options;
    assert_eq!(options.len(), 1);
    assert_eq!(
        options[0]
            .accelerators
            .as_ref()
            .map(|a| (a.name.as_str(), a.count)),
        Some(("H100", 8.0))
    );
    assert_eq!(options[0].placement.cloud, None);

    let bad = TaskOverrides {
        gpus: Some("H1000".to_owned()),
        ..TaskOverrides::default()
    };
    let err = overridden(text, &bad).expect_err("unknown accelerator");
    assert_eq!(
        err.to_string(),
        "--gpus: unknown accelerator 'H1000' (did you mean 'H100'?)"
    );
}

#[test]
fn overriding_instance_type_re_infers_the_cloud() {
    // The file's instance type implied AWS; a new one implies GCP, as SkyPilot infers at launch.
    let text = "resources:\n  instance_type: p3.2xlarge\n";
    let o = TaskOverrides {
        instance_type: Some("n2-standard-8".to_owned()),
        ..TaskOverrides::default()
    };
    let tasks = overridden(text, &o).expect("valid");
    assert_eq!(
        tasks[0].resources.options[0].placement.cloud,
        Some(CloudId::Gcp)
    );
}

#[test]
fn none_clears_and_conflicts_are_reported() {
    let text = "resources:\n  infra: aws\n  accelerators: V100\n  cpus: 8\nrun: x\n";
    let o = TaskOverrides {
        cloud: Some("none".to_owned()),
        gpus: Some("none".to_owned()),
        cpus: Some("NONE".to_owned()),
        ..TaskOverrides::default()
    };
    let r = &overridden(text, &o).expect("valid")[0].resources.options[0];
    assert_eq!(
        (r.placement.cloud, r.accelerators.is_none(), r.cpus),
        (None, true, None)
    );

    let both = TaskOverrides {
        infra: Some("aws".to_owned()),
        zone: Some("us-east-1a".to_owned()),
        ..TaskOverrides::default()
    };
    assert_eq!(
        overridden(text, &both).expect_err("conflict").to_string(),
        "--infra: cannot use --infra together with --cloud, --region or --zone"
    );
    let zero = TaskOverrides {
        num_nodes: Some(0),
        ..TaskOverrides::default()
    };
    assert_eq!(
        overridden(text, &zero).expect_err("zero nodes").to_string(),
        "--num-nodes: num_nodes must be a positive integer, got 0"
    );
}

#[test]
fn env_overrides_reach_substitution_and_fill_null_envs() {
    let text = "envs:\n  SIZE:\nfile_mounts:\n  /m/${SIZE}: s3://b${SIZE}\nrun: x\n";
    let o = TaskOverrides {
        envs: vec![("SIZE".to_owned(), "70".to_owned())],
        ..TaskOverrides::default()
    };
    let task = &overridden(text, &o).expect("valid")[0];
    assert_eq!(
        task.file_mounts.get("/m/70"),
        Some(&FileMount::Bucket(
            crate::storage::BucketUri::parse("s3://b70").expect("uri")
        ))
    );
}

#[test]
fn chains_take_env_overrides_but_not_resource_overrides() {
    let text = "run: a\n---\nrun: b\n";
    let o = TaskOverrides {
        envs: vec![("K".to_owned(), "v".to_owned())],
        cpus: Some("64".to_owned()),
        ..TaskOverrides::default()
    };
    let tasks = overridden(text, &o).expect("valid");
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t.envs["K"], "v");
        assert_eq!(t.resources.options[0].cpus, None);
    }
}

#[test]
fn empty_vocabulary_skips_name_checks() {
    let tasks = parse_chain(
        "resources:\n  accelerators: Whatever:2\n",
        "t.yaml",
        &StaticVocabulary::default(),
    )
    .expect("no catalog, no name checks");
    assert_eq!(
        tasks[0].resources.options[0]
            .accelerators
            .as_ref()
            .map(|a| a.name.as_str()),
        Some("Whatever")
    );
}

#[test]
fn substitution_follows_skypilot_regex() {
    let vars = std::collections::BTreeMap::from([("A", "1"), ("B_2", "two")]);
    assert_eq!(spec::substitute("x$A-${B_2}/$C/${A", &vars), "x1-two/$C/1");
    assert_eq!(spec::substitute("$$A $1", &vars), "$1 $1");
}

#[test]
fn task_names_follow_skypilot_rules() {
    for ok in ["a", "some_name", "some--name", "a.b-c_d", "x__y"] {
        assert!(spec::is_valid_task_name(ok), "{ok}");
    }
    for bad in ["_a", "a_", "a---b", "a___b", "a b", ""] {
        assert!(!spec::is_valid_task_name(bad), "{bad}");
    }
}

#[test]
fn fixtures_hold_with_the_embedded_catalog() {
    let catalog = crate::catalog::Catalog::embedded().expect("embedded catalog decodes");
    for (name, text) in fixtures("valid") {
        parse_chain(&text, &name, &catalog)
            .unwrap_or_else(|e| panic!("{name} with the real catalog: {e}"));
    }
    let accel = |spec: &str| {
        let text = format!("resources:\n  accelerators: {spec}\n");
        parse_chain(&text, "t.yaml", &catalog).map(|t| {
            t[0].resources.options[0]
                .accelerators
                .as_ref()
                .map(|a| a.name.clone())
        })
    };
    assert_eq!(accel("a100-80gb"), Ok(Some("A100-80GB".to_owned())));
    assert_eq!(accel("h100"), Ok(Some("H100".to_owned())));
    assert_eq!(accel("l4:2"), Ok(Some("L4".to_owned())));
    assert_eq!(
        accel("A100-80").map_err(|e| e.message),
        Err(
            "accelerator name 'A100-80' is ambiguous: choose one of A100-80GB, A100-80GB-SXM"
                .to_owned()
        )
    );
    let region = parse_chain(
        "resources:\n  cloud: aws\n  region: US-EAST-1\n",
        "t.yaml",
        &catalog,
    )
    .expect("valid");
    assert_eq!(
        region[0].resources.options[0].placement.region.as_deref(),
        Some("us-east-1")
    );
}
