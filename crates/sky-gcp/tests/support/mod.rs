//! What the GCP provider's tests share: a provider over the Compute Engine fake with a
//! service-account key made up for the run, and the n2-standard-8 placement they launch.
#![allow(dead_code)] // each test binary uses part of it

use std::path::Path;
use std::time::Duration;

use sky_core::cloud::CloudId;
use sky_core::config::CloudNetwork;
use sky_core::credentials::{GcpCredentials, Secret};
use sky_core::provision::Launchable;
use sky_gcp::GcpProvider;
use sky_gcp::client::{CredentialSource, Settings};
use sky_testkit::gcp_fake::{self as fake, FakeGce};

/// The project of the fake's made-up service account.
pub const PROJECT: &str = "sky-test";

/// A service-account key made up for this run (never committed; see the fake).
pub fn service_account() -> GcpCredentials {
    GcpCredentials {
        service_account_json: Secret::new(fake::service_account_json(PROJECT)),
        project_id: PROJECT.into(),
    }
}

/// A provider of the Sky home `home` talking to `fake`, in the default network.
pub fn provider_over(fake: &FakeGce, home: &Path) -> GcpProvider {
    provider_with_network(fake, home, CloudNetwork::default())
}

/// [`provider_over`] with `gcp.vpc_name`, `use_internal_ips` and `ssh_proxy_command` set.
pub fn provider_with_network(fake: &FakeGce, home: &Path, network: CloudNetwork) -> GcpProvider {
    GcpProvider::new(
        home.to_path_buf(),
        CredentialSource::Fixed(service_account()),
        Settings {
            endpoint: Some(fake.url()),
            poll_interval: Duration::from_millis(5),
            boot_timeout: Duration::from_secs(10),
            network,
        },
    )
}

/// An on-demand n2-standard-8 in `zone`.
pub fn n2_in(zone: &str) -> Launchable {
    Launchable {
        cloud: CloudId::Gcp,
        region: zone.rsplit_once('-').map_or(zone, |(r, _)| r).into(),
        zone: Some(zone.into()),
        instance_type: "n2-standard-8".into(),
        use_spot: false,
        vcpus: 8.0,
        memory_gib: 32.0,
        accelerators: None,
        hourly_price: 0.39,
    }
}
