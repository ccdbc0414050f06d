//! `sky cost-report [-o json]`: what every cluster has cost, gone ones included, from the recorded
//! hourly price and running time.

use std::io::Write as _;
use std::process::ExitCode;

use crate::output::{CommandResult, Format};
use crate::session::{coded, open_sky};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(args: Args) -> CommandResult {
    let json = args.output == Format::Json;
    let sky = open_sky(json)?;
    let report = sky.cost_report().map_err(|e| coded(e, json))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.clusters.is_empty() {
        writeln!(out, "No cluster has run yet.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "NAME",
        "STATUS",
        "RESOURCES",
        "DURATION",
        "$/HR",
        "COST ($)",
    ]);
    for c in &report.clusters {
        let s = c.running_seconds;
        table.add_row([
            c.name.clone(),
            if c.alive {
                "alive".to_owned()
            } else {
                "terminated".to_owned()
            },
            format!(
                "{}x {} ({}/{})",
                c.num_nodes,
                c.instance_type,
                c.cloud.as_str(),
                c.region
            ),
            format!("{}h {:02}m {:02}s", s / 3600, (s % 3600) / 60, s % 60),
            format!("{:.3}", c.hourly_price),
            format!("{:.4}", c.cost),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "\nTotal: ${:.4}", report.total_cost)?;
    Ok(ExitCode::SUCCESS)
}
