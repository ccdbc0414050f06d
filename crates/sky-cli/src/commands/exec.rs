//! `sky exec NAME TASK.yaml|'CMD'`: run a task on an existing UP cluster (workdir sync and job
//! submission, no provisioning and no setup), stream its logs and exit with its exit code.
//!
//! What this module does not do: check that the task fits or talk to the agent itself (the
//! facade's `exec` does both).

use std::io::Write as _;
use std::process::ExitCode;

use sky_core::ErrorCode;
use sky_core::catalog::Catalog;
use sky_core::config::Paths;

use super::task_options::{TaskOptions, load_tasks};
use crate::output::{CodedError, CommandResult, Format};
use crate::session::{TermSink, coded, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The UP cluster to run on.
    pub cluster: String,
    /// A task file, or a command to run.
    #[arg(value_name = "TASK.yaml|CMD", num_args = 1.., required = true)]
    pub entrypoint: Vec<String>,
    /// Submit the job and return without following its logs.
    #[arg(short = 'd', long)]
    pub detach_run: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    #[command(flatten)]
    pub task: TaskOptions,
}

pub fn run(args: Args) -> CommandResult {
    let json = args.output == Format::Json;
    let invalid = |code: ErrorCode, message: String| CodedError {
        code,
        message,
        json,
    };
    let paths = Paths::from_env();
    let catalog = Catalog::load(&paths.sky_home())
        .map_err(|e| invalid(ErrorCode::Internal, e.to_string()))?;
    let entrypoint = args.entrypoint.join(" ");
    let mut tasks = load_tasks(&entrypoint, &args.task, &catalog).map_err(|e| {
        let code = e
            .downcast_ref::<sky_core::task::TaskError>()
            .map_or(ErrorCode::InvalidTask, |t| t.code());
        invalid(code, format!("{e:#}"))
    })?;
    if tasks.len() != 1 {
        return Err(invalid(
            ErrorCode::InvalidTask,
            format!(
                "the file holds a chain of {} tasks; sky exec runs one task",
                tasks.len()
            ),
        )
        .into());
    }
    let task = tasks.remove(0);
    let sky = open_sky(json)?;
    let sink = TermSink::new(json);
    let outcome = runtime()?
        .block_on(sky.exec(&args.cluster, &task, args.detach_run, &sink))
        .map_err(|e| coded(e, json))?;
    drop(sink);
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string(&outcome)?
        )?;
    } else if let Some(id) = outcome.job_id {
        let mut err = std::io::stderr().lock();
        match &outcome.job_status {
            None => writeln!(
                err,
                "job {id} submitted to '{}'; follow it with `sky logs {} {id}`",
                outcome.cluster, outcome.cluster
            )?,
            Some(status) => writeln!(err, "job {id} on '{}' finished: {status}", outcome.cluster)?,
        }
    }
    let code = outcome.exit_code.unwrap_or(0);
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}
