//! Where catalogs come from at run time: the snapshot compiled into the binary, and per-cloud
//! files that `sky catalog update` writes under `$SKY_HOME/catalogs/`, which replace that
//! cloud's snapshot.
//!
//! What this module does not do: fetch anything (see `fetch`) or read SkyPilot's CSVs (only
//! `cargo xtask catalog` does, at development time).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cloud::CloudId;

use super::format::{self, DecodeError};
use super::{Catalog, CloudCatalog};

/// The folder under `$SKY_HOME` that holds refreshed catalogs (`<cloud>.skycat`).
pub const OVERRIDE_DIR: &str = "catalogs";

const EMBEDDED: [(CloudId, &[u8]); 3] = [
    (
        CloudId::Aws,
        include_bytes!("../../catalog-data/aws.skycat"),
    ),
    (
        CloudId::Azure,
        include_bytes!("../../catalog-data/azure.skycat"),
    ),
    (
        CloudId::Gcp,
        include_bytes!("../../catalog-data/gcp.skycat"),
    ),
];

const EMBEDDED_ACCELERATOR_NAMES: &str = include_str!("../../catalog-data/accelerators.txt");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the embedded {cloud} catalog cannot be read: {source}")]
    Embedded {
        cloud: CloudId,
        #[source]
        source: DecodeError,
    },
    #[error("catalog file {}: {source}", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: DecodeError,
    },
    #[error(
        "catalog file {} holds the {found} catalog, expected {expected}; delete it or run \
         `sky catalog update {}`",
        path.display(),
        expected.as_str()
    )]
    WrongCloud {
        path: PathBuf,
        expected: CloudId,
        found: CloudId,
    },
    #[error("catalog file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Catalog {
    /// The snapshot compiled into this binary (SkyPilot catalog v8 data, see `sky catalog`).
    pub fn embedded() -> Result<Catalog, CatalogError> {
        let clouds = EMBEDDED
            .iter()
            .map(|(cloud, bytes)| {
                format::decode(bytes).map_err(|source| CatalogError::Embedded {
                    cloud: *cloud,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Catalog {
            clouds,
            accelerator_names: embedded_accelerator_names(),
        })
    }

    /// The embedded snapshot, with each cloud replaced by `$SKY_HOME/catalogs/<cloud>.skycat`
    /// when `sky catalog update` has written one.
    pub fn load(sky_home: &Path) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::embedded()?;
        for slot in &mut catalog.clouds {
            let path = override_path(sky_home, slot.cloud);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CatalogError::Io { path, source }),
            };
            let refreshed = format::decode(&bytes).map_err(|source| CatalogError::Decode {
                path: path.clone(),
                source,
            })?;
            if refreshed.cloud != slot.cloud {
                return Err(CatalogError::WrongCloud {
                    path,
                    expected: slot.cloud,
                    found: refreshed.cloud,
                });
            }
            tracing::debug!(cloud = %slot.cloud, path = %path.display(), "using refreshed catalog");
            *slot = refreshed;
        }
        Ok(catalog)
    }
}

/// `$SKY_HOME/catalogs/<cloud>.skycat`.
pub fn override_path(sky_home: &Path, cloud: CloudId) -> PathBuf {
    sky_home
        .join(OVERRIDE_DIR)
        .join(format!("{}.skycat", cloud.as_str()))
}

/// Writes a refreshed catalog so that a crash or a concurrent reader never sees half a file:
/// the bytes go to a temporary file in the same folder, are synced, then renamed over the target.
pub fn write_override(sky_home: &Path, catalog: &CloudCatalog) -> Result<PathBuf, CatalogError> {
    let path = override_path(sky_home, catalog.cloud);
    let dir = sky_home.join(OVERRIDE_DIR);
    let io = |source| CatalogError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.skycat.tmp.{}",
        catalog.cloud.as_str(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&format::encode(catalog))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(source) = result {
        // Best effort: the temporary file is ours and useless now.
        let _ = std::fs::remove_file(&tmp);
        return Err(io(source));
    }
    Ok(path)
}

fn embedded_accelerator_names() -> Vec<String> {
    EMBEDDED_ACCELERATOR_NAMES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
