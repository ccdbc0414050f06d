//! `sky show-gpus [NAME[:COUNT]] [--all] [--cloud C] [--region R] [-o json]`: the accelerators
//! the catalog offers, modelled on SkyPilot 0.14's `sky show-gpus` (tables, order, number
//! formats).
//!
//! What this does not do: compute anything beyond choosing tables; listings come from
//! `sky_core::catalog::gpus`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use sky_core::catalog::Catalog;
use sky_core::catalog::gpus::{self, COMMON_GPUS, COMMON_TPUS, GpuFilter, GpuOffer};
use sky_core::config::{Paths, SkyConfig};
use sky_core::{CloudId, ErrorCode};

use crate::output::{CodedError, CommandResult, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accelerator to list, optionally with a count (`A100`, `a100:8`); matches names containing
    /// it, case-insensitively.
    #[arg(value_name = "NAME[:COUNT]")]
    accelerator: Option<String>,
    /// Show every accelerator (not only the common ones) with prices.
    #[arg(short, long)]
    all: bool,
    /// Only this cloud.
    #[arg(long)]
    cloud: Option<String>,
    /// Only regions whose name contains this.
    #[arg(long)]
    region: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub fn run(args: Args) -> CommandResult {
    let json = args.output == Format::Json;
    let coded = |code: ErrorCode, message: String| CodedError {
        code,
        message,
        json,
    };
    let paths = Paths::from_env();
    let config = SkyConfig::load(&paths).map_err(|e| coded(e.code(), format!("{e}")))?;
    let mut enabled = config.enabled_clouds();
    if let Some(name) = &args.cloud {
        let cloud: CloudId = name
            .parse()
            .map_err(|e| coded(ErrorCode::InvalidTask, format!("--cloud: {e}")))?;
        if !enabled.contains(&cloud) {
            return Err(coded(
                ErrorCode::InvalidConfig,
                format!(
                    "--cloud: {} is not in allowed_clouds of {}",
                    cloud.as_str(),
                    paths.config_file().display()
                ),
            )
            .into());
        }
        enabled = vec![cloud];
    }
    let catalog = Catalog::load(&paths.sky_home())
        .map_err(|e| coded(ErrorCode::Internal, format!("{e}")))?
        .restricted_to(&enabled);

    let (name, count) = match &args.accelerator {
        Some(spec) => {
            let (name, count) = parse_spec(spec).map_err(|m| coded(ErrorCode::InvalidTask, m))?;
            (Some(name), count)
        }
        None => (None, None),
    };
    let filter = GpuFilter {
        name,
        count,
        region: args.region.as_deref(),
    };

    let mut out = String::new();
    if json {
        let listed = gpus::list_gpu_offers(&catalog, &filter);
        if name.is_some() && listed.is_empty() {
            return Err(coded(ErrorCode::InvalidTask, not_found(&catalog, &filter, &args)).into());
        }
        out = serde_json::to_string_pretty(&listed).context("serialising the listing")?;
        out.push('\n');
    } else if name.is_none() {
        counts_tables(&catalog, &filter, args.all, &mut out);
        if args.all {
            out.push_str("\n\n");
            offer_tables(&gpus::list_gpu_offers(&catalog, &filter), false, &mut out);
        }
    } else {
        let listed = gpus::list_gpu_offers(&catalog, &filter);
        if listed.is_empty() {
            return Err(coded(ErrorCode::InvalidTask, not_found(&catalog, &filter, &args)).into());
        }
        offer_tables(&listed, !args.all, &mut out);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `A100` or `A100:8`; the count must be a positive integer, as in SkyPilot.
fn parse_spec(spec: &str) -> Result<(&str, Option<f64>), String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or("").trim();
    let count = parts.next();
    if parts.next().is_some() || name.is_empty() {
        return Err(format!(
            "invalid accelerator '{spec}': expected NAME or NAME:COUNT, e.g. A100:8"
        ));
    }
    let count = match count {
        None => None,
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Some(f64::from(n)),
            _ => {
                return Err(format!(
                    "invalid accelerator count '{text}' in '{spec}': expected a positive integer"
                ));
            }
        },
    };
    Ok((name, count))
}

fn not_found(catalog: &Catalog, filter: &GpuFilter<'_>, args: &Args) -> String {
    let name = filter.name.unwrap_or("");
    let clouds: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|c| c.cloud.display_name())
        .collect();
    let mut msg = format!("accelerator '{name}'");
    if let Some(count) = filter.count {
        let _ = write!(msg, " with count {count}");
    }
    if let Some(region) = &args.region {
        let _ = write!(msg, " in a region matching '{region}'");
    }
    let _ = write!(msg, " not found in the catalogs of {}", clouds.join(", "));
    let any_count = GpuFilter {
        count: None,
        ..filter.clone()
    };
    let counts = gpus::accelerator_counts(catalog, &any_count);
    if filter.count.is_some() && !counts.is_empty() {
        let available: Vec<String> = counts
            .iter()
            .map(|(n, c)| format!("{n}: {}", join_counts(c)))
            .collect();
        let _ = write!(msg, "; available counts: {}", available.join("; "));
    } else if let Some(suggestion) = catalog.suggest_accelerator(name) {
        let _ = write!(msg, "; did you mean '{suggestion}'?");
    }
    msg.push_str(" (run `sky show-gpus --all` to list every accelerator)");
    msg
}

/// `1, 2, 4` with whole numbers printed without a fraction (`0.5` stays).
fn join_counts(counts: &[f64]) -> String {
    counts
        .iter()
        .map(|c| format!("{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts_tables(catalog: &Catalog, filter: &GpuFilter<'_>, all: bool, out: &mut String) {
    let mut counts: BTreeMap<String, Vec<f64>> = gpus::accelerator_counts(catalog, filter);
    let section = |title: &str, names: Vec<String>, counts: &mut BTreeMap<_, _>| {
        let rows: Vec<Vec<String>> = names
            .into_iter()
            .filter_map(|n| {
                counts
                    .remove(&n)
                    .map(|c: Vec<f64>| vec![n, join_counts(&c)])
            })
            .collect();
        render(&[title, "AVAILABLE_QUANTITIES"], &rows)
    };
    let common = section(
        "COMMON_GPU",
        COMMON_GPUS.iter().map(|s| (*s).to_owned()).collect(),
        &mut counts,
    );
    let tpus = section(
        "GOOGLE_TPU",
        COMMON_TPUS.iter().map(|s| (*s).to_owned()).collect(),
        &mut counts,
    );
    let mut tables = vec![common, tpus];
    if all {
        let rest: Vec<String> = counts.keys().cloned().collect();
        tables.push(section("OTHER_GPU", rest, &mut counts));
    }
    out.push_str(
        &tables
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
    );
    if !all {
        out.push_str(
            "\n\nHint: use -a/--all to see all accelerators (including non-common ones) and pricing.",
        );
    }
    out.push('\n');
}

fn offer_tables(listed: &BTreeMap<String, Vec<GpuOffer>>, with_region: bool, out: &mut String) {
    let mut headers = vec![
        "GPU",
        "QTY",
        "CLOUD",
        "INSTANCE_TYPE",
        "DEVICE_MEM",
        "vCPUs",
        "HOST_MEM",
        "HOURLY_PRICE",
        "HOURLY_SPOT_PRICE",
    ];
    if with_region {
        headers.push("REGION");
    }
    let tables: Vec<String> = listed
        .values()
        .map(|rows| {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = vec![
                        r.accelerator_name.clone(),
                        format!("{:?}", r.accelerator_count),
                        r.cloud.display_name().to_owned(),
                        r.instance_type
                            .clone()
                            .unwrap_or_else(|| "(attachable)".into()),
                        r.device_memory.map_or("-".into(), |m| format!("{m:.0}GB")),
                        r.cpu_count.map_or("-".into(), |c| {
                            if c.fract() == 0.0 {
                                format!("{c:.0}")
                            } else {
                                format!("{c:.1}")
                            }
                        }),
                        r.memory.map_or("-".into(), |m| format!("{m:.0}GB")),
                        r.price.map_or("-".into(), |p| format!("$ {p:.3}")),
                        r.spot_price.map_or("-".into(), |p| format!("$ {p:.3}")),
                    ];
                    if with_region {
                        row.push(r.region.clone());
                    }
                    row
                })
                .collect();
            render(&headers, &rows)
        })
        .collect();
    out.push_str(&tables.join("\n\n"));
    out.push('\n');
}

/// A borderless table in SkyPilot's style (columns two spaces apart); empty when no rows.
fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    let header_cells = headers.iter().map(|h| {
        let cell = comfy_table::Cell::new(h);
        if crate::output::use_color() {
            cell.add_attribute(comfy_table::Attribute::Bold)
        } else {
            cell
        }
    });
    table.set_header(header_cells);
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
