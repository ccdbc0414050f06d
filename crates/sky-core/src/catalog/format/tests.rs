use super::*;
use crate::catalog::v8csv;

fn sample() -> CloudCatalog {
    let mut cat = v8csv::parse_cloud(
        CloudId::Gcp,
        CatalogSource {
            description: "sample".into(),
            data_date: "2026-05-20".into(),
            partial_coverage: Some("only a few rows".into()),
        },
        crate::catalog::v8csv::tests::GCP_VMS.as_bytes(),
        None,
        vec![
            AcceleratorHostRule {
                accelerator: Some("A100".into()),
                count: 1.0,
                host: HostSpec::InstanceTypes(vec!["a2-highgpu-1g".into()]),
            },
            AcceleratorHostRule {
                accelerator: None,
                count: 2.0,
                host: HostSpec::Family {
                    family_prefixes: vec!["n1-standard".into(), "n1-highmem".into()],
                    min_vcpus: 16.0,
                    min_memory_gib: 64.0,
                },
            },
        ],
    )
    .expect("valid sample");
    cat.images.push(Image {
        tag: "skypilot:gpu-debian-11".into(),
        region: None,
        os: "debian".into(),
        os_version: "11".into(),
        image_id: "projects/p/global/images/i".into(),
        creation_date: "20240101".into(),
    });
    cat
}

#[test]
fn round_trip_keeps_every_field() {
    let cat = sample();
    let decoded = decode(&encode(&cat)).expect("decodes");
    assert_eq!(decoded.cloud, cat.cloud);
    assert_eq!(decoded.source, cat.source);
    assert_eq!(decoded.regions, cat.regions);
    assert_eq!(decoded.zones, cat.zones);
    assert_eq!(decoded.instance_types, cat.instance_types);
    assert_eq!(decoded.offers, cat.offers);
    assert_eq!(decoded.attachable_accelerators, cat.attachable_accelerators);
    assert_eq!(decoded.host_rules, cat.host_rules);
    assert_eq!(decoded.images, cat.images);
}

#[test]
fn encoding_is_deterministic() {
    assert_eq!(encode(&sample()), encode(&sample()));
}

#[test]
fn other_format_versions_are_rejected_with_a_clear_error() {
    let mut bytes = encode(&sample());
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = decode(&bytes).expect_err("version mismatch");
    assert_eq!(
        err,
        DecodeError::VersionMismatch {
            found: FORMAT_VERSION + 1,
            expected: FORMAT_VERSION
        }
    );
    assert!(
        err.to_string().contains("run `sky catalog update`"),
        "{err}"
    );
}

#[test]
fn foreign_and_truncated_bytes_are_rejected() {
    assert_eq!(
        decode(b"id,name\n1,x\n").expect_err("csv"),
        DecodeError::BadMagic
    );
    let bytes = encode(&sample());
    for cut in [12, bytes.len() / 2, bytes.len() - 1] {
        let err = decode(&bytes[..cut]).expect_err("truncated");
        assert!(matches!(err, DecodeError::Corrupt(_)), "cut {cut}: {err:?}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode(&longer).expect_err("trailing"),
        DecodeError::Corrupt("1 trailing bytes".into())
    );
}
