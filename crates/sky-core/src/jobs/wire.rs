//! The agent protocol: newline-delimited JSON, one request or response per line, each carrying
//! the protocol version `v` and the request `id` it belongs to.
//!
//! ```text
//! → {"v":1,"id":7,"op":"submit","run":"echo hi"}
//! ← {"v":1,"id":7,"ok":{"kind":"submitted","job_id":3}}
//! → {"v":1,"id":8,"op":"tail","job":3,"follow":true}
//! ← {"v":1,"id":8,"event":{"kind":"log","num_nodes":1,"lines":[{"rank":0,"text":"hi"}],"offsets":[3]}}
//! ← {"v":1,"id":8,"ok":{"kind":"tail_end","job_id":3,"status":"SUCCEEDED","exit_code":0}}
//! ```
//!
//! A request gets zero or more `event`s, then exactly one `ok` or `error`. A message whose `v` is
//! not [`PROTOCOL_VERSION`] is answered with an `unsupported_version` error; requests may be
//! pipelined and answered out of order. This module only defines and checks messages; it does no
//! I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{AutostopSetting, JobId, JobRecord, JobSpec, JobStatus, NodeCapacity, Secrets};

/// Bump on any change an older peer could misread; both sides refuse other versions.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub v: u32,
    pub id: u64,
    #[serde(flatten)]
    pub body: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Agent version, protocol, configuration and autostop state.
    Info,
    /// Tell the agent about its cluster. Sent by the provisioner after launch or start.
    Configure(ClusterConfig),
    Submit(JobSpec),
    /// Every job, oldest first.
    Queue,
    /// The named jobs; an unknown id is a `job_not_found` error.
    Status {
        ids: Vec<JobId>,
    },
    /// Cancel the listed jobs, or every pending and running job with `all`.
    Cancel {
        #[serde(default)]
        jobs: Vec<JobId>,
        #[serde(default)]
        all: bool,
    },
    /// Log lines of one job (`None`: the latest), from `offsets` (bytes per job rank; missing =
    /// 0), until the job is terminal when `follow`.
    Tail {
        #[serde(default)]
        job: Option<JobId>,
        #[serde(default)]
        offsets: Vec<u64>,
        #[serde(default)]
        follow: bool,
    },
    SetAutostop(AutostopSetting),
    CancelAutostop,
    /// Run setup on every node in parallel; streams its log lines, then reports exit codes.
    Setup(SetupSpec),
    /// Kill every setup in progress on every node (SIGTERM, SIGKILL after the grace period) and
    /// answer once their process groups are gone; each such `setup` request then ends with the
    /// signal's exit codes. Nothing running is not an error.
    CancelSetup,
    /// Exit the daemon. With `kill_jobs`, running jobs are cancelled first (stop/down of the
    /// cluster); otherwise they keep running unwatched and are marked FAILED_DRIVER on restart.
    Shutdown {
        #[serde(default)]
        kill_jobs: bool,
    },
}

/// One node as the agent sees it. `dir` is the node's directory (for the local cloud, a directory
/// on this machine; for remote hosts, the remote home).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub ip: String,
    pub dir: PathBuf,
    /// How the head's agent reaches this node over SSH; `None` for nodes it runs on itself (the
    /// head, and every node of the local cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<NodeSsh>,
}

/// A worker as the head's agent reaches it: with the `ssh` binary on the head, using a key and a
/// known-hosts file that live on the head (paths on the head, no key material here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSsh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    /// The cluster's directory on the worker (absolute), where its job groups are recorded.
    /// Empty in a config from a client older than per-cluster node directories; such a worker
    /// cannot run jobs until the cluster is launched again.
    #[serde(default)]
    pub node_dir: PathBuf,
}

/// A command line run when autostop fires. It must carry no secrets: it is stored in the agent DB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutostopHook {
    pub stop: Vec<String>,
    pub down: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfig {
    pub cluster_name: String,
    /// For `SKYPILOT_CLUSTER_INFO`.
    pub cloud: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    /// Rank order: `nodes[0]` is the head.
    pub nodes: Vec<NodeSpec>,
    /// What each node offers to jobs.
    pub capacity: NodeCapacity,
    #[serde(default)]
    pub autostop_hook: Option<AutostopHook>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupSpec {
    pub commands: String,
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub v: u32,
    pub id: u64,
    #[serde(flatten)]
    pub body: ResponseBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    Ok(Reply),
    Event(Event),
    Error(WireError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Boxed: it is much larger than the other replies.
    Info(Box<AgentInfo>),
    Done,
    Submitted {
        job_id: JobId,
    },
    Jobs {
        jobs: Vec<JobRecord>,
    },
    Cancelled {
        job_ids: Vec<JobId>,
    },
    TailEnd(TailEnd),
    SetupDone(SetupResult),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Log(LogChunk),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// The job rank (or node rank, for setup) that printed it.
    pub rank: u32,
    pub text: String,
}

/// Complete lines read since the previous chunk. `offsets[r]` is the byte offset in rank r's log
/// after these lines: pass it back in a new `tail` to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogChunk {
    pub num_nodes: u32,
    pub lines: Vec<LogLine>,
    pub offsets: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailEnd {
    pub job_id: JobId,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupResult {
    /// Exit code per node rank.
    pub exit_codes: Vec<i32>,
    pub log_dir: String,
}

impl SetupResult {
    pub fn succeeded(&self) -> bool {
        self.exit_codes.iter().all(|c| *c == 0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub agent_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub home: String,
    pub config: Option<ClusterConfig>,
    pub autostop: Option<AutostopSetting>,
    /// Seconds since the last job activity or submission.
    pub idle_seconds: f64,
    /// Seconds per autostop "minute" (60 unless `SKY_AGENT_IDLE_UNIT_SECS` is set, for tests).
    pub idle_unit_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireErrorKind {
    BadRequest,
    UnsupportedVersion,
    JobNotFound,
    NotConfigured,
    DoesNotFit,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    pub kind: WireErrorKind,
    pub message: String,
}

impl WireError {
    pub fn new(kind: WireErrorKind, message: impl Into<String>) -> Self {
        WireError {
            kind,
            message: message.into(),
        }
    }
}

/// Parse one request line, checking the version before the body so that a newer peer's unknown
/// ops are reported as a version problem. On failure, returns the id (when readable) and the error.
pub fn parse_request(line: &str) -> Result<RequestEnvelope, (u64, WireError)> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        (
            0,
            WireError::new(
                WireErrorKind::BadRequest,
                format!("request is not JSON: {e}"),
            ),
        )
    })?;
    let id = value.get("id").and_then(|v| v.as_u64()).unwrap_or(0);
    check_version(&value).map_err(|e| (id, e))?;
    serde_json::from_value(value).map_err(|e| {
        (
            id,
            WireError::new(WireErrorKind::BadRequest, format!("bad request: {e}")),
        )
    })
}

/// Parse one response line, checking its version first.
pub fn parse_response(line: &str) -> Result<ResponseEnvelope, WireError> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        WireError::new(
            WireErrorKind::BadRequest,
            format!(
                "agent sent a line that is not JSON ({e}): {}",
                truncate(line)
            ),
        )
    })?;
    check_version(&value)?;
    serde_json::from_value(value).map_err(|e| {
        WireError::new(
            WireErrorKind::BadRequest,
            format!(
                "agent sent an unreadable response ({e}): {}",
                truncate(line)
            ),
        )
    })
}

fn check_version(value: &serde_json::Value) -> Result<(), WireError> {
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => Ok(()),
        Some(v) => Err(WireError::new(
            WireErrorKind::UnsupportedVersion,
            format!(
                "protocol version {v} is not supported: this side speaks version {PROTOCOL_VERSION}; \
                 update sky and sky-agent to the same release"
            ),
        )),
        None => Err(WireError::new(
            WireErrorKind::BadRequest,
            "message has no protocol version field \"v\"",
        )),
    }
}

fn truncate(line: &str) -> String {
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobDemand;

    #[test]
    fn request_round_trips_with_flattened_op() {
        let env = RequestEnvelope {
            v: PROTOCOL_VERSION,
            id: 7,
            body: Request::Submit(JobSpec {
                demand: JobDemand {
                    cpus: 1.0,
                    ..JobDemand::default()
                },
                ..JobSpec::command("echo hi")
            }),
        };
        let line = serde_json::to_string(&env).expect("serialise");
        assert!(line.contains(r#""op":"submit""#), "{line}");
        let back = parse_request(&line).expect("parse");
        assert_eq!(back.id, 7);
        assert!(matches!(back.body, Request::Submit(spec) if spec.run == "echo hi"));
    }

    #[test]
    fn minimal_requests_parse() {
        let r = parse_request(r#"{"v":1,"id":1,"op":"submit","run":"true"}"#).expect("submit");
        let Request::Submit(spec) = r.body else {
            panic!("not a submit")
        };
        assert_eq!(spec.num_nodes, 1);
        assert_eq!(spec.demand, JobDemand::default());
        let r = parse_request(r#"{"v":1,"id":2,"op":"cancel","jobs":[1,2]}"#).expect("cancel");
        assert!(matches!(r.body, Request::Cancel { jobs, all: false } if jobs.len() == 2));
        let r = parse_request(r#"{"v":1,"id":3,"op":"queue"}"#).expect("queue");
        assert!(matches!(r.body, Request::Queue));
    }

    #[test]
    fn newer_version_is_a_clear_error() {
        let (id, err) =
            parse_request(r#"{"v":2,"id":9,"op":"teleport"}"#).expect_err("must refuse");
        assert_eq!(id, 9);
        assert_eq!(err.kind, WireErrorKind::UnsupportedVersion);
        assert!(err.message.contains("version 2"), "{}", err.message);
        let err = parse_response(r#"{"v":3,"id":1,"ok":{"kind":"done"}}"#).expect_err("refuse");
        assert_eq!(err.kind, WireErrorKind::UnsupportedVersion);
    }

    #[test]
    fn unknown_op_and_garbage_are_bad_requests() {
        let (_, err) = parse_request(r#"{"v":1,"id":1,"op":"fly"}"#).expect_err("unknown op");
        assert_eq!(err.kind, WireErrorKind::BadRequest);
        assert!(err.message.contains("fly"), "{}", err.message);
        let (_, err) = parse_request("not json").expect_err("garbage");
        assert_eq!(err.kind, WireErrorKind::BadRequest);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut spec = JobSpec::command("true");
        spec.secrets
            .0
            .insert("TOKEN".into(), "hunter2-very-secret".into());
        let shown = format!("{spec:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("TOKEN"), "{shown}");
    }

    #[test]
    fn responses_round_trip() {
        let env = ResponseEnvelope {
            v: PROTOCOL_VERSION,
            id: 4,
            body: ResponseBody::Ok(Reply::Submitted { job_id: JobId(3) }),
        };
        let line = serde_json::to_string(&env).expect("serialise");
        assert_eq!(
            line,
            r#"{"v":1,"id":4,"ok":{"kind":"submitted","job_id":3}}"#
        );
        let back = parse_response(&line).expect("parse");
        assert!(matches!(
            back.body,
            ResponseBody::Ok(Reply::Submitted { job_id: JobId(3) })
        ));
    }
}
