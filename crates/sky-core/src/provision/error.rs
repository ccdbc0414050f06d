//! The one error type every provider returns. Each provider maps its own API's codes into a
//! [`ProvisionErrorKind`] inside the provider, so failover decides on the kind alone and never
//! parses messages or names a cloud.

use serde::{Deserialize, Serialize};

/// What went wrong, as far as failover is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionErrorKind {
    /// No capacity for this instance type here right now (try another zone).
    Capacity,
    /// A quota or limit of the account in this region (try another region).
    Quota,
    /// Credentials missing, expired or lacking permission (try another cloud).
    Auth,
    /// The provider rejected the request itself, e.g. an instance type it does not offer here
    /// (try another candidate).
    InvalidRequest,
    /// A failure that may pass on retry: throttling, a timeout, a 5xx (try another zone).
    Transient,
    /// Give up: retrying elsewhere cannot help, or cleanup failed and resources may be leaking.
    Fatal,
}

impl ProvisionErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionErrorKind::Capacity => "capacity",
            ProvisionErrorKind::Quota => "quota",
            ProvisionErrorKind::Auth => "auth",
            ProvisionErrorKind::InvalidRequest => "invalid_request",
            ProvisionErrorKind::Transient => "transient",
            ProvisionErrorKind::Fatal => "fatal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error: {message}", kind.as_str())]
pub struct ProvisionError {
    pub kind: ProvisionErrorKind,
    /// Human-readable, free of secrets; providers strip tokens and keys before building it.
    pub message: String,
}

impl ProvisionError {
    pub fn new(kind: ProvisionErrorKind, message: impl Into<String>) -> Self {
        ProvisionError {
            kind,
            message: message.into(),
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ProvisionErrorKind::Fatal, message)
    }
}
