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
    #[command(subcommand)]
    command: Option<Sub>,
    #[arg(short, long, value_enum, default_value_t, global = true)]
    output: Format,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Refresh prices from the clouds' public price lists into $SKY_HOME/catalogs/ (needs
    /// network; GCP also needs an API key in SKY_GCP_API_KEY).
    Update(UpdateArgs),
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// Only this cloud (aws, gcp, azure); all three when omitted.
    cloud: Option<String>,
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
    match args.command {
        Some(Sub::Update(update)) => run_update(update, args.output),
        None => show(args.output),
    }
}

fn today_days() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX)
    })
}

/// Days since 1970-01-01 -> `YYYY-MM-DD` (civil-from-days, the inverse of the catalog's parser).
fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn run_update(args: UpdateArgs, output: Format) -> CommandResult {
    let json = output == Format::Json;
    let coded = |code: ErrorCode, message: String| CodedError {
        code,
        message,
        json,
    };
    let clouds: Vec<CloudId> = match &args.cloud {
        None => CloudId::PRICED.to_vec(),
        Some(name) => {
            let cloud: CloudId = name
                .parse()
                .map_err(|e| coded(ErrorCode::InvalidTask, format!("{e}")))?;
            if !CloudId::PRICED.contains(&cloud) {
                return Err(coded(
                    ErrorCode::InvalidTask,
                    format!(
                        "the {} cloud has no price catalog to update",
                        cloud.as_str()
                    ),
                )
                .into());
            }
            vec![cloud]
        }
    };
    let home = Paths::from_env().sky_home();
    let embedded = Catalog::embedded().map_err(|e| coded(ErrorCode::Internal, format!("{e}")))?;
    let today = iso_date(today_days());
    let mut written = Vec::new();
    for cloud in clouds {
        let path = sky_core::catalog::fetch::update_cloud(&home, &embedded, cloud, &today)
            .map_err(|e| {
                coded(
                    e.code(),
                    format!("updating the {} catalog: {e}", cloud.as_str()),
                )
            })?;
        written.push(serde_json::json!({"cloud": cloud, "file": path.display().to_string()}));
    }
    let out = if json {
        format!("{}\n", serde_json::json!({ "updated": written }))
    } else {
        written
            .iter()
            .map(|w| {
                format!(
                    "{}: wrote {}\n",
                    w["cloud"].as_str().unwrap_or(""),
                    w["file"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
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
