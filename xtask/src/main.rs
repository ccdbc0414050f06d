//! Development tasks, run as `cargo xtask <task>`.
//!
//! - `catalog [SRC]`: converts SkyPilot's v8 catalog CSVs (default
//!   `../shared/catalog/skypilot-catalog-v8/catalogs/v8`, relative to the repository root) into
//!   the compact files under `crates/sky-core/catalog-data/` that the `sky` binary embeds.
//!
//! What this does not do: download anything (`sky catalog update` fetches live prices), or run
//! as part of a build: the converted files are committed, so a build never needs `../shared`.

mod gcp_hosts;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sky_core::CloudId;
use sky_core::catalog::{CatalogSource, format, v8csv};

const DEFAULT_SRC: &str = "../shared/catalog/skypilot-catalog-v8/catalogs/v8";
const OUT_DIR: &str = "crates/sky-core/catalog-data";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("catalog") => {
            let root = repo_root()?;
            let src = match args.get(1) {
                Some(path) => PathBuf::from(path),
                None => root.join(DEFAULT_SRC),
            };
            convert_catalog(&src, &root.join(OUT_DIR))
        }
        Some(other) => bail!("unknown task '{other}' (available: catalog)"),
        None => bail!("usage: cargo xtask catalog [SRC]"),
    }
}

fn repo_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest has no parent folder")
}

/// Facts about each cloud's source data that the CSVs themselves do not carry (from the data
/// set's PROVENANCE.md).
fn source_for(cloud: CloudId) -> CatalogSource {
    match cloud {
        CloudId::Aws => CatalogSource {
            description: "embedded snapshot: SkyPilot catalog v8 (skypilot-org/skypilot-catalog \
                          00148f2a), subset"
                .into(),
            // The upstream commit's date was not recorded when the subset was transcribed.
            data_date: "unknown".into(),
            partial_coverage: Some(
                "accelerator families (p3, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200, g4dn, g4ad, \
                 g5, g5g, g6, g6e, gr6, inf1, inf2, trn1, trn1n, trn2, dl1) in all 24 regions; \
                 default CPU families (m6i, m6id, m7i, r6i, r6id, r7i, c6i, c6id, c7i) only in \
                 us-east-1, us-east-2, us-west-2, eu-west-1, eu-central-1, ap-northeast-1; every \
                 other family is missing (run `sky catalog update aws` for full coverage)"
                    .into(),
            ),
        },
        CloudId::Gcp | CloudId::Azure => CatalogSource {
            description: "embedded snapshot: SkyPilot catalog v8 (anycloud-sh/catalog 62ff0a98)"
                .into(),
            data_date: "2026-05-20".into(),
            partial_coverage: None,
        },
        CloudId::Local | CloudId::Ssh => {
            unreachable!("the local and ssh clouds have no price catalog")
        }
    }
}

fn convert_catalog(src: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for cloud in CloudId::PRICED {
        let dir = src.join(cloud.as_str());
        let vms_path = dir.join("vms.csv");
        let vms =
            std::fs::read(&vms_path).with_context(|| format!("reading {}", vms_path.display()))?;
        let images_path = dir.join("images.csv");
        let images = match std::fs::read(&images_path) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", images_path.display()));
            }
        };
        let host_rules = match cloud {
            CloudId::Gcp => gcp_hosts::rules(),
            _ => Vec::new(),
        };
        let catalog = v8csv::parse_cloud(
            cloud,
            source_for(cloud),
            &vms,
            images.as_deref(),
            host_rules,
        )?;
        let bytes = format::encode(&catalog);
        let decoded = format::decode(&bytes).context("re-reading the encoded catalog")?;
        if decoded.offers != catalog.offers || decoded.instance_types != catalog.instance_types {
            bail!("{cloud}: the encoded catalog does not decode to the same data");
        }
        let path = out.join(format!("{}.skycat", cloud.as_str()));
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        let stats = catalog.stats();
        tracing_free_report(&format!(
            "{cloud}: {} instance types, {} regions, {} zones, {} offers, {} attachable, {} images -> {} ({} bytes)",
            stats.instance_types,
            stats.regions,
            stats.zones,
            stats.offers,
            stats.attachable_accelerator_offers,
            stats.images,
            path.display(),
            bytes.len()
        ));
    }
    let acc_path = src.join("common").join("accelerators.csv");
    let acc =
        std::fs::read(&acc_path).with_context(|| format!("reading {}", acc_path.display()))?;
    let names = v8csv::parse_accelerator_names(&acc)?;
    let path = out.join("accelerators.txt");
    std::fs::write(&path, names.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    tracing_free_report(&format!(
        "common: {} accelerator names -> {}",
        names.len(),
        path.display()
    ));
    Ok(())
}

/// xtask is a developer tool whose output is its report; no logging stack is worth it here.
#[allow(clippy::print_stdout)]
fn tracing_free_report(line: &str) {
    println!("{line}");
}
