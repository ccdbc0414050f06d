//! The `sky` command: parses arguments, calls sky-core, prints. No domain logic lives here.
//!
//! A library so that two binaries can be the CLI: `sky` itself, and the desktop app, which runs
//! the CLI when started as `sky` or with a subcommand (see [`invoked_as_cli`]) so its package
//! carries the CLI without a second copy of the cloud SDKs.

mod commands;
mod output;
mod session;
pub mod telemetry;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// List and delete the buckets Sky created for storage objects.
    Storage(commands::storage::Args),
    /// Show what clusters have cost.
    CostReport(commands::cost_report::Args),
    /// Show the price catalog's sources and age, or refresh it.
    Catalog(commands::catalog::Args),
    /// Sky's configuration: import SkyPilot's config.yaml and ssh_node_pools.yaml.
    Config(commands::config::Args),
}

/// Whether a process started with `args` (program name first) asks for the CLI: its program is
/// named `sky`, or its first argument is a `sky` subcommand, `--help` or `--version`. Anything
/// else (no arguments, or flags a webview driver adds) is left to the caller.
pub fn invoked_as_cli(args: &[OsString]) -> bool {
    let named_sky = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_stem())
        .is_some_and(|stem| stem == "sky");
    let first = args.get(1).and_then(|a| a.to_str());
    named_sky
        || first.is_some_and(|a| {
            matches!(a, "help" | "--help" | "-h" | "--version" | "-V")
                || Cli::command().find_subcommand(a).is_some()
        })
}

/// Runs the CLI on this process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = telemetry::init();
    session::announce_home_migration();
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
        Command::Storage(args) => commands::storage::run(args),
        Command::CostReport(args) => commands::cost_report::run(args),
        Command::Catalog(args) => commands::catalog::run(args),
        Command::Config(args) => commands::config::run(args),
    };
    output::finish(result)
}

#[cfg(test)]
mod tests {
    use super::invoked_as_cli;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn the_cli_is_asked_for_by_name_or_by_subcommand() {
        assert!(invoked_as_cli(&args(&["/usr/bin/sky"])));
        assert!(invoked_as_cli(&args(&["sky", "status"])));
        assert_eq!(invoked_as_cli(&args(&["C:\\Sky\\sky.exe"])), cfg!(windows));
        assert!(invoked_as_cli(&args(&[
            "/usr/bin/sky-desktop",
            "stop",
            "c1",
            "-y"
        ])));
        assert!(invoked_as_cli(&args(&[
            "/usr/bin/sky-desktop",
            "show-gpus"
        ])));
        assert!(invoked_as_cli(&args(&["sky-desktop", "--version"])));
    }

    #[test]
    fn the_window_is_everything_else() {
        assert!(!invoked_as_cli(&args(&["/usr/bin/sky-desktop"])));
        assert!(!invoked_as_cli(&args(&["sky-desktop", "--automation"])));
        assert!(!invoked_as_cli(&args(&["sky-desktop", "stat"])));
        assert!(!invoked_as_cli(&args(&["/opt/skyline/skyline"])));
    }
}
