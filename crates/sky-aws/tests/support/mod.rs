//! Test support for the AWS provider: the moto server and fault proxy come from `sky_testkit::moto`;
//! what is here builds providers, launchables and credentials for them, and lists what EC2 holds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sky_aws::{AwsOptions, AwsProvider, CredentialSource, Throttle};
use sky_core::cloud::CloudId;
use sky_core::credentials::{AwsCredentials, Secret};
use sky_core::provision::Launchable;
pub use sky_testkit::moto::*;

/// Made-up credentials moto accepts (it checks nothing).
pub fn test_credentials() -> AwsCredentials {
    let (access_key_id, secret) = made_up_credentials();
    AwsCredentials {
        access_key_id,
        secret_access_key: Secret::new(secret),
        session_token: None,
    }
}

/// A plain S3 client on moto in `region` (path-style), as a user's own tools would reach it.
pub fn s3_client(moto: &Moto, region: &str) -> aws_sdk_s3::Client {
    let creds = test_credentials();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_owned()))
            .endpoint_url(moto.url())
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.expose().to_owned(),
                None,
                None,
                "test",
            ))
            .build(),
    )
}

/// The real `sky` binary next to this test executable (built by the workspace build with the
/// `aws` feature, as the test command builds it).
pub fn sky_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = dir.join(format!("sky{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p sky-cli`)",
        bin.display()
    );
    bin
}

pub const TEST_REGIONS: [&str; 3] = ["us-east-1", "us-east-2", "us-west-2"];

/// A Sky home with the SSH public key the launch imports.
pub fn sky_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let ssh = dir.path().join("ssh");
    std::fs::create_dir_all(&ssh).expect("ssh dir");
    std::fs::write(
        ssh.join("sky-key.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr8H8G1mBuTRjDEOk8a+qW2jY4cNNtWmWd0Uq7q5Zrg sky@test\n",
    )
    .expect("write key");
    dir
}

pub fn options(home: &Path, endpoint: &str) -> AwsOptions {
    let mut o = AwsOptions::new(home);
    o.endpoint_url = Some(endpoint.to_owned());
    o.credentials = CredentialSource::Fixed(test_credentials());
    o.regions = Some(TEST_REGIONS.iter().map(|s| (*s).to_owned()).collect());
    o.image_id = Some("ami-0123456789abcdef0".into());
    o.disk_gib = 20;
    o.poll_interval = Duration::from_millis(50);
    o.wait_timeout = Duration::from_secs(30);
    o.throttle = Throttle {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        retries: 4,
    };
    o
}

pub fn provider(home: &Path, endpoint: &str) -> AwsProvider {
    AwsProvider::new(options(home, endpoint))
}

pub fn launchable(region: &str, zone: Option<&str>, itype: &str, spot: bool) -> Launchable {
    Launchable {
        cloud: CloudId::Aws,
        region: region.into(),
        zone: zone.map(str::to_owned),
        instance_type: itype.into(),
        use_spot: spot,
        vcpus: 2.0,
        memory_gib: 8.0,
        accelerators: None,
        hourly_price: 0.1,
    }
}

/// Every live Sky-tagged instance (any owner) in the test regions, straight from EC2 (not through
/// the provider's own bookkeeping): what "nothing left behind" is checked against.
pub async fn live_tagged(p: &AwsProvider) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for region in TEST_REGIONS {
        let client = p.client(region).expect("client");
        for n in sky_aws::ec2::describe(&client, sky_aws::ec2::Scope::AnyOwner)
            .await
            .expect("describe")
        {
            if n.alive() {
                out.push((region.to_owned(), n.instance_id));
            }
        }
    }
    out
}

/// Every live instance in the test regions, whoever made it (Sky, SkyPilot, anyone), by id.
pub async fn live_any(p: &AwsProvider) -> Vec<String> {
    let mut out = Vec::new();
    for region in TEST_REGIONS {
        let client = p.client(region).expect("client");
        let mut pages = client.describe_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            for r in page.expect("describe").reservations() {
                for i in r.instances() {
                    let alive = !matches!(
                        i.state().and_then(|s| s.name()),
                        Some(
                            aws_sdk_ec2::types::InstanceStateName::Terminated
                                | aws_sdk_ec2::types::InstanceStateName::ShuttingDown
                        )
                    );
                    if alive {
                        out.extend(i.instance_id().map(str::to_owned));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// Instances created straight through EC2 with `tags`, as another tool (SkyPilot) creates them:
/// their ids.
pub async fn create_foreign(
    p: &AwsProvider,
    region: &str,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let client = p.client(region).expect("client");
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(sky_aws::ec2::tag(k, v));
    }
    let out = client
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("run foreign instances");
    out.instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}
