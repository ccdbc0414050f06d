//! Cloud identities.
//!
//! A `CloudId` is data: it names where an offer or a cluster lives. Behaviour that differs between
//! clouds (how they price accelerators, which instance families are the default, how to provision)
//! lives in per-cloud catalog profiles and behind the provider trait, never in `match`es spread
//! through the core.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudId {
    Aws,
    Azure,
    Gcp,
    /// This machine: always enabled, needs no credentials, costs nothing.
    Local,
    /// Machines the user already has, declared as node pools in `$SKY_HOME/ssh_node_pools.yaml`
    /// (`--infra ssh/POOL`): offered by their provider like `local`, never from a catalog.
    Ssh,
}

impl CloudId {
    /// Clouds with a price catalog, i.e. the ones the optimizer compares.
    pub const PRICED: [CloudId; 3] = [CloudId::Aws, CloudId::Azure, CloudId::Gcp];
    pub const ALL: [CloudId; 5] = [
        CloudId::Aws,
        CloudId::Azure,
        CloudId::Gcp,
        CloudId::Local,
        CloudId::Ssh,
    ];

    /// The lowercase id used in YAML, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudId::Aws => "aws",
            CloudId::Azure => "azure",
            CloudId::Gcp => "gcp",
            CloudId::Local => "local",
            CloudId::Ssh => "ssh",
        }
    }

    /// The name people write in prose and tables (SkyPilot's `repr`).
    pub fn display_name(self) -> &'static str {
        match self {
            CloudId::Aws => "AWS",
            CloudId::Azure => "Azure",
            CloudId::Gcp => "GCP",
            CloudId::Local => "Local",
            CloudId::Ssh => "SSH",
        }
    }
}

impl fmt::Display for CloudId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cloud '{0}' (allowed: aws, gcp, azure, local, ssh)")]
pub struct UnknownCloud(pub String);

impl FromStr for CloudId {
    type Err = UnknownCloud;

    /// Case-insensitive, as SkyPilot accepts `AWS`, `aws` and `Aws` alike.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CloudId::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCloud(s.to_owned()))
    }
}
