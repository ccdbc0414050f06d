//! The `sky-agent` binary: `daemon` and `rpc` modes over the library. See the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The agent on a Sky cluster's head node.
#[derive(Debug, Parser)]
#[command(name = "sky-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Relay JSON-lines requests from stdin to the daemon (starting it if needed); answers on stdout.
    Rpc {
        /// The agent's home directory (job DB, logs, socket).
        #[arg(long)]
        home: PathBuf,
    },
    /// Run the daemon in the foreground of a new session (normally started by `rpc`).
    Daemon {
        #[arg(long)]
        home: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rpc { home } => rpc(home),
        Command::Daemon { home } => daemon(home),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("sky-agent: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn rpc(home: PathBuf) -> anyhow::Result<()> {
    let home = absolute(home)?;
    let rt = runtime()?;
    let result = rt.block_on(sky_agent::rpc::run(&home));
    // A read of stdin may still be blocked in a worker thread; do not wait for it.
    rt.shutdown_background();
    Ok(result?)
}

fn daemon(home: PathBuf) -> anyhow::Result<()> {
    let home = absolute(home)?;
    // Leave the caller's session and process group: closing the terminal or SSH session that
    // started us must not stop the daemon. Fails only if we already lead a group (started by
    // hand from a shell's job control), which is fine.
    let _ = nix::unistd::setsid();
    sky_agent::private::create_dir_all(&home)
        .with_context(|| format!("creating {}", home.display()))?;
    // Do not pin the caller's working directory (a temp dir, a mount) for the daemon's lifetime.
    std::env::set_current_dir(&home).with_context(|| format!("entering {}", home.display()))?;
    let log_path = sky_agent::paths::Home::new(&home).agent_log();
    let log = sky_agent::private::open_append(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKY_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(log))
        .init();
    let rt = runtime()?;
    let outcome = rt.block_on(sky_agent::server::run(&home));
    rt.shutdown_background();
    match outcome {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "agent daemon failed");
            Err(e.into())
        }
    }
}

/// Relative homes would break once the daemon's working directory differs from the caller's.
fn absolute(home: PathBuf) -> anyhow::Result<PathBuf> {
    std::path::absolute(&home).with_context(|| format!("resolving {}", home.display()))
}
