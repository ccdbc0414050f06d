//! `sky status [NAME...] [--refresh] [-o json]`: clusters from the state database, optionally
//! reconciled with their providers first.
//!
//! Without `--refresh` no provider is asked, so this stays fast with many clusters. With it, the
//! providers also list Sky-tagged clusters the database does not know (orphans), shown after the
//! table with how to terminate them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use sky_core::api::{ClusterView, OrphanView, StatusView};

use crate::output::{CommandResult, Format};
use crate::session::{TermSink, coded, open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Clusters to show (all when none is named).
    pub clusters: Vec<String>,
    /// Ask each cluster's provider what really exists and fix the records first.
    #[arg(short, long)]
    pub refresh: bool,
    /// Also show the names each cluster's resources have on its cloud (derived from the cluster
    /// name where the cloud does not accept it as it is).
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the head's IP address (of the one cluster named), for scripts.
    #[arg(long, conflicts_with_all = ["refresh", "endpoints"])]
    pub ip: bool,
    /// Print the task's ports on the head as `IP:PORT` (of the one cluster named), and its
    /// `ssh` host names.
    #[arg(long, conflicts_with = "refresh")]
    pub endpoints: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(args: Args) -> CommandResult {
    let json = args.output == Format::Json;
    let sky = open_sky(json)?;
    if args.ip || args.endpoints {
        return access(&sky, &args, json);
    }
    let (view, orphans, foreign) = if args.refresh {
        let sink = TermSink::new(json);
        let rt = runtime()?;
        let view = rt
            .block_on(sky.status(&args.clusters, true, &sink))
            .map_err(|e| coded(e, json))?;
        // Orphans are account-wide: only looked for when no cluster was named.
        let (orphans, foreign) = if args.clusters.is_empty() {
            (
                rt.block_on(sky.orphans()).map_err(|e| coded(e, json))?,
                rt.block_on(sky.foreign_clusters())
                    .map_err(|e| coded(e, json))?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        (view, orphans, foreign)
    } else {
        let view = StatusView {
            clusters: sky.list(&args.clusters).map_err(|e| coded(e, json))?,
            changes: Vec::new(),
        };
        (view, Vec::new(), Vec::new())
    };
    let text = if json {
        let mut value = serde_json::to_value(&view)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("orphans".into(), serde_json::to_value(&orphans)?);
            map.insert("other_owners".into(), serde_json::to_value(&foreign)?);
        }
        let mut s = serde_json::to_string(&value)?;
        s.push('\n');
        s
    } else {
        let mut text = render(&view);
        if args.verbose {
            text.push_str(&render_cloud_names(&view.clusters));
        }
        text.push_str(&render_orphans(&orphans));
        text.push_str(&render_foreign(&foreign));
        text
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `--ip` and `--endpoints`: how to reach one cluster, from its record.
fn access(sky: &sky_core::api::Sky, args: &Args, json: bool) -> CommandResult {
    let [name] = args.clusters.as_slice() else {
        return Err(crate::output::CodedError {
            code: sky_core::ErrorCode::InvalidTask,
            message: format!(
                "--{} takes exactly one cluster name, got {}",
                if args.ip { "ip" } else { "endpoints" },
                args.clusters.len()
            ),
            json,
        }
        .into());
    };
    let view = sky.ssh_access(name).map_err(|e| coded(e, json))?;
    let mut out = String::new();
    if json {
        out = serde_json::to_string(&view)? + "\n";
    } else if args.ip {
        let _ = writeln!(out, "{}", view.head_ip);
    } else {
        for endpoint in &view.endpoints {
            let _ = writeln!(out, "{endpoint}");
        }
        if view.endpoints.is_empty() {
            let _ = writeln!(out, "# the task opens no ports (resources.ports)");
        }
        match &view.no_ssh {
            Some(why) => {
                let _ = writeln!(out, "# no ssh: {why}");
            }
            None => {
                let _ = writeln!(out, "# ssh: {}", view.hosts.join(", "));
            }
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn render(view: &StatusView) -> String {
    let mut out = String::new();
    for c in &view.changes {
        let from = c.from.map_or("-".to_owned(), |s| s.to_string());
        let to = c.to.map_or("removed".to_owned(), |s| s.to_string());
        let _ = writeln!(
            out,
            "refreshed {}: {from} -> {to}: {}",
            c.cluster, c.message
        );
    }
    if view.clusters.is_empty() {
        out.push_str("No existing clusters.\n");
        return out;
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "NAME",
        "INFRA",
        "RESOURCES",
        "STATUS",
        "AUTOSTOP",
        "LAUNCHED",
        "$/HR",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for c in &view.clusters {
        table.add_row([
            c.name.clone(),
            infra(c),
            resources(c),
            c.status.to_string(),
            c.autostop.map_or("-".to_owned(), |a| {
                format!("{}m{}", a.idle_minutes, if a.down { " (down)" } else { "" })
            }),
            ago(now - c.launched_at),
            c.hourly_price.map_or("-".to_owned(), |p| format!("{p:.3}")),
        ]);
    }
    let _ = writeln!(out, "{table}");
    for c in view.clusters.iter().filter(|c| c.unchecked.is_some()) {
        let _ = writeln!(
            out,
            "{}: not checked by the last refresh: {}",
            c.name,
            c.unchecked.as_deref().unwrap_or_default()
        );
    }
    out
}

/// Other Sky homes' clusters in the same accounts: shown, never acted on without their owner.
fn render_foreign(foreign: &[OrphanView]) -> String {
    let mut out = String::new();
    if foreign.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nOther Sky homes' clusters (read-only; terminate one with `sky down --orphan NAME --owner OWNER_ID`):"
    );
    for o in foreign {
        let _ = writeln!(
            out,
            "  {} on {}: {} node(s), owner {}",
            o.name,
            o.cloud.display_name(),
            o.instance_ids.len(),
            o.owner.as_deref().unwrap_or("?"),
        );
    }
    out
}

/// `sky status -v`: where to find each cluster's resources in its cloud's console.
fn render_cloud_names(clusters: &[ClusterView]) -> String {
    let mut out = String::new();
    for c in clusters.iter().filter(|c| !c.cloud_names.is_empty()) {
        let cloud = c.cloud.map_or("-", |c| c.display_name());
        let _ = writeln!(out, "\n{} on {cloud}:", c.name);
        for n in &c.cloud_names {
            let _ = writeln!(out, "  {}: {}", n.what, n.name);
        }
    }
    out
}

fn render_orphans(orphans: &[OrphanView]) -> String {
    let mut out = String::new();
    if orphans.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nOrphans: nodes tagged with this Sky home's owner id that it has no record of (record with `sky adopt NAME`, terminate with `sky down --orphan NAME`):"
    );
    for o in orphans {
        let n = o.instance_ids.len();
        let what = match (&o.instance_type, &o.region) {
            (Some(t), Some(r)) => format!(
                "{n} x {}{t} in {r}{}",
                if o.use_spot { "spot " } else { "" },
                if o.stopped { ", stopped" } else { "" }
            ),
            _ => format!("{n} node(s)"),
        };
        let head = o
            .head_ip
            .as_deref()
            .map(|ip| format!(", head {ip}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} on {}: {what} ({}){head}",
            o.name,
            o.cloud.display_name(),
            o.instance_ids.join(", "),
        );
    }
    out
}

fn infra(c: &ClusterView) -> String {
    match (&c.cloud, &c.region, &c.zone) {
        (Some(cloud), Some(r), Some(z)) => format!("{} ({r}/{z})", cloud.display_name()),
        (Some(cloud), Some(r), None) if r != cloud.as_str() => {
            format!("{} ({r})", cloud.display_name())
        }
        (Some(cloud), _, _) => cloud.display_name().to_owned(),
        _ => "-".to_owned(),
    }
}

fn resources(c: &ClusterView) -> String {
    let Some(t) = &c.instance_type else {
        return format!("{}x -", c.num_nodes);
    };
    let acc = c
        .accelerators
        .as_ref()
        .and_then(|m| m.iter().next())
        .map(|(n, k)| format!(", {n}:{k}"))
        .unwrap_or_default();
    let spot = if c.use_spot { "[spot]" } else { "" };
    match c.vcpus {
        Some(v) if v > 0.0 => format!("{}x {t}{spot} (cpus={v}{acc})", c.num_nodes),
        _ => format!("{}x {t}{spot}", c.num_nodes),
    }
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(crate) fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}
