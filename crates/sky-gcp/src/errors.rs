//! Compute Engine failures mapped to [`ProvisionErrorKind`], so failover never parses messages.
//!
//! Two places report errors: the HTTP answer to a call (`{"error":{"code":403,"message":..,
//! "errors":[{"reason":"quotaExceeded"}]}}`, which the SDK turns into a status whose details carry
//! each `reason`) and a finished zone operation (`error.errors[].code`, e.g.
//! `ZONE_RESOURCE_POOL_EXHAUSTED`). The codes follow what SkyPilot's GCP failover handler blocks
//! on. This module does not retry anything; callers decide that from the kind.

use google_cloud_compute_v1::model::Operation;
use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::StatusDetails;
use sky_core::provision::{ProvisionError, ProvisionErrorKind};

use ProvisionErrorKind::*;

/// The kind of one `reason` or operation `code` string; `None` when it says nothing specific.
pub fn kind_of_code(code: &str) -> Option<ProvisionErrorKind> {
    Some(match code {
        "ZONE_RESOURCE_POOL_EXHAUSTED"
        | "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
        | "UNSUPPORTED_OPERATION"
        | "insufficientCapacity"
        | "RESOURCE_NOT_READY"
        | "RESOURCE_OPERATION_RATE_EXCEEDED"
        | "RESOURCE_NOT_FOUND" => Capacity,
        "QUOTA_EXCEEDED" | "quotaExceeded" | "limitExceeded" => Quota,
        "rateLimitExceeded" | "userRateLimitExceeded" | "backendError" | "internalError" => {
            Transient
        }
        "forbidden"
        | "accessNotConfigured"
        | "insufficientPermissions"
        | "authError"
        | "required"
        | "unauthorized"
        | "SERVICE_DISABLED"
        | "ACCESS_TOKEN_TYPE_UNSUPPORTED" => Auth,
        "VPC_NOT_FOUND" | "invalid" | "badRequest" | "notFound" | "conflict" => InvalidRequest,
        _ => return None,
    })
}

/// The reasons an API error carries (`error.errors[].reason`, as the SDK decodes them).
fn reasons(e: &Error) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(status) = e.status() {
        for d in &status.details {
            if let StatusDetails::ErrorInfo(info) = d
                && !info.reason.is_empty()
            {
                out.push(info.reason.clone());
            }
        }
    }
    out
}

/// Maps an SDK error from a call; `what` says which call, for the message.
pub fn from_api(what: &str, e: &Error) -> ProvisionError {
    let reasons = reasons(e);
    let http = e.http_status_code();
    let by_reason = reasons.iter().find_map(|r| kind_of_code(r));
    let kind = if e.is_authentication() {
        Auth
    } else if let Some(kind) = by_reason {
        kind
    } else {
        match http {
            Some(401 | 403) => Auth,
            Some(429) => Transient,
            Some(400 | 404 | 409 | 412) => InvalidRequest,
            Some(500..=599) => Transient,
            Some(_) => Fatal,
            None if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() => Transient,
            None => Fatal,
        }
    };
    let message = match e.status() {
        Some(status) if !status.message.is_empty() => status.message.clone(),
        _ => e.to_string(),
    };
    let mut text = format!("GCP {what}: {message}");
    if let Some(code) = http {
        text.push_str(&format!(" (HTTP {code}"));
        if !reasons.is_empty() {
            text.push_str(&format!(", {}", reasons.join(", ")));
        }
        text.push(')');
    }
    ProvisionError::new(kind, text)
}

/// Whether a call failed because the thing is already gone (deletes are idempotent).
pub fn is_not_found(e: &Error) -> bool {
    e.http_status_code() == Some(404)
}

/// Whether a create failed because the thing already exists.
pub fn is_already_exists(e: &Error) -> bool {
    e.http_status_code() == Some(409) || reasons(e).iter().any(|r| r == "alreadyExists")
}

/// The error of a finished operation, if it failed. The SDK's poller returns `Ok` for a `DONE`
/// operation whatever its outcome, so every finished operation goes through here.
pub fn from_operation(what: &str, op: &Operation) -> Option<ProvisionError> {
    let errors = op
        .error
        .as_ref()
        .map(|e| e.errors.as_slice())
        .unwrap_or(&[]);
    if errors.is_empty() && op.http_error_status_code.is_none_or(|c| c < 400) {
        return None;
    }
    let codes: Vec<&str> = errors.iter().filter_map(|e| e.code.as_deref()).collect();
    let kind = codes
        .iter()
        .find_map(|c| kind_of_code(c))
        .or(match op.http_error_status_code {
            Some(401 | 403) => Some(Auth),
            Some(429 | 500..=599) => Some(Transient),
            Some(400 | 404 | 409) => Some(InvalidRequest),
            _ => None,
        })
        .unwrap_or(Fatal);
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.code.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    let detail = if messages.is_empty() {
        op.http_error_message
            .clone()
            .unwrap_or_else(|| "operation failed".to_owned())
    } else {
        messages.join("; ")
    };
    Some(ProvisionError::new(kind, format!("GCP {what}: {detail}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_compute_v1::model::operation;

    fn failed_op(code: &str) -> Operation {
        let mut e = operation::error::Errors::default();
        e.code = Some(code.to_owned());
        e.message = Some(format!("said {code}"));
        let mut err = operation::Error::default();
        err.errors = vec![e];
        let mut op = Operation::default();
        op.error = Some(err);
        op
    }

    #[test]
    fn operation_codes_map_like_skypilots_handler() {
        for (code, kind) in [
            ("ZONE_RESOURCE_POOL_EXHAUSTED", Capacity),
            ("ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", Capacity),
            ("QUOTA_EXCEEDED", Quota),
            ("SOMETHING_NEW", Fatal),
        ] {
            let e = from_operation("insert", &failed_op(code)).expect("failed op");
            assert_eq!(e.kind, kind, "{code}");
            assert!(e.message.contains(code), "{}", e.message);
        }
    }

    #[test]
    fn a_clean_operation_is_no_error() {
        assert!(from_operation("insert", &Operation::default()).is_none());
    }

    #[test]
    fn http_only_failure_uses_the_status() {
        let mut op = Operation::default();
        op.http_error_status_code = Some(403);
        op.http_error_message = Some("FORBIDDEN".into());
        let e = from_operation("insert", &op).expect("failed");
        assert_eq!(e.kind, Auth);
    }
}
