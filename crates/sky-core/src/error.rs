//! The crate's top-level error and the small, stable `ErrorCode` that front ends branch on.

use serde::Serialize;

/// What a caller (CLI exit code, UI) branches on. Add a variant only when some caller needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidTask,
    InvalidConfig,
    NoFeasibleResources,
    ResourcesUnavailable,
    CredentialsMissing,
    ClusterNotFound,
    ClusterBusy,
    JobNotFound,
    Cancelled,
    /// A task does not fit the existing cluster it was sent to.
    TaskDoesNotFit,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidTask => "invalid_task",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::NoFeasibleResources => "no_feasible_resources",
            ErrorCode::ResourcesUnavailable => "resources_unavailable",
            ErrorCode::CredentialsMissing => "credentials_missing",
            ErrorCode::ClusterNotFound => "cluster_not_found",
            ErrorCode::ClusterBusy => "cluster_busy",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::TaskDoesNotFit => "task_does_not_fit",
            ErrorCode::Internal => "internal",
        }
    }
}
