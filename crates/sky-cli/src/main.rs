//! The `sky` binary: parses arguments, calls sky-core, prints. No domain logic lives here.

mod commands;
mod output;
mod session;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sky: run work on any cloud at the best price, or on this machine.
#[derive(Debug, Parser)]
#[command(name = "sky", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan and launch a task on a new or existing cluster.
    Launch(commands::launch::Args),
    /// Run a task on an existing cluster.
    Exec(commands::exec::Args),
    /// Show clusters.
    Status(commands::status::Args),
    /// Stop clusters (keep their disks; restart with `sky start`).
    Stop(commands::lifecycle::StopArgs),
    /// Restart stopped clusters.
    Start(commands::lifecycle::StartArgs),
    /// Tear clusters down.
    Down(commands::lifecycle::DownArgs),
    /// Stop or tear down a cluster after it has been idle.
    Autostop(commands::lifecycle::AutostopArgs),
    /// Record orphans (Sky-tagged clusters this Sky does not know, listed by
    /// `sky status --refresh`) as clusters of this Sky home.
    Adopt(commands::lifecycle::AdoptArgs),
    /// Show a cluster's job queue.
    Queue(commands::jobs::QueueArgs),
    /// Follow or print a job's logs.
    Logs(commands::jobs::LogsArgs),
    /// Cancel jobs.
    Cancel(commands::jobs::CancelArgs),
    /// Check which clouds are enabled and why.
    Check(commands::check::Args),
    /// List accelerators, the instance types that carry them and their prices.
    ShowGpus(commands::show_gpus::Args),
    /// Show what clusters have cost.
    CostReport(commands::cost_report::Args),
    /// Show the price catalog's sources and age, or refresh it.
    Catalog(commands::catalog::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = telemetry::init();
    let result = match cli.command {
        Command::Launch(args) => commands::launch::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Stop(args) => commands::lifecycle::stop(args),
        Command::Start(args) => commands::lifecycle::start(args),
        Command::Down(args) => commands::lifecycle::down(args),
        Command::Autostop(args) => commands::lifecycle::autostop(args),
        Command::Adopt(args) => commands::lifecycle::adopt(args),
        Command::Queue(args) => commands::jobs::queue(args),
        Command::Logs(args) => commands::jobs::logs(args),
        Command::Cancel(args) => commands::jobs::cancel(args),
        Command::Check(args) => commands::check::run(args),
        Command::ShowGpus(args) => commands::show_gpus::run(args),
        Command::CostReport(args) => commands::cost_report::run(args),
        Command::Catalog(args) => commands::catalog::run(args),
    };
    output::finish(result)
}
