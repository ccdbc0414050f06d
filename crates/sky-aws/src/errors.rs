//! EC2 error codes mapped to [`ProvisionErrorKind`], so failover decides on the kind alone.
//!
//! EC2 answers in XML with a `Code` (`InsufficientInstanceCapacity`, `VcpuLimitExceeded`, ...);
//! the SDK exposes it through [`ProvideErrorMetadata`]. Transport failures (no answer at all) are
//! transient. This module does not retry: the caller chooses per call whether to.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};

/// The EC2 code that means "slow down"; the only one retried in place (with backoff).
pub const THROTTLE_CODE: &str = "RequestLimitExceeded";

/// The kind failover should see for an EC2 error `code`.
pub fn kind_of_code(code: &str) -> ProvisionErrorKind {
    use ProvisionErrorKind::*;
    match code {
        "InsufficientInstanceCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "InsufficientCapacity"
        | "InsufficientCapacityOnHost"
        // The spot price in this zone is above what we offered: another zone may be cheaper.
        | "SpotMaxPriceTooLow" => Capacity,
        "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "MaxSpotInstanceCountExceeded"
        | "InsufficientAddressCapacity"
        | "AddressLimitExceeded"
        | "SecurityGroupLimitExceeded"
        | "KeyPairLimitExceeded"
        // The region is not enabled for this account: nothing in it can work.
        | "OptInRequired" => Quota,
        "AuthFailure"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "AuthFailure.ServiceLinkedRoleCreationNotPermitted"
        | "Blocked" => Auth,
        "Unsupported" | "InvalidParameterCombination" | "InvalidParameterValue"
        | "InvalidParameter" | "UnsupportedOperation" | "InvalidInstanceType" => InvalidRequest,
        THROTTLE_CODE | "InternalError" | "ServiceUnavailable" | "Unavailable"
        | "InternalFailure" => Transient,
        c if c.starts_with("InvalidAMIID") || c.starts_with("InvalidKeyPair") => InvalidRequest,
        c if c.starts_with("Server.") || c.ends_with("Unavailable") => Transient,
        _ => Fatal,
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
    match err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("no message");
            let kind = kind_of_code(code);
            ProvisionError::new(kind, format!("{op}: {code}: {message}"))
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
    fn the_codes_the_issue_names_map_to_their_kinds() {
        use ProvisionErrorKind::*;
        let cases = [
            ("InsufficientInstanceCapacity", Capacity),
            ("InstanceLimitExceeded", Quota),
            ("VcpuLimitExceeded", Quota),
            ("MaxSpotInstanceCountExceeded", Quota),
            ("Unsupported", InvalidRequest),
            ("InvalidParameterCombination", InvalidRequest),
            ("SpotMaxPriceTooLow", Capacity),
            ("RequestLimitExceeded", Transient),
            ("AuthFailure", Auth),
            ("UnauthorizedOperation", Auth),
            ("InvalidAMIID.NotFound", InvalidRequest),
            ("SomethingNew", Fatal),
        ];
        for (code, kind) in cases {
            assert_eq!(kind_of_code(code), kind, "{code}");
        }
    }
}
