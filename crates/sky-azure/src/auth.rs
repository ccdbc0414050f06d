//! Azure credentials and access tokens: a service principal (tenant, client id, secret,
//! subscription) from the OS keychain or the `AZURE_*` environment variables, exchanged for ARM
//! tokens with the OAuth2 client-credentials flow against a configurable authority host; else the
//! Azure CLI's login (`az login`), whose tokens `az account get-access-token` hands out, as the
//! Azure SDKs' `AzureCliCredential` gets them, in the subscription the CLI uses by default.
//!
//! Tokens are cached until five minutes before they expire. Neither the secret nor a token is ever
//! formatted into an error or a log line. What this module does not do: call ARM (see `arm`), or
//! store credentials (the `sky` CLI's credential commands do, through `sky_core::credentials`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sky_core::cloud::CloudId;
use sky_core::credentials::{AzureCredentials, CloudCredentials, CredentialStore, Secret};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};
use tokio::sync::Mutex;

use crate::errors::{self, ArmError};

/// The scope of an ARM token. Sovereign clouds would need their own; Sky targets the public one.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Renew a cached token this long before it expires, so a long launch never uses a dead one.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Where credentials come from, in order.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// The OS keychain, then the environment, then the Azure CLI's login (what `sky` and the
    /// desktop app use).
    KeychainThenEnv,
    /// Exactly these (tests, or a caller that resolved them itself).
    Fixed(Arc<AzureCredentials>),
}

/// Credentials that apply.
#[derive(Debug, Clone)]
pub enum Login {
    ServicePrincipal(Arc<AzureCredentials>),
    /// `az login`: tokens from the CLI, for the subscription it (or `AZURE_SUBSCRIPTION_ID`)
    /// names.
    AzureCli {
        subscription_id: String,
        tenant_id: String,
        /// The signed-in user or identity, as the CLI records it.
        user: String,
    },
}

impl Login {
    pub fn subscription_id(&self) -> &str {
        match self {
            Login::ServicePrincipal(c) => &c.subscription_id,
            Login::AzureCli {
                subscription_id, ..
            } => subscription_id,
        }
    }

    /// What `sky check` says about it.
    pub fn describe(&self) -> String {
        match self {
            Login::ServicePrincipal(c) => format!(
                "service principal {} in subscription {}",
                c.client_id, c.subscription_id
            ),
            Login::AzureCli {
                subscription_id,
                user,
                ..
            } => format!("Azure CLI login ({user}) in subscription {subscription_id}"),
        }
    }
}

impl CredentialSource {
    /// Loads credentials without touching the network; `Ok(None)` when none are configured.
    pub fn load(&self) -> Result<Option<Login>, String> {
        match self {
            CredentialSource::Fixed(c) => Ok(Some(Login::ServicePrincipal(c.clone()))),
            CredentialSource::KeychainThenEnv => {
                // A machine without a usable keychain still has the environment.
                let from_keychain = match CredentialStore::platform_entry(CloudId::Azure) {
                    Ok(CloudCredentials::Azure(c)) => Some(c),
                    Ok(_) => None,
                    Err(why) => {
                        tracing::debug!(%why, "no Azure keychain entry; trying AZURE_* variables");
                        None
                    }
                };
                if let Some(c) = from_keychain {
                    return Ok(Some(Login::ServicePrincipal(Arc::new(c))));
                }
                match from_env(|k| std::env::var(k).ok())? {
                    Some(c) => Ok(Some(Login::ServicePrincipal(Arc::new(c)))),
                    None => azure_cli_login(),
                }
            }
        }
    }
}

/// The Azure CLI's signed-in account, from its profile (`$AZURE_CONFIG_DIR/azureProfile.json`,
/// by default `~/.azure`): the default subscription, or the one `AZURE_SUBSCRIPTION_ID` names.
/// `Ok(None)` when the CLI has never signed in here.
fn azure_cli_login() -> Result<Option<Login>, String> {
    let dir = std::env::var_os("AZURE_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".azure")
        });
    let path = dir.join("azureProfile.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    // The CLI writes this file with a UTF-8 byte-order mark.
    let text = String::from_utf8_lossy(&bytes);
    let profile: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| {
            format!(
                "{} is not JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
    let subscriptions = profile
        .get("subscriptions")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    if subscriptions.is_empty() {
        return Ok(None);
    }
    let wanted = std::env::var("AZURE_SUBSCRIPTION_ID")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let chosen = match &wanted {
        Some(id) => subscriptions.iter().find(|s| {
            s.get("id").and_then(|v| v.as_str()) == Some(id.trim())
                || s.get("name").and_then(|v| v.as_str()) == Some(id.trim())
        }),
        None => subscriptions
            .iter()
            .find(|s| s.get("isDefault").and_then(|v| v.as_bool()) == Some(true)),
    };
    let Some(sub) = chosen else {
        return Err(match wanted {
            Some(id) => format!(
                "AZURE_SUBSCRIPTION_ID={id} is not among the Azure CLI's subscriptions \
                 (`az account list`)"
            ),
            None => "the Azure CLI has no default subscription: run `az account set \
                     --subscription ID`"
                .to_owned(),
        });
    };
    let field = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Some(Login::AzureCli {
        subscription_id: field(sub, "id"),
        tenant_id: field(sub, "tenantId"),
        user: sub
            .get("user")
            .map(|u| field(u, "name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown user".to_owned()),
    }))
}

/// Credentials from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
/// `AZURE_SUBSCRIPTION_ID` (the names the Azure SDKs and CLI use); `Ok(None)` when none is set,
/// an error naming the missing ones when only some are.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<AzureCredentials>, String> {
    const NAMES: [&str; 4] = [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_SUBSCRIPTION_ID",
    ];
    let values: Vec<Option<String>> = NAMES
        .iter()
        .map(|n| get(n).filter(|v| !v.trim().is_empty()))
        .collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let missing: Vec<&str> = NAMES
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "incomplete Azure service principal in the environment: {} not set (all four of {} are needed)",
            missing.join(", "),
            NAMES.join(", ")
        ));
    }
    let mut it = values.into_iter().flatten();
    let (Some(tenant_id), Some(client_id), Some(secret), Some(subscription_id)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err("incomplete Azure service principal in the environment".into());
    };
    let creds = AzureCredentials {
        tenant_id,
        client_id,
        client_secret: Secret::new(secret),
        subscription_id,
    };
    CloudCredentials::Azure(creds.clone())
        .validate()
        .map_err(|e| format!("AZURE_* variables: {e}"))?;
    Ok(Some(creds))
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Gets and caches ARM tokens for one service principal.
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    authority_host: String,
    login: Login,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, authority_host: &str, login: Login) -> Self {
        TokenSource {
            http,
            authority_host: authority_host.trim_end_matches('/').to_owned(),
            login,
            cached: Mutex::new(None),
        }
    }

    pub fn subscription_id(&self) -> &str {
        self.login.subscription_id()
    }

    /// A valid token, from the cache or freshly issued.
    pub async fn token(&self) -> Result<Secret, ProvisionError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        *cached = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// Drops the cached token (after ARM called it invalid).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(Secret, Duration), ProvisionError> {
        let creds = match &self.login {
            Login::ServicePrincipal(c) => c,
            Login::AzureCli { tenant_id, .. } => return cli_token(tenant_id).await,
        };
        let what = "getting an access token";
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host, creds.tenant_id
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose()),
            ("scope", ARM_SCOPE),
        ];
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| errors::transport(what, &e.without_url()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| errors::transport(what, &e.without_url()))?;
        if !(200..300).contains(&status) {
            let mut err = ArmError::from_body(Some(status), &body);
            // The token endpoint says 400 for a wrong tenant or client: still a credentials problem.
            if status == 400 || status == 401 {
                err.code = format!("{} (token endpoint)", err.code);
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Auth,
                    format!("Azure: {what}: {}: {}", err.code, err.message),
                ));
            }
            return Err(err.into_provision(what));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            ProvisionError::new(
                ProvisionErrorKind::Auth,
                format!(
                    "Azure: {what}: unexpected token response ({})",
                    e.classify_name()
                ),
            )
        })?;
        // `expires_in` is a number in v2.0 and a string in v1.0 responses.
        let secs = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        Ok((Secret::new(parsed.access_token), Duration::from_secs(secs)))
    }
}

/// An ARM token from `az account get-access-token`, as `AzureCliCredential` gets one. The token
/// arrives on the CLI's stdout only; nothing secret is on its command line.
async fn cli_token(tenant_id: &str) -> Result<(Secret, Duration), ProvisionError> {
    let auth = |why: String| ProvisionError::new(ProvisionErrorKind::Auth, format!("Azure: {why}"));
    let mut cmd = tokio::process::Command::new("az");
    cmd.args([
        "account",
        "get-access-token",
        "--output",
        "json",
        "--resource",
        ARM_RESOURCE,
    ]);
    if !tenant_id.is_empty() {
        cmd.args(["--tenant", tenant_id]);
    }
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| auth("`az account get-access-token` did not answer within 60 s".into()))?
        .map_err(|e| {
            auth(if e.kind() == std::io::ErrorKind::NotFound {
                "the Azure CLI (`az`) is not on PATH, so its login cannot be used".to_owned()
            } else {
                format!("cannot run `az account get-access-token`: {}", e.kind())
            })
        })?;
    if !out.status.success() {
        // The CLI's own first error line ("Please run 'az login' to setup account.", an AADSTS
        // code for an expired session) names the problem; tokens never appear on stderr.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .chars()
            .take(300)
            .collect::<String>();
        return Err(auth(format!(
            "the Azure CLI could not give a token ({line}): run `az login`"
        )));
    }
    #[derive(serde::Deserialize)]
    struct CliToken {
        #[serde(rename = "accessToken")]
        access_token: String,
        /// Epoch seconds (CLI 2.54 and later); older ones only give a local time.
        expires_on: Option<serde_json::Value>,
    }
    let parsed: CliToken = serde_json::from_slice(&out.stdout).map_err(|e| {
        auth(format!(
            "`az account get-access-token` printed something else than a token ({})",
            e.classify_name()
        ))
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let expires = match parsed.expires_on {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    // Without an expiry, ask again soon rather than hold a dead token.
    let lifetime = expires.map_or(RENEW_BEFORE * 2, |at| {
        Duration::from_secs(at.saturating_sub(now))
    });
    Ok((Secret::new(parsed.access_token), lifetime))
}

/// The resource the CLI is asked for: ARM's, the v1 form of [`ARM_SCOPE`].
const ARM_RESOURCE: &str = "https://management.azure.com/";

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Hands our tokens to `azure_mgmt_compute`'s pipeline, so both HTTP stacks share one cache.
#[derive(Debug)]
pub struct SdkCredential(pub Arc<TokenSource>);

#[async_trait::async_trait]
impl azure_core::auth::TokenCredential for SdkCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
    ) -> azure_core::Result<azure_core::auth::AccessToken> {
        let token = self.0.token().await.map_err(|e| {
            // The message is already free of secrets; the Credential kind makes `arm::from_sdk` say auth.
            azure_core::Error::message(azure_core::error::ErrorKind::Credential, e.message)
        })?;
        Ok(azure_core::auth::AccessToken::new(
            token.expose().to_owned(),
            time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        ))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        self.0.forget().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const T: &str = "00000000-0000-0000-0000-00000000000a";

    #[test]
    fn env_credentials_need_all_four_and_name_the_missing() {
        let none: HashMap<&str, String> = HashMap::new();
        assert_eq!(from_env(|k| none.get(k).cloned()), Ok(None));
        let some: HashMap<&str, String> = [("AZURE_TENANT_ID", T.to_owned())].into();
        let err = from_env(|k| some.get(k).cloned()).expect_err("partial");
        assert!(
            err.contains("AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION_ID"),
            "{err}"
        );
        let all: HashMap<&str, String> = [
            ("AZURE_TENANT_ID", T.to_owned()),
            ("AZURE_CLIENT_ID", T.to_owned()),
            ("AZURE_CLIENT_SECRET", "made-up-at-test-time".to_owned()),
            ("AZURE_SUBSCRIPTION_ID", T.to_owned()),
        ]
        .into();
        let creds = from_env(|k| all.get(k).cloned())
            .expect("valid")
            .expect("present");
        assert_eq!(creds.subscription_id, T);
        assert!(!format!("{creds:?}").contains("made-up-at-test-time"));
    }

    #[test]
    fn env_credentials_are_validated() {
        let bad: HashMap<&str, String> = [
            ("AZURE_TENANT_ID", "not-a-guid".to_owned()),
            ("AZURE_CLIENT_ID", T.to_owned()),
            ("AZURE_CLIENT_SECRET", "s".to_owned()),
            ("AZURE_SUBSCRIPTION_ID", T.to_owned()),
        ]
        .into();
        let err = from_env(|k| bad.get(k).cloned()).expect_err("bad tenant");
        assert!(err.contains("azure.tenant_id"), "{err}");
    }
}
