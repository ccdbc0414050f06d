//! `sky storage ls` and `sky storage delete`: the buckets Sky created for storage objects, as the
//! facade lists and deletes them (only buckets this home created; see `sky_core::api::storage`).

use std::io::Write as _;
use std::process::ExitCode;

use crate::output::{CommandResult, Format};
use crate::session::{coded, confirm, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StorageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// List the buckets Sky created, with their size now and the clusters using them.
    Ls {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Empty and delete buckets Sky created.
    Delete {
        /// Bucket names, as `sky storage ls` shows them.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every bucket Sky created and no cluster uses.
        #[arg(short, long, conflicts_with = "names")]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

pub fn run(args: Args) -> CommandResult {
    match args.command {
        StorageCommand::Ls { output } => ls(output),
        StorageCommand::Delete {
            names,
            all,
            yes,
            output,
        } => delete(names, all, yes, output),
    }
}

fn ls(output: Format) -> CommandResult {
    let json = output == Format::Json;
    let sky = open_sky(json)?;
    let list = runtime()?
        .block_on(sky.storage_list())
        .map_err(|e| coded(e, json))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        writeln!(out, "No buckets created by Sky.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "NAME",
        "STORE",
        "REGION",
        "SIZE",
        "OBJECTS",
        "CREATED",
        "USED BY",
        "PERSISTENT",
        "SOURCE",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for s in &list {
        table.add_row([
            s.name.clone(),
            s.store.to_string(),
            s.region.clone(),
            match (s.bytes, &s.problem) {
                (Some(b), _) => bytesize::ByteSize(b).display().iec().to_string(),
                (None, Some(p)) => format!("? ({p})"),
                (None, None) => "?".into(),
            },
            s.objects.map_or("?".into(), |n| n.to_string()),
            super::status::ago(now - s.created_at),
            if s.clusters.is_empty() {
                "-".into()
            } else {
                s.clusters.join(", ")
            },
            if s.persistent { "yes" } else { "no" }.into(),
            s.sources.join(", "),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(ExitCode::SUCCESS)
}

fn delete(names: Vec<String>, all: bool, yes: bool, output: Format) -> CommandResult {
    let json = output == Format::Json;
    let sky = open_sky(json)?;
    let rt = runtime()?;
    let names = if all {
        rt.block_on(sky.storage_list())
            .map_err(|e| coded(e, json))?
            .into_iter()
            .filter(|s| s.clusters.is_empty())
            .map(|s| s.name)
            .collect()
    } else {
        names
    };
    if names.is_empty() {
        if json {
            writeln!(std::io::stdout().lock(), "[]")?;
        } else {
            writeln!(std::io::stdout().lock(), "No buckets to delete.")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm(
        &format!(
            "Deleting bucket(s) {} and everything in them",
            names.join(", ")
        ),
        yes,
    )? {
        return Ok(ExitCode::SUCCESS);
    }
    let deleted = rt
        .block_on(sky.storage_delete(&names))
        .map_err(|e| coded(e, json))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&deleted)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for d in &deleted {
        if d.existed {
            writeln!(out, "Deleted bucket '{}'.", d.name)?;
        } else {
            writeln!(
                out,
                "Bucket '{}' was already gone; its record is removed.",
                d.name
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
