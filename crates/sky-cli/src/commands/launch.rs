//! `sky launch`: plan a task (or a chain) and run it. `--dryrun` stops after planning and prints
//! the ranked comparison, provisioning nothing.
//!
//! What this module does not do: choose. The optimizer in sky-core decides; this only loads the
//! task, the config and the catalog, and prints.

use std::fmt::Write as _;
use std::process::ExitCode;

use sky_core::catalog::Catalog;
use sky_core::config::{Paths, SkyConfig};
use sky_core::optimizer::{self, Blocklist, Candidate, CatalogIndex, Inputs, Plan, TaskRequest};
use sky_core::{CloudId, ErrorCode};

use super::task_options::{TaskOptions, load_tasks};
use crate::output::{CodedError, CommandResult, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Task YAML file (one task or a chain), or a command to run.
    #[arg(value_name = "TASK.yaml|CMD", num_args = 0..)]
    pub entrypoint: Vec<String>,
    /// Plan only: show the candidates and the choice, provision nothing.
    #[arg(long)]
    pub dryrun: bool,
    /// With --dryrun: list the offers cheaper than the pick and why each was not taken.
    #[arg(long, requires = "dryrun")]
    pub explain: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// What the plan minimises.
    #[arg(long, value_enum, default_value_t = OptimizeTarget::Cost)]
    pub optimize_target: OptimizeTarget,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    #[command(flatten)]
    pub task: TaskOptions,
    #[command(flatten)]
    pub run: super::launch_run::RunOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizeTarget {
    Cost,
    Time,
}

pub fn run(args: Args) -> CommandResult {
    if args.dryrun {
        dryrun(&args)
    } else {
        super::launch_run::run(&args)
    }
}

/// SkyPilot's tie-breaking order between clouds; the optimizer keeps it for equal prices.
const CLOUD_ORDER: [CloudId; 5] = [
    CloudId::Aws,
    CloudId::Gcp,
    CloudId::Azure,
    CloudId::Local,
    CloudId::Ssh,
];

fn dryrun(args: &Args) -> CommandResult {
    let json = args.output == Format::Json;
    let coded = |code: ErrorCode, message: String| CodedError {
        code,
        message,
        json,
    };
    let paths = Paths::from_env();
    let config = SkyConfig::load(&paths).map_err(|e| coded(e.code(), format!("{e}")))?;
    let allowed = config.enabled_clouds();
    let enabled: Vec<CloudId> = CLOUD_ORDER
        .into_iter()
        .filter(|c| allowed.contains(c))
        .collect();
    let catalog =
        Catalog::load(&paths.sky_home()).map_err(|e| coded(ErrorCode::Internal, format!("{e}")))?;

    let entrypoint = args.entrypoint.join(" ");
    let tasks = load_tasks(&entrypoint, &args.task, &catalog).map_err(|e| {
        let code = e
            .downcast_ref::<sky_core::task::TaskError>()
            .map_or(ErrorCode::InvalidTask, |t| t.code());
        coded(code, format!("{e:#}"))
    })?;
    let requests: Vec<TaskRequest> = tasks.iter().map(TaskRequest::from).collect();
    let target = match args.optimize_target {
        OptimizeTarget::Cost => optimizer::Target::Cost,
        OptimizeTarget::Time => optimizer::Target::Time,
    };
    let index = CatalogIndex::new(&catalog);
    let blocklist = Blocklist::default();
    let inputs = Inputs {
        index: &index,
        enabled_clouds: &enabled,
        blocklist: &blocklist,
        target,
    };
    let plan = {
        let _span = tracing::info_span!("optimize", tasks = requests.len()).entered();
        optimizer::plan(inputs, &requests).map_err(|e| coded(e.code(), e.to_string()))?
    };

    let explained: Vec<optimizer::WhyNotCheaper> = if args.explain {
        plan.tasks
            .iter()
            .zip(&requests)
            .map(|(t, r)| optimizer::why_not_cheaper(inputs, r, &t.chosen, EXPLAIN_ROWS))
            .collect()
    } else {
        Vec::new()
    };
    let text = if json {
        // Without --explain the plan keeps its documented field order.
        let mut body = if args.explain {
            let mut value = serde_json::to_value(&plan)?;
            value["why_not_cheaper"] = serde_json::to_value(&explained)?;
            serde_json::to_string(&value)?
        } else {
            serde_json::to_string(&plan)?
        };
        body.push('\n');
        body
    } else {
        let mut text = render_plan(&plan, crate::output::use_color());
        for (i, why) in explained.iter().enumerate() {
            text.push_str(&render_why_not_cheaper(
                why,
                (plan.tasks.len() > 1).then_some(i + 1),
            ));
        }
        text.push_str(&launch_note(&plan, &paths, &config, &enabled));
        text
    };
    #[allow(clippy::print_stdout)]
    {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How many cheaper offers `--explain` lists (all are counted).
const EXPLAIN_ROWS: usize = 12;

/// `--explain`: how many offers cost less than the pick, how many of them each reason rules out,
/// and the cheapest few with their reason.
fn render_why_not_cheaper(why: &optimizer::WhyNotCheaper, task: Option<usize>) -> String {
    let mut out = String::new();
    let of_task = task.map(|i| format!(" (task {i})")).unwrap_or_default();
    if why.cheaper == 0 {
        let _ = writeln!(
            out,
            "\nWhy not cheaper{of_task}: no offer in the catalog costs less per node."
        );
        return out;
    }
    let kinds: Vec<String> = why
        .by_kind
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    let _ = writeln!(
        out,
        "\nWhy not cheaper{of_task}: {} cloud/instance types have a cheaper offer; ruled out by {}.",
        why.cheaper,
        kinds.join(", ")
    );
    for o in &why.offers {
        let acc = o
            .accelerators
            .as_ref()
            .map(|a| format!(", {a}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {} in {} (${:.4}/h, {} vCPUs, {} GiB{acc}): {}",
            o.cloud.display_name(),
            o.instance_type,
            o.region,
            o.hourly_price,
            o.vcpus,
            (o.memory_gib * 10.0).round() / 10.0,
            o.reason
        );
    }
    if why.cheaper > why.offers.len() {
        let _ = writeln!(
            out,
            "  ... and {} more, each ruled out as counted above",
            why.cheaper - why.offers.len()
        );
    }
    out
}

/// The comparison above covers every cloud, credentials or not; a real launch ranks only the
/// clouds configured now. Say so when the two differ, so the dry run never promises a placement
/// the launch will not try.
fn launch_note(plan: &Plan, paths: &Paths, config: &SkyConfig, allowed: &[CloudId]) -> String {
    let registry = sky_clouds::registry(paths, config);
    // A placement the catalog prices but its provider cannot create is never tried.
    let mut uncreatable = String::new();
    for task in &plan.tasks {
        let l = sky_core::provision::Launchable::from(task.chosen.clone());
        if let Some(Err(why)) = registry.get(l.cloud).map(|p| p.can_create(&l)) {
            uncreatable.push_str(&format!(
                "Note: a real launch skips the chosen {} {} ({why}) and takes the next placement \
                 it can create, or stops with this reason.\n",
                l.cloud.display_name(),
                l.instance_type
            ));
        }
    }
    let rest = configured_note(plan, &registry, allowed);
    uncreatable + &rest
}

fn configured_note(
    plan: &Plan,
    registry: &sky_core::provision::Registry,
    allowed: &[CloudId],
) -> String {
    let configured: Vec<CloudId> = allowed
        .iter()
        .copied()
        .filter(|c| CloudId::PRICED.contains(c))
        .filter(|c| registry.get(*c).is_some_and(|p| p.check().enabled))
        .collect();
    let unconfigured: Vec<&str> = plan
        .tasks
        .iter()
        .map(|t| t.chosen.cloud)
        .filter(|c| !configured.contains(c))
        .map(CloudId::display_name)
        .collect();
    if unconfigured.is_empty() {
        return String::new();
    }
    if configured.is_empty() {
        return "Note: no cloud has credentials here (see `sky check`), so `sky launch` would run \
                this on this machine (the local cloud).\n"
            .to_owned();
    }
    let names: Vec<&str> = configured.iter().map(|c| c.display_name()).collect();
    format!(
        "Note: {} has no credentials here (see `sky check`); `sky launch` would rank only {}.\n",
        unconfigured.join(", "),
        names.join(", ")
    )
}

/// SkyPilot's "Considered resources" table: the best candidate of each cloud, cheapest first,
/// with the chosen one marked; one table per task of a chain.
fn render_plan(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let chain = plan.tasks.len() > 1;
    for (i, task) in plan.tasks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let nodes = if task.num_nodes == 1 {
            "1 node".to_owned()
        } else {
            format!("{} nodes", task.num_nodes)
        };
        if chain {
            let name = task.name.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "Task {} ({name}): considered resources ({nodes}):",
                i + 1
            );
        } else {
            let _ = writeln!(out, "Considered resources ({nodes}):");
        }
        let mut rows: Vec<&Candidate> = Vec::new();
        for c in &task.candidates {
            if !rows.iter().any(|r| r.cloud == c.cloud) {
                rows.push(c);
            }
        }
        if !rows.contains(&&task.chosen) {
            // In a chain the chosen row may not be its cloud's cheapest (egress pulled it).
            rows.retain(|r| r.cloud != task.chosen.cloud);
            rows.push(&task.chosen);
            rows.sort_by(|a, b| a.total_hourly_price.total_cmp(&b.total_hourly_price));
        }
        out.push_str(&render_rows(&rows, &task.chosen, color));
        out.push('\n');
        let others = task.candidates.len() - rows.len();
        if others > 0 {
            let _ = writeln!(
                out,
                "({others} more placements considered; `-o json` lists them all)"
            );
        }
    }
    let _ = writeln!(
        out,
        "Dry run: nothing was launched (optimize target: {}).",
        match plan.target {
            optimizer::Target::Cost => "cost",
            optimizer::Target::Time => "time",
        }
    );
    out
}

fn render_rows(rows: &[&Candidate], chosen: &Candidate, color: bool) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    let headers = [
        "INFRA",
        "INSTANCE",
        "vCPUs",
        "Mem(GB)",
        "GPUS",
        "COST ($/h)",
        "CHOSEN",
    ];
    table.set_header(headers.iter().map(|h| {
        let cell = comfy_table::Cell::new(h);
        if color {
            cell.add_attribute(comfy_table::Attribute::Bold)
        } else {
            cell
        }
    }));
    for c in rows {
        let place = c.zone.as_deref().unwrap_or(&c.region);
        let instance = if c.use_spot {
            format!("{}[Spot]", c.instance_type)
        } else {
            c.instance_type.clone()
        };
        let gpus = c.accelerators.as_ref().map_or_else(
            || "-".to_owned(),
            |(n, k)| format!("{n}:{}", format_number(*k)),
        );
        let is_chosen = *c == chosen;
        let mark = match (is_chosen, color) {
            (true, true) => "\u{1b}[32m✔\u{1b}[0m".to_owned(),
            (true, false) => "✔".to_owned(),
            (false, _) => String::new(),
        };
        table.add_row(vec![
            format!("{} ({place})", c.cloud.display_name()),
            instance,
            c.vcpus.map_or_else(|| "-".to_owned(), format_number),
            c.memory_gib.map_or_else(|| "-".to_owned(), format_number),
            gpus,
            format!("{:.2}", c.total_hourly_price),
            mark,
        ]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((1, 2));
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `8` for whole numbers, `0.5` otherwise, as SkyPilot's table shows them.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
