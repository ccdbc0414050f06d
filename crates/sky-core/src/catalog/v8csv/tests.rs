use super::*;

pub(crate) const GCP_VMS: &str = "\
InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.9,0.3
a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-b,0.9,
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.08
n1-standard-8,8.0,30.0,,,,europe-west4,europe-west4-a,0.41,0.09
,,,A100,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},us-central1,us-central1-a,2.9,0.88
,,,tpu-v2-8,1,tpu-v2-8,us-central1,us-central1-b,4.5,1.35
";

fn source() -> CatalogSource {
    CatalogSource {
        description: "test".into(),
        data_date: "2026-05-20".into(),
        partial_coverage: None,
    }
}

#[test]
fn gcp_rows_split_into_instance_offers_and_attachable_accelerators() {
    let cat =
        parse_cloud(CloudId::Gcp, source(), GCP_VMS.as_bytes(), None, vec![]).expect("valid csv");
    assert_eq!(cat.regions, ["us-central1", "europe-west4"]);
    let zones: Vec<_> = cat
        .zones
        .iter()
        .map(|z| (z.name.as_str(), z.region))
        .collect();
    assert_eq!(
        zones,
        [
            ("us-central1-a", 0),
            ("us-central1-b", 0),
            ("europe-west4-a", 1)
        ]
    );
    let names: Vec<_> = cat.instance_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a2-highgpu-1g", "n1-standard-8"]);
    assert_eq!(cat.offers.len(), 4);
    // An empty SpotPrice means no spot offer, not a free one.
    assert_eq!(cat.offers[1].spot_price, None);
    assert_eq!(cat.offers[1].price, Some(0.9));
    assert_eq!(cat.attachable_accelerators.len(), 2);
    let a100 = &cat.attachable_accelerators[0];
    assert_eq!(a100.accelerator.name, "A100");
    assert_eq!(a100.accelerator.memory_gib, Some(40.0));
    assert_eq!(a100.zone, Some(0));
    // TPU GpuInfo is a bare name: no memory.
    assert_eq!(cat.attachable_accelerators[1].accelerator.memory_gib, None);
}

#[test]
fn azure_has_no_zones_and_keeps_generation_and_fractional_counts() {
    let csv = "\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation
Standard_NV6ads_A10_v5,A10,0.167,6,55,A10,0.454,0.0908,eastus,\"V1,V2\"
";
    let cat = parse_cloud(CloudId::Azure, source(), csv.as_bytes(), None, vec![]).expect("valid");
    assert!(cat.zones.is_empty());
    assert_eq!(cat.offers[0].zone, None);
    let it = &cat.instance_types[0];
    assert_eq!(it.generation.as_deref(), Some("V1,V2"));
    let acc = it.accelerator.as_ref().expect("has accelerator");
    assert_eq!(
        (acc.name.as_str(), acc.count, acc.memory_gib),
        ("A10", 0.167, None)
    );
}

#[test]
fn aws_keeps_arch_and_missing_on_demand_price() {
    let csv = "\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch
p5e.48xlarge,H200,8.0,192.0,2048.0,\"{'Gpus': [{'Name': 'H200', 'MemoryInfo': {'SizeInMiB': 144384}}]}\",,18.7,us-east-2,use2-az1,x86_64
";
    let cat = parse_cloud(CloudId::Aws, source(), csv.as_bytes(), None, vec![]).expect("valid");
    assert_eq!(cat.instance_types[0].arch.as_deref(), Some("x86_64"));
    assert_eq!(cat.offers[0].price, None);
    assert_eq!(cat.offers[0].spot_price, Some(18.7));
    let mem = cat.instance_types[0]
        .accelerator
        .as_ref()
        .and_then(|a| a.memory_gib);
    assert_eq!(mem, Some(141.0));
}

#[test]
fn bad_price_names_file_line_column_and_value() {
    let csv = "\
InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,cheap,0.08
";
    let err =
        parse_cloud(CloudId::Gcp, source(), csv.as_bytes(), None, vec![]).expect_err("bad price");
    assert_eq!(
        err.to_string(),
        "gcp/vms.csv line 2: field 'Price' has value 'cheap': expected a non-negative number or empty"
    );
}

#[test]
fn missing_column_is_reported_with_the_header() {
    let csv = "InstanceType,vCPUs\nx,1\n";
    let err = parse_cloud(CloudId::Gcp, source(), csv.as_bytes(), None, vec![])
        .expect_err("missing columns");
    assert_eq!(
        err.to_string(),
        "gcp/vms.csv: missing column 'AcceleratorName' (header has: InstanceType,vCPUs)"
    );
}

#[test]
fn an_instance_type_whose_shape_changes_between_rows_is_rejected() {
    let csv = "\
InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.08
n1-standard-8,16.0,30.0,,,,us-central1,us-central1-b,0.38,0.08
";
    let err = parse_cloud(CloudId::Gcp, source(), csv.as_bytes(), None, vec![])
        .expect_err("inconsistent");
    assert_eq!(
        err.to_string(),
        "gcp/vms.csv line 3: instance type 'n1-standard-8' has vCPUs '16' here but '8' on an earlier row"
    );
}

#[test]
fn images_accept_rows_without_base_image_id() {
    let csv = "\
Tag,Region,OS,OSVersion,ImageId,CreationDate,BaseImageId
skypilot:gpu-ubuntu-2204,us-east-1,ubuntu,22.04,ami-0123,20240101
skypilot:cpu-debian-10,,debian,10,projects/x/global/images/y,20221215,
";
    let images = parse_images("aws/images.csv", csv.as_bytes()).expect("valid");
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(images[1].region, None);
    assert_eq!(images[1].image_id, "projects/x/global/images/y");
}

#[test]
fn accelerator_names_come_from_the_first_column() {
    let csv = "AcceleratorName,Clouds\nA10,\"['Azure', 'Lambda']\"\nGaudi HL-205,\"['AWS']\"\n";
    assert_eq!(
        parse_accelerator_names(csv.as_bytes()).expect("valid"),
        ["A10", "Gaudi HL-205"]
    );
}
