//! The embedded catalog as shipped, and the real `sky show-gpus` / `sky catalog` binaries run
//! against a temporary `SKY_HOME`.

use assert_cmd::Command;
use sky_core::CloudId;
use sky_core::catalog::{Catalog, format, override_path, write_override};

fn sky(home: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("sky").expect("the sky binary is built");
    cmd.env("SKY_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SKY_DEV");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("sky runs");
    assert!(
        out.status.success(),
        "sky failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn embedded_catalog_has_the_source_data() {
    let cat = Catalog::embedded().expect("embedded catalog decodes");
    let gcp = cat.cloud(CloudId::Gcp).expect("gcp");
    let stats = gcp.stats();
    // PROVENANCE.md: 385 instance types, 44 regions, 131 zones; 31,285 rows of which 2,395
    // are attachable accelerators.
    assert_eq!(
        (
            stats.instance_types,
            stats.regions,
            stats.zones,
            stats.offers + stats.attachable_accelerator_offers
        ),
        (385, 44, 131, 31_285)
    );
    assert_eq!(gcp.source.data_date, "2026-05-20");
    let azure = cat.cloud(CloudId::Azure).expect("azure");
    assert_eq!(
        (
            azure.stats().instance_types,
            azure.stats().regions,
            azure.zones.len()
        ),
        (1432, 58, 0)
    );
    assert_eq!(azure.offers.len(), 56_671);
    let aws = cat.cloud(CloudId::Aws).expect("aws");
    assert_eq!((aws.stats().instance_types, aws.offers.len()), (162, 4010));
    assert!(aws.source.partial_coverage.is_some());
    // SkyPilot semantics kept: p5e.48xlarge has no on-demand price in 9 rows.
    let p5e = aws.instance_type_index("p5e.48xlarge").expect("p5e");
    assert_eq!(aws.offers_of(p5e).filter(|o| o.price.is_none()).count(), 9);
    let p4d = aws.instance_type("p4d.24xlarge").expect("p4d");
    assert_eq!(p4d.arch.as_deref(), Some("x86_64"));
    let acc = p4d.accelerator.as_ref().expect("A100s");
    assert_eq!(
        (acc.name.as_str(), acc.count, acc.memory_gib),
        ("A100", 8.0, Some(40.0))
    );
    assert_eq!(cat.canonical_accelerator("a100-80gb"), Some("A100-80GB"));
    assert_eq!(
        cat.canonical_accelerator("gaudi hl-205"),
        Some("Gaudi HL-205")
    );
    assert!(gcp.host_rule_for("A100", 8.0).is_some());
    assert!(gcp.host_rule_for("A100", 3.0).is_none());
}

#[test]
fn a_refreshed_file_replaces_that_clouds_snapshot_and_bad_versions_are_rejected() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut aws = Catalog::embedded()
        .expect("embedded")
        .cloud(CloudId::Aws)
        .expect("aws")
        .clone();
    aws.source.description = "refreshed in a test".into();
    aws.offers.truncate(10);
    let path = write_override(home.path(), &aws).expect("written");
    assert_eq!(path, override_path(home.path(), CloudId::Aws));
    let loaded = Catalog::load(home.path()).expect("loads");
    let loaded_aws = loaded.cloud(CloudId::Aws).expect("aws");
    assert_eq!(loaded_aws.source.description, "refreshed in a test");
    assert_eq!(loaded_aws.offers.len(), 10);
    assert_eq!(
        loaded.cloud(CloudId::Gcp).expect("gcp").offers.len(),
        28_890
    );
    // No temporary file is left next to the catalog.
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["aws.skycat"]);

    let mut bytes = std::fs::read(&path).expect("read back");
    bytes[8..12].copy_from_slice(&(format::FORMAT_VERSION + 7).to_le_bytes());
    std::fs::write(&path, &bytes).expect("rewrite");
    let err = Catalog::load(home.path()).expect_err("version mismatch");
    let msg = err.to_string();
    assert!(
        msg.contains("aws.skycat")
            && msg.contains(&format!("version {}", format::FORMAT_VERSION + 7)),
        "{msg}"
    );
}

#[test]
fn show_gpus_lists_common_accelerators_and_tpus() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = stdout_of(sky(home.path()).arg("show-gpus"));
    let expected_start = "\
COMMON_GPU  AVAILABLE_QUANTITIES
A10         0.167, 0.333, 0.5, 1, 2
A10G        1, 4, 8
A100        1, 2, 4, 8, 16
A100-80GB   1, 2, 4, 8
";
    assert!(out.starts_with(expected_start), "{out}");
    assert!(
        out.contains("\nGOOGLE_TPU       AVAILABLE_QUANTITIES\ntpu-v2-8         1\n"),
        "{out}"
    );
    assert!(out.ends_with(
        "Hint: use -a/--all to see all accelerators (including non-common ones) and pricing.\n"
    ));
}

#[test]
fn show_gpus_name_prices_gcp_gpus_with_their_host_like_skypilot() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = stdout_of(sky(home.path()).args(["show-gpus", "a100"]));
    // Same figures as SkyPilot 0.14.1's `sky show-gpus A100` on this catalog.
    let expected = "\
GPU   QTY   CLOUD  INSTANCE_TYPE        DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  1.0   GCP    a2-highgpu-1g        40GB        12     85GB      $ 2.428       $ 1.562            europe-west4
A100  2.0   GCP    a2-highgpu-2g        40GB        24     170GB     $ 4.855       $ 3.123            europe-west4
A100  4.0   GCP    a2-highgpu-4g        40GB        48     340GB     $ 9.711       $ 6.247            europe-west4
A100  8.0   GCP    a2-highgpu-8g        40GB        96     680GB     $ 19.422      $ 12.494           europe-west4
A100  16.0  GCP    a2-megagpu-16g       40GB        96     1360GB    $ 35.502      $ 23.617           europe-west4
A100  8.0   AWS    p4d.24xlarge         40GB        96     1152GB    $ 21.958      $ 6.037            us-east-2
A100  8.0   Azure  Standard_ND96asr_v4  -           96     900GB     $ 27.197      $ 5.983            eastus

GPU        QTY  CLOUD  INSTANCE_TYPE              DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100-80GB  1.0  GCP    a2-ultragpu-1g             80GB        12     170GB     $ 2.946       $ 2.514            us-central1
A100-80GB  2.0  GCP    a2-ultragpu-2g             80GB        24     340GB     $ 5.892       $ 5.028            us-central1
A100-80GB  4.0  GCP    a2-ultragpu-4g             80GB        48     680GB     $ 11.783      $ 10.055           us-central1
A100-80GB  8.0  GCP    a2-ultragpu-8g             80GB        96     1360GB    $ 23.567      $ 20.110           us-central1
A100-80GB  1.0  Azure  Standard_NC24ads_A100_v4   -           24     220GB     $ 3.673       $ 0.747            eastus
A100-80GB  2.0  Azure  Standard_NC48ads_A100_v4   -           48     440GB     $ 7.346       $ 1.493            eastus
A100-80GB  4.0  Azure  Standard_NC96ads_A100_v4   -           96     880GB     $ 14.692      $ 2.987            eastus
A100-80GB  8.0  Azure  Standard_ND96amsr_A100_v4  -           96     1800GB    $ 32.770      $ 8.520            eastus
A100-80GB  8.0  AWS    p4de.24xlarge              80GB        96     1152GB    $ 27.447      $ 8.650            us-east-1
";
    assert_eq!(out, expected);
}

#[test]
fn show_gpus_respects_count_cloud_region_and_allowed_clouds() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = stdout_of(sky(home.path()).args(["show-gpus", "H100:8", "--cloud", "aws"]));
    assert_eq!(
        out,
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
H100  8.0  AWS    p5.48xlarge    80GB        192    2048GB    $ 55.040      $ 10.240           us-east-1
"
    );
    let json = stdout_of(sky(home.path()).args([
        "show-gpus",
        "V100:1",
        "--region",
        "us-west1",
        "-o",
        "json",
    ]));
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let rows = value["V100"].as_array().expect("V100 rows");
    assert!(!rows.is_empty());
    for row in rows {
        assert!(
            row["region"].as_str().expect("region").contains("us-west1"),
            "{row}"
        );
        assert_eq!(row["accelerator_count"], 1.0);
    }

    std::fs::write(
        home.path().join("config.yaml"),
        "allowed_clouds:\n  - azure\n",
    )
    .expect("config");
    let out = stdout_of(sky(home.path()).args(["show-gpus", "A100"]));
    assert!(
        out.contains("Azure") && !out.contains("GCP") && !out.contains("AWS"),
        "{out}"
    );
}

#[test]
fn show_gpus_unknown_accelerator_says_did_you_mean() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args(["show-gpus", "A1000"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: accelerator 'A1000' not found in the catalogs of AWS, Azure, GCP; did you mean \
         'A100'? (run `sky show-gpus --all` to list every accelerator)\n"
    );
    let out = sky(home.path())
        .args(["show-gpus", "A100:3", "-o", "json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert_eq!(value["error"]["code"], "invalid_task");
    let message = value["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("available counts: A100: 1, 2, 4, 8, 16"),
        "{message}"
    );
    let out = sky(home.path())
        .args(["show-gpus", "A100:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a positive integer"));
}

#[test]
fn catalog_command_reports_sources_age_and_partial_aws() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = stdout_of(sky(home.path()).arg("catalog"));
    assert!(out.starts_with("CLOUD  SOURCE"), "{out}");
    assert!(
        out.contains("AWS coverage is partial: accelerator families"),
        "{out}"
    );
    let json = stdout_of(sky(home.path()).args(["catalog", "-o", "json"]));
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let clouds = value["clouds"].as_array().expect("clouds");
    assert_eq!(clouds.len(), 3);
    let gcp = clouds
        .iter()
        .find(|c| c["cloud"] == "gcp")
        .expect("gcp entry");
    assert_eq!(gcp["source"]["data_date"], "2026-05-20");
    assert_eq!(gcp["instance_types"], 385);
    assert_eq!(gcp["zones"], 131);
    assert!(gcp["age_days"].as_i64().is_some());
    assert_eq!(gcp["refreshed_file"], serde_json::Value::Null);
    let aws = clouds
        .iter()
        .find(|c| c["cloud"] == "aws")
        .expect("aws entry");
    assert!(aws["source"]["partial_coverage"].is_string());
    assert_eq!(aws["age_days"], serde_json::Value::Null);
}

#[test]
fn catalog_update_rejects_clouds_without_a_catalog_and_leaves_the_snapshot_alone() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = sky(home.path())
        .args(["catalog", "update", "local"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the local cloud has no price catalog to update\n"
    );
    assert!(!home.path().join("catalogs").exists());
}
