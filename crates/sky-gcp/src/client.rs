//! Credentials, settings and the Compute Engine clients.
//!
//! Credentials are looked up once, on first use: the OS keychain (what `sky` stored or imported),
//! else application-default credentials ([`crate::adc`]: the file `GOOGLE_APPLICATION_CREDENTIALS`
//! names, else gcloud's own, of any kind it writes). They go straight into `google-cloud-auth`,
//! which signs its own JWTs or exchanges refresh tokens; nothing here logs or formats them. This
//! module does not decide what to call; it only hands out configured clients.

use std::sync::OnceLock;
use std::time::Duration;

use google_cloud_compute_v1::client::{Firewalls, Instances, Networks, Subnetworks};
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use sky_core::cloud::CloudId;
use sky_core::config::SkyConfig;
use sky_core::credentials::{CloudCredentials, CredentialStore, GcpCredentials, Secret};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};
use tokio::sync::OnceCell;

use crate::adc::{self, AdcKind};

/// Where the provider gets its credentials.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Keychain first, then application-default credentials (what the front ends use).
    Platform,
    /// Exactly these (tests, or a caller that already holds them).
    Fixed(GcpCredentials),
}

/// Credentials as found, or why there are none (exactly what is missing, never a value).
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Found),
    Missing(String),
}

/// Credentials that apply: the JSON `google-cloud-auth` builds from, and what they are.
#[derive(Debug, Clone)]
pub struct Found {
    pub json: Secret,
    pub kind: AdcKind,
    pub project: String,
    /// Said in `sky check`: `keychain`, `gcloud application-default login (path), gcloud user login`.
    pub from: String,
}

impl Found {
    fn service_account(creds: &GcpCredentials, from: &str) -> Self {
        Found {
            json: creds.service_account_json.clone(),
            kind: AdcKind::ServiceAccount,
            project: creds.project_id.clone(),
            from: from.to_owned(),
        }
    }
}

/// Finds credentials per `source`; does not touch the network.
pub fn lookup(source: &CredentialSource) -> Lookup {
    match source {
        CredentialSource::Fixed(c) => Lookup::Found(Found::service_account(c, "given")),
        CredentialSource::Platform => {
            let keychain = match CredentialStore::platform_entry(CloudId::Gcp) {
                Ok(CloudCredentials::Gcp(c)) => {
                    return Lookup::Found(Found::service_account(&c, "keychain"));
                }
                Ok(_) => "no GCP entry in the keychain".to_owned(),
                Err(why) => why,
            };
            from_adc(adc::locate(), &keychain)
        }
    }
}

/// Credentials from an application-default credentials file; `keychain` says why the keychain
/// had none.
pub fn from_adc(file: Option<(std::path::PathBuf, &'static str)>, keychain: &str) -> Lookup {
    let Some((path, named_by)) = file else {
        return Lookup::Missing(format!(
            "{keychain}, GOOGLE_APPLICATION_CREDENTIALS is not set and gcloud has no \
             application-default login; add a service account on the desktop app's Credentials \
             page, point GOOGLE_APPLICATION_CREDENTIALS at a key file, or run \
             `gcloud auth application-default login`"
        ));
    };
    match adc::read(&path, named_by) {
        Ok(a) => Lookup::Found(Found {
            json: a.json,
            kind: a.kind,
            project: a.project,
            from: a.from,
        }),
        Err(why) => Lookup::Missing(format!("{keychain}, and {why}")),
    }
}

/// The `gcp:` section of `config.yaml` that this provider reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Compute Engine API root (a local fake in tests); `None` is Google's.
    pub endpoint: Option<String>,
    /// First wait between polls of an operation or of booting instances; later waits grow.
    pub poll_interval: Duration,
    /// Longest `wait_instances` waits for every node to run.
    pub boot_timeout: Duration,
    /// `gcp.vpc_name`, `gcp.use_internal_ips`, `gcp.ssh_proxy_command`.
    pub network: sky_core::config::CloudNetwork,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: None,
            poll_interval: Duration::from_secs(1),
            boot_timeout: Duration::from_secs(600),
            network: Default::default(),
        }
    }
}

impl Settings {
    /// Reads `gcp.endpoint_url`, `gcp.poll_interval_ms` and `gcp.boot_timeout_secs`; a value of the
    /// wrong type is an error naming the key.
    pub fn from_config(config: &SkyConfig) -> Result<Settings, String> {
        let mut s = Settings {
            network: config.network(sky_core::cloud::CloudId::Gcp),
            ..Settings::default()
        };
        let Some(section) = config.other.get("gcp") else {
            return Ok(s);
        };
        let Some(map) = section.as_object() else {
            return Err(format!("gcp: expected a mapping, got {section}"));
        };
        if let Some(v) = map.get("endpoint_url") {
            let url = v
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| format!("gcp.endpoint_url: expected an http(s) URL, got {v}"))?;
            s.endpoint = Some(url.trim_end_matches('/').to_owned());
        }
        if let Some(v) = map.get("poll_interval_ms") {
            let ms = v
                .as_u64()
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or_else(|| {
                    format!("gcp.poll_interval_ms: expected 1 to 60000 milliseconds, got {v}")
                })?;
            s.poll_interval = Duration::from_millis(ms);
        }
        if let Some(v) = map.get("boot_timeout_secs") {
            let secs = v.as_u64().filter(|s| *s >= 1).ok_or_else(|| {
                format!("gcp.boot_timeout_secs: expected a positive number of seconds, got {v}")
            })?;
            s.boot_timeout = Duration::from_secs(secs);
        }
        Ok(s)
    }
}

/// The Compute Engine clients of one project, built on first use.
pub struct Clients {
    source: CredentialSource,
    settings: Settings,
    lookup: OnceLock<Lookup>,
    built: OnceCell<Built>,
}

/// What one successful credential lookup yields.
#[derive(Clone)]
pub struct Built {
    pub project: String,
    pub instances: Instances,
    pub firewalls: Firewalls,
    pub networks: Networks,
    pub subnetworks: Subnetworks,
}

impl Clients {
    pub fn new(source: CredentialSource, settings: Settings) -> Self {
        Clients {
            source,
            settings,
            lookup: OnceLock::new(),
            built: OnceCell::new(),
        }
    }

    pub fn lookup(&self) -> &Lookup {
        self.lookup.get_or_init(|| lookup(&self.source))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The clients, or an auth error saying what is missing.
    pub async fn get(&self) -> Result<&Built, ProvisionError> {
        self.built.get_or_try_init(|| self.build()).await
    }

    async fn build(&self) -> Result<Built, ProvisionError> {
        let found = match self.lookup() {
            Lookup::Found(found) => found.clone(),
            Lookup::Missing(why) => {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Auth,
                    format!("GCP credentials: {why}"),
                ));
            }
        };
        let json: serde_json::Value = serde_json::from_str(found.json.expose()).map_err(|e| {
            ProvisionError::new(
                ProvisionErrorKind::Auth,
                format!(
                    "GCP credentials from {} are not JSON (line {}, column {})",
                    found.from,
                    e.line(),
                    e.column()
                ),
            )
        })?;
        // One credentials object for every client: they share its token cache, so a user login
        // is exchanged once, not once per client.
        let creds = {
            use google_cloud_auth::credentials::{
                external_account, impersonated, service_account, user_account,
            };
            match found.kind {
                AdcKind::ServiceAccount => service_account::Builder::new(json).build(),
                AdcKind::AuthorizedUser => user_account::Builder::new(json).build(),
                AdcKind::Impersonated => impersonated::Builder::new(json).build(),
                AdcKind::ExternalAccount => external_account::Builder::new(json).build(),
            }
            .map_err(|e| {
                // The builders' messages describe the file's shape, never its contents.
                ProvisionError::new(
                    ProvisionErrorKind::Auth,
                    format!("GCP credentials from {} rejected: {e}", found.from),
                )
            })?
        };
        let interval = self.settings.poll_interval;
        let poll = || {
            ExponentialBackoffBuilder::new()
                .with_initial_delay(interval)
                .with_maximum_delay(interval * 5)
                .with_scaling(1.5)
                .build()
                .map_err(|e| ProvisionError::fatal(format!("GCP polling policy: {e}")))
        };
        let mut ib = Instances::builder()
            .with_credentials(creds.clone())
            .with_polling_backoff_policy(poll()?);
        let mut fb = Firewalls::builder()
            .with_credentials(creds.clone())
            .with_polling_backoff_policy(poll()?);
        let mut nb = Networks::builder().with_credentials(creds.clone());
        let mut sb = Subnetworks::builder().with_credentials(creds);
        if let Some(endpoint) = &self.settings.endpoint {
            ib = ib.with_endpoint(endpoint.clone());
            fb = fb.with_endpoint(endpoint.clone());
            nb = nb.with_endpoint(endpoint.clone());
            sb = sb.with_endpoint(endpoint.clone());
        }
        let instances = ib.build().await.map_err(client_error)?;
        let firewalls = fb.build().await.map_err(client_error)?;
        let networks = nb.build().await.map_err(client_error)?;
        let subnetworks = sb.build().await.map_err(client_error)?;
        Ok(Built {
            project: found.project.clone(),
            instances,
            firewalls,
            networks,
            subnetworks,
        })
    }
}

fn client_error(e: google_cloud_gax::client_builder::Error) -> ProvisionError {
    ProvisionError::new(
        ProvisionErrorKind::Auth,
        format!("cannot build the Compute Engine client: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> SkyConfig {
        SkyConfig::parse(yaml, "test").expect("config parses")
    }

    #[test]
    fn settings_read_the_gcp_section() {
        let s = Settings::from_config(&config(
            "gcp:\n  endpoint_url: http://127.0.0.1:9/\n  poll_interval_ms: 5\n",
        ))
        .expect("valid");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(s.poll_interval, Duration::from_millis(5));
        assert_eq!(
            Settings::from_config(&config("{}")).expect("empty"),
            Settings::default()
        );
    }

    #[test]
    fn bad_settings_name_the_key_and_value() {
        let e = Settings::from_config(&config("gcp:\n  endpoint_url: ftp://x\n"))
            .expect_err("ftp is not http");
        assert!(
            e.contains("gcp.endpoint_url") && e.contains("ftp://x"),
            "{e}"
        );
        let e = Settings::from_config(&config("gcp:\n  poll_interval_ms: 0\n"))
            .expect_err("zero interval");
        assert!(e.contains("gcp.poll_interval_ms"), "{e}");
    }

    #[test]
    fn missing_credentials_say_what_to_do() {
        match from_adc(None, "no GCP entry in the keychain") {
            Lookup::Missing(why) => {
                assert!(why.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{why}");
                assert!(
                    why.contains("gcloud auth application-default login"),
                    "{why}"
                );
                assert!(why.contains("Credentials page"), "{why}");
            }
            Lookup::Found(_) => panic!("nothing to find"),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.json");
        std::fs::write(&path, "{not json").expect("write");
        match from_adc(Some((path, "GOOGLE_APPLICATION_CREDENTIALS")), "k") {
            Lookup::Missing(why) => {
                assert!(why.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{why}");
                assert!(why.contains("is not JSON"), "{why}");
            }
            Lookup::Found(_) => panic!("not a key"),
        }
    }
}
