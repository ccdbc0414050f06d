//! A cluster's job queue and a job's log stream, as the page receives them.
//!
//! Lines are forwarded through a `tauri::ipc::Channel` as the agent sends them, so the page shows
//! them while the job runs. What this module does not do: keep logs (the agent does) or cancel jobs.

use serde::Serialize;
use sky_core::api::Sky;
use sky_core::jobs::client::{ClientError, LogEvent};
use sky_core::jobs::{JobId, JobRecord, JobStatus};
use tauri::ipc::Channel;

use crate::error::{UiError, UiResult};

/// One job of a queue. The job's environment is left out: task envs may hold secrets.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: u64,
    pub name: Option<String>,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub submitted_at: f64,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub num_nodes: u32,
    pub run: String,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        JobView {
            id: j.id.0,
            name: j.name,
            status: j.status,
            exit_code: j.exit_code,
            message: j.message,
            submitted_at: j.submitted_at,
            started_at: j.started_at,
            ended_at: j.ended_at,
            num_nodes: j.num_nodes,
            run: j.run,
        }
    }
}

/// What the log channel carries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogMessage {
    /// Lines as printed; multi-node jobs get SkyPilot's `(head, rank=0)` prefix.
    Lines { lines: Vec<String> },
    /// The job ended (or, without follow, its status now).
    End {
        job: u64,
        status: JobStatus,
        exit_code: Option<i32>,
    },
}

fn client_error(cluster: &str, e: ClientError) -> UiError {
    UiError::new(e.code(), format!("cluster '{cluster}': {e}"))
}

pub async fn queue(sky: &Sky, cluster: &str) -> UiResult<Vec<JobView>> {
    let client = sky.agent(cluster).await?;
    let jobs = client.queue().await.map_err(|e| client_error(cluster, e));
    let _ = client.close().await;
    Ok(jobs?.into_iter().map(JobView::from).collect())
}

/// Follows `job` (the latest when `None`) until it ends, sending its lines as they come.
pub async fn follow(
    sky: &Sky,
    cluster: &str,
    job: Option<u64>,
    channel: &Channel<LogMessage>,
) -> UiResult<()> {
    let client = sky.agent(cluster).await?;
    let result = forward(&client, cluster, job, channel).await;
    let _ = client.close().await;
    result
}

async fn forward(
    client: &sky_core::jobs::client::AgentClient,
    cluster: &str,
    job: Option<u64>,
    channel: &Channel<LogMessage>,
) -> UiResult<()> {
    let mut stream = client
        .tail(job.map(JobId), Vec::new(), true)
        .await
        .map_err(|e| client_error(cluster, e))?;
    let closed = |e: tauri::Error| {
        UiError::new(
            sky_core::ErrorCode::Internal,
            format!("log channel closed: {e}"),
        )
    };
    while let Some(item) = stream.next().await {
        match item.map_err(|e| client_error(cluster, e))? {
            LogEvent::Chunk(chunk) => {
                let multi = chunk.num_nodes > 1;
                let lines = chunk
                    .lines
                    .into_iter()
                    .map(|l| match (multi, l.rank) {
                        (false, _) => l.text,
                        (true, 0) => format!("(head, rank=0) {}", l.text),
                        (true, r) => format!("(worker{r}, rank={r}) {}", l.text),
                    })
                    .collect();
                channel.send(LogMessage::Lines { lines }).map_err(closed)?;
            }
            LogEvent::JobEnd(end) => {
                channel
                    .send(LogMessage::End {
                        job: end.job_id.0,
                        status: end.status,
                        exit_code: end.exit_code,
                    })
                    .map_err(closed)?;
                return Ok(());
            }
            LogEvent::SetupEnd(_) => {}
        }
    }
    Ok(())
}
