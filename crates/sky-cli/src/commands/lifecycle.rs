//! `sky stop`, `sky start`, `sky down`, `sky autostop` and `sky adopt`: thin loops over the
//! facade, with confirmation for the destructive ones (`-y` skips it; without a terminal they
//! refuse).

use std::process::ExitCode;

use sky_core::ErrorCode;
use sky_core::api::{Sky, SkyError};
use sky_core::state::Autostop;

use crate::output::{CodedError, CommandResult};
use crate::session::{TermSink, coded, confirm, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Clusters to stop.
    pub clusters: Vec<String>,
    /// Stop every cluster.
    #[arg(short, long, conflicts_with = "clusters")]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Clusters to restart.
    #[arg(required = true)]
    pub clusters: Vec<String>,
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
}

pub fn stop(args: StopArgs) -> CommandResult {
    let sky = open_sky(false)?;
    let names = targets(&sky, &args.clusters, args.all)?;
    if names.is_empty() {
        return no_clusters();
    }
    if !confirm(&format!("Stopping {}", names.join(", ")), args.yes)? {
        return Ok(ExitCode::SUCCESS);
    }
    each(
        &names,
        |name, sink| runtime_block(sky.stop(name, sink)),
        "stopped",
    )
}

pub fn start(args: StartArgs) -> CommandResult {
    let sky = open_sky(false)?;
    let _ = args.yes;
    each(
        &args.clusters,
        |name, sink| runtime_block(sky.start(name, sink)),
        "started",
    )
}

pub fn down(args: DownArgs) -> CommandResult {
    let sky = open_sky(false)?;
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
        );
    }
    let names = targets(&sky, &args.clusters, args.all)?;
    if names.is_empty() {
        return no_clusters();
    }
    if !confirm(&format!("Tearing down {}", names.join(", ")), args.yes)? {
        return Ok(ExitCode::SUCCESS);
    }
    each(
        &names,
        |name, sink| runtime_block(sky.down(name, args.purge, sink)),
        "terminated",
    )
}

pub fn adopt(args: AdoptArgs) -> CommandResult {
    let sky = open_sky(false)?;
    each(
        &args.clusters,
        |name, sink| runtime_block(sky.adopt_orphan(name, sink)).map(|_| ()),
        "adopted",
    )
}

pub fn autostop(args: AutostopArgs) -> CommandResult {
    let sky = open_sky(false)?;
    let setting = match (args.cancel, args.idle_minutes) {
        (true, _) | (false, None) => None,
        (false, Some(idle_minutes)) => Some(Autostop {
            idle_minutes,
            down: args.down,
        }),
    };
    let sink = TermSink::new(false);
    runtime_block(sky.autostop(&args.cluster, setting, &sink)).map_err(|e| coded(e, false))?;
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

fn targets(sky: &Sky, names: &[String], all: bool) -> Result<Vec<String>, CodedError> {
    if all {
        return Ok(sky
            .list(&[])
            .map_err(|e| coded(e, false))?
            .into_iter()
            .map(|c| c.name)
            .collect());
    }
    if names.is_empty() {
        return Err(CodedError {
            code: ErrorCode::InvalidTask,
            message: "name at least one cluster, or pass --all".into(),
            json: false,
        });
    }
    // Unknown names fail before anything is touched.
    sky.list(names).map_err(|e| coded(e, false))?;
    Ok(names.to_vec())
}

fn no_clusters() -> CommandResult {
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
) -> CommandResult {
    let sink = TermSink::new(false);
    let mut first_error: Option<CodedError> = None;
    for name in names {
        match op(name, &sink) {
            Ok(()) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("cluster '{name}' {done}");
                }
            }
            Err(e) => {
                let e = coded(e, false);
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
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}
