use super::*;
use crate::catalog::{AcceleratorHostRule, CatalogSource, v8csv};

fn source() -> CatalogSource {
    CatalogSource {
        description: "test".into(),
        data_date: "2026-05-20".into(),
        partial_coverage: None,
    }
}

const AWS_VMS: &str = "\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch
p4d.24xlarge,A100,8.0,96.0,1152.0,\"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}\",32.77,9.5,us-east-1,use1-az1,x86_64
p4d.24xlarge,A100,8.0,96.0,1152.0,\"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}\",21.96,6.04,us-east-2,use2-az1,x86_64
p4d.24xlarge,A100,8.0,96.0,1152.0,\"{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}\",21.96,7.0,us-east-2,use2-az2,x86_64
m6i.large,,,2.0,8.0,,0.096,0.03,us-east-1,use1-az1,x86_64
";

fn catalog() -> Catalog {
    let rules = vec![
        AcceleratorHostRule {
            accelerator: Some("A100".into()),
            count: 1.0,
            host: HostSpec::InstanceTypes(vec!["a2-highgpu-1g".into()]),
        },
        AcceleratorHostRule {
            accelerator: Some("tpu-*".into()),
            count: 1.0,
            host: HostSpec::Standalone,
        },
    ];
    let gcp = v8csv::parse_cloud(
        CloudId::Gcp,
        source(),
        v8csv::tests::GCP_VMS.as_bytes(),
        None,
        rules,
    )
    .expect("valid gcp");
    let aws = v8csv::parse_cloud(CloudId::Aws, source(), AWS_VMS.as_bytes(), None, vec![])
        .expect("valid aws");
    Catalog {
        clouds: vec![aws, gcp],
        accelerator_names: vec![],
    }
}

#[test]
fn counts_merge_clouds_and_respect_filters() {
    let cat = catalog();
    let all = accelerator_counts(&cat, &GpuFilter::default());
    assert_eq!(all.get("A100"), Some(&vec![1.0, 8.0]));
    assert_eq!(all.get("tpu-v2-8"), Some(&vec![1.0]));
    assert_eq!(all.len(), 2);
    let in_us_east = accelerator_counts(
        &cat,
        &GpuFilter {
            region: Some("US-EAST"),
            ..GpuFilter::default()
        },
    );
    assert_eq!(in_us_east.get("A100"), Some(&vec![8.0]));
    assert_eq!(in_us_east.len(), 1);
}

#[test]
fn attachable_gpus_are_priced_with_their_host_and_clouds_ordered_by_price() {
    let cat = catalog();
    let listed = list_gpu_offers(
        &cat,
        &GpuFilter {
            name: Some("a100"),
            ..GpuFilter::default()
        },
    );
    let rows = &listed["A100"];
    assert_eq!(rows.len(), 2);
    // GCP: a2-highgpu-1g (0.9 / 0.3) + A100 (2.9 / 0.88) in us-central1-a; the host's zone b
    // offer has no spot price and no A100 there, so it is not used.
    let gcp = &rows[0];
    assert_eq!(gcp.cloud, CloudId::Gcp);
    assert_eq!(gcp.instance_type.as_deref(), Some("a2-highgpu-1g"));
    assert_eq!(
        (gcp.cpu_count, gcp.memory, gcp.device_memory),
        (Some(12.0), Some(85.0), Some(40.0))
    );
    assert!((gcp.price.expect("priced") - 3.8).abs() < 1e-9);
    assert!((gcp.spot_price.expect("spot") - 1.18).abs() < 1e-9);
    // AWS: the cheapest on-demand region, with the spot price of that same row (not the
    // cheapest spot anywhere); equal prices tie-break on spot.
    let aws = &rows[1];
    assert_eq!(aws.cloud, CloudId::Aws);
    assert_eq!(
        (aws.price, aws.spot_price, aws.region.as_str()),
        (Some(21.96), Some(6.04), "us-east-2")
    );
}

#[test]
fn standalone_tpus_keep_their_own_price_and_group_by_generation() {
    let cat = catalog();
    let listed = list_gpu_offers(
        &cat,
        &GpuFilter {
            name: Some("tpu"),
            ..GpuFilter::default()
        },
    );
    let rows = &listed["tpu-v2"];
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].instance_type, None);
    assert_eq!(rows[0].accelerator_name, "tpu-v2-8");
    assert_eq!((rows[0].price, rows[0].spot_price), (Some(4.5), Some(1.35)));
    assert_eq!(rows[0].cpu_count, None);
}

#[test]
fn count_filter_and_unknown_names_give_empty_results() {
    let cat = catalog();
    let eight = list_gpu_offers(
        &cat,
        &GpuFilter {
            name: Some("A100"),
            count: Some(8.0),
            region: None,
        },
    );
    assert_eq!(eight["A100"].len(), 1);
    assert!(
        list_gpu_offers(
            &cat,
            &GpuFilter {
                name: Some("nope"),
                ..GpuFilter::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn tpu_generation_names() {
    assert_eq!(tpu_generation("tpu-v5litepod-4"), Some("tpu-v5litepod"));
    assert_eq!(tpu_generation("tpu-v4"), None);
    assert_eq!(tpu_generation("A100"), None);
}
