//! The types the page receives. Only these cross the IPC boundary; they hold no secret.

use serde::{Deserialize, Serialize};
use sky_core::CloudId;
use sky_core::credentials::CloudCredentials;

#[derive(Debug, Clone, Serialize)]
pub struct AppInfo {
    pub version: &'static str,
    /// `secret-service`, `keyutils`, `keychain`, `credential-manager`; `None` if none could be opened.
    pub keychain: Option<&'static str>,
    pub keychain_error: Option<String>,
}

/// The result of checking one cloud's credentials.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    pub cloud: CloudId,
    pub name: &'static str,
    /// `stored` (found in the keychain and well-formed), `missing`, or `error`.
    pub state: &'static str,
    /// Which account, without anything that grants access.
    pub summary: Option<String>,
    pub message: String,
}

impl CredentialStatus {
    pub fn stored(creds: &CloudCredentials, backend: &str) -> Self {
        let cloud = creds.cloud();
        CredentialStatus {
            cloud,
            name: cloud.display_name(),
            state: "stored",
            summary: Some(creds.summary()),
            message: format!(
                "stored in the {backend} keychain; the {} API has not been asked in this build",
                cloud.display_name()
            ),
        }
    }

    pub fn missing(cloud: CloudId) -> Self {
        CredentialStatus {
            cloud,
            name: cloud.display_name(),
            state: "missing",
            summary: None,
            message: "no credentials: enter or import them to launch here".to_owned(),
        }
    }

    pub fn error(cloud: CloudId, message: String) -> Self {
        CredentialStatus {
            cloud,
            name: cloud.display_name(),
            state: "error",
            summary: None,
            message,
        }
    }
}

/// Where to import a cloud's credentials from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "cloud", rename_all = "lowercase")]
pub enum ImportRequest {
    /// The environment, else `~/.aws/credentials` (profile `AWS_PROFILE` or `default`).
    Aws,
    /// A pasted service-account key, else `GOOGLE_APPLICATION_CREDENTIALS` / gcloud's ADC file.
    Gcp {
        json: Option<String>,
        project: Option<String>,
    },
    /// The JSON printed by `az ad sp create-for-rbac` (with or without `--sdk-auth`).
    Azure {
        json: String,
        subscription: Option<String>,
    },
}
