//! Which variables of the caller's environment reach the agent and its jobs: an allow-list, so
//! cloud keys (or anything else) exported in the shell that started Sky do not reach every job.
//!
//! Two lists. [`for_agent`] is what the `rpc` relay and the daemon keep (the job base plus Sky's
//! and SkyPilot's settings). [`for_jobs`] is what a job inherits from the daemon before the task's
//! `envs`, `secrets` and the predefined variables are added. Pure filters over a given
//! environment; callers pass `std::env::vars_os()` and start the child with `env_clear()`.

use std::ffi::{OsStr, OsString};

/// Names every process needs to behave like a normal login: where programs are, who and where
/// the user is, the terminal and the locale.
const BASE: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// Sky's own settings the daemon (and the autostop hook, which is `sky stop|down`) reads.
/// `SKY_TIMELINE_FILE_PATH` is left out on purpose: a hook run would overwrite the user's trace.
const SKY: &[&str] = &[
    "SKY_HOME",
    "SKY_DEV",
    "SKY_LOCK_TIMEOUT",
    "SKY_SSH_CONNECT_TIMEOUT_SECS",
    "SKY_MINIMIZE_LOGGING",
    "SKY_AGENT_BIN",
];
const PREFIXES_AGENT: &[&str] = &["SKY_AGENT_", "SKYPILOT_"];

fn is_base(name: &str) -> bool {
    BASE.contains(&name) || name.starts_with("LC_")
}

/// Whether `name` may pass from a caller to the agent (relay and daemon).
pub fn agent_may_inherit(name: &str) -> bool {
    is_base(name) || SKY.contains(&name) || PREFIXES_AGENT.iter().any(|p| name.starts_with(p))
}

/// Whether `name` may pass from the daemon to a job (before the job's own variables).
pub fn job_may_inherit(name: &str) -> bool {
    is_base(name)
}

fn keep(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    allowed: fn(&str) -> bool,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(k, _)| OsStr::to_str(k).is_some_and(allowed))
        .collect()
}

/// The part of `vars` the agent keeps.
pub fn for_agent(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    keep(vars, agent_may_inherit)
}

/// The part of `vars` a job inherits.
pub fn for_jobs(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    keep(vars, job_may_inherit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Vec<(OsString, OsString)>) -> Vec<String> {
        v.into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn cloud_keys_stay_behind() {
        let vars: Vec<(OsString, OsString)> = [
            "PATH",
            "HOME",
            "LC_ALL",
            "AWS_SECRET_ACCESS_KEY",
            "AZURE_CLIENT_SECRET",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "SKY_HOME",
            "SKY_AGENT_KILL_GRACE_SECS",
            "SKYPILOT_DEBUG",
            "SKY_TIMELINE_FILE_PATH",
            "RUST_LOG",
        ]
        .iter()
        .map(|k| (OsString::from(k), OsString::from("v")))
        .collect();
        assert_eq!(
            names(for_agent(vars.clone())),
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "SKY_HOME",
                "SKY_AGENT_KILL_GRACE_SECS",
                "SKYPILOT_DEBUG"
            ]
        );
        assert_eq!(names(for_jobs(vars)), ["PATH", "HOME", "LC_ALL"]);
    }
}
