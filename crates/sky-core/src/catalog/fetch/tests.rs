use super::*;
use crate::CloudId;
use crate::catalog::{Catalog, CatalogSource, CloudCatalog, v8csv};

const OFFERS_INDEX: &[u8] = include_bytes!("../../../tests/fixtures/catalog/aws_offers_index.json");
const REGION_INDEX: &[u8] = include_bytes!("../../../tests/fixtures/catalog/aws_region_index.json");
const US_EAST_1: &[u8] =
    include_bytes!("../../../tests/fixtures/catalog/aws_region_us-east-1.json");
const AZURE_PAGE1: &[u8] =
    include_bytes!("../../../tests/fixtures/catalog/azure_retail_page1.json");
const AZURE_PAGE2: &[u8] =
    include_bytes!("../../../tests/fixtures/catalog/azure_retail_page2.json");

fn source() -> CatalogSource {
    CatalogSource {
        description: "snapshot".into(),
        data_date: "2026-05-20".into(),
        partial_coverage: None,
    }
}

fn aws_snapshot() -> CloudCatalog {
    let csv = "\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch
m6i.large,,,2.0,8.0,,0.090,0.030,us-east-1,use1-az1,x86_64
m6i.large,,,2.0,8.0,,0.090,0.031,us-east-1,use1-az2,x86_64
";
    v8csv::parse_cloud(CloudId::Aws, source(), csv.as_bytes(), None, vec![]).expect("valid")
}

#[test]
fn aws_index_files_lead_to_region_price_files() {
    assert_eq!(
        aws::region_index_path(OFFERS_INDEX).expect("index"),
        "/offers/v1.0/aws/AmazonEC2/current/region_index.json"
    );
    let files = aws::region_files(REGION_INDEX).expect("regions");
    assert_eq!(
        files,
        [
            (
                "eu-west-1".to_owned(),
                "/offers/v1.0/aws/AmazonEC2/20261120172112/eu-west-1/index.json".to_owned()
            ),
            (
                "us-east-1".to_owned(),
                "/offers/v1.0/aws/AmazonEC2/20261120172112/us-east-1/index.json".to_owned()
            ),
        ]
    );
}

#[test]
fn aws_region_file_keeps_only_on_demand_linux_shared_compute() {
    let prices = aws::parse_region_file(US_EAST_1).expect("parses");
    assert_eq!(
        prices,
        [
            aws::OnDemandPrice {
                instance_type: "m6i.large".into(),
                region: "us-east-1".into(),
                vcpus: 2.0,
                memory_gib: 8.0,
                arch: "x86_64".into(),
                price: 0.096,
            },
            aws::OnDemandPrice {
                instance_type: "m7g.medium".into(),
                region: "us-east-1".into(),
                vcpus: 1.0,
                memory_gib: 4.0,
                arch: "arm64".into(),
                price: 0.0408,
            },
        ]
    );
}

#[test]
fn aws_merge_keeps_known_zones_and_spot_and_adds_new_types_per_region() {
    let prices = aws::parse_region_file(US_EAST_1).expect("parses");
    let merged = aws::merge(&aws_snapshot(), &prices, "2026-11-20");
    assert_eq!(merged.source.data_date, "2026-11-20");
    let m6i = merged.instance_type_index("m6i.large").expect("m6i");
    let offers: Vec<_> = merged
        .offers_of(m6i)
        .map(|o| (o.zone.map(|z| merged.zone_name(z)), o.price, o.spot_price))
        .collect();
    assert_eq!(
        offers,
        [
            (Some("use1-az1"), Some(0.096), Some(0.030)),
            (Some("use1-az2"), Some(0.096), Some(0.031)),
        ]
    );
    let m7g = merged.instance_type("m7g.medium").expect("new type");
    assert_eq!(m7g.arch.as_deref(), Some("arm64"));
    let idx = merged.instance_type_index("m7g.medium").expect("m7g");
    let offer = merged.offers_of(idx).next().expect("one offer");
    assert_eq!(
        (offer.zone, offer.price, offer.spot_price),
        (None, Some(0.0408), None)
    );
    // The refreshed catalog survives the binary form.
    let decoded = crate::catalog::format::decode(&crate::catalog::format::encode(&merged))
        .expect("round trip");
    assert_eq!(decoded.offers, merged.offers);
}

#[test]
fn azure_pages_keep_linux_on_demand_and_spot_and_follow_next_links() {
    let page1 = azure::parse_page(AZURE_PAGE1).expect("page 1");
    assert!(
        page1
            .next
            .as_deref()
            .is_some_and(|l| l.contains("$skip=100"))
    );
    assert_eq!(
        page1.prices,
        [
            azure::VmPrice {
                size: "Standard_D2s_v5".into(),
                region: "eastus".into(),
                spot: false,
                price: 0.096,
            },
            azure::VmPrice {
                size: "Standard_D2s_v5".into(),
                region: "eastus".into(),
                spot: true,
                price: 0.0096,
            },
        ]
    );
    let page2 = azure::parse_page(AZURE_PAGE2).expect("page 2");
    assert_eq!(page2.next, None);
    // Low Priority is dropped; the unknown size is kept for the merge to report.
    assert_eq!(page2.prices.len(), 2);
}

#[test]
fn azure_merge_prices_known_sizes_and_counts_unknown_ones() {
    let snapshot = Catalog::embedded()
        .expect("embedded")
        .cloud(CloudId::Azure)
        .expect("azure")
        .clone();
    let mut prices = azure::parse_page(AZURE_PAGE1).expect("page 1").prices;
    prices.extend(azure::parse_page(AZURE_PAGE2).expect("page 2").prices);
    let (merged, skipped) = azure::merge(&snapshot, &prices, "2026-11-20");
    assert_eq!(skipped, 1);
    assert!(
        merged
            .source
            .partial_coverage
            .as_deref()
            .is_some_and(|p| p.contains("1 sizes"))
    );
    let d2 = merged.instance_type("Standard_D2s_v5").expect("known size");
    assert_eq!((d2.vcpus, d2.memory_gib), (2.0, 8.0));
    let offers: Vec<_> = merged
        .offers
        .iter()
        .map(|o| (merged.region_name(o.region), o.price, o.spot_price))
        .collect();
    assert_eq!(
        offers,
        [
            ("eastus", Some(0.096), Some(0.0096)),
            ("westeurope", Some(0.105), None)
        ]
    );
}

#[test]
fn malformed_bodies_name_what_was_being_read() {
    let err = aws::parse_region_file(b"{\"products\": 3}").expect_err("bad");
    assert!(
        err.to_string()
            .starts_with("AWS price file: unexpected response shape"),
        "{err}"
    );
    let err = azure::parse_page(b"<html>").expect_err("bad");
    assert!(
        err.to_string().starts_with("Azure retail prices page"),
        "{err}"
    );
    assert_eq!(
        FetchError::CredentialsMissing("x".into()).code(),
        crate::ErrorCode::CredentialsMissing
    );
}

const GCP_PAGE1: &[u8] = include_bytes!("../../../tests/fixtures/catalog/gcp_skus_page1.json");
const GCP_PAGE2: &[u8] = include_bytes!("../../../tests/fixtures/catalog/gcp_skus_page2.json");

fn gcp_snapshot() -> CloudCatalog {
    // asia-east1 has no SKU in the samples, e2-micro is shared-core and T4 has no SKU: all three
    // must keep their snapshot prices.
    let csv = "\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone
n2-standard-2,,,2,8,,0.09,0.02,us-central1,us-central1-a
n2-standard-2,,,2,8,,0.09,0.02,us-central1,us-central1-b
n2-standard-2,,,2,8,,0.11,,asia-east1,asia-east1-a
n1-standard-8,,,8,30,,0.38,0.08,us-central1,us-central1-a
e2-micro,,,0.25,1,,0.0084,0.0025,us-central1,us-central1-a
,V100,1,,,,2.4,0.7,us-central1,us-central1-a
,V100,2,,,,4.8,1.4,us-central1,us-central1-a
,T4,1,,,,0.35,0.11,us-central1,us-central1-a
";
    v8csv::parse_cloud(CloudId::Gcp, source(), csv.as_bytes(), None, vec![]).expect("valid")
}

fn gcp_prices() -> Vec<gcp::SkuPrice> {
    let mut prices = gcp::parse_page(GCP_PAGE1).expect("page 1").prices;
    prices.extend(gcp::parse_page(GCP_PAGE2).expect("page 2").prices);
    prices
}

#[test]
fn gcp_pages_keep_predefined_core_ram_and_gpu_skus_and_follow_tokens() {
    let page1 = gcp::parse_page(GCP_PAGE1).expect("page 1");
    assert_eq!(
        page1.next_page_token.as_deref(),
        Some("CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA")
    );
    let sku = |kind, spot, price| gcp::SkuPrice {
        kind,
        regions: vec!["us-central1".to_owned()],
        spot,
        price,
    };
    // Custom, commitment and network SKUs are dropped.
    assert_eq!(
        page1.prices,
        [
            sku(gcp::SkuKind::Core("n2".into()), false, 0.031611),
            sku(gcp::SkuKind::Ram("n2".into()), false, 0.004237),
            sku(gcp::SkuKind::Core("n2".into()), true, 0.00765),
            sku(gcp::SkuKind::Ram("n2".into()), true, 0.001025),
        ]
    );
    let page2 = gcp::parse_page(GCP_PAGE2).expect("page 2");
    assert_eq!(page2.next_page_token, None);
    assert_eq!(
        page2.prices,
        [
            sku(gcp::SkuKind::Core("n1".into()), false, 0.031611),
            sku(gcp::SkuKind::Ram("n1".into()), false, 0.004237),
            sku(gcp::SkuKind::Gpu("V100".into()), false, 2.48),
            sku(gcp::SkuKind::Gpu("V100".into()), true, 0.74),
        ]
    );
}

#[test]
fn gcp_merge_prices_machines_from_core_and_ram_and_counts_what_it_skips() {
    let (merged, report) = gcp::merge(&gcp_snapshot(), &gcp_prices(), "2026-11-29");
    assert_eq!(
        report,
        gcp::MergeReport {
            repriced: 5,
            skipped: 3
        }
    );
    assert_eq!(merged.source.data_date, "2026-11-29");
    assert!(
        merged
            .source
            .partial_coverage
            .as_deref()
            .is_some_and(|p| p.starts_with("3 of 8 offers")),
        "{:?}",
        merged.source.partial_coverage
    );
    let offers = |name: &str| -> Vec<_> {
        let idx = merged.instance_type_index(name).expect("known type");
        merged
            .offers_of(idx)
            .map(|o| (o.zone.map(|z| merged.zone_name(z)), o.price, o.spot_price))
            .collect()
    };
    // 2 x 0.031611 + 8 x 0.004237 on demand; 2 x 0.00765 + 8 x 0.001025 spot.
    assert_eq!(
        offers("n2-standard-2"),
        [
            (Some("us-central1-a"), Some(0.097118), Some(0.0235)),
            (Some("us-central1-b"), Some(0.097118), Some(0.0235)),
            (Some("asia-east1-a"), Some(0.11), None),
        ]
    );
    // No N1 spot SKU in the samples: the snapshot's spot price stays.
    assert_eq!(
        offers("n1-standard-8"),
        [(Some("us-central1-a"), Some(0.379998), Some(0.08))]
    );
    assert_eq!(
        offers("e2-micro"),
        [(Some("us-central1-a"), Some(0.0084), Some(0.0025))]
    );
    let gpus: Vec<_> = merged
        .attachable_accelerators
        .iter()
        .map(|a| {
            (
                a.accelerator.name.as_str(),
                a.accelerator.count,
                a.price,
                a.spot_price,
            )
        })
        .collect();
    assert_eq!(
        gpus,
        [
            ("V100", 1.0, Some(2.48), Some(0.74)),
            ("V100", 2.0, Some(4.96), Some(1.48)),
            ("T4", 1.0, Some(0.35), Some(0.11)),
        ]
    );
    let decoded = crate::catalog::format::decode(&crate::catalog::format::encode(&merged))
        .expect("round trip");
    assert_eq!(decoded.offers, merged.offers);
}

#[test]
fn gcp_bad_bodies_are_named_and_the_api_key_is_redacted() {
    let err = gcp::parse_page(b"{\"skus\": 3}").expect_err("bad");
    assert!(
        err.to_string().starts_with("GCP Cloud Billing SKUs page"),
        "{err}"
    );
    let url = gcp::skus_url("secret-key", Some("tok"));
    assert_eq!(
        url,
        "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?key=secret-key&pageToken=tok"
    );
    let shown = gcp::redact_key(&url);
    assert!(!shown.contains("secret-key"), "{shown}");
    assert!(shown.ends_with("key=REDACTED&pageToken=tok"), "{shown}");
}
