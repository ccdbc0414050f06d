//! Credentials and per-region EC2 clients.
//!
//! Credentials are looked up once, on first use: the OS keychain (what `sky` stored or imported),
//! else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`. They go straight into
//! the SDK's [`Credentials`], whose `Debug` redacts the secret; nothing here logs or formats them.
//! This module does not decide what to call; it only hands out configured clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use sky_core::cloud::CloudId;
use sky_core::credentials::{AwsCredentials, CloudCredentials, CredentialStore, Secret};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};

/// Where the provider gets its credentials.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Keychain first, then the environment (what the front ends use).
    Platform,
    /// Exactly these (tests, or a caller that already holds them).
    Fixed(AwsCredentials),
}

/// Credentials as found, or why there are none (exactly what is missing, never a value).
#[derive(Debug, Clone)]
pub enum Lookup {
    Found {
        creds: AwsCredentials,
        from: &'static str,
    },
    Missing(String),
}

/// Finds credentials per `source`; does not touch the network.
pub fn lookup(source: &CredentialSource) -> Lookup {
    match source {
        CredentialSource::Fixed(c) => Lookup::Found {
            creds: c.clone(),
            from: "given",
        },
        CredentialSource::Platform => {
            let keychain = match CredentialStore::platform_entry(CloudId::Aws) {
                Ok(CloudCredentials::Aws(c)) => {
                    return Lookup::Found {
                        creds: c,
                        from: "keychain",
                    };
                }
                Ok(_) => "no AWS entry in the keychain".to_owned(),
                Err(why) => why,
            };
            from_env(|k| std::env::var(k).ok(), &keychain)
        }
    }
}

/// The environment's credentials; `keychain` says why the keychain had none (for the message).
pub fn from_env(var: impl Fn(&str) -> Option<String>, keychain: &str) -> Lookup {
    let id = var("AWS_ACCESS_KEY_ID").filter(|v| !v.trim().is_empty());
    let secret = var("AWS_SECRET_ACCESS_KEY").filter(|v| !v.trim().is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Lookup::Found {
            creds: AwsCredentials {
                access_key_id: id.trim().to_owned(),
                secret_access_key: Secret::new(secret.trim()),
                session_token: var("AWS_SESSION_TOKEN")
                    .filter(|v| !v.trim().is_empty())
                    .map(|t| Secret::new(t.trim())),
            },
            from: "environment",
        },
        (Some(_), None) => Lookup::Missing(format!(
            "{keychain}, and AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)"
        )),
        (None, Some(_)) => Lookup::Missing(format!(
            "{keychain}, and AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)"
        )),
        (None, None) => Lookup::Missing(format!(
            "{keychain}, and neither AWS_ACCESS_KEY_ID nor AWS_SECRET_ACCESS_KEY is set; \
             add them on the desktop app's Credentials page (it can import ~/.aws) or set them"
        )),
    }
}

/// Lazily built EC2 clients, one per region, sharing one credential lookup.
pub struct Clients {
    source: CredentialSource,
    endpoint: Option<String>,
    lookup: OnceLock<Lookup>,
    by_region: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
}

impl Clients {
    pub fn new(source: CredentialSource, endpoint: Option<String>) -> Self {
        Clients {
            source,
            endpoint,
            lookup: OnceLock::new(),
            by_region: Mutex::new(HashMap::new()),
        }
    }

    pub fn lookup(&self) -> &Lookup {
        self.lookup.get_or_init(|| lookup(&self.source))
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The client for `region`, or an auth error saying what is missing.
    pub fn get(&self, region: &str) -> Result<aws_sdk_ec2::Client, ProvisionError> {
        let creds = match self.lookup() {
            Lookup::Found { creds, .. } => creds,
            Lookup::Missing(why) => {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Auth,
                    format!("no AWS credentials: {why}"),
                ));
            }
        };
        let mut map = self
            .by_region
            .lock()
            .map_err(|_| ProvisionError::fatal("AWS client cache poisoned by a panic"))?;
        if let Some(c) = map.get(region) {
            return Ok(c.clone());
        }
        let mut builder = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(sdk_credentials(creds))
            // Reads and cleanup may retry; calls whose errors drive failover override this.
            .retry_config(sdk_retries())
            .timeout_config(sdk_timeouts());
        if let Some(url) = &self.endpoint {
            builder = builder.endpoint_url(url.clone());
        }
        let client = aws_sdk_ec2::Client::from_conf(builder.build());
        map.insert(region.to_owned(), client.clone());
        Ok(client)
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

pub type SharedClients = Arc<Clients>;

/// The user's credentials as every AWS SDK client here takes them (EC2, S3 and STS share the
/// smithy credential type).
pub(crate) fn sdk_credentials(creds: &AwsCredentials) -> Credentials {
    Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose().to_owned(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "sky",
    )
}

/// Three attempts in all: enough for a throttled or dropped call, few enough that a dead
/// endpoint is reported within a minute or two.
pub(crate) fn sdk_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// A connect that hangs or an attempt that never answers is an error, not a stuck launch.
pub(crate) fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_environment_says_which_variable() {
        let only_id = |k: &str| (k == "AWS_ACCESS_KEY_ID").then(|| "AKIAEXAMPLEEXAMPLE".to_owned());
        match from_env(only_id, "no keychain") {
            Lookup::Missing(why) => {
                assert!(why.contains("AWS_SECRET_ACCESS_KEY is not set"), "{why}")
            }
            Lookup::Found { .. } => panic!("half the credentials must not count"),
        }
        match from_env(|_| None, "no AWS entry in the keychain") {
            Lookup::Missing(why) => {
                assert!(why.starts_with("no AWS entry in the keychain"), "{why}");
                assert!(why.contains("neither AWS_ACCESS_KEY_ID"), "{why}");
            }
            Lookup::Found { .. } => panic!("nothing set must be missing"),
        }
    }

    #[test]
    fn environment_credentials_are_trimmed_and_token_optional() {
        let vars = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some(" AKIAEXAMPLEEXAMPLE ".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("made-up-secret".to_owned()),
            _ => None,
        };
        match from_env(vars, "") {
            Lookup::Found { creds, from } => {
                assert_eq!(from, "environment");
                assert_eq!(creds.access_key_id, "AKIAEXAMPLEEXAMPLE");
                assert!(creds.session_token.is_none());
                assert!(!format!("{creds:?}").contains("made-up-secret"));
            }
            Lookup::Missing(why) => panic!("{why}"),
        }
    }
}
