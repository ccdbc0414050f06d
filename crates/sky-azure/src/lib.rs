//! Sky's Azure provider: clusters as resource groups of VMs, created through
//! `azure_mgmt_compute` 0.21 (VMs) and plain Azure Resource Manager REST (resource groups,
//! network), with our own polling of long-running operations.
//!
//! # Layout
//! - [`provider`]: the [`sky_core::provision::Provider`] implementation.
//! - [`cluster`]: names, tags and request bodies of a cluster's resources; reading VMs back.
//! - [`arm`]: the ARM client and the `Azure-AsyncOperation` / `Location` poller.
//! - [`auth`]: service-principal credentials and client-credentials tokens.
//! - [`autostop`]: the head's managed identity, its role while autostop is set, and its hook.
//! - [`errors`]: ARM error codes to failover's error kinds.
//!
//! What this crate does not do: rank placements, retry elsewhere (the core's failover does), or
//! run jobs on the nodes (the agent does, reached over SSH).

pub mod arm;
pub mod auth;
pub mod autostop;
pub mod cluster;
pub mod errors;
pub mod provider;

use std::path::Path;
use std::sync::Arc;

use sky_core::config::{Paths, SkyConfig};
use sky_core::provision::{Provider, ProvisionError};

pub use auth::CredentialSource;
pub use provider::{AzureProvider, Settings};

/// The Azure provider for a front end's registry. `azure.endpoint_url` and
/// `azure.authority_host` in the config override Azure's public endpoints (tests point them at a
/// local fake); credentials are read lazily from the keychain, then the `AZURE_*` variables.
pub fn provider(paths: &Paths, config: &SkyConfig) -> Arc<dyn Provider> {
    Arc::new(AzureProvider::new(settings(
        paths,
        config,
        CredentialSource::KeychainThenEnv,
    )))
}

/// The settings [`provider`] uses, with the credential source given (tests pass fixed ones).
pub fn settings(paths: &Paths, config: &SkyConfig, credentials: CredentialSource) -> Settings {
    let mut config_error = None;
    let mut read = |key: &str, default: &str| -> String {
        let Some(section) = config.other.get("azure") else {
            return default.to_owned();
        };
        match section.get(key) {
            None | Some(serde_json::Value::Null) => default.to_owned(),
            Some(serde_json::Value::String(s))
                if s.starts_with("http://") || s.starts_with("https://") =>
            {
                s.trim_end_matches('/').to_owned()
            }
            Some(other) => {
                config_error = Some(format!(
                    "config azure.{key}: expected an http(s) URL, got {other}"
                ));
                default.to_owned()
            }
        }
    };
    let endpoint = read("endpoint_url", provider::DEFAULT_ENDPOINT);
    let authority_host = read("authority_host", provider::DEFAULT_AUTHORITY_HOST);
    Settings {
        endpoint,
        authority_host,
        sky_home: paths.sky_home(),
        owner: sky_core::provision::HomeOwner::of_home(paths.sky_home()),
        user: current_user(),
        credentials,
        ssh_user: config
            .ssh_user(sky_core::cloud::CloudId::Azure)
            .unwrap_or(provider::DEFAULT_SSH_USER)
            .to_owned(),
        config_error,
    }
}

/// The local user name, as Sky's generated cluster names spell it.
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Sky's user public key (`$SKY_HOME/ssh/sky-key.pub`), installed on every node; the SSH runtime
/// creates the pair on first need.
pub fn user_public_key(sky_home: &Path) -> Result<String, ProvisionError> {
    sky_core::ssh::keys::load_or_create(sky_home)
        .and_then(|k| k.public_openssh())
        .map_err(|e| ProvisionError::fatal(format!("Sky's SSH key: {e}")))
}
