//! Cluster status and the one table of legal transitions.
//!
//! A cluster that does not exist has no status (its record is gone; `None` below). The states:
//!
//! | status    | meaning |
//! |-----------|---------|
//! | `INIT`    | being launched, started, or in an unknown/partial state after a crash or a failed refresh |
//! | `UP`      | every node runs and the head agent answers; jobs can be submitted |
//! | `STOPPED` | every node is stopped; disks (node directories) are kept; `sky start` resumes |
//!
//! Legal transitions (anything else is a bug in the caller and is refused):
//!
//! | from \ to | INIT | UP | STOPPED | gone |
//! |-----------|------|----|---------|------|
//! | gone      | launch records the cluster before touching a provider | – | – | – |
//! | INIT      | retry | setup finished / refresh found it healthy | refresh found it stopped | down, or failed first launch cleaned up |
//! | UP        | re-provision, or refresh found it partial | touch (same status) | stop, autostop | down, autostop --down |
//! | STOPPED   | start, or refresh found nodes running | – | stop again (idempotent) | down |
//!
//! `STOPPED -> UP` deliberately goes through `INIT`: a restart is only UP once setup has re-run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClusterStatus {
    Init,
    Up,
    Stopped,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Init => "INIT",
            ClusterStatus::Up => "UP",
            ClusterStatus::Stopped => "STOPPED",
        }
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cluster status '{0}' (allowed: INIT, UP, STOPPED)")]
pub struct UnknownStatus(pub String);

impl FromStr for ClusterStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "INIT" => Ok(ClusterStatus::Init),
            "UP" => Ok(ClusterStatus::Up),
            "STOPPED" => Ok(ClusterStatus::Stopped),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal cluster status transition {} -> {}", show(*.from), show(*.to))]
pub struct IllegalTransition {
    pub from: Option<ClusterStatus>,
    pub to: Option<ClusterStatus>,
}

fn show(s: Option<ClusterStatus>) -> &'static str {
    s.map_or("(none)", ClusterStatus::as_str)
}

/// The transition table above, as code. `None` is "no record".
pub fn check_transition(
    from: Option<ClusterStatus>,
    to: Option<ClusterStatus>,
) -> Result<(), IllegalTransition> {
    use ClusterStatus::{Init, Stopped, Up};
    let legal = match (from, to) {
        (None, Some(Init)) => true,
        (None, _) => false,
        (Some(Init), _) => true,
        (Some(Up), _) => true,
        (Some(Stopped), Some(Init) | Some(Stopped) | None) => true,
        (Some(Stopped), Some(Up)) => false,
    };
    if legal {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClusterStatus::{Init, Stopped, Up};

    #[test]
    fn table_matches_the_documentation() {
        let all = [None, Some(Init), Some(Up), Some(Stopped)];
        let mut illegal = Vec::new();
        for from in all {
            for to in all {
                if check_transition(from, to).is_err() {
                    illegal.push(format!("{} -> {}", show(from), show(to)));
                }
            }
        }
        assert_eq!(
            illegal,
            [
                "(none) -> (none)",
                "(none) -> UP",
                "(none) -> STOPPED",
                "STOPPED -> UP"
            ]
        );
    }

    #[test]
    fn parse_round_trips_and_names_the_allowed_values() {
        for s in [Init, Up, Stopped] {
            assert_eq!(s.as_str().parse::<ClusterStatus>(), Ok(s));
        }
        let err = "RUNNING"
            .parse::<ClusterStatus>()
            .expect_err("not a status");
        assert_eq!(
            err.to_string(),
            "unknown cluster status 'RUNNING' (allowed: INIT, UP, STOPPED)"
        );
    }
}
