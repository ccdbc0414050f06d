//! Ownership: how a resource in a cloud proves it is this Sky home's.
//!
//! Every resource Sky creates carries three tags (labels on GCP) whose keys are Sky's alone
//! ([`TAG_CLUSTER`], [`TAG_OWNER`], [`TAG_LAUNCH`]; never SkyPilot's `skypilot-cluster-name`):
//! the cluster's name, the **owner id** of the Sky home that made it (random, created once by a
//! state-database migration and kept there), and the **launch id** of the create attempt (random,
//! written to the cluster's record before the create call). Providers act by name only on
//! resources carrying this home's owner id, and find an interrupted launch by its launch id.
//! What this module does not do: talk to a cloud (each provider maps the tags to its own terms).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudId;
use crate::provision::ProvisionError;

/// Tag (label) key holding the cluster's name (GCP: its label-safe id).
pub const TAG_CLUSTER: &str = "sky-cluster";
/// Tag key holding the owner id of the Sky home that created the resource.
pub const TAG_OWNER: &str = "sky-owner";
/// Tag key holding the launch id of the create attempt that made the resource.
pub const TAG_LAUNCH: &str = "sky-launch";

/// A fresh launch id: 16 lowercase hex digits (64 random bits), valid as a tag value on every
/// cloud (GCP labels: `[a-z0-9_-]`, at most 63 characters).
pub fn new_launch_id() -> Result<String, ProvisionError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| {
        ProvisionError::fatal(format!("cannot draw a random launch id from the OS: {e}"))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the shape of an owner or launch id (what the state database and
/// [`new_launch_id`] make), so a value typed by a user (`--owner`) cannot smuggle a filter.
pub fn is_valid_id(id: &str) -> bool {
    (8..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// One create attempt of a cluster, as recorded before its create call: which launch id tagged
/// what it made, and where it was sent, so refresh and down can find it even when the launch was
/// killed before it recorded any node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchAttempt {
    pub launch_id: String,
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
}

/// Where a cloud provider learns this home's owner id: read once, on first use, from the state
/// database of its Sky home (so building a registry costs nothing), or fixed (tests, tools).
#[derive(Debug)]
pub struct HomeOwner {
    source: OwnerSource,
    cached: OnceLock<Result<String, String>>,
}

#[derive(Debug, Clone)]
enum OwnerSource {
    Home(PathBuf),
    Fixed(String),
}

impl HomeOwner {
    /// The owner id kept in `sky_home`'s state database (created there if the home is new).
    pub fn of_home(sky_home: impl Into<PathBuf>) -> HomeOwner {
        HomeOwner {
            source: OwnerSource::Home(sky_home.into()),
            cached: OnceLock::new(),
        }
    }

    /// A given owner id.
    pub fn fixed(owner_id: impl Into<String>) -> HomeOwner {
        HomeOwner {
            source: OwnerSource::Fixed(owner_id.into()),
            cached: OnceLock::new(),
        }
    }

    /// The owner id; an error when the state database cannot be read, so a provider never acts
    /// without knowing whose resources are whose.
    pub fn get(&self) -> Result<String, ProvisionError> {
        self.cached
            .get_or_init(|| match &self.source {
                OwnerSource::Fixed(id) if is_valid_id(id) => Ok(id.clone()),
                OwnerSource::Fixed(id) => Err(format!("'{id}' is not a valid owner id")),
                OwnerSource::Home(home) => {
                    crate::state::StateStore::open(&home.join(crate::state::STATE_DB_FILE))
                        .and_then(|db| db.owner_id())
                        .map_err(|e| e.to_string())
                }
            })
            .clone()
            .map_err(|e| {
                ProvisionError::fatal(format!(
                    "cannot tell which cloud resources are this Sky home's (its owner id): {e}"
                ))
            })
    }
}

impl Clone for HomeOwner {
    fn clone(&self) -> Self {
        HomeOwner {
            source: self.source.clone(),
            cached: OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_ids_are_tag_safe_and_differ() {
        let a = new_launch_id().expect("id");
        let b = new_launch_id().expect("id");
        assert_ne!(a, b);
        assert!(is_valid_id(&a), "{a}");
        assert!(!is_valid_id("Bad Owner"));
        assert!(!is_valid_id("short"));
    }

    #[test]
    fn a_home_keeps_one_owner_id() {
        let home = tempfile::tempdir().expect("tmp");
        let first = HomeOwner::of_home(home.path()).get().expect("owner");
        let again = HomeOwner::of_home(home.path()).get().expect("owner");
        assert_eq!(first, again);
        assert!(is_valid_id(&first), "{first}");
        let other = tempfile::tempdir().expect("tmp");
        assert_ne!(
            first,
            HomeOwner::of_home(other.path()).get().expect("owner")
        );
    }
}
