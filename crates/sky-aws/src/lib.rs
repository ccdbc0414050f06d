//! Sky's AWS provider: EC2 clusters through `aws-sdk-ec2`, behind [`Provider`].
//!
//! A cluster is the set of instances tagged `sky-cluster=<name>` and `sky-owner=<this home's
//! owner id>` (see `sky_core::provision::owner`); every region it was sent to is remembered in
//! `$SKY_HOME/aws/clusters/<name>` (written before launching, so a launch killed half-way is still
//! found) and otherwise searched for. One RunInstances creates every node;
//! ranks are tags. Credentials load lazily ([`client`]); the endpoint can point at an
//! AWS-compatible service or a test server (`aws.endpoint_url` in `config.yaml`).
//!
//! What this crate does not do: choose placements (failover does), keep cluster state (the core's
//! database does) or run anything on the nodes (the SSH runtime and agent do).

pub mod chain;
pub mod client;
pub mod ec2;
pub mod errors;
pub mod network;
mod provider;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sky_core::config::{Paths, SkyConfig};
use sky_core::provision::HomeOwner;

pub use client::CredentialSource;
pub use ec2::Throttle;
pub use provider::AwsProvider;

/// Ubuntu images (Sky's default) log in as `ubuntu`.
pub const DEFAULT_SSH_USER: &str = "ubuntu";

/// The region `verify` asks, and where `DescribeRegions` is cheap and always enabled.
pub const HOME_REGION: &str = "us-east-1";

/// How an [`AwsProvider`] is set up.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    pub sky_home: PathBuf,
    pub endpoint_url: Option<String>,
    pub credentials: CredentialSource,
    /// Regions searched for clusters Sky does not know (`list_clusters`) and for clusters whose
    /// region was not recorded; `None`: every AWS region in the catalog.
    pub regions: Option<Vec<String>>,
    /// AMI used instead of the catalog's per-region image (AWS-compatible clouds, tests).
    pub image_id: Option<String>,
    /// Boot disk size for tasks that leave `disk_size` at its default (`aws.disk_size`).
    pub disk_gib: i32,
    pub poll_interval: Duration,
    /// Give up waiting for nodes to run (or stop, or terminate) after this long.
    pub wait_timeout: Duration,
    pub throttle: Throttle,
    /// Login name on the nodes (`aws.ssh_user`); the default images log in as `ubuntu`, custom
    /// images may not (`ec2-user`). Used only to log in: the key pair is the same.
    pub ssh_user: String,
    /// Whose resources this provider tags and acts on: by default the owner id in the Sky
    /// home's state database.
    pub owner: HomeOwner,
    /// `aws.vpc_name`, `security_group_name`, `use_internal_ips`, `ssh_proxy_command`.
    pub network: sky_core::config::CloudNetwork,
}

impl AwsOptions {
    pub fn new(sky_home: impl Into<PathBuf>) -> Self {
        let sky_home = sky_home.into();
        AwsOptions {
            owner: HomeOwner::of_home(&sky_home),
            sky_home,
            endpoint_url: None,
            credentials: CredentialSource::platform(),
            regions: None,
            image_id: None,
            // SkyPilot's default disk size.
            disk_gib: 256,
            poll_interval: Duration::from_secs(2),
            wait_timeout: Duration::from_secs(600),
            throttle: Throttle::default(),
            ssh_user: DEFAULT_SSH_USER.to_owned(),
            network: sky_core::config::CloudNetwork::default(),
        }
    }

    /// Reads the `aws:` section of `config.yaml`: `endpoint_url`, `regions`, `profile` (the AWS
    /// CLI profile to sign in with when the keychain and the environment hold no keys),
    /// `image_id`, `disk_size`. Values of the wrong type are ignored with a warning, never guessed.
    pub fn from_config(paths: &Paths, config: &SkyConfig) -> Self {
        let mut options = AwsOptions::new(paths.sky_home());
        if let Some(user) = config.ssh_user(sky_core::cloud::CloudId::Aws) {
            options.ssh_user = user.to_owned();
        }
        options.network = config.network(sky_core::cloud::CloudId::Aws);
        let Some(section) = config.other.get("aws").and_then(|v| v.as_object()) else {
            return options;
        };
        for (key, value) in section {
            match key.as_str() {
                "endpoint_url" => match value.as_str() {
                    Some(url) if !url.trim().is_empty() => {
                        options.endpoint_url = Some(url.trim().to_owned());
                    }
                    _ => warn_ignored(key, "a URL"),
                },
                "regions" => match value.as_array() {
                    Some(list) => {
                        options.regions = Some(
                            list.iter()
                                .filter_map(|r| r.as_str().map(str::to_owned))
                                .collect(),
                        );
                    }
                    None => warn_ignored(key, "a list of region names"),
                },
                "profile" => match value.as_str() {
                    Some(name) if !name.trim().is_empty() => {
                        if let CredentialSource::Platform { profile } = &mut options.credentials {
                            *profile = Some(name.trim().to_owned());
                        }
                    }
                    _ => warn_ignored(key, "the name of a profile in ~/.aws/config"),
                },
                "image_id" => match value.as_str() {
                    Some(id) => options.image_id = Some(id.to_owned()),
                    None => warn_ignored(key, "an AMI id"),
                },
                "disk_size" => match value.as_i64().and_then(|v| i32::try_from(v).ok()) {
                    Some(gib) if gib > 0 => options.disk_gib = gib,
                    _ => warn_ignored(key, "a positive number of GiB"),
                },
                // Read and checked by the core's config parser.
                "ssh_user"
                | "labels"
                | "instance_tags"
                | "vpc_name"
                | "security_group_name"
                | "use_internal_ips"
                | "ssh_proxy_command" => {}
                _ => tracing::debug!(key = %key, "unknown aws setting in config.yaml; ignored"),
            }
        }
        options
    }
}

fn warn_ignored(key: &str, expected: &str) {
    tracing::warn!(key = %format!("aws.{key}"), "config.yaml: expected {expected}; setting ignored");
}

/// The S3 store for a front end's registry, with the provider's credentials and endpoint.
pub fn s3_store(options: &AwsOptions) -> Arc<dyn sky_core::storage::ObjectStore> {
    Arc::new(storage::S3Store::new(
        options.credentials.clone(),
        options.endpoint_url.clone(),
    ))
}
