//! Compute Engine's name and label checks, as the API applies them to what it is asked to create:
//! a request Sky shapes wrongly is refused here as it would be by Google, not accepted silently.

use serde_json::Value;

use super::{Reply, api_error};

/// Compute Engine's check of a resource name (RFC 1035: `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`),
/// refused with its 400 `invalid` error.
pub(super) fn check_name(name: &str) -> Option<Reply> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        api_error(
            400,
            "invalid",
            &format!(
                "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
            ),
        )
    })
}

/// Compute Engine's check of labels: keys of 1-63 lowercase letters, digits, `_` and `-`
/// starting with a letter; values the same characters (empty allowed). (International
/// characters, which GCP also allows, are not modelled: Sky never sends them.)
pub(super) fn check_labels(instance: &Value) -> Option<Reply> {
    let labels = instance.get("labels")?.as_object()?;
    let chars_ok = |s: &str| {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    for (key, value) in labels {
        let value = value.as_str().unwrap_or_default();
        if !(chars_ok(key) && key.starts_with(|c: char| c.is_ascii_lowercase())) {
            return Some(api_error(
                400,
                "invalid",
                &format!(
                    "Invalid value for field 'resource.labels': ''. Label key '{key}' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long."
                ),
            ));
        }
        if !chars_ok(value) {
            return Some(api_error(
                400,
                "invalid",
                &format!(
                    "Invalid value for field 'resource.labels': ''. Label value '{value}' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long."
                ),
            ));
        }
    }
    None
}

/// The `nicType` values `NetworkInterface.NicType` defines; Google refuses any other string
/// before it looks at the rest of the request.
const NIC_TYPES: &[&str] = &[
    "UNSPECIFIED_NIC_TYPE",
    "VIRTIO_NET",
    "GVNIC",
    "IDPF",
    "MRDMA",
    "IRDMA",
];

/// Compute Engine's check of each network interface's `nicType` enum.
pub(super) fn check_nics(instance: &Value) -> Option<Reply> {
    let nics = instance.get("networkInterfaces")?.as_array()?;
    nics.iter().enumerate().find_map(|(i, nic)| {
        let nic_type = nic.get("nicType")?.as_str().unwrap_or_default();
        (!NIC_TYPES.contains(&nic_type)).then(|| {
            api_error(
                400,
                "invalid",
                &format!(
                    "Invalid value at 'resource.network_interfaces[{i}].nic_type' \
                     (type.googleapis.com/google.cloud.compute.v1.NetworkInterface.NicType), \
                     \"{nic_type}\""
                ),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_rfc_1035_as_gcp_checks_them() {
        for ok in ["a", "c1-0", "my-cluster-e847ab93-0", &"x".repeat(63)] {
            assert!(check_name(ok).is_none(), "{ok}");
        }
        for bad in [
            "",
            "My-0",
            "my_cluster-0",
            "a.b",
            "0a",
            "a-",
            &"x".repeat(64),
        ] {
            let refused = check_name(bad).expect(bad);
            assert_eq!(refused.status(), 400, "{bad}");
        }
    }

    #[test]
    fn labels_allow_lowercase_digits_underscore_and_dash() {
        let ok =
            json!({"labels": {"sky-cluster": "my-cluster", "sky-user": "alice_smith", "e": ""}});
        assert!(check_labels(&ok).is_none());
        for bad in [
            json!({"labels": {"sky-cluster": "My.Cluster"}}),
            json!({"labels": {"Sky": "x"}}),
            json!({"labels": {"_k": "x"}}),
            json!({"labels": {"k": "x".repeat(64)}}),
        ] {
            assert!(check_labels(&bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn nic_types_are_the_enums_names() {
        assert!(check_nics(&json!({"networkInterfaces": [{"network": "n"}]})).is_none());
        assert!(check_nics(&json!({"networkInterfaces": [{"nicType": "GVNIC"}]})).is_none());
        let refused = check_nics(&json!({"networkInterfaces": [{"nicType": "gvnic"}]}));
        assert_eq!(refused.map(|r| r.status().as_u16()), Some(400));
    }
}
