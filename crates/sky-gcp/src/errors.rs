//! Compute Engine failures mapped to a [`ProvisionErrorKind`] and a [`BlockScope`] in one table
//! ([`TABLE`]), so failover never parses messages.
//!
//! Three places report errors, all read here:
//! - the HTTP answer to a call in Google's error model: `{"error":{"code":429,"message":..,
//!   "status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",
//!   "reason":"RATE_LIMIT_EXCEEDED",..}]}}`, beside the legacy `"errors":[{"reason":
//!   "rateLimitExceeded"}]`; the SDK turns both into `ErrorInfo` details of its status;
//! - a finished zone operation: `error.errors[].code` (e.g. `ZONE_RESOURCE_POOL_EXHAUSTED`), with
//!   `errorDetails[].quotaInfo.metricName` naming the quota (`GPUS_ALL_REGIONS`);
//! - one message with no code of its own: "Location X is not found or access is unauthorized."
//!   (403), which SkyPilot's GCP handler blocks as a location, not as credentials.
//!
//! References, cited per row: `error_reason.proto` is googleapis/googleapis
//! `google/api/error_reason.proto`; "legacy reasons" is the Compute Engine / Google JSON API
//! error reference (<https://cloud.google.com/compute/docs/reference/rest/v1> "Errors",
//! `errors[].reason`); "availability" is <https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-resource-availability>;
//! "quotas" is <https://cloud.google.com/compute/resource-usage>; "SkyPilot" is
//! `sky/backends/cloud_vm_ray_backend.py` `FailoverCloudErrorHandlerV1._gcp_handler`.
//! This module does not retry anything; [`throttle_verdict`] tells callers what is throttling.

use std::time::Duration;

use google_cloud_compute_v1::model::Operation;
use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::StatusDetails;
use sky_core::provision::throttle::{Verdict, parse_retry_after};
use sky_core::provision::{
    BlockScope, ErrorRow, ProvisionError, ProvisionErrorKind, error_row as row,
};

use BlockScope::{Accelerators, Cloud, InstanceType, InstanceTypeInZone, Region, Zone};
use ProvisionErrorKind::*;

/// A row of this cloud's error table.
pub type Row = ErrorRow;

const REASONS: &str = "error_reason.proto";
const LEGACY: &str = "legacy reasons";
const AVAIL: &str = "availability";
const QUOTAS: &str = "quotas";
const SKYPILOT: &str = "SkyPilot";

/// Every reason and operation code Sky knows.
pub const TABLE: &[Row] = &[
    row("ZONE_RESOURCE_POOL_EXHAUSTED", Capacity, Zone, AVAIL),
    row(
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        Capacity,
        Zone,
        AVAIL,
    ),
    row("insufficientCapacity", Capacity, Zone, SKYPILOT),
    row("RESOURCE_NOT_FOUND", Capacity, Zone, SKYPILOT),
    // "The machine type is not supported in this zone" and the like: that type, that zone.
    row(
        "UNSUPPORTED_OPERATION",
        InvalidRequest,
        InstanceTypeInZone,
        SKYPILOT,
    ),
    row("RESOURCE_NOT_READY", Transient, Zone, SKYPILOT),
    row("RESOURCE_OPERATION_RATE_EXCEEDED", Transient, Zone, AVAIL),
    // A regional quota (CPUS, NVIDIA_T4_GPUS, IN_USE_ADDRESSES ...) unless [`quota_scope`]
    // finds a global metric.
    row("QUOTA_EXCEEDED", Quota, Region, QUOTAS),
    row("quotaExceeded", Quota, Region, LEGACY),
    row("limitExceeded", Quota, Region, LEGACY),
    row("RESOURCE_QUOTA_EXCEEDED", Quota, Region, REASONS),
    // Throttling, in both error models: retried in place, then the zone.
    row("RATE_LIMIT_EXCEEDED", Transient, Zone, REASONS),
    row("rateLimitExceeded", Transient, Zone, LEGACY),
    row("userRateLimitExceeded", Transient, Zone, LEGACY),
    row("backendError", Transient, Zone, LEGACY),
    row("internalError", Transient, Zone, LEGACY),
    row("forbidden", Auth, Cloud, LEGACY),
    row("accessNotConfigured", Auth, Cloud, LEGACY),
    row("insufficientPermissions", Auth, Cloud, LEGACY),
    row("authError", Auth, Cloud, LEGACY),
    row("required", Auth, Cloud, LEGACY),
    row("unauthorized", Auth, Cloud, LEGACY),
    row("SERVICE_DISABLED", Auth, Cloud, REASONS),
    row("BILLING_DISABLED", Auth, Cloud, REASONS),
    row("IAM_PERMISSION_DENIED", Auth, Cloud, REASONS),
    row("ACCESS_TOKEN_EXPIRED", Auth, Cloud, REASONS),
    row("ACCESS_TOKEN_SCOPE_INSUFFICIENT", Auth, Cloud, REASONS),
    row("ACCESS_TOKEN_TYPE_UNSUPPORTED", Auth, Cloud, REASONS),
    row("CONSUMER_INVALID", Auth, Cloud, REASONS),
    // The VPC network is global to the project: no region of GCP can work without it.
    row("VPC_NOT_FOUND", InvalidRequest, Cloud, SKYPILOT),
    row("invalid", InvalidRequest, InstanceType, LEGACY),
    row("badRequest", InvalidRequest, InstanceType, LEGACY),
    row("notFound", InvalidRequest, InstanceType, LEGACY),
    row("conflict", InvalidRequest, InstanceType, LEGACY),
];

/// Quota metrics that are not per region: exceeding one rules out more than the region.
const GLOBAL_QUOTAS: &[(&str, BlockScope)] = &[
    ("GPUS_ALL_REGIONS", Accelerators),
    ("CPUS_ALL_REGIONS", Cloud),
];

/// Reasons that mean "slow down" (retried in place before anything is blocked).
const THROTTLE_REASONS: &[&str] = &[
    "RATE_LIMIT_EXCEEDED",
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "RESOURCE_OPERATION_RATE_EXCEEDED",
];

/// The table row of one `reason` or operation `code`.
pub fn row_of(code: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.code == code)
}

/// The kind of one `reason` or operation `code` string; `None` when the table does not know it.
pub fn kind_of_code(code: &str) -> Option<ProvisionErrorKind> {
    row_of(code).map(|r| r.kind)
}

/// A quota row's scope widened when `texts` (messages, metric names) name a global metric.
fn quota_scope<'a>(row: &Row, mut texts: impl Iterator<Item = &'a str>) -> BlockScope {
    if row.kind != Quota {
        return row.scope;
    }
    texts
        .find_map(|t| {
            GLOBAL_QUOTAS
                .iter()
                .find(|(metric, _)| t.contains(metric))
                .map(|(_, s)| *s)
        })
        .unwrap_or(row.scope)
}

/// "Location us-east1-d is not found or access is unauthorized.": the zone or region it names.
fn location_scope(message: &str) -> Option<BlockScope> {
    let rest = message.split("Location ").nth(1)?;
    let (location, tail) = rest.split_once(' ')?;
    if !tail.starts_with("is not found or access is unauthorized") {
        return None;
    }
    // Zones are a region plus `-a`, `-b`, ...: one more dash-separated part of one letter.
    let zoned = location
        .rsplit('-')
        .next()
        .is_some_and(|last| last.len() == 1);
    Some(if zoned { Zone } else { Region })
}

/// The `ErrorInfo` details an API error carries (Google's `details[]` and the legacy
/// `errors[]`, which the SDK decodes into the same shape): each reason with its metadata values.
fn infos(e: &Error) -> Vec<(&str, Vec<&str>)> {
    e.status()
        .map(|s| {
            s.details
                .iter()
                .filter_map(|d| match d {
                    StatusDetails::ErrorInfo(info) if !info.reason.is_empty() => Some((
                        info.reason.as_str(),
                        info.metadata.values().map(String::as_str).collect(),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an API error is throttling, and the wait Google asked for (`RetryInfo.retryDelay`,
/// else a `Retry-After` header).
pub fn throttle_verdict(e: &Error) -> Verdict {
    let throttled = e.http_status_code() == Some(429)
        || infos(e)
            .iter()
            .any(|(reason, _)| THROTTLE_REASONS.contains(reason));
    if !throttled {
        return Verdict::Fail;
    }
    let hint = e
        .status()
        .and_then(|s| {
            s.details.iter().find_map(|d| match d {
                StatusDetails::RetryInfo(r) => {
                    r.retry_delay.and_then(|d| Duration::try_from(d).ok())
                }
                _ => None,
            })
        })
        .or_else(|| {
            e.http_headers()
                .and_then(|h| h.get("retry-after"))
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        });
    Verdict::Throttled(hint)
}

/// Maps an SDK error from a call; `what` says which call, for the message.
pub fn from_api(what: &str, e: &Error) -> ProvisionError {
    let infos = infos(e);
    let reasons: Vec<&str> = infos.iter().map(|(r, _)| *r).collect();
    let http = e.http_status_code();
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
    if e.is_authentication() {
        // Google's token endpoint refused the credentials: a revoked or expired gcloud login
        // is by far the most common cause, and the fix is one command.
        text.push_str(
            "; if they are gcloud's login, run `gcloud auth application-default login` again",
        );
        return ProvisionError::new(Auth, text).with_scope(Cloud);
    }
    // The location message comes with a plain `forbidden`; it must win over that row.
    if let Some(scope) = location_scope(&message) {
        return ProvisionError::new(InvalidRequest, text).with_scope(scope);
    }
    // A throttling reason wins over the 403 it rides on, in either error model.
    let by_reason = reasons
        .iter()
        .filter_map(|r| row_of(r))
        .min_by_key(|r| !THROTTLE_REASONS.contains(&r.code));
    if let Some(row) = by_reason {
        let metadata = infos.iter().flat_map(|(_, values)| values.iter().copied());
        let scope = quota_scope(row, std::iter::once(message.as_str()).chain(metadata));
        return ProvisionError::new(row.kind, text).with_scope(scope);
    }
    let kind = match http {
        Some(401 | 403) => Auth,
        Some(429) => Transient,
        Some(400 | 404 | 409 | 412) => InvalidRequest,
        Some(500..=599) => Transient,
        None if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() => Transient,
        _ => {
            text.push_str(" (an answer Sky does not know; blocking the zone)");
            Unknown
        }
    };
    ProvisionError::new(kind, text)
}

/// Whether a call failed because the thing is already gone (deletes are idempotent).
pub fn is_not_found(e: &Error) -> bool {
    e.http_status_code() == Some(404)
}

/// Whether a create failed because the thing already exists.
pub fn is_already_exists(e: &Error) -> bool {
    e.http_status_code() == Some(409) || infos(e).iter().any(|(r, _)| *r == "alreadyExists")
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
    let text = format!("GCP {what}: {detail}");
    // The code of an error, else the reason of its `errorDetails[].errorInfo`.
    let codes = errors.iter().flat_map(|e| {
        e.code.as_deref().into_iter().chain(
            e.error_details
                .iter()
                .filter_map(|d| d.error_info.as_ref()?.reason.as_deref()),
        )
    });
    if let Some(row) = codes.filter_map(row_of).next() {
        let metrics = errors.iter().flat_map(|e| {
            e.error_details
                .iter()
                .filter_map(|d| d.quota_info.as_ref()?.metric_name.as_deref())
                .chain(e.message.as_deref())
        });
        let scope = quota_scope(row, metrics);
        return Some(ProvisionError::new(row.kind, text).with_scope(scope));
    }
    if let Some(scope) = location_scope(&detail) {
        return Some(ProvisionError::new(InvalidRequest, text).with_scope(scope));
    }
    Some(match op.http_error_status_code {
        Some(401 | 403) => ProvisionError::new(Auth, text),
        Some(429 | 500..=599) => ProvisionError::new(Transient, text),
        Some(400 | 404 | 409) => ProvisionError::new(InvalidRequest, text),
        _ => ProvisionError::new(
            Unknown,
            format!("{text} (an operation error Sky does not know; blocking the zone)"),
        ),
    })
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
            ("SOMETHING_NEW", Unknown),
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
