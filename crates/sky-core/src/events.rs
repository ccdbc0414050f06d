//! Progress of long operations (launch, start, stop, down, refresh) as typed events, and the
//! [`EventSink`] they go to. The CLI prints them; the desktop app forwards them to its window.
//!
//! What this module does not do: format or print. Libraries never write to the terminal.

use serde::Serialize;

use crate::cloud::CloudId;
use crate::provision::{Launchable, ProvisionErrorKind};
use crate::state::ClusterStatus;

/// A stage of bringing a cluster up or down, for spinners and progress lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Provision,
    SyncWorkdir,
    SyncFileMounts,
    Setup,
    SubmitJob,
    Stop,
    Start,
    Terminate,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Provision => "provisioning nodes",
            Stage::SyncWorkdir => "syncing workdir",
            Stage::SyncFileMounts => "syncing file mounts",
            Stage::Setup => "running setup",
            Stage::SubmitJob => "submitting job",
            Stage::Stop => "stopping",
            Stage::Start => "starting",
            Stage::Terminate => "terminating",
        }
    }
}

/// One try of one placement during failover, as shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// 1-based, across all candidates and retry rounds.
    pub number: u32,
    pub cloud: CloudId,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub use_spot: bool,
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed {
        kind: ProvisionErrorKind,
        message: String,
        /// What failover will now avoid, e.g. "zone us-east-1a" or "cloud AWS".
        blocked: String,
        /// Set when created nodes had to be terminated before moving on.
        cleaned_up: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Another command holds the cluster's lock; this one waits.
    WaitingForLock {
        cluster: String,
    },
    /// The ranked candidates a launch will try, best first.
    Plan {
        cluster: String,
        num_nodes: u32,
        candidates: Vec<Launchable>,
    },
    StageStarted {
        cluster: String,
        stage: Stage,
    },
    StageFinished {
        cluster: String,
        stage: Stage,
    },
    FailoverAttempt(Attempt),
    /// Failover went through every candidate and starts over (`--retry-until-up`).
    RetryRound {
        round: u32,
        wait_secs: u64,
    },
    /// The cluster's record changed status (`None`: the record is gone).
    ClusterStatus {
        cluster: String,
        status: Option<ClusterStatus>,
    },
    /// An existing cluster is reused for a launch.
    Reusing {
        cluster: String,
        status: ClusterStatus,
    },
    JobSubmitted {
        cluster: String,
        job_id: u64,
    },
    /// A line of a job's or setup's output.
    Log {
        cluster: String,
        line: String,
    },
    /// Anything else worth telling the user, already phrased.
    Note {
        message: String,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Drops everything (for callers that do not show progress).
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event, for tests and for callers that render afterwards.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: std::sync::Mutex<Vec<Event>>,
}

impl RecordingSink {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}
