//! `sky stop`, `sky start`, `sky down`, `sky autostop` and `sky adopt`: thin loops over the
//! facade, with confirmation for the destructive ones (`-y` skips it; without a terminal they
//! refuse). With `-o json` each prints one JSON document on stdout: what happened to every
//! cluster (`{"clusters": [{"name", "result"} | {"name", "error": {"code", "message"}}]}`, or for
//! `autostop` the setting), with the same exit code as the table output.

use std::process::ExitCode;

use sky_core::ErrorCode;
use sky_core::api::{Sky, SkyError};
use sky_core::state::Autostop;

use crate::output::{CodedError, CommandResult, Format};
use crate::session::{TermSink, coded, confirm, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Clusters to stop.
    pub clusters: Vec<String>,
    /// Stop every cluster.
    #[arg(short, long, conflicts_with = "clusters")]
    pub all: bool,
    /// `table` (progress and a line per cluster on stderr) or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Clusters to restart.
    #[arg(required = true)]
    pub clusters: Vec<String>,
    /// `table` (progress and a line per cluster on stderr) or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Clusters to tear down.
    pub clusters: Vec<String>,
    /// Tear down every cluster.
    #[arg(short, long, conflicts_with = "clusters")]
    pub all: bool,
    /// Remove the record even if the provider fails to delete the nodes.
    #[arg(short, long)]
    pub purge: bool,
    /// The named clusters are orphans: nodes a cloud has tagged with this Sky home's owner id but
    /// its database does not know (listed by `sky status --refresh`). Terminates their nodes.
    #[arg(long, conflicts_with_all = ["all", "purge"], requires = "clusters")]
    pub orphan: bool,
    /// With `--orphan`: the clusters belong to another Sky home, this owner id (as `sky status
    /// --refresh` lists it under "Other Sky homes"); only that home's resources are terminated.
    #[arg(long, value_name = "OWNER_ID", requires = "orphan")]
    pub owner: Option<String>,
    /// `table` (progress and a line per cluster on stderr) or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct AutostopArgs {
    pub cluster: String,
    /// Idle minutes (no pending or running job, no new submission) before stopping.
    #[arg(
        short = 'i',
        long = "idle-minutes",
        value_name = "MIN",
        required_unless_present = "cancel"
    )]
    pub idle_minutes: Option<u32>,
    /// Tear the cluster down instead of stopping it.
    #[arg(long)]
    pub down: bool,
    /// Cancel the cluster's autostop.
    #[arg(long, conflicts_with_all = ["idle_minutes", "down"])]
    pub cancel: bool,
    /// `table` (progress and a line per cluster on stderr) or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Accepted for symmetry with other commands; autostop asks nothing.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// Orphans to record, by the names `sky status --refresh` lists. Each is priced from the
    /// catalog by the instance type and region its cloud reports, and billed from now on. Sky on
    /// another machine using the same cloud account shows up as orphans too: check the names.
    #[arg(required = true)]
    pub clusters: Vec<String>,
    /// `table` (progress and a line per cluster on stderr) or `json` (one document on stdout).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

pub fn stop(args: StopArgs) -> CommandResult {
    let sky = open_sky(args.output == Format::Json)?;
    let names = targets(&sky, &args.clusters, args.all, args.output == Format::Json)?;
    if names.is_empty() {
        return no_clusters(args.output);
    }
    if !confirm(&format!("Stopping {}", names.join(", ")), args.yes)? {
        return Ok(ExitCode::SUCCESS);
    }
    each(
        &names,
        |name, sink| runtime_block(sky.stop(name, sink)),
        "stopped",
        args.output,
    )
}

pub fn start(args: StartArgs) -> CommandResult {
    let sky = open_sky(args.output == Format::Json)?;
    let _ = args.yes;
    each(
        &args.clusters,
        |name, sink| runtime_block(sky.start(name, sink)),
        "started",
        args.output,
    )
}

pub fn down(args: DownArgs) -> CommandResult {
    let sky = open_sky(args.output == Format::Json)?;
    if let (true, Some(owner)) = (args.orphan, args.owner.as_deref()) {
        if !confirm(
            &format!(
                "Terminating {} of ANOTHER Sky home (owner {owner})",
                args.clusters.join(", ")
            ),
            args.yes,
        )? {
            return Ok(ExitCode::SUCCESS);
        }
        return each(
            &args.clusters,
            |name, sink| runtime_block(sky.terminate_foreign(name, owner, sink)),
            "(other home's) terminated",
            args.output,
        );
    }
    if args.orphan {
        if !confirm(
            &format!("Terminating orphan nodes of {}", args.clusters.join(", ")),
            args.yes,
        )? {
            return Ok(ExitCode::SUCCESS);
        }
        return each(
            &args.clusters,
            |name, sink| runtime_block(sky.terminate_orphan(name, sink)),
            "(orphan) terminated",
            args.output,
        );
    }
    let names = targets(&sky, &args.clusters, args.all, args.output == Format::Json)?;
    if names.is_empty() {
        return no_clusters(args.output);
    }
    if !confirm(&format!("Tearing down {}", names.join(", ")), args.yes)? {
        return Ok(ExitCode::SUCCESS);
    }
    each(
        &names,
        |name, sink| runtime_block(sky.down(name, args.purge, sink)),
        "terminated",
        args.output,
    )
}

pub fn adopt(args: AdoptArgs) -> CommandResult {
    let sky = open_sky(args.output == Format::Json)?;
    each(
        &args.clusters,
        |name, sink| runtime_block(sky.adopt_orphan(name, sink)).map(|_| ()),
        "adopted",
        args.output,
    )
}

pub fn autostop(args: AutostopArgs) -> CommandResult {
    let sky = open_sky(args.output == Format::Json)?;
    let setting = match (args.cancel, args.idle_minutes) {
        (true, _) | (false, None) => None,
        (false, Some(idle_minutes)) => Some(Autostop {
            idle_minutes,
            down: args.down,
        }),
    };
    let json = args.output == Format::Json;
    let sink = TermSink::new(json);
    runtime_block(sky.autostop(&args.cluster, setting, &sink)).map_err(|e| coded(e, json))?;
    if json {
        print_json(&serde_json::json!({ "cluster": args.cluster, "autostop": setting }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = match setting {
        None => format!("autostop cancelled for cluster '{}'", args.cluster),
        Some(a) => format!(
            "cluster '{}' will {} after {} idle minute(s)",
            args.cluster,
            if a.down { "be torn down" } else { "stop" },
            a.idle_minutes
        ),
    };
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{what}");
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime_block<T>(
    fut: impl std::future::Future<Output = Result<T, SkyError>>,
) -> Result<T, SkyError> {
    match runtime() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => Err(SkyError::InvalidRequest(format!(
            "cannot start the async runtime: {e}"
        ))),
    }
}

fn targets(sky: &Sky, names: &[String], all: bool, json: bool) -> Result<Vec<String>, CodedError> {
    if all {
        return Ok(sky
            .list(&[])
            .map_err(|e| coded(e, json))?
            .into_iter()
            .map(|c| c.name)
            .collect());
    }
    if names.is_empty() {
        return Err(CodedError {
            code: ErrorCode::InvalidTask,
            message: "name at least one cluster, or pass --all".into(),
            json,
        });
    }
    // Unknown names fail before anything is touched.
    sky.list(names).map_err(|e| coded(e, json))?;
    Ok(names.to_vec())
}

fn no_clusters(output: Format) -> CommandResult {
    if output == Format::Json {
        print_json(&serde_json::json!({ "clusters": [] }))?;
        return Ok(ExitCode::SUCCESS);
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("No existing clusters.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `op` on each cluster in turn; reports each failure and returns the first one's code.
fn each(
    names: &[String],
    op: impl Fn(&str, &TermSink) -> Result<(), SkyError>,
    done: &str,
    output: Format,
) -> CommandResult {
    let json = output == Format::Json;
    let sink = TermSink::new(json);
    let mut first_error: Option<CodedError> = None;
    let mut report = Vec::new();
    for name in names {
        match op(name, &sink) {
            Ok(()) => {
                if json {
                    report.push(serde_json::json!({"name": name, "result": done}));
                    continue;
                }
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("cluster '{name}' {done}");
                }
            }
            Err(e) => {
                let e = coded(e, false);
                if json {
                    report.push(serde_json::json!({
                        "name": name,
                        "error": {"code": e.code.as_str(), "message": e.message},
                    }));
                    first_error.get_or_insert(CodedError {
                        message: String::new(),
                        ..e
                    });
                    continue;
                }
                if first_error.is_some() {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("error: {}", e.message);
                    }
                } else {
                    first_error = Some(e);
                }
            }
        }
    }
    if json {
        print_json(&serde_json::json!({ "clusters": report }))?;
        // The document above already says what failed; only the exit code is left to give.
        return Ok(first_error.map_or(ExitCode::SUCCESS, |e| {
            ExitCode::from(crate::output::exit_code(e.code))
        }));
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn print_json(value: &serde_json::Value) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
    writeln!(out)
}
