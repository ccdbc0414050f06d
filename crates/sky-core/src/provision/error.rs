//! The one error type every provider returns. Each provider maps its own API's codes into a
//! [`ProvisionErrorKind`] and, where the code says more than its kind, a [`BlockScope`] inside the
//! provider (one table per cloud), so failover decides on kind and scope alone and never parses
//! messages or names a cloud.

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
    /// The cloud answered with a code no table of Sky's knows. Blocking the zone (as SkyPilot
    /// does) keeps failover going; the message names the code so the table can learn it.
    Unknown,
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
            ProvisionErrorKind::Unknown => "unknown",
            ProvisionErrorKind::Fatal => "fatal",
        }
    }

    /// What a failure of this kind rules out when its code says nothing narrower. `None` for
    /// [`ProvisionErrorKind::Fatal`], which stops failover altogether.
    pub fn default_scope(self) -> Option<BlockScope> {
        use ProvisionErrorKind::*;
        match self {
            Capacity | Transient | Unknown => Some(BlockScope::Zone),
            Quota => Some(BlockScope::Region),
            InvalidRequest => Some(BlockScope::InstanceType),
            Auth => Some(BlockScope::Cloud),
            Fatal => None,
        }
    }
}

/// How far one failure reaches: which placements of the same cloud it rules out, relative to the
/// placement that failed. A zone-level scope on a placement without a zone widens to its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockScope {
    /// Everything in the attempted zone.
    Zone,
    /// Everything in the attempted region.
    Region,
    /// The attempted instance type in the attempted zone only.
    InstanceTypeInZone,
    /// The attempted instance type in the attempted region.
    InstanceTypeInRegion,
    /// The attempted instance type anywhere on this cloud.
    InstanceType,
    /// Every placement with accelerators on this cloud, in every region (a global GPU quota).
    Accelerators,
    /// Everything on this cloud.
    Cloud,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error: {message}", kind.as_str())]
pub struct ProvisionError {
    pub kind: ProvisionErrorKind,
    /// Human-readable, free of secrets; providers strip tokens and keys before building it.
    pub message: String,
    /// What the error rules out when its code says more than its kind does; `None`: the kind's
    /// [`ProvisionErrorKind::default_scope`].
    pub scope: Option<BlockScope>,
}

impl ProvisionError {
    pub fn new(kind: ProvisionErrorKind, message: impl Into<String>) -> Self {
        ProvisionError {
            kind,
            message: message.into(),
            scope: None,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ProvisionErrorKind::Fatal, message)
    }
    /// The same error with an explicit scope (from a cloud's error table).
    pub fn with_scope(mut self, scope: BlockScope) -> Self {
        self.scope = Some(scope);
        self
    }
    /// What failover should block for this error; `None` when it must stop instead.
    pub fn block_scope(&self) -> Option<BlockScope> {
        match self.kind {
            ProvisionErrorKind::Fatal => None,
            kind => self.scope.or(kind.default_scope()),
        }
    }
}

/// One row of a cloud's error table: an error code, what it means for failover, and the
/// reference it comes from. Each cloud crate keeps its own `TABLE` of these.
#[derive(Debug, Clone, Copy)]
pub struct ErrorRow {
    pub code: &'static str,
    pub kind: ProvisionErrorKind,
    pub scope: BlockScope,
    pub reference: &'static str,
}

/// An [`ErrorRow`], short enough for a table of them.
pub const fn error_row(
    code: &'static str,
    kind: ProvisionErrorKind,
    scope: BlockScope,
    reference: &'static str,
) -> ErrorRow {
    ErrorRow {
        code,
        kind,
        scope,
        reference,
    }
}
