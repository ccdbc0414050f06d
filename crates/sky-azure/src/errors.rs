//! How Azure's answers become [`ProvisionError`]s: the ARM error code (from a synchronous 4xx/5xx
//! body or from a Failed asynchronous operation) decides the kind, so failover never parses text.
//!
//! What this module does not do: talk to Azure, or decide what to try next (failover does).

use sky_core::provision::{ProvisionError, ProvisionErrorKind};

/// Codes meaning "no machines of this size here now": try another zone (or region).
const CAPACITY: &[&str] = &[
    "SkuNotAvailable",
    "AllocationFailed",
    "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest",
    "SpotMaxPriceTooLow",
];

/// Codes meaning a limit of the subscription in this region: try another region.
const QUOTA: &[&str] = &[
    "QuotaExceeded",
    "OperationNotAllowed",
    "ResourceQuotaExceeded",
    "SubscriptionQuotaExceeded",
    "LowPriorityQuotaExceeded",
];

/// Codes meaning the credentials are wrong, expired or lack a role: try another cloud.
const AUTH: &[&str] = &[
    "AuthorizationFailed",
    "InvalidAuthenticationToken",
    "InvalidAuthenticationTokenTenant",
    "ExpiredAuthenticationToken",
    "AuthenticationFailed",
    "LinkedAuthorizationFailed",
    "SubscriptionNotFound",
    "invalid_client",
    "unauthorized_client",
    "invalid_request",
];

/// Codes that pass on their own; retrying elsewhere is reasonable.
const TRANSIENT: &[&str] = &[
    "TooManyRequests",
    "RetryableError",
    "InternalServerError",
    "InternalExecutionError",
    "ServerTimeout",
    "GatewayTimeout",
    "Conflict",
    "ResourceGroupBeingDeleted",
    "AnotherOperationInProgress",
];

/// Classifies an ARM error by its code first and, for codes this table does not know, by the
/// HTTP status (`None` for a Failed asynchronous operation, whose HTTP status was 200).
pub fn kind_of(code: &str, status: Option<u16>) -> ProvisionErrorKind {
    let is = |list: &[&str]| list.iter().any(|c| c.eq_ignore_ascii_case(code));
    if is(CAPACITY) {
        ProvisionErrorKind::Capacity
    } else if is(QUOTA) {
        ProvisionErrorKind::Quota
    } else if is(AUTH) {
        ProvisionErrorKind::Auth
    } else if is(TRANSIENT) {
        ProvisionErrorKind::Transient
    } else {
        match status {
            Some(401 | 403) => ProvisionErrorKind::Auth,
            Some(408 | 429) | Some(500..=599) => ProvisionErrorKind::Transient,
            Some(400..=499) => ProvisionErrorKind::InvalidRequest,
            // A Failed operation with an unknown code: another candidate may still work.
            None => ProvisionErrorKind::InvalidRequest,
            Some(_) => ProvisionErrorKind::Fatal,
        }
    }
}

/// One ARM error, as its body `{"error":{"code":..,"message":..}}` (or the token endpoint's
/// `{"error":..,"error_description":..}`) tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

impl ArmError {
    /// Reads an error body; a body that is not ARM's shape keeps the status as its code.
    pub fn from_body(status: Option<u16>, body: &[u8]) -> ArmError {
        let fallback = || ArmError {
            status,
            code: status.map_or_else(|| "Failed".to_owned(), |s| format!("Http{s}")),
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return fallback();
        };
        ArmError::from_value(status, &value).unwrap_or_else(fallback)
    }

    /// The error inside an ARM body or a Failed operation's status document.
    pub fn from_value(status: Option<u16>, value: &serde_json::Value) -> Option<ArmError> {
        let error = value.get("error")?;
        if let Some(code) = error.as_str() {
            // The identity platform's shape: `error` is the code itself.
            let message = value
                .get("error_description")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            return Some(ArmError {
                status,
                code: code.to_owned(),
                message: first_line(message),
            });
        }
        // A deployment-style error nests the useful code under `details`.
        let inner = error
            .get("details")
            .and_then(|d| d.as_array())
            .and_then(|d| d.first())
            .filter(|_| error.get("code").and_then(|c| c.as_str()) == Some("DeploymentFailed"))
            .unwrap_or(error);
        let code = inner.get("code")?.as_str()?.to_owned();
        let message = inner
            .get("message")
            .and_then(|m| m.as_str())
            .map(first_line)
            .unwrap_or_default();
        Some(ArmError {
            status,
            code,
            message,
        })
    }

    /// The provision error for this failure while doing `what` (e.g. "create VM c-0 in eastus").
    pub fn into_provision(self, what: &str) -> ProvisionError {
        ProvisionError::new(
            kind_of(&self.code, self.status),
            format!("Azure: {what}: {}: {}", self.code, self.message),
        )
    }
}

/// Identity-platform messages carry trace and correlation ids on later lines; the first line is
/// what a person needs.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// A transport failure (connection refused, timeout): a retry elsewhere may work.
pub fn transport(what: &str, e: &dyn std::fmt::Display) -> ProvisionError {
    ProvisionError::new(
        ProvisionErrorKind::Transient,
        format!("Azure: {what}: cannot reach the endpoint: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds_case_insensitively() {
        use ProvisionErrorKind::*;
        assert_eq!(kind_of("SkuNotAvailable", Some(409)), Capacity);
        assert_eq!(kind_of("zonalallocationfailed", None), Capacity);
        assert_eq!(kind_of("OperationNotAllowed", Some(409)), Quota);
        assert_eq!(kind_of("QuotaExceeded", None), Quota);
        assert_eq!(kind_of("AuthorizationFailed", Some(403)), Auth);
        assert_eq!(kind_of("InvalidAuthenticationToken", Some(401)), Auth);
        assert_eq!(kind_of("SomethingNew", Some(403)), Auth);
        assert_eq!(kind_of("SomethingNew", Some(503)), Transient);
        assert_eq!(kind_of("InvalidParameter", Some(400)), InvalidRequest);
    }

    #[test]
    fn error_bodies_of_arm_and_of_the_identity_platform_parse() {
        let arm = br#"{"error":{"code":"QuotaExceeded","message":"Operation could not be completed as it results in exceeding approved standardNCFamily Cores quota."}}"#;
        let e = ArmError::from_body(Some(409), arm);
        assert_eq!(e.code, "QuotaExceeded");
        assert!(e.message.starts_with("Operation could not"));
        let aad = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#;
        let e = ArmError::from_body(Some(401), aad);
        assert_eq!(e.code, "invalid_client");
        assert_eq!(e.message, "AADSTS7000215: Invalid client secret provided.");
        let junk = ArmError::from_body(Some(502), b"<html>bad gateway</html>");
        assert_eq!(junk.code, "Http502");
        assert_eq!(junk.into_provision("x").kind, ProvisionErrorKind::Transient);
    }

    #[test]
    fn deployment_failures_report_the_inner_code() {
        let body = br#"{"error":{"code":"DeploymentFailed","message":"At least one resource deployment operation failed.","details":[{"code":"AllocationFailed","message":"Allocation failed."}]}}"#;
        let e = ArmError::from_body(None, body).into_provision("create VM a-0");
        assert_eq!(e.kind, ProvisionErrorKind::Capacity);
        assert!(e.message.contains("AllocationFailed"), "{}", e.message);
    }
}
