//! `sky queue`, `sky logs` and `sky cancel`: a cluster's jobs, read from and acted on through its
//! head-node agent ([`sky_core::jobs::client::AgentClient`], reached via the `Sky` facade).
//!
//! Printing and exit codes only; what a job is and how it is cancelled belong to the agent.

use std::io::Write;
use std::process::ExitCode;

use sky_core::ErrorCode;
use sky_core::jobs::client::{AgentClient, ClientError, LogEvent};
use sky_core::jobs::{JobId, JobRecord, JobStatus};

use crate::output::{CodedError, CommandResult, Format, exit_code};
use crate::session::{coded as from_sky, confirm, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The cluster whose jobs to show.
    pub cluster: String,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    pub cluster: String,
    /// The job (default: the latest).
    pub job: Option<JobId>,
    /// Print what is there and exit instead of following until the job ends.
    #[arg(long)]
    pub no_follow: bool,
    /// Print the job's status only. Exit code as SkyPilot's: 0 succeeded, 100 failed,
    /// 101 not finished, 103 cancelled.
    #[arg(long)]
    pub status: bool,
    /// With `--status`: `table` or `json` (the job's record on stdout; same exit codes).
    #[arg(short = 'o', long, value_enum, default_value_t, requires = "status")]
    pub output: Format,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    pub cluster: String,
    /// Jobs to cancel.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub jobs: Vec<JobId>,
    /// Cancel every pending and running job.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// `table` or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

fn coded(code: ErrorCode, message: impl Into<String>, json: bool) -> anyhow::Error {
    CodedError {
        code,
        message: message.into(),
        json,
    }
    .into()
}

fn from_client(cluster: &str, e: ClientError, json: bool) -> anyhow::Error {
    coded(e.code(), format!("cluster '{cluster}': {e}"), json)
}

fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(runtime()?.block_on(future))
}

/// The head agent of an UP cluster; unknown or not-UP clusters get their own error codes.
pub(crate) async fn connect(cluster: &str, json: bool) -> anyhow::Result<AgentClient> {
    let sky = open_sky(json)?;
    Ok(sky.agent(cluster).await.map_err(|e| from_sky(e, json))?)
}

pub fn queue(args: QueueArgs) -> CommandResult {
    let json = args.output == Format::Json;
    let jobs = block_on(async {
        let client = connect(&args.cluster, json).await?;
        let jobs = client
            .queue()
            .await
            .map_err(|e| from_client(&args.cluster, e, json));
        let _ = client.close().await;
        jobs
    })??;
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({ "cluster": args.cluster, "jobs": jobs });
        writeln!(out, "{body}")?;
    } else {
        writeln!(out, "Job queue of cluster {}", args.cluster)?;
        write!(out, "{}", render_queue(&jobs, now()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn render_queue(jobs: &[JobRecord], now: f64) -> String {
    if jobs.is_empty() {
        return "No jobs.\n".to_string();
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "ID",
        "NAME",
        "SUBMITTED",
        "STARTED",
        "DURATION",
        "RESOURCES",
        "STATUS",
        "EXIT",
        "LOG",
    ]);
    // Newest first, as SkyPilot shows it.
    for job in jobs.iter().rev() {
        let duration = job
            .started_at
            .map(|s| human_duration(job.ended_at.unwrap_or(now) - s))
            .unwrap_or_else(|| "-".into());
        table.add_row([
            job.id.to_string(),
            job.name.clone().unwrap_or_else(|| "-".into()),
            ago(now - job.submitted_at),
            job.started_at
                .map(|s| ago(now - s))
                .unwrap_or_else(|| "-".into()),
            duration,
            resources(job),
            job.status.to_string(),
            job.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            job.log_dir.clone(),
        ]);
    }
    format!("{table}\n")
}

fn resources(job: &JobRecord) -> String {
    let mut parts = vec![format!("CPU:{}", trim(job.demand.cpus))];
    parts.extend(
        job.demand
            .accelerators
            .iter()
            .map(|(name, n)| format!("{name}:{}", trim(*n))),
    );
    format!("{}x[{}]", job.num_nodes, parts.join(", "))
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn ago(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} secs ago"),
        60..3600 => format!("{} mins ago", s / 60),
        3600..86_400 => format!("{} hrs ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// SkyPilot's `JobExitCode` values for `sky logs --status`.
fn status_exit(status: JobStatus) -> u8 {
    match status {
        JobStatus::Succeeded => 0,
        JobStatus::Pending | JobStatus::Running => 101,
        JobStatus::Cancelled => 103,
        JobStatus::Failed | JobStatus::FailedDriver => 100,
    }
}

/// What `sky logs` (following) exits with: the job's own code when it failed, 0 on success.
fn job_exit(status: JobStatus, code: Option<i32>) -> u8 {
    match status {
        JobStatus::Succeeded => 0,
        JobStatus::Cancelled => exit_code(ErrorCode::Cancelled),
        JobStatus::Failed => code
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1),
        JobStatus::FailedDriver | JobStatus::Pending | JobStatus::Running => 1,
    }
}

pub fn logs(args: LogsArgs) -> CommandResult {
    let cluster = args.cluster.clone();
    let json = args.output == Format::Json;
    block_on(async move {
        let client = connect(&cluster, json).await?;
        let result = print_logs(&client, &args).await;
        let _ = client.close().await;
        result
    })?
}

async fn print_logs(client: &AgentClient, args: &LogsArgs) -> CommandResult {
    let json = args.output == Format::Json;
    let err = |e| from_client(&args.cluster, e, json);
    if args.status {
        let job = match args.job {
            Some(id) => client.status(&[id]).await.map_err(err)?.pop(),
            None => client.queue().await.map_err(err)?.pop(),
        };
        let Some(job) = job else {
            return Err(coded(
                ErrorCode::JobNotFound,
                format!("cluster '{}' has no jobs yet", args.cluster),
                json,
            ));
        };
        if json {
            writeln!(std::io::stdout(), "{}", serde_json::to_string(&job)?)?;
        } else {
            writeln!(std::io::stdout(), "Job {}: {}", job.id, job.status)?;
        }
        return Ok(ExitCode::from(status_exit(job.status)));
    }
    let mut stream = client
        .tail(args.job, Vec::new(), !args.no_follow)
        .await
        .map_err(err)?;
    let mut out = std::io::stdout().lock();
    while let Some(item) = stream.next().await {
        match item.map_err(err)? {
            LogEvent::Chunk(chunk) => {
                for line in chunk.lines {
                    if chunk.num_nodes > 1 {
                        // SkyPilot's prefix, as `sky launch` prints it.
                        let role = match line.rank {
                            0 => "head".to_string(),
                            r => format!("worker{r}"),
                        };
                        writeln!(out, "({role}, rank={}) {}", line.rank, line.text)?;
                    } else {
                        writeln!(out, "{}", line.text)?;
                    }
                }
                out.flush()?;
            }
            LogEvent::JobEnd(end) => {
                if args.no_follow {
                    return Ok(ExitCode::SUCCESS);
                }
                let code = job_exit(end.status, end.exit_code);
                if end.status != JobStatus::Succeeded {
                    let mut err = std::io::stderr().lock();
                    let shown = end
                        .exit_code
                        .map(|c| format!(" (exit code {c})"))
                        .unwrap_or_default();
                    writeln!(err, "Job {} {}{shown}", end.job_id, end.status)?;
                }
                return Ok(ExitCode::from(code));
            }
            LogEvent::SetupEnd(_) => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cancel(args: CancelArgs) -> CommandResult {
    let json = args.output == Format::Json;
    if args.all
        && !confirm(
            &format!("Cancel all jobs on cluster '{}'", args.cluster),
            args.yes,
        )?
    {
        return Err(coded(ErrorCode::Cancelled, "nothing cancelled", json));
    }
    let cancelled = block_on(async {
        let client = connect(&args.cluster, json).await?;
        let ids = if args.all {
            None
        } else {
            Some(args.jobs.as_slice())
        };
        let result = client
            .cancel(ids)
            .await
            .map_err(|e| from_client(&args.cluster, e, json));
        let _ = client.close().await;
        result
    })??;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "cluster": args.cluster, "cancelled": cancelled })
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if cancelled.is_empty() {
        writeln!(
            out,
            "No pending or running jobs to cancel on cluster '{}'.",
            args.cluster
        )?;
    } else {
        let ids: Vec<String> = cancelled.iter().map(JobId::to_string).collect();
        writeln!(
            out,
            "Cancelled job(s) {} on cluster '{}'.",
            ids.join(", "),
            args.cluster
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sky_core::jobs::JobDemand;

    fn record(id: u64, status: JobStatus) -> JobRecord {
        JobRecord {
            id: JobId(id),
            name: Some(format!("job{id}")),
            status,
            exit_code: status.is_terminal().then_some(0),
            message: None,
            submitted_at: 1000.0,
            started_at: Some(1010.0),
            ended_at: status.is_terminal().then_some(1075.0),
            num_nodes: 2,
            demand: JobDemand::default(),
            nodes: vec![0, 1],
            run: "echo".into(),
            envs: Default::default(),
            task_id: "t".into(),
            log_dir: format!("/logs/{id}"),
        }
    }

    #[test]
    fn queue_table_shows_newest_first_with_resources_and_times() {
        let jobs = [
            record(1, JobStatus::Succeeded),
            record(2, JobStatus::Running),
        ];
        let text = render_queue(&jobs, 1100.0);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("ID") && lines[0].contains("STATUS"),
            "{text}"
        );
        assert!(lines[1].trim_start().starts_with('2'), "{text}");
        assert!(
            lines[1].contains("RUNNING") && lines[1].contains("1m 30s"),
            "{text}"
        );
        assert!(
            lines[2].contains("SUCCEEDED") && lines[2].contains("1m 5s"),
            "{text}"
        );
        assert!(
            lines[2].contains("2x[CPU:0.5]") && lines[2].contains("1 mins ago"),
            "{text}"
        );
        assert_eq!(render_queue(&[], 0.0), "No jobs.\n");
    }

    #[test]
    fn exit_codes_follow_the_job() {
        assert_eq!(job_exit(JobStatus::Succeeded, Some(0)), 0);
        assert_eq!(job_exit(JobStatus::Failed, Some(3)), 3);
        assert_eq!(job_exit(JobStatus::Failed, Some(0)), 1);
        assert_eq!(job_exit(JobStatus::Cancelled, None), 10);
        assert_eq!(status_exit(JobStatus::Running), 101);
        assert_eq!(status_exit(JobStatus::Cancelled), 103);
    }
}
