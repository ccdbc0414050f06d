//! How Azure's answers become [`ProvisionError`]s: the ARM error code (from a synchronous 4xx/5xx
//! body or from a Failed asynchronous operation) decides the kind, so failover never parses text.
//!
//! What this module does not do: talk to Azure, or decide what to try next (failover does).

use sky_core::provision::{
    BlockScope, ErrorRow, ProvisionError, ProvisionErrorKind, error_row as row,
};

/// A row of this cloud's error table.
pub type Row = ErrorRow;

/// "Troubleshoot common Azure deployment errors", learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors.
const DEPLOY: &str = "ARM common deployment errors";
/// "Troubleshoot allocation failures", learn.microsoft.com/troubleshoot/azure/virtual-machines/allocation-failure.
const ALLOC: &str = "VM allocation failures";
/// "Understand how Azure Resource Manager throttles requests", learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling.
const THROTTLE: &str = "ARM throttling";
/// The identity platform's OAuth error codes (AADSTS), learn.microsoft.com/entra/identity-platform/reference-error-codes.
const AAD: &str = "identity platform error codes";

use BlockScope::{Cloud, InstanceTypeInRegion, InstanceTypeInZone, Region, Zone};
use ProvisionErrorKind::{Auth, Capacity, InvalidRequest, Quota, Transient};

/// Every ARM code Sky knows. A size that is not offered or has no capacity rules out that size
/// where it was tried (zone, or region for a regional request), not the zone for every size;
/// subscription limits are per region (vCPU family and public IP quotas are regional); bad
/// credentials rule out Azure. Throttling (HTTP 429, whatever the code) is retried in place for
/// reads, polls, power actions and deletes (`arm::Arm::call`) and blocks only the zone when it
/// outlasts the retries or hits a create.
pub const TABLE: &[Row] = &[
    row("SkuNotAvailable", Capacity, InstanceTypeInZone, DEPLOY),
    row("ZonalAllocationFailed", Capacity, InstanceTypeInZone, ALLOC),
    row(
        "OverconstrainedZonalAllocationRequest",
        Capacity,
        InstanceTypeInZone,
        ALLOC,
    ),
    row("AllocationFailed", Capacity, InstanceTypeInRegion, ALLOC),
    row(
        "OverconstrainedAllocationRequest",
        Capacity,
        InstanceTypeInRegion,
        ALLOC,
    ),
    // The Spot price of this size here is above the VM's max price.
    row("SpotMaxPriceTooLow", Capacity, InstanceTypeInZone, ALLOC),
    row("QuotaExceeded", Quota, Region, DEPLOY),
    row("OperationNotAllowed", Quota, Region, DEPLOY),
    row("ResourceQuotaExceeded", Quota, Region, DEPLOY),
    row("SubscriptionQuotaExceeded", Quota, Region, DEPLOY),
    row("LowPriorityQuotaExceeded", Quota, Region, DEPLOY),
    row("PublicIPCountLimitReached", Quota, Region, DEPLOY),
    row(
        "StandardSkuPublicIPCountLimitReached",
        Quota,
        Region,
        DEPLOY,
    ),
    row("PublicIpAddressQuotaExceeded", Quota, Region, DEPLOY),
    row("AuthorizationFailed", Auth, Cloud, DEPLOY),
    row("LinkedAuthorizationFailed", Auth, Cloud, DEPLOY),
    row("InvalidAuthenticationToken", Auth, Cloud, DEPLOY),
    row("InvalidAuthenticationTokenTenant", Auth, Cloud, DEPLOY),
    row("ExpiredAuthenticationToken", Auth, Cloud, DEPLOY),
    row("AuthenticationFailed", Auth, Cloud, DEPLOY),
    row("SubscriptionNotFound", Auth, Cloud, DEPLOY),
    row("MissingSubscriptionRegistration", Auth, Cloud, DEPLOY),
    row("invalid_client", Auth, Cloud, AAD),
    row("unauthorized_client", Auth, Cloud, AAD),
    row("invalid_request", Auth, Cloud, AAD),
    // What was asked for is not there (reads and deletes treat these as "nothing there").
    row("ResourceNotFound", InvalidRequest, Region, DEPLOY),
    row("ResourceGroupNotFound", InvalidRequest, Region, DEPLOY),
    row("NotFound", InvalidRequest, Region, DEPLOY),
    // A size or image this region does not offer, or a property Azure refuses for it.
    row(
        "InvalidParameter",
        InvalidRequest,
        InstanceTypeInRegion,
        DEPLOY,
    ),
    row(
        "LocationNotAvailableForResourceType",
        InvalidRequest,
        Region,
        DEPLOY,
    ),
    row("NoRegisteredProviderFound", InvalidRequest, Region, DEPLOY),
    row("TooManyRequests", Transient, Zone, THROTTLE),
    row("RetryableError", Transient, Zone, DEPLOY),
    row("InternalServerError", Transient, Zone, DEPLOY),
    row("InternalExecutionError", Transient, Zone, DEPLOY),
    row("ServerTimeout", Transient, Zone, DEPLOY),
    row("GatewayTimeout", Transient, Zone, DEPLOY),
    row("Conflict", Transient, Zone, DEPLOY),
    row("ResourceGroupBeingDeleted", Transient, Zone, DEPLOY),
    row("AnotherOperationInProgress", Transient, Zone, DEPLOY),
];

/// The row for an ARM `code` (ARM compares codes case-insensitively).
pub fn row_of(code: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// Whether an answer with this HTTP status is throttling: ARM says so with 429, whatever code
/// the body carries (Compute sends `OperationNotAllowed` with a `TooManyRequests` detail).
pub fn is_throttled(status: Option<u16>) -> bool {
    status == Some(429)
}

/// Classifies an ARM error by its code first and, for codes this table does not know, by the
/// HTTP status (`None` for a Failed asynchronous operation, whose HTTP status was 200).
pub fn kind_of(code: &str, status: Option<u16>) -> ProvisionErrorKind {
    if is_throttled(status) {
        return Transient;
    }
    if let Some(r) = row_of(code) {
        return r.kind;
    }
    match status {
        Some(401 | 403) => Auth,
        Some(408) | Some(500..=599) => Transient,
        Some(404) => InvalidRequest,
        // A code Sky does not know: the zone is blocked (as SkyPilot does) and failover goes on.
        _ => ProvisionErrorKind::Unknown,
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
        let kind = kind_of(&self.code, self.status);
        let (code, message) = (&self.code, &self.message);
        if is_throttled(self.status) {
            return ProvisionError::new(
                kind,
                format!("Azure: {what}: throttled (HTTP 429, {code}): {message}"),
            )
            .with_scope(Zone);
        }
        match row_of(code) {
            Some(r) => ProvisionError::new(kind, format!("Azure: {what}: {code}: {message}"))
                .with_scope(r.scope),
            None if kind == ProvisionErrorKind::Unknown => ProvisionError::new(
                kind,
                format!(
                    "Azure: {what}: {code}: {message} (an ARM code Sky does not know; blocking the zone)"
                ),
            ),
            None => ProvisionError::new(kind, format!("Azure: {what}: {code}: {message}")),
        }
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
        assert_eq!(kind_of("SomethingNew", Some(400)), Unknown);
        assert_eq!(kind_of("SomethingNew", None), Unknown);
        assert_eq!(kind_of("InvalidParameter", Some(400)), InvalidRequest);
        // Compute's throttling: 429 with OperationNotAllowed is not a quota.
        assert_eq!(kind_of("OperationNotAllowed", Some(429)), Transient);
    }

    #[test]
    fn each_code_blocks_its_scope_and_unknown_codes_block_the_zone() {
        use ProvisionErrorKind::Unknown;
        let err = |status, code: &str| {
            ArmError {
                status,
                code: code.into(),
                message: "m".into(),
            }
            .into_provision("create VM c-0 in eastus")
        };
        assert_eq!(
            err(None, "ZonalAllocationFailed").scope,
            Some(BlockScope::InstanceTypeInZone)
        );
        assert_eq!(
            err(None, "AllocationFailed").scope,
            Some(BlockScope::InstanceTypeInRegion)
        );
        assert_eq!(
            err(Some(409), "PublicIPCountLimitReached").scope,
            Some(BlockScope::Region)
        );
        assert_eq!(
            err(Some(403), "AuthorizationFailed").scope,
            Some(BlockScope::Cloud)
        );
        let throttled = err(Some(429), "OperationNotAllowed");
        assert_eq!(
            (throttled.kind, throttled.scope),
            (Transient, Some(BlockScope::Zone))
        );
        assert!(
            throttled.message.contains("throttled"),
            "{}",
            throttled.message
        );
        let unknown = err(Some(400), "BrandNewCode");
        assert_eq!(unknown.kind, Unknown);
        assert_eq!(unknown.kind.default_scope(), Some(BlockScope::Zone));
        assert!(
            unknown.message.contains("does not know"),
            "{}",
            unknown.message
        );
        for r in TABLE {
            assert!(!r.reference.is_empty(), "{} has a reference", r.code);
        }
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
