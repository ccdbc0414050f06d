//! Test harness: a fake ARM, a temp SKY_HOME, and a provider pointed at both.

#![allow(dead_code)]

use std::sync::Arc;

use sky_azure::{AzureProvider, CredentialSource};
use sky_core::cloud::CloudId;
use sky_core::config::{Paths, SkyConfig};
use sky_core::credentials::{AzureCredentials, Secret};
use sky_core::provision::{Launchable, ProvisionRequest};

use sky_testkit::azure_fake::{self as fake, FakeArm};

pub struct Env {
    pub fake: FakeArm,
    pub home: tempfile::TempDir,
    pub provider: Arc<AzureProvider>,
    /// The client secret the fake accepts, for more providers over it.
    pub secret: String,
}

/// A client secret made up at run time, so no credential-looking constant lives in the repo.
pub fn secret() -> String {
    format!(
        "fake-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

pub async fn env() -> Env {
    let secret = secret();
    let fake = FakeArm::start(&secret).await;
    fake.set_operation_pace(1, 0);
    let home = tempfile::tempdir().expect("temp SKY_HOME");
    // No key yet: the provider creates Sky's user key pair on first launch, as in real use.
    let provider = provider_for(&fake, &home, &secret);
    Env {
        fake,
        home,
        provider,
        secret,
    }
}

pub fn provider_for(fake: &FakeArm, home: &tempfile::TempDir, secret: &str) -> Arc<AzureProvider> {
    let paths = Paths::with_home(home.path());
    let config = SkyConfig::parse(
        &format!(
            "azure:\n  endpoint_url: {0}\n  authority_host: {0}/\n",
            fake.url()
        ),
        "config.yaml",
    )
    .expect("config");
    let creds = AzureCredentials {
        tenant_id: fake::TENANT.into(),
        client_id: fake::CLIENT.into(),
        client_secret: Secret::new(secret),
        subscription_id: fake::SUBSCRIPTION.into(),
    };
    let mut settings =
        sky_azure::settings(&paths, &config, CredentialSource::Fixed(Arc::new(creds)));
    settings.user = "tester".into();
    Arc::new(AzureProvider::new(settings))
}

pub fn launchable(region: &str, zone: Option<&str>, spot: bool) -> Launchable {
    Launchable {
        cloud: CloudId::Azure,
        region: region.into(),
        zone: zone.map(str::to_owned),
        instance_type: "Standard_D2s_v5".into(),
        use_spot: spot,
        vcpus: 2.0,
        memory_gib: 8.0,
        accelerators: None,
        hourly_price: 0.096,
    }
}

pub fn request(cluster: &str, nodes: u32, l: Launchable) -> ProvisionRequest {
    ProvisionRequest {
        cluster_name: cluster.into(),
        num_nodes: nodes,
        launchable: l,
        resume_stopped: false,
        settings: Default::default(),
        launch_id: sky_core::provision::owner::new_launch_id().expect("launch id"),
    }
}
