//! Credentials and per-region EC2 clients.
//!
//! Credentials are looked up once, on first use: the OS keychain (what `sky` stored or imported),
//! else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else what the AWS
//! CLI would use ([`crate::chain`]: a profile with SSO, an assumed role or `credential_process`,
//! web identity, the container or instance role). Static keys go straight into the SDK's
//! [`Credentials`], whose `Debug` redacts the secret; the others stay behind `aws-config`'s
//! providers, which refresh them. Nothing here logs or formats a secret.
//! This module does not decide what to call; it only hands out configured clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{
    BehaviorVersion, Credentials, IdentityCache, ProvideCredentials, Region,
    SharedCredentialsProvider, SharedIdentityCache,
};
use sky_core::cloud::CloudId;
use sky_core::credentials::{AwsCredentials, CloudCredentials, CredentialStore, Secret};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};

use crate::chain::{self, SsoLogin, SsoState};

/// Where the provider gets its credentials.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Keychain first, then the environment's keys, then the AWS CLI's sources (what the front
    /// ends use); `profile` is `aws.profile` from `config.yaml`, which beats `AWS_PROFILE`.
    Platform { profile: Option<String> },
    /// Exactly these (tests, or a caller that already holds them).
    Fixed(AwsCredentials),
}

impl CredentialSource {
    /// Keychain, environment, then the AWS CLI's sources with `AWS_PROFILE`.
    pub fn platform() -> Self {
        CredentialSource::Platform { profile: None }
    }
}

/// Credentials as found, or why there are none (exactly what is missing, never a value).
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Found),
    Missing(String),
}

/// A credential source that applies: static keys, or a provider that resolves them on use.
#[derive(Debug, Clone)]
pub struct Found {
    pub provider: SharedCredentialsProvider,
    /// Said in `sky check`: `keychain (access key …ABCD)`, `AWS profile "work" (AWS SSO, …)`.
    pub from: String,
    /// Set when the source is an SSO login, whose cached token can expire under a running Sky.
    pub sso: Option<SsoLogin>,
    /// One cache for every client built from this source, so that an assumed role or an SSO
    /// exchange happens once per expiry, not once per region.
    cache: SharedIdentityCache,
}

impl Found {
    fn new(provider: SharedCredentialsProvider, from: String, sso: Option<SsoLogin>) -> Self {
        Found {
            provider,
            from,
            sso,
            cache: IdentityCache::lazy().build(),
        }
    }

    fn fixed(creds: &AwsCredentials, from: &str) -> Self {
        let from = format!(
            "{from} (access key …{})",
            sky_core::credentials::key_id_tail(&creds.access_key_id)
        );
        Found::new(
            SharedCredentialsProvider::new(sdk_credentials(creds)),
            from,
            None,
        )
    }

    /// Why calls would fail now, if they would: an SSO login that expired (checked on each use,
    /// since a long-running app outlives the token).
    pub fn logged_out(&self) -> Option<String> {
        match self.sso.as_ref()?.state(SystemTime::now()) {
            SsoState::LoggedOut(why) => Some(why),
            SsoState::Valid { .. } => None,
        }
    }

    /// What `sky check` says: the source, and for SSO until when it holds.
    pub fn describe(&self) -> String {
        match self.sso.as_ref().map(|s| s.state(SystemTime::now())) {
            Some(SsoState::Valid {
                until,
                refreshable: false,
            }) => format!(
                "{}, signed in until {}",
                self.from,
                aws_sdk_ec2::primitives::DateTime::from(until)
                    .fmt(aws_sdk_ec2::primitives::DateTimeFormat::DateTime)
                    .unwrap_or_default()
            ),
            Some(SsoState::Valid {
                refreshable: true, ..
            }) => format!("{}, token refreshed automatically", self.from),
            _ => self.from.clone(),
        }
    }

    pub(crate) fn identity_cache(&self) -> SharedIdentityCache {
        self.cache.clone()
    }

    /// The credentials themselves, resolved now (the nodes' bucket access passes on temporary
    /// ones as they are).
    pub async fn resolve(&self) -> Result<AwsCredentials, String> {
        if let Some(why) = self.logged_out() {
            return Err(why);
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| credentials_failure(&self.from, &e))?;
        Ok(AwsCredentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Secret::new(c.secret_access_key()),
            session_token: c.session_token().map(Secret::new),
        })
    }
}

/// A provider's failure as the user can act on it: the source and the SDK's own reason (which
/// names files and profiles, never secrets).
pub(crate) fn credentials_failure(
    from: &str,
    e: &aws_credential_types::provider::error::CredentialsError,
) -> String {
    format!(
        "credentials from {from} could not be loaded: {}",
        aws_sdk_ec2::error::DisplayErrorContext(e)
    )
}

/// The credential provider's failure behind an SDK error, if that is what stopped the call (an
/// expired SSO token, a `credential_process` that failed, a role that cannot be assumed): the
/// caller reports it as an auth problem, not as an unreachable endpoint.
pub(crate) fn credentials_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(c) = e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(aws_sdk_ec2::error::DisplayErrorContext(c).to_string());
        }
        cause = e.source();
    }
    None
}

/// Finds credentials per `source`; does not touch the network.
pub fn lookup(source: &CredentialSource) -> Lookup {
    match source {
        CredentialSource::Fixed(c) => Lookup::Found(Found::fixed(c, "given")),
        CredentialSource::Platform { profile } => {
            let keychain = match CredentialStore::platform_entry(CloudId::Aws) {
                Ok(CloudCredentials::Aws(c)) => return Lookup::Found(Found::fixed(&c, "keychain")),
                Ok(_) => "no AWS entry in the keychain".to_owned(),
                Err(why) => why,
            };
            match from_env(|k| std::env::var(k).ok(), &keychain) {
                // Half a key pair is a mistake to report, not a reason to look elsewhere.
                Lookup::Missing(why) if why.contains(NEITHER) => {}
                found_or_half => return found_or_half,
            }
            match chain::find(profile.as_deref()) {
                Ok(Some(c)) => Lookup::Found(Found::new(c.provider, c.from, c.sso)),
                Ok(None) => Lookup::Missing(format!(
                    "{keychain}, neither AWS_ACCESS_KEY_ID nor AWS_SECRET_ACCESS_KEY is set, and \
                     no AWS profile, web identity or instance role applies; add keys on the \
                     desktop app's Credentials page (it can import ~/.aws), set them, or sign in \
                     with `aws sso login --profile NAME` and set AWS_PROFILE"
                )),
                Err(why) => Lookup::Missing(format!("{keychain}; {why}")),
            }
        }
    }
}

const NEITHER: &str = "neither AWS_ACCESS_KEY_ID nor AWS_SECRET_ACCESS_KEY is set";

/// The environment's credentials; `keychain` says why the keychain had none (for the message).
pub fn from_env(var: impl Fn(&str) -> Option<String>, keychain: &str) -> Lookup {
    let id = var("AWS_ACCESS_KEY_ID").filter(|v| !v.trim().is_empty());
    let secret = var("AWS_SECRET_ACCESS_KEY").filter(|v| !v.trim().is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Lookup::Found(Found::fixed(
            &AwsCredentials {
                access_key_id: id.trim().to_owned(),
                secret_access_key: Secret::new(secret.trim()),
                session_token: var("AWS_SESSION_TOKEN")
                    .filter(|v| !v.trim().is_empty())
                    .map(|t| Secret::new(t.trim())),
            },
            "environment",
        )),
        (Some(_), None) => Lookup::Missing(format!(
            "{keychain}, and AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)"
        )),
        (None, Some(_)) => Lookup::Missing(format!(
            "{keychain}, and AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)"
        )),
        (None, None) => Lookup::Missing(format!("{keychain}, and {NEITHER}")),
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

    /// The source, if one applies and is usable now; else an auth error saying what to do.
    pub fn found(&self) -> Result<&Found, ProvisionError> {
        match self.lookup() {
            Lookup::Found(found) => match found.logged_out() {
                None => Ok(found),
                Some(why) => Err(ProvisionError::new(ProvisionErrorKind::Auth, why)),
            },
            Lookup::Missing(why) => Err(ProvisionError::new(
                ProvisionErrorKind::Auth,
                format!("no AWS credentials: {why}"),
            )),
        }
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The client for `region`, or an auth error saying what is missing.
    pub fn get(&self, region: &str) -> Result<aws_sdk_ec2::Client, ProvisionError> {
        let found = self.found()?;
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
            .credentials_provider(found.provider.clone())
            .identity_cache(found.identity_cache())
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

impl Clients {
    /// An STS client with the same credentials and endpoint (whom the calls run as).
    pub fn sts(&self) -> Result<aws_sdk_sts::Client, ProvisionError> {
        Ok(sts_client(self.found()?, self.endpoint.as_deref()))
    }
}

/// STS with `found`'s credentials, at `endpoint` when one is set: the caller's identity, and the
/// nodes' bucket tokens.
pub(crate) fn sts_client(found: &Found, endpoint: Option<&str>) -> aws_sdk_sts::Client {
    let mut builder = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(crate::HOME_REGION))
        .credentials_provider(found.provider.clone())
        .identity_cache(found.identity_cache())
        .retry_config(sdk_retries())
        .timeout_config(sdk_timeouts());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_sts::Client::from_conf(builder.build())
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
            Lookup::Found(_) => panic!("half the credentials must not count"),
        }
        match from_env(|_| None, "no AWS entry in the keychain") {
            Lookup::Missing(why) => {
                assert!(why.starts_with("no AWS entry in the keychain"), "{why}");
                assert!(why.contains("neither AWS_ACCESS_KEY_ID"), "{why}");
            }
            Lookup::Found(_) => panic!("nothing set must be missing"),
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
            Lookup::Found(found) => {
                assert_eq!(found.from, "environment (access key …MPLE)");
                assert!(found.sso.is_none());
                assert!(!format!("{found:?}").contains("made-up-secret"));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let creds = rt.block_on(found.resolve()).expect("static keys resolve");
                assert_eq!(creds.access_key_id, "AKIAEXAMPLEEXAMPLE");
                assert!(creds.session_token.is_none());
            }
            Lookup::Missing(why) => panic!("{why}"),
        }
    }
}
