//! The task's machine settings reach EC2 (against moto through the real SDK): the root volume's
//! size and type, the image, and the security group's ingress rules, read back with
//! DescribeInstances, DescribeVolumes and DescribeSecurityGroups.

mod support;

use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, Filter, VolumeType};
use sky_core::provision::{NodeSettings, Provider, ProvisionErrorKind, ProvisionRequest};
use sky_core::resources::{DiskTier, PortRange};
use support::*;

const IMAGE: &str = "ami-0fedcba987654321f";

fn request(name: &str, settings: NodeSettings) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: name.into(),
        num_nodes: 2,
        launchable: launchable("us-east-1", Some("us-east-1a"), "m5.large", false),
        resume_stopped: false,
        settings,
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}

fn ports(ranges: &[(u16, u16)]) -> Vec<PortRange> {
    ranges
        .iter()
        .map(|&(start, end)| PortRange { start, end })
        .collect()
}

/// The TCP ingress of the cluster's security group (found by the Sky tags it is created with)
/// as (from, to), sorted.
async fn ingress(client: &aws_sdk_ec2::Client, cluster: &str) -> Vec<(i32, i32)> {
    let out = client
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", sky_aws::ec2::TAG_CLUSTER))
                .values(cluster)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(sky_aws::ec2::TAG_OWNER)
                .build(),
        )
        .send()
        .await
        .expect("describe groups");
    let mut rules: Vec<(i32, i32)> = out
        .security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .filter(|p| p.ip_protocol() == Some("tcp"))
        .filter_map(|p| Some((p.from_port()?, p.to_port()?)))
        .collect();
    rules.sort_unstable();
    rules
}

/// (size, type) of the volumes attached to `ids`.
async fn volumes(
    client: &aws_sdk_ec2::Client,
    ids: Vec<String>,
) -> Vec<(Option<i32>, Option<VolumeType>)> {
    let out = client
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .set_values(Some(ids))
                .build(),
        )
        .send()
        .await
        .expect("describe volumes");
    out.volumes()
        .iter()
        .map(|v| (v.size(), v.volume_type().cloned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_image_and_ports_are_what_the_task_asked() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let settings = NodeSettings {
        disk_size_gb: 500,
        disk_tier: Some(DiskTier::High),
        ports: ports(&[(8080, 8080), (9000, 9010)]),
        image_id: Some(IMAGE.into()),
        labels: [
            ("team".to_owned(), "ml-infra".to_owned()),
            ("Name".to_owned(), "trainer".to_owned()),
        ]
        .into(),
        // GCP's choice; EC2 has no such setting and ignores it.
        gvnic: false,
    };
    p.run_instances(&request("tuned", settings.clone()))
        .await
        .expect("launch");
    let info = p.wait_instances("tuned").await.expect("wait");
    let client = p.client("us-east-1").expect("client");

    let ids: Vec<String> = info.nodes.iter().map(|n| n.instance_id.clone()).collect();
    let described = client
        .describe_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .expect("describe instances");
    let images: Vec<&str> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.image_id())
        .collect();
    assert_eq!(images, [IMAGE, IMAGE]);
    // The task's labels are tags on every instance and its volume; a `Name` label replaces the
    // console name Sky would give.
    for instance in described.reservations().iter().flat_map(|r| r.instances()) {
        let tags: std::collections::BTreeMap<&str, &str> = instance
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        assert_eq!(tags.get("team"), Some(&"ml-infra"), "{tags:?}");
        assert_eq!(tags.get("Name"), Some(&"trainer"), "{tags:?}");
        assert!(tags.contains_key("sky-owner"), "{tags:?}");
    }
    let volume_tags = client
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:team")
                .values("ml-infra")
                .build(),
        )
        .send()
        .await
        .expect("describe volumes");
    assert_eq!(
        volume_tags.volumes().len(),
        2,
        "each root volume carries the labels"
    );
    assert_eq!(
        volumes(&client, ids).await,
        [
            (Some(500), Some(VolumeType::Gp3)),
            (Some(500), Some(VolumeType::Gp3))
        ],
        "one 500 GB gp3 root volume per node"
    );
    assert_eq!(
        ingress(&client, "tuned").await,
        [(22, 22), (8080, 8080), (9000, 9010)]
    );

    // A relaunch asking for one more port adds that rule and keeps the others (EC2 refuses a
    // batch holding a rule that exists, so only the new one may be sent).
    let mut more = settings;
    more.ports.push(PortRange {
        start: 7000,
        end: 7000,
    });
    p.run_instances(&request("tuned", more))
        .await
        .expect("relaunch with another port");
    assert_eq!(
        ingress(&client, "tuned").await,
        [(22, 22), (7000, 7000), (8080, 8080), (9000, 9010)]
    );

    p.terminate("tuned").await.expect("terminate");
    assert!(live_tagged(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_ec2_refuses_is_refused_before_anything_is_created() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let settings = NodeSettings {
        labels: [("aws:owner".to_owned(), "me".to_owned())].into(),
        ..NodeSettings::default()
    };
    let err = p
        .run_instances(&request("badlabel", settings))
        .await
        .expect_err("aws: keys are reserved");
    assert!(
        err.to_string().contains("labels: label 'aws:owner: me' cannot be used: AWS reserves tag keys starting with 'aws:'"),
        "{err}"
    );
    assert_eq!(
        err.block_scope(),
        Some(sky_core::provision::BlockScope::Cloud)
    );
    assert!(live_tagged(&p).await.is_empty());
    let client = p.client("us-east-1").expect("client");
    let groups = client
        .describe_security_groups()
        .send()
        .await
        .expect("groups");
    assert!(
        groups
            .security_groups()
            .iter()
            .all(|g| !g.group_name().unwrap_or_default().contains("badlabel")),
        "no security group was made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_tier_is_magnetic_and_a_disk_below_the_images_is_refused() {
    let moto = start_moto().await;
    let home = sky_home();
    let p = provider(home.path(), &moto.url());
    let low = NodeSettings {
        disk_size_gb: 40,
        disk_tier: Some(DiskTier::Low),
        ..NodeSettings::default()
    };
    p.run_instances(&request("low", low)).await.expect("launch");
    let info = p.wait_instances("low").await.expect("wait");
    let client = p.client("us-east-1").expect("client");
    let head = info.nodes[0].instance_id.clone();
    assert_eq!(
        volumes(&client, vec![head]).await,
        [(Some(40), Some(VolumeType::Standard))]
    );
    p.terminate("low").await.expect("terminate");

    // An image cannot boot on a root volume smaller than its snapshot. (moto records a
    // snapshot size of its own rather than the registered one, so it is read back, as Sky does.)
    let image = client
        .register_image()
        .name("sky-test-image")
        .root_device_name("/dev/sda1")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sda1")
                .ebs(EbsBlockDevice::builder().volume_size(40).build())
                .build(),
        )
        .send()
        .await
        .expect("register image");
    let image_id = image.image_id().expect("image id").to_owned();
    let described = client
        .describe_images()
        .image_ids(&image_id)
        .send()
        .await
        .expect("describe image");
    let min = described.images()[0].block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.volume_size())
        .expect("the image's root size");
    assert!(min > 1, "{min}");
    let small = NodeSettings {
        disk_size_gb: u32::try_from(min - 1).expect("positive"),
        image_id: Some(image_id.clone()),
        ..NodeSettings::default()
    };
    let err = p
        .run_instances(&request("small", small))
        .await
        .expect_err("disk below the image");
    assert_eq!(err.kind, ProvisionErrorKind::Fatal);
    assert!(
        err.message.contains(&format!("disk_size {} GB", min - 1))
            && err.message.contains(&image_id),
        "{}",
        err.message
    );
    assert!(live_tagged(&p).await.is_empty());
}
