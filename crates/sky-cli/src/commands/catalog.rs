//! `sky catalog` shows where each cloud's prices come from, how old they are and how much they
//! cover; `sky catalog update [CLOUD]` refreshes clouds from their public price lists into
//! `$SKY_HOME/catalogs/`.
//!
//! What this does not do: parse price lists (sky-core's `catalog::fetch` does) or decide which
//! catalog wins (`Catalog::load` does: a refreshed file replaces that cloud's embedded snapshot).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use sky_core::catalog::query::CatalogStats;
use sky_core::catalog::{Catalog, CatalogSource, override_path};
use sky_core::config::Paths;
use sky_core::{CloudId, ErrorCode};

use crate::output::{CodedError, CommandResult, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

/// One cloud's line in `sky catalog` (and its `-o json` shape).
#[derive(Debug, Serialize)]
struct CloudSummary {
    cloud: CloudId,
    source: CatalogSource,
    /// Days since `source.data_date`; `null` when the date is unknown.
    age_days: Option<i64>,
    /// The refreshed file in use, if `sky catalog update` wrote one.
    refreshed_file: Option<String>,
    #[serde(flatten)]
    stats: CatalogStats,
}

pub fn run(args: Args) -> CommandResult {
    show(args.output)
}

fn show(output: Format) -> CommandResult {
    let json = output == Format::Json;
    let paths = Paths::from_env();
    let home = paths.sky_home();
    let catalog = Catalog::load(&home).map_err(|e| CodedError {
        code: ErrorCode::Internal,
        message: format!("{e}"),
        json,
    })?;
    let today = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX)
    });
    let summaries: Vec<CloudSummary> = catalog
        .clouds
        .iter()
        .map(|c| {
            let path = override_path(&home, c.cloud);
            CloudSummary {
                cloud: c.cloud,
                age_days: c.source.age_days(today),
                source: c.source.clone(),
                refreshed_file: path.exists().then(|| path.display().to_string()),
                stats: c.stats(),
            }
        })
        .collect();

    let mut out = String::new();
    if json {
        let body = serde_json::json!({ "clouds": summaries });
        out = serde_json::to_string_pretty(&body).context("serialising the catalog summary")?;
        out.push('\n');
    } else {
        out.push_str(&table(&summaries));
        for s in &summaries {
            if let Some(missing) = &s.source.partial_coverage {
                out.push_str(&format!(
                    "\n{} coverage is partial: {missing}",
                    s.cloud.display_name()
                ));
            }
        }
        out.push_str(
            "\nRefresh from the clouds' public price lists with `sky catalog update [CLOUD]`.\n",
        );
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn table(summaries: &[CloudSummary]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "CLOUD",
        "SOURCE",
        "DATA_DATE",
        "AGE",
        "INSTANCE_TYPES",
        "REGIONS",
        "ZONES",
        "OFFERS",
        "COVERAGE",
    ]);
    for s in summaries {
        let offers = if s.stats.attachable_accelerator_offers > 0 {
            format!(
                "{} (+{} accelerator)",
                s.stats.offers, s.stats.attachable_accelerator_offers
            )
        } else {
            s.stats.offers.to_string()
        };
        table.add_row([
            s.cloud.display_name().to_owned(),
            s.source.description.clone(),
            s.source.data_date.clone(),
            s.age_days.map_or("-".to_owned(), |d| format!("{d} days")),
            s.stats.instance_types.to_string(),
            s.stats.regions.to_string(),
            s.stats.zones.to_string(),
            offers,
            if s.source.partial_coverage.is_some() {
                "partial".to_owned()
            } else {
                "full".to_owned()
            },
        ]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
