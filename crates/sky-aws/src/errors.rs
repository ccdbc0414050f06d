//! EC2 error codes mapped to a [`ProvisionErrorKind`] and a [`BlockScope`], in one table
//! ([`TABLE`]), so failover decides on kind and scope alone.
//!
//! EC2 answers in XML with a `Code` (`InsufficientInstanceCapacity`, `VcpuLimitExceeded`, ...);
//! the SDK exposes it through [`ProvideErrorMetadata`]. Every row cites where the code comes from:
//! "EC2 API error codes" is <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>.
//! A code the table does not know is [`ProvisionErrorKind::Unknown`] (the zone is blocked, as
//! SkyPilot does, and the message names the code). Transport failures (no answer at all) are
//! transient. Throttling (`RequestLimitExceeded`) is retried in place by the SDK's standard retry
//! classifier (reads, deletes) or by `ec2::run` (RunInstances, which takes an idempotency token);
//! the table says what failover does once those retries give up.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use sky_core::provision::{
    BlockScope, ErrorRow, ProvisionError, ProvisionErrorKind, error_row as row,
};

/// The EC2 code that means "slow down"; the only one retried in place (with backoff).
pub const THROTTLE_CODE: &str = "RequestLimitExceeded";

/// A row of this cloud's error table.
pub type Row = ErrorRow;

const ERR_CODES: &str = "EC2 API error codes";

use BlockScope::{Cloud, InstanceType, InstanceTypeInZone, Region, Zone};
use ProvisionErrorKind::{Auth, Capacity, InvalidRequest, Quota, Transient};

/// Every EC2 code Sky knows. Capacity of an instance type is per zone and per type ("We
/// currently do not have sufficient m6i.xlarge capacity in the Availability Zone you requested",
/// so another type in that zone, e.g. an `ordered:` second choice, may still fit); account
/// limits are per region; an instance type EC2 does not offer in the requested zone is blocked
/// in that zone only (`Unsupported` says "not supported in your requested Availability Zone").
pub const TABLE: &[Row] = &[
    row(
        "InsufficientInstanceCapacity",
        Capacity,
        InstanceTypeInZone,
        ERR_CODES,
    ),
    row(
        "InsufficientHostCapacity",
        Capacity,
        InstanceTypeInZone,
        ERR_CODES,
    ),
    row(
        "InsufficientReservedInstanceCapacity",
        Capacity,
        Zone,
        ERR_CODES,
    ),
    row("InsufficientCapacity", Capacity, Zone, ERR_CODES),
    row("InsufficientCapacityOnHost", Capacity, Zone, ERR_CODES),
    // The subnet (one zone) has no free addresses left.
    row(
        "InsufficientFreeAddressesInSubnet",
        Capacity,
        Zone,
        ERR_CODES,
    ),
    // The spot price in this zone is above what we offered: another zone may be cheaper.
    row("SpotMaxPriceTooLow", Capacity, Zone, ERR_CODES),
    row("InstanceLimitExceeded", Quota, Region, ERR_CODES),
    row("VcpuLimitExceeded", Quota, Region, ERR_CODES),
    row("MaxSpotInstanceCountExceeded", Quota, Region, ERR_CODES),
    row("InsufficientAddressCapacity", Quota, Region, ERR_CODES),
    row("AddressLimitExceeded", Quota, Region, ERR_CODES),
    row("SecurityGroupLimitExceeded", Quota, Region, ERR_CODES),
    row("KeyPairLimitExceeded", Quota, Region, ERR_CODES),
    // The region is not enabled for this account, or the account is still being verified
    // there: nothing in the region can work, other regions may.
    row("OptInRequired", Quota, Region, ERR_CODES),
    row("PendingVerification", Quota, Region, ERR_CODES),
    row("AuthFailure", Auth, Cloud, ERR_CODES),
    row("UnauthorizedOperation", Auth, Cloud, ERR_CODES),
    row("InvalidClientTokenId", Auth, Cloud, ERR_CODES),
    row("SignatureDoesNotMatch", Auth, Cloud, ERR_CODES),
    row(
        "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
        Auth,
        Cloud,
        ERR_CODES,
    ),
    row("Blocked", Auth, Cloud, ERR_CODES),
    row("Unsupported", InvalidRequest, InstanceTypeInZone, ERR_CODES),
    row(
        "InvalidParameterCombination",
        InvalidRequest,
        InstanceType,
        ERR_CODES,
    ),
    row(
        "InvalidParameterValue",
        InvalidRequest,
        InstanceType,
        ERR_CODES,
    ),
    row("InvalidParameter", InvalidRequest, InstanceType, ERR_CODES),
    row(
        "UnsupportedOperation",
        InvalidRequest,
        InstanceType,
        ERR_CODES,
    ),
    row(
        "InvalidInstanceType",
        InvalidRequest,
        InstanceType,
        ERR_CODES,
    ),
    // AMIs and key pairs are per region: another region has its own.
    row("InvalidAMIID.*", InvalidRequest, Region, ERR_CODES),
    row("InvalidKeyPair.*", InvalidRequest, Region, ERR_CODES),
    row(THROTTLE_CODE, Transient, Zone, ERR_CODES),
    row("InternalError", Transient, Zone, ERR_CODES),
    row("ServiceUnavailable", Transient, Zone, ERR_CODES),
    row("Unavailable", Transient, Zone, ERR_CODES),
    row("InternalFailure", Transient, Zone, ERR_CODES),
    // The SOAP-era "Server." prefix (`Server.InsufficientInstanceCapacity`) marks server faults.
    row("Server.*", Transient, Zone, ERR_CODES),
];

/// The row for an EC2 `code`: exact match first, then the `prefix.*` rows.
pub fn row_of(code: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.code == code).or_else(|| {
        TABLE.iter().find(|r| {
            r.code
                .strip_suffix('*')
                .is_some_and(|prefix| code.starts_with(prefix))
        })
    })
}

/// The kind failover should see for an EC2 error `code`.
pub fn kind_of_code(code: &str) -> ProvisionErrorKind {
    row_of(code).map_or(ProvisionErrorKind::Unknown, |r| r.kind)
}

/// The error for EC2 `code` with `message` while doing `op`, with its table row's scope.
pub fn from_code(op: &str, code: &str, message: &str) -> ProvisionError {
    match row_of(code) {
        Some(r) => {
            ProvisionError::new(r.kind, format!("{op}: {code}: {message}")).with_scope(r.scope)
        }
        None => ProvisionError::new(
            ProvisionErrorKind::Unknown,
            format!("{op}: {code}: {message} (an EC2 code Sky does not know; blocking the zone)"),
        ),
    }
}

/// The EC2 error code of `err`, if the service answered with one.
pub fn code_of<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Converts an SDK error from `op` (e.g. `RunInstances in us-east-1a`) into a provision error.
/// Messages carry EC2's own text, which names resources but never credentials.
pub fn provision_error<E, R>(op: &str, err: &SdkError<E, R>) -> ProvisionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(why) = crate::client::credentials_cause(err) {
        return ProvisionError::new(
            ProvisionErrorKind::Auth,
            format!("{op}: AWS credentials could not be loaded: {why}"),
        );
    }
    match err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("no message");
            from_code(op, code, message)
        }
        SdkError::TimeoutError(_) => ProvisionError::new(
            ProvisionErrorKind::Transient,
            format!("{op}: EC2 did not answer in time"),
        ),
        SdkError::DispatchFailure(d) => {
            let why = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "connection failed"
            } else {
                "could not send the request"
            };
            ProvisionError::new(
                ProvisionErrorKind::Transient,
                format!("{op}: {why} (is the EC2 endpoint reachable?)"),
            )
        }
        SdkError::ResponseError(_) => ProvisionError::new(
            ProvisionErrorKind::Transient,
            format!("{op}: EC2 sent an answer that could not be read"),
        ),
        SdkError::ConstructionFailure(_) => ProvisionError::fatal(format!(
            "{op}: the request could not be built (a bug in Sky's AWS provider)"
        )),
        _ => ProvisionError::new(
            ProvisionErrorKind::Transient,
            format!("{op}: {}", aws_sdk_ec2::error::DisplayErrorContext(err)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_maps_its_code_to_its_kind_and_scope() {
        for r in TABLE {
            let code = r.code.replace('*', "Sample");
            let e = from_code("RunInstances", &code, "m");
            assert_eq!(e.kind, r.kind, "{code}");
            assert_eq!(e.block_scope(), Some(r.scope), "{code}");
            assert!(!r.reference.is_empty());
        }
    }

    #[test]
    fn the_codes_the_issue_names_map_to_their_kinds_and_scopes() {
        use ProvisionErrorKind::*;
        let cases = [
            ("InsufficientInstanceCapacity", Capacity, InstanceTypeInZone),
            ("InstanceLimitExceeded", Quota, Region),
            ("VcpuLimitExceeded", Quota, Region),
            ("MaxSpotInstanceCountExceeded", Quota, Region),
            ("Unsupported", InvalidRequest, InstanceTypeInZone),
            ("InvalidParameterCombination", InvalidRequest, InstanceType),
            ("SpotMaxPriceTooLow", Capacity, Zone),
            ("RequestLimitExceeded", Transient, Zone),
            ("AuthFailure", Auth, Cloud),
            ("UnauthorizedOperation", Auth, Cloud),
            ("InvalidAMIID.NotFound", InvalidRequest, Region),
            ("Server.InsufficientInstanceCapacity", Transient, Zone),
        ];
        for (code, kind, scope) in cases {
            let e = from_code("RunInstances", code, "m");
            assert_eq!((e.kind, e.block_scope()), (kind, Some(scope)), "{code}");
        }
    }

    #[test]
    fn an_unknown_code_blocks_the_zone_and_says_so() {
        let e = from_code("RunInstances in us-east-1a", "SomethingNew", "what");
        assert_eq!(e.kind, ProvisionErrorKind::Unknown);
        assert_eq!(e.block_scope(), Some(BlockScope::Zone));
        assert!(e.message.contains("SomethingNew"), "{}", e.message);
        assert!(e.message.contains("does not know"), "{}", e.message);
    }
}
