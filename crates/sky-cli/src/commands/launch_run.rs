//! `sky launch` for real (not `--dryrun`): show the plan, confirm, launch through the facade with
//! progress, stream the job's logs, and exit with the job's exit code.
//!
//! Ctrl-C before the job is submitted cancels the launch the way the desktop's Cancel does (a
//! cluster it created is torn down, one it restarted is stopped again); a second Ctrl-C quits at
//! once. After submission Ctrl-C only stops following the logs: the job runs on.
//!
//! What this module does not do: plan or provision (sky-core does), or print the dry-run
//! comparison (`launch.rs` does).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sky_core::events::{Event, EventSink};
use tokio_util::sync::CancellationToken;

use sky_core::ErrorCode;
use sky_core::api::{LaunchOptions, LaunchPreview};
use sky_core::catalog::Catalog;
use sky_core::config::Paths;

use super::launch::Args;
use super::task_options::load_tasks;
use crate::output::{CodedError, CommandResult, Format};
use crate::session::{TermSink, coded, confirm, open_sky, runtime};

/// The options only a real launch has.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOptions {
    /// Cluster to launch on (reused when it exists and the task fits).
    #[arg(short = 'c', long = "cluster", value_name = "NAME")]
    pub cluster: Option<String>,
    /// Submit the job and return without following its logs.
    #[arg(short = 'd', long)]
    pub detach_run: bool,
    /// Tear the cluster down when the job ends.
    #[arg(long)]
    pub down: bool,
    /// Stop the cluster after this many idle minutes.
    #[arg(short = 'i', long = "idle-minutes-to-autostop", value_name = "MIN")]
    pub idle_minutes: Option<u32>,
    /// When every placement fails, wait and try them all again until one works.
    #[arg(short = 'r', long)]
    pub retry_until_up: bool,
}

pub fn run(args: &Args) -> CommandResult {
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
                "the file holds a chain of {} tasks; sky launch runs one task",
                tasks.len()
            ),
        )
        .into());
    }
    let task = tasks.remove(0);
    let sky = open_sky(json)?;
    let opts = LaunchOptions {
        cluster_name: args.run.cluster.clone(),
        detach_run: args.run.detach_run,
        down: args.run.down,
        idle_minutes: args.run.idle_minutes,
        retry_until_up: args.run.retry_until_up,
    };
    let preview = sky
        .preview_launch(&task, &opts)
        .map_err(|e| coded(e, json))?;
    print_preview(&preview, task.num_nodes)?;
    let question = match &preview.existing {
        Some(c) => format!(
            "Launching on existing cluster '{}' ({})",
            preview.cluster, c.status
        ),
        None => format!("Launching a new cluster '{}'", preview.cluster),
    };
    if !confirm(&question, args.yes)? {
        return Ok(ExitCode::SUCCESS);
    }
    // The preview fixed the name (it may have been generated): launch exactly that cluster.
    let opts = LaunchOptions {
        cluster_name: Some(preview.cluster.clone()),
        ..opts
    };
    let sink = Interruptible {
        term: TermSink::new(json),
        submitted: Arc::default(),
    };
    let cancel = CancellationToken::new();
    let outcome = runtime()?
        .block_on(async {
            let on_interrupt = tokio::spawn(interrupts(
                cancel.clone(),
                sink.submitted.clone(),
                preview.cluster.clone(),
            ));
            let outcome = sky.launch_cancellable(&task, &opts, &sink, &cancel).await;
            on_interrupt.abort();
            outcome
        })
        .map_err(|e| coded(e, json))?;
    drop(sink);
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string(&outcome)?
        )?;
    } else {
        let mut err = std::io::stderr().lock();
        match (outcome.job_id, &outcome.job_status) {
            (Some(id), None) => writeln!(
                err,
                "job {id} submitted to '{}'; follow it with `sky logs {} {id}`",
                outcome.cluster, outcome.cluster
            )?,
            (Some(id), Some(status)) => {
                writeln!(err, "job {id} on '{}' finished: {status}", outcome.cluster)?
            }
            (None, _) => {}
        }
        if outcome.torn_down {
            writeln!(err, "cluster '{}' torn down (--down)", outcome.cluster)?;
        }
    }
    let code = outcome.exit_code.unwrap_or(0);
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// The terminal's progress sink, noting the submitted job so Ctrl-C knows what it interrupts.
struct Interruptible {
    term: TermSink,
    /// The job id once submitted (0: not yet).
    submitted: Arc<AtomicU64>,
}

impl EventSink for Interruptible {
    fn emit(&self, event: Event) {
        if let Event::JobSubmitted { job_id, .. } = &event {
            self.submitted.store(*job_id, Ordering::SeqCst);
        }
        self.term.emit(event);
    }
}

/// Handles Ctrl-C for the launch's lifetime (see the module doc).
async fn interrupts(cancel: CancellationToken, submitted: Arc<AtomicU64>, cluster: String) {
    let cancelling = AtomicBool::new(false);
    while tokio::signal::ctrl_c().await.is_ok() {
        let job = submitted.load(Ordering::SeqCst);
        let mut err = std::io::stderr().lock();
        if job != 0 {
            let _ = writeln!(
                err,
                "\njob {job} keeps running on '{cluster}'; follow it again with `sky logs {cluster} {job}`"
            );
            std::process::exit(130);
        }
        if cancelling.swap(true, Ordering::SeqCst) {
            let _ = writeln!(
                err,
                "\nquitting without cleaning up: `sky status --refresh` shows what '{cluster}' left"
            );
            std::process::exit(130);
        }
        let _ = writeln!(
            err,
            "\ncancelling the launch of '{cluster}' (Ctrl-C again to quit at once)..."
        );
        cancel.cancel();
    }
}

fn print_preview(preview: &LaunchPreview, num_nodes: u32) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    if let Some(c) = &preview.existing {
        let place = c
            .cloud
            .map_or("-".to_owned(), |cl| cl.display_name().to_owned());
        writeln!(
            err,
            "Cluster '{}' exists ({}, {}x {}): reusing it.",
            c.name,
            c.status,
            c.num_nodes,
            c.instance_type.as_deref().unwrap_or("-")
        )?;
        let _ = place;
        return Ok(());
    }
    writeln!(
        err,
        "Considered resources ({num_nodes} node{}):",
        if num_nodes == 1 { "" } else { "s" }
    )?;
    for (i, l) in preview.candidates.iter().enumerate() {
        let marker = if i == 0 { "✔" } else { " " };
        let zone = l
            .zone
            .as_deref()
            .map(|z| format!("/{z}"))
            .unwrap_or_default();
        writeln!(
            err,
            " {marker} {:<6} {:<20} {}{} vcpus={} mem={:.1}GiB ${:.3}/h",
            l.cloud.as_str(),
            l.instance_type,
            l.region,
            zone,
            l.vcpus,
            l.memory_gib,
            l.hourly_price * f64::from(num_nodes)
        )?;
    }
    Ok(())
}
