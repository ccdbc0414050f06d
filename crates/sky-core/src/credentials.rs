//! Per-cloud credentials kept in the operating system's keychain, and importers that read them
//! from where the clouds' own tools leave them.
//!
//! Storage goes through `keyring-core` with the platform's store chosen at start-up
//! ([`CredentialStore::open_platform`]): Secret Service (falling back to the kernel keyutils
//! session keyring) on Linux, the Keychain on macOS, Credential Manager on Windows. Each cloud is
//! one keychain item (service [`SERVICE`], user = the cloud id) holding a small JSON document.
//!
//! Secrets live in [`Secret`], whose `Debug`/`Display` print `<redacted>`; nothing here writes a
//! secret to disk, to a log or into an error message. Error messages name the field and say
//! what is wrong, never the value.
//!
//! This module does not verify credentials against a cloud API (that is the providers' job) and
//! does not know how a provider uses them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudId;
use crate::error::ErrorCode;

/// The keychain service name under which every Sky credential is stored.
pub const SERVICE: &str = "sky";

/// A secret string. It prints as `<redacted>` and only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value; call only where it is handed to its consumer (a cloud SDK, the keychain).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpCredentials {
    /// The whole service-account key file (JSON), kept as given.
    pub service_account_json: Secret,
    pub project_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub subscription_id: String,
}

/// One cloud's credentials, as stored in one keychain item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cloud", rename_all = "lowercase")]
pub enum CloudCredentials {
    Aws(AwsCredentials),
    Gcp(GcpCredentials),
    Azure(AzureCredentials),
}

impl CloudCredentials {
    pub fn cloud(&self) -> CloudId {
        match self {
            CloudCredentials::Aws(_) => CloudId::Aws,
            CloudCredentials::Gcp(_) => CloudId::Gcp,
            CloudCredentials::Azure(_) => CloudId::Azure,
        }
    }

    /// Checks the shape of every field; the error names the field, never its value.
    pub fn validate(&self) -> Result<(), CredentialError> {
        match self {
            CloudCredentials::Aws(c) => {
                let id = c.access_key_id.trim();
                if id.len() < 16
                    || id.len() > 128
                    || !id.chars().all(|ch| ch.is_ascii_alphanumeric())
                {
                    return Err(invalid(
                        "aws.access_key_id",
                        "must be 16 to 128 letters or digits (e.g. starting with AKIA or ASIA)",
                    ));
                }
                require_secret("aws.secret_access_key", &c.secret_access_key)?;
                if c.secret_access_key
                    .expose()
                    .chars()
                    .any(char::is_whitespace)
                {
                    return Err(invalid("aws.secret_access_key", "must not contain spaces"));
                }
                if let Some(token) = &c.session_token {
                    require_secret("aws.session_token", token)?;
                }
            }
            CloudCredentials::Gcp(c) => {
                require_text("gcp.project_id", &c.project_id)?;
                parse_gcp_service_account(c.service_account_json.expose())?;
            }
            CloudCredentials::Azure(c) => {
                require_uuid("azure.tenant_id", &c.tenant_id)?;
                require_uuid("azure.client_id", &c.client_id)?;
                require_secret("azure.client_secret", &c.client_secret)?;
                require_uuid("azure.subscription_id", &c.subscription_id)?;
            }
        }
        Ok(())
    }

    /// A non-secret summary for display: which account this is, without anything that grants access.
    pub fn summary(&self) -> String {
        match self {
            CloudCredentials::Aws(c) => {
                let tail = key_id_tail(&c.access_key_id);
                let kind = if c.session_token.is_some() {
                    "temporary key"
                } else {
                    "access key"
                };
                format!("{kind} …{tail}")
            }
            CloudCredentials::Gcp(c) => {
                let email = parse_gcp_service_account(c.service_account_json.expose())
                    .map(|sa| sa.client_email)
                    .unwrap_or_default();
                format!("{email} in project {}", c.project_id)
            }
            CloudCredentials::Azure(c) => {
                format!("app {} in subscription {}", c.client_id, c.subscription_id)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no {cloud} credentials found in {source_name}")]
    NotFound { cloud: CloudId, source_name: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// The keychain failed. `reason` is built from the error kind only, because some
    /// `keyring_core::Error` variants carry the raw secret bytes.
    #[error("keychain ({store}): {reason}")]
    Keychain { store: String, reason: String },
    #[error("stored {cloud} credentials are unreadable ({reason}); enter them again")]
    Corrupt { cloud: CloudId, reason: String },
    #[error("{0} needs no credentials")]
    NotACloud(CloudId),
}

impl CredentialError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CredentialError::Invalid { .. } | CredentialError::NotACloud(_) => {
                ErrorCode::InvalidConfig
            }
            CredentialError::NotFound { .. } | CredentialError::Corrupt { .. } => {
                ErrorCode::CredentialsMissing
            }
            CredentialError::Read { .. } => ErrorCode::InvalidConfig,
            CredentialError::Keychain { .. } => ErrorCode::Internal,
        }
    }
}

/// The last four characters of a key id, for "which key is this" displays. Counted in characters,
/// not bytes: an id pasted or exported with a non-ASCII character must not split a code point
/// (a byte slice there panics).
pub fn key_id_tail(id: &str) -> &str {
    let id = id.trim();
    let start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    &id[start..]
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CredentialError {
    CredentialError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn require_text(field: &'static str, value: &str) -> Result<(), CredentialError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    Ok(())
}

fn require_secret(field: &'static str, value: &Secret) -> Result<(), CredentialError> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Ok(())
}

/// Azure ids are GUIDs: 8-4-4-4-12 hex digits.
fn require_uuid(field: &'static str, value: &str) -> Result<(), CredentialError> {
    require_text(field, value)?;
    let groups: Vec<&str> = value.trim().split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if lens != [8, 4, 4, 4, 12] || !hex {
        return Err(invalid(
            field,
            "must be a GUID like 00000000-0000-0000-0000-000000000000",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct GcpServiceAccount {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    private_key: String,
}

fn parse_gcp_service_account(json: &str) -> Result<GcpServiceAccount, CredentialError> {
    // serde_json's messages quote input fragments, so only the position is passed on.
    let sa: GcpServiceAccount = serde_json::from_str(json).map_err(|e| {
        invalid(
            "gcp.service_account_json",
            format!(
                "is not a service-account key file (JSON with type, client_email, private_key; \
                 problem at line {} column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    if sa.kind != "service_account" {
        return Err(invalid(
            "gcp.service_account_json",
            format!("has type '{}', allowed: service_account", sa.kind),
        ));
    }
    if sa.private_key.trim().is_empty() {
        return Err(invalid("gcp.service_account_json", "has no private_key"));
    }
    Ok(sa)
}

/// The keychain, through one `keyring-core` store.
#[derive(Clone)]
pub struct CredentialStore {
    store: Arc<keyring_core::CredentialStore>,
    name: &'static str,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("backend", &self.name)
            .finish()
    }
}

impl CredentialStore {
    /// Uses a given store, e.g. `keyring_core::mock::Store::new()` in tests.
    pub fn with_store(store: Arc<keyring_core::CredentialStore>, name: &'static str) -> Self {
        CredentialStore { store, name }
    }

    /// Opens this platform's keychain.
    ///
    /// On Linux the Secret Service is preferred because it persists; when no session bus or
    /// Secret Service is running (servers, containers) the kernel keyutils session keyring is
    /// used, which lasts until logout.
    pub fn open_platform() -> Result<Self, CredentialError> {
        platform::open()
    }

    /// Which backend this is, for display ("secret-service", "keychain", …).
    pub fn backend(&self) -> &'static str {
        self.name
    }

    fn entry(&self, cloud: CloudId) -> Result<keyring_core::Entry, CredentialError> {
        if matches!(cloud, CloudId::Local | CloudId::Ssh) {
            return Err(CredentialError::NotACloud(cloud));
        }
        keyring_core::Entry::new_in_store(&self.store, SERVICE, cloud.as_str())
            .map_err(|e| self.keychain_error(&e))
    }

    /// Validates and stores, replacing what the keychain held for that cloud.
    pub fn save(&self, creds: &CloudCredentials) -> Result<(), CredentialError> {
        creds.validate()?;
        let doc = serde_json::to_string(creds).map_err(|e| CredentialError::Keychain {
            store: self.name.to_owned(),
            reason: format!("cannot encode credentials: {}", e.classify_name()),
        })?;
        self.entry(creds.cloud())?
            .set_password(&doc)
            .map_err(|e| self.keychain_error(&e))?;
        tracing::info!(cloud = %creds.cloud(), backend = self.name, "credentials stored in keychain");
        Ok(())
    }

    /// `cloud`'s entry in the platform keychain, or why there is none, in words fit for `sky
    /// check` (never a value). Providers call this before falling back to the environment.
    pub fn platform_entry(cloud: CloudId) -> Result<CloudCredentials, String> {
        let store = CredentialStore::open_platform().map_err(|e| format!("no keychain ({e})"))?;
        match store.load(cloud) {
            Ok(Some(c)) if c.cloud() == cloud => Ok(c),
            Ok(_) => Err(format!("no {} entry in the keychain", cloud.display_name())),
            Err(e) => Err(format!("keychain unreadable ({e})")),
        }
    }

    /// `Ok(None)` when nothing is stored for the cloud.
    pub fn load(&self, cloud: CloudId) -> Result<Option<CloudCredentials>, CredentialError> {
        let doc = match self.entry(cloud)?.get_password() {
            Ok(doc) => doc,
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(self.keychain_error(&e)),
        };
        let creds: CloudCredentials =
            serde_json::from_str(&doc).map_err(|e| CredentialError::Corrupt {
                cloud,
                reason: format!("{} error", e.classify_name()),
            })?;
        if creds.cloud() != cloud {
            return Err(CredentialError::Corrupt {
                cloud,
                reason: format!("item holds {} credentials", creds.cloud()),
            });
        }
        Ok(Some(creds))
    }

    /// Removes a cloud's credentials; `Ok(false)` when there were none.
    pub fn delete(&self, cloud: CloudId) -> Result<bool, CredentialError> {
        match self.entry(cloud)?.delete_credential() {
            Ok(()) => {
                tracing::info!(cloud = %cloud, backend = self.name, "credentials removed from keychain");
                Ok(true)
            }
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.keychain_error(&e)),
        }
    }

    fn keychain_error(&self, e: &keyring_core::Error) -> CredentialError {
        use keyring_core::Error as K;
        let reason = match e {
            K::PlatformFailure(p) => format!("platform failure: {p}"),
            K::NoStorageAccess(p) => format!("keychain is locked or not reachable: {p}"),
            K::NoEntry => "no such item".to_owned(),
            K::BadEncoding(_) => "stored item is not UTF-8".to_owned(),
            K::BadDataFormat(_, _) => "stored item has an unexpected format".to_owned(),
            K::BadStoreFormat(s) => format!("store format problem: {s}"),
            K::TooLong(attr, limit) => format!("{attr} is longer than {limit}"),
            K::Invalid(attr, why) => format!("invalid {attr}: {why}"),
            K::Ambiguous(items) => format!("{} matching items", items.len()),
            K::NoDefaultStore => "no credential store".to_owned(),
            K::NotSupportedByStore(s) => format!("not supported: {s}"),
            _ => "unexpected error".to_owned(),
        };
        CredentialError::Keychain {
            store: self.name.to_owned(),
            reason,
        }
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use super::{CredentialError, CredentialStore};

    pub(super) fn open() -> Result<CredentialStore, CredentialError> {
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => Ok(CredentialStore::with_store(store, "secret-service")),
            Err(ss_err) => {
                // Routine on servers and in CI (no session bus), and every command that looks
                // for credentials gets here: not worth a warning on each of them.
                tracing::debug!(error = %ss_err, "secret service unavailable, using kernel keyutils");
                let store = linux_keyutils_keyring_store::Store::new().map_err(|e| {
                    CredentialError::Keychain {
                        store: "keyutils".to_owned(),
                        reason: format!("no secret service ({ss_err}) and no keyutils ({e})"),
                    }
                })?;
                Ok(CredentialStore::with_store(store, "keyutils"))
            }
        }
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::{CredentialError, CredentialStore};

    pub(super) fn open() -> Result<CredentialStore, CredentialError> {
        let store = apple_native_keyring_store::keychain::Store::new().map_err(|e| {
            CredentialError::Keychain {
                store: "keychain".to_owned(),
                reason: e.to_string(),
            }
        })?;
        Ok(CredentialStore::with_store(store, "keychain"))
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::{CredentialError, CredentialStore};

    pub(super) fn open() -> Result<CredentialStore, CredentialError> {
        let store =
            windows_native_keyring_store::Store::new().map_err(|e| CredentialError::Keychain {
                store: "credential-manager".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(CredentialStore::with_store(store, "credential-manager"))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::{CredentialError, CredentialStore};

    pub(super) fn open() -> Result<CredentialStore, CredentialError> {
        Err(CredentialError::Keychain {
            store: "none".to_owned(),
            reason: "no keychain support for this operating system".to_owned(),
        })
    }
}

/// Where the importers look: the home directory and the environment, passed in so that tests
/// never read the real ones.
#[derive(Debug, Clone, Default)]
pub struct ImportEnv {
    pub home: PathBuf,
    pub vars: HashMap<String, String>,
}

impl ImportEnv {
    /// The current process's home directory and environment.
    pub fn from_process() -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let home = vars
            .get("HOME")
            .or_else(|| vars.get("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_default();
        ImportEnv { home, vars }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

fn read(path: &Path) -> Result<String, CredentialError> {
    std::fs::read_to_string(path).map_err(|e| CredentialError::Read {
        path: path.to_owned(),
        reason: e.kind().to_string(),
    })
}

/// AWS credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`) or else
/// from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`),
/// profile `AWS_PROFILE` or `default` — the order the AWS CLI uses.
pub fn import_aws(env: &ImportEnv) -> Result<CloudCredentials, CredentialError> {
    if let (Some(id), Some(secret)) = (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let creds = CloudCredentials::Aws(AwsCredentials {
            access_key_id: id.trim().to_owned(),
            secret_access_key: Secret::new(secret.trim()),
            session_token: env.var("AWS_SESSION_TOKEN").map(|t| Secret::new(t.trim())),
        });
        creds.validate()?;
        return Ok(creds);
    }
    let path = env
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| env.home.join(".aws").join("credentials"));
    let profile = env.var("AWS_PROFILE").unwrap_or("default");
    let text = read(&path)?;
    let section = ini_section(&text, profile).ok_or_else(|| CredentialError::NotFound {
        cloud: CloudId::Aws,
        source_name: format!("profile [{profile}] of {}", path.display()),
    })?;
    let field = |k: &str| {
        section
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (Some(id), Some(secret)) = (field("aws_access_key_id"), field("aws_secret_access_key"))
    else {
        return Err(CredentialError::NotFound {
            cloud: CloudId::Aws,
            source_name: format!(
                "profile [{profile}] of {} (needs aws_access_key_id and aws_secret_access_key)",
                path.display()
            ),
        });
    };
    let creds = CloudCredentials::Aws(AwsCredentials {
        access_key_id: id,
        secret_access_key: Secret::new(secret),
        session_token: field("aws_session_token").map(Secret::new),
    });
    creds.validate()?;
    Ok(creds)
}

/// The `key = value` pairs of one `[section]` of an INI file; `None` if the section is absent.
fn ini_section(text: &str, name: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = None::<HashMap<String, String>>;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(header.trim());
            if header.trim() == name {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if current == Some(name)
            && let (Some(map), Some((k, v))) = (found.as_mut(), line.split_once('='))
        {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    found
}

/// GCP credentials from `GOOGLE_APPLICATION_CREDENTIALS` or gcloud's application-default file
/// (`$CLOUDSDK_CONFIG` or `~/.config/gcloud`, `application_default_credentials.json`). Only
/// service-account keys are accepted: user ADC tokens are tied to gcloud's refresh flow.
/// `project` overrides the key file's `project_id`.
pub fn import_gcp(
    env: &ImportEnv,
    project: Option<&str>,
) -> Result<CloudCredentials, CredentialError> {
    let path = match env.var("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(p) => PathBuf::from(p),
        None => env
            .var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| env.home.join(".config").join("gcloud"))
            .join("application_default_credentials.json"),
    };
    let json = read(&path)?;
    gcp_from_json(&json, project)
}

/// GCP credentials from the text of a service-account key file.
pub fn gcp_from_json(
    json: &str,
    project: Option<&str>,
) -> Result<CloudCredentials, CredentialError> {
    let sa = parse_gcp_service_account(json)?;
    let project_id = project
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .or(sa.project_id)
        .ok_or_else(|| {
            invalid(
                "gcp.project_id",
                "is required (the key file names no project_id)",
            )
        })?;
    let creds = CloudCredentials::Gcp(GcpCredentials {
        service_account_json: Secret::new(json),
        project_id,
    });
    creds.validate()?;
    Ok(creds)
}

/// Azure credentials from the JSON that `az ad sp create-for-rbac` prints (`appId`, `password`,
/// `tenant`; the subscription must then be given) or its `--sdk-auth` form (`clientId`,
/// `clientSecret`, `tenantId`, `subscriptionId`).
pub fn azure_from_sp_json(
    json: &str,
    subscription: Option<&str>,
) -> Result<CloudCredentials, CredentialError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        invalid(
            "azure.service_principal_json",
            format!(
                "is not JSON (problem at line {} column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let need = |field: &'static str, keys: &[&str]| {
        get(keys).ok_or_else(|| {
            invalid(
                field,
                format!("is missing (looked for {})", keys.join(" or ")),
            )
        })
    };
    let subscription_id = match subscription.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None => need("azure.subscription_id", &["subscriptionId", "subscription"])?,
    };
    let creds = CloudCredentials::Azure(AzureCredentials {
        tenant_id: need("azure.tenant_id", &["tenant", "tenantId"])?,
        client_id: need("azure.client_id", &["appId", "clientId"])?,
        client_secret: Secret::new(need("azure.client_secret", &["password", "clientSecret"])?),
        subscription_id,
    });
    creds.validate()?;
    Ok(creds)
}

#[cfg(test)]
mod tests;
