//! `UiError`: the one error shape that reaches the page, `{ code, message }`.
//!
//! `code` is `sky_core::ErrorCode`'s stable string, so the page branches on it; `message` is the
//! library's lowercase message. It never carries a secret: the core's errors are built so.

use serde::Serialize;
use sky_core::ErrorCode;
use sky_core::credentials::CredentialError;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct UiError {
    pub code: &'static str,
    pub message: String,
    /// For invalid tasks: the field path and line, so the page can point at them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<crate::plan::TaskErrorView>,
}

impl UiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        UiError {
            code: code.as_str(),
            message: message.into(),
            task: None,
        }
    }

    /// A background task died (panic or cancellation); say so instead of hanging the page.
    pub fn task_failed(e: &tauri::Error) -> Self {
        UiError::new(ErrorCode::Internal, format!("background task failed: {e}"))
    }
}

impl From<CredentialError> for UiError {
    fn from(e: CredentialError) -> Self {
        UiError::new(e.code(), e.to_string())
    }
}

impl From<sky_core::api::SkyError> for UiError {
    fn from(e: sky_core::api::SkyError) -> Self {
        UiError::new(e.code(), e.to_string())
    }
}

pub type UiResult<T> = Result<T, UiError>;
