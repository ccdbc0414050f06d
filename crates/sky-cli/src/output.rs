//! Terminal output conventions shared by every command: JSON vs table, colour, exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use sky_core::ErrorCode;

/// `-o table` (default) or `-o json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A failure that knows its stable code; anything else is `internal`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    pub code: ErrorCode,
    pub message: String,
    /// Print `{"error":{...}}` on stdout instead of a message on stderr.
    pub json: bool,
}

/// Exit codes: 0 ok, 1 internal, then one per `ErrorCode` so scripts can branch on them.
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Internal => 1,
        ErrorCode::InvalidTask => 2,
        ErrorCode::InvalidConfig => 3,
        ErrorCode::NoFeasibleResources => 4,
        ErrorCode::ResourcesUnavailable => 5,
        ErrorCode::CredentialsMissing => 6,
        ErrorCode::ClusterNotFound => 7,
        ErrorCode::ClusterBusy => 8,
        ErrorCode::JobNotFound => 9,
        ErrorCode::Cancelled => 10,
        ErrorCode::TaskDoesNotFit => 11,
    }
}

/// What a command returns: `Ok(code)` lets a command exit with a job's own exit code.
pub type CommandResult = anyhow::Result<ExitCode>;

pub fn finish(result: CommandResult) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                // `sky status | head` is not a failure (ripgrep's habit).
                return ExitCode::SUCCESS;
            }
            let (code, json) = match err.downcast_ref::<CodedError>() {
                Some(coded) => (coded.code, coded.json),
                None => (ErrorCode::Internal, false),
            };
            if json {
                let body = serde_json::json!({
                    "error": {"code": code.as_str(), "message": format!("{err:#}")}
                });
                #[allow(clippy::print_stdout)]
                {
                    println!("{body}");
                }
            } else {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("error: {err:#}");
                }
            }
            ExitCode::from(exit_code(code))
        }
    }
}
