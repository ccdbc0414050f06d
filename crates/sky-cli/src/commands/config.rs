//! `sky config import-skypilot`: copies SkyPilot's `config.yaml` and `ssh_node_pools.yaml` from
//! its home (`~/.sky`) into Sky's, after checking them with Sky's own parsers, and says what it
//! did file by file. Sky never reads SkyPilot's home otherwise, so this is the one explicit way in.
//! What this does not do: copy or merge anything else (SkyPilot's database, keys and clusters
//! stay SkyPilot's), or change SkyPilot's files (they are only read).
//!
//! `sky config ssh [--on|--off]`: whether `~/.ssh/config` includes Sky's per-cluster configs, so
//! that `ssh CLUSTER` works (see `Sky::set_ssh_include`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use sky_core::config::Paths;
use sky_core::home::{ImportedFile, import_skypilot};
use sky_core::ssh::client_config::IncludeState;

use crate::output::{CodedError, CommandResult, Format};
use crate::session::{coded, open_sky};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Copy SkyPilot's config.yaml and ssh_node_pools.yaml into Sky's home (checked first;
    /// SkyPilot's files are only read).
    ImportSkypilot(ImportArgs),
    /// Show, add (`--on`) or remove (`--off`) the `Include` line in ~/.ssh/config that makes
    /// `ssh CLUSTER` reach Sky's clusters.
    Ssh(SshArgs),
}

#[derive(Debug, clap::Args)]
struct SshArgs {
    /// Add the line (at the top of ~/.ssh/config).
    #[arg(long, conflicts_with = "off")]
    on: bool,
    /// Remove it; Sky then never adds it again on its own.
    #[arg(long)]
    off: bool,
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// SkyPilot's home; `~/.sky` when omitted.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Replace Sky's own files when they differ (they are kept otherwise).
    #[arg(long)]
    force: bool,
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub fn run(args: Args) -> CommandResult {
    match args.command {
        Sub::ImportSkypilot(a) => import(a),
        Sub::Ssh(a) => ssh(a),
    }
}

fn ssh(args: SshArgs) -> CommandResult {
    let json = args.output == Format::Json;
    let sky = open_sky(json)?;
    let view = if args.on || args.off {
        sky.set_ssh_include(args.on)
    } else {
        sky.ssh_include()
    }
    .map_err(|e| coded(e, json))?;
    let out = if json {
        serde_json::to_string(&view)? + "\n"
    } else {
        let user = view.user_config.display();
        let configs = view.cluster_configs.display();
        match view.state {
            IncludeState::Included => format!(
                "`ssh CLUSTER` works: {user} includes Sky's cluster configs ({configs}); \
                 `sky config ssh --off` removes the line\n"
            ),
            IncludeState::Absent => format!(
                "{user} does not include Sky's cluster configs ({configs}); `sky config ssh --on` \
                 adds one line at its top so that `ssh CLUSTER` works\n"
            ),
            IncludeState::Declined => format!(
                "{user} does not include Sky's cluster configs ({configs}), and Sky will not add \
                 them on its own; `sky config ssh --on` does\n"
            ),
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn import(args: ImportArgs) -> CommandResult {
    let json = args.output == Format::Json;
    let report =
        import_skypilot(&Paths::from_env(), args.from.as_deref(), args.force).map_err(|e| {
            CodedError {
                code: e.code(),
                message: e.to_string(),
                json,
            }
        })?;
    let mut out = String::new();
    if json {
        out = serde_json::to_string_pretty(&report)? + "\n";
    } else {
        for file in &report.files {
            let line = match file {
                ImportedFile::Imported {
                    file,
                    from,
                    to,
                    replaced,
                } => format!(
                    "imported {file}: {} -> {}{}",
                    from.display(),
                    to.display(),
                    if *replaced {
                        " (replaced Sky's copy)"
                    } else {
                        ""
                    }
                ),
                ImportedFile::Unchanged { file, to } => {
                    format!("{file}: {} already has the same contents", to.display())
                }
                ImportedFile::Missing { file, from } => {
                    format!("{file}: SkyPilot has none ({})", from.display())
                }
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{} file(s) imported into {}; SkyPilot's files were not changed",
            report.imported(),
            report.to.display()
        );
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
