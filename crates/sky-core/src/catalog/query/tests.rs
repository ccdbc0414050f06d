use super::*;
use crate::catalog::{CatalogSource, v8csv};

fn catalog() -> Catalog {
    let gcp = v8csv::parse_cloud(
        CloudId::Gcp,
        CatalogSource {
            description: "test".into(),
            data_date: "2026-05-20".into(),
            partial_coverage: None,
        },
        v8csv::tests::GCP_VMS.as_bytes(),
        None,
        vec![],
    )
    .expect("valid csv");
    Catalog {
        clouds: vec![gcp],
        accelerator_names: vec!["A100".into(), "A100-80GB".into(), "H100".into()],
    }
}

#[test]
fn accelerator_names_are_canonicalised_case_insensitively() {
    let cat = catalog();
    assert_eq!(cat.canonical_accelerator("a100"), Some("A100"));
    assert_eq!(cat.canonical_accelerator(" a100-80gb "), Some("A100-80GB"));
    assert_eq!(cat.canonical_accelerator("TPU-V2-8"), Some("tpu-v2-8"));
    assert_eq!(cat.canonical_accelerator("A1000"), None);
    assert_eq!(
        cat.accelerator_names(),
        ["A100", "A100-80GB", "H100", "tpu-v2-8"]
    );
}

#[test]
fn near_misses_get_a_suggestion_and_unrelated_names_none() {
    let cat = catalog();
    assert_eq!(cat.suggest_accelerator("A1000"), Some("A100"));
    assert_eq!(cat.suggest_accelerator("h10"), Some("H100"));
    assert_eq!(cat.suggest_accelerator("banana"), None);
    let gcp = cat.cloud(CloudId::Gcp).expect("gcp loaded");
    assert_eq!(gcp.suggest_region("us-central"), Some("us-central1"));
    assert_eq!(gcp.suggest_zone("us-central1a"), Some("us-central1-a"));
    assert_eq!(
        gcp.suggest_instance_type("n1-standard8"),
        Some("n1-standard-8")
    );
    assert_eq!(gcp.suggest_instance_type("p3.2xlarge"), None);
}

#[test]
fn regions_zones_and_instance_types_resolve() {
    let cat = catalog();
    let gcp = cat.cloud(CloudId::Gcp).expect("gcp loaded");
    assert_eq!(gcp.region_index("europe-west4"), Some(1));
    assert_eq!(gcp.region_index("EUROPE-WEST4"), Some(1));
    assert_eq!(gcp.region_of_zone("us-central1-b"), Some("us-central1"));
    assert_eq!(
        gcp.zones_in_region("us-central1"),
        ["us-central1-a", "us-central1-b"]
    );
    assert!(gcp.zones_in_region("mars-1").is_empty());
    let it = gcp.instance_type("n1-standard-8").expect("known type");
    assert_eq!((it.vcpus, it.memory_gib), (8.0, 30.0));
    let idx = gcp
        .instance_type_index("n1-standard-8")
        .expect("known type");
    let regions: Vec<_> = gcp
        .offers_of(idx)
        .map(|o| gcp.region_name(o.region))
        .collect();
    assert_eq!(regions, ["us-central1", "europe-west4"]);
    assert_eq!(cat.clouds_with_region("us-central1"), [CloudId::Gcp]);
    assert_eq!(
        cat.clouds_with_instance_type("a2-highgpu-1g"),
        [CloudId::Gcp]
    );
    assert!(cat.restricted_to(&[CloudId::Aws]).clouds.is_empty());
}

#[test]
fn accelerator_counts_and_stats() {
    let cat = catalog();
    let gcp = cat.cloud(CloudId::Gcp).expect("gcp loaded");
    let counts = gcp.accelerator_counts();
    assert_eq!(counts.get("A100"), Some(&vec![1.0]));
    assert_eq!(counts.get("tpu-v2-8"), Some(&vec![1.0]));
    let stats = gcp.stats();
    assert_eq!(
        (
            stats.instance_types,
            stats.regions,
            stats.zones,
            stats.offers
        ),
        (2, 2, 3, 4)
    );
    assert_eq!(stats.attachable_accelerator_offers, 2);
}

#[test]
fn data_dates_parse_and_give_an_age() {
    use crate::catalog::parse_iso_date;
    assert_eq!(parse_iso_date("1970-01-01"), Some(0));
    assert_eq!(parse_iso_date("2000-02-29"), Some(11_016));
    assert_eq!(parse_iso_date("2026-05-20"), Some(20_593));
    assert_eq!(parse_iso_date("2026-02-29"), None);
    assert_eq!(parse_iso_date("unknown"), None);
    let source = CatalogSource {
        description: "x".into(),
        data_date: "2026-05-20".into(),
        partial_coverage: None,
    };
    assert_eq!(source.age_days(20_600), Some(7));
    let unknown = CatalogSource {
        data_date: "unknown".into(),
        ..source
    };
    assert_eq!(unknown.age_days(20_600), None);
}
