//! `sky config import-skypilot`: copies SkyPilot's `config.yaml` and `ssh_node_pools.yaml` into
//! Sky's home, after checking each with Sky's own parser, so a file Sky would refuse never lands
//! there. Existing Sky files are replaced only when asked (`force`). SkyPilot's files are only
//! read. Nothing is written unless every file found is valid.
//!
//! What this does not do: merge files, or read anything else of SkyPilot's (its clusters stay
//! SkyPilot's).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ConfigError, Paths, SkyConfig};
use crate::ssh::pools::{self, PoolError};

/// The files SkyPilot keeps that Sky reads in the same format.
pub(crate) const SKYPILOT_FILES: &[&str] = &["config.yaml", pools::POOLS_FILE];

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ImportedFile {
    /// Copied (`replaced`: an existing Sky file was overwritten because `force` was given).
    Imported {
        file: String,
        from: PathBuf,
        to: PathBuf,
        replaced: bool,
    },
    /// Sky's copy already has the same bytes.
    Unchanged { file: String, to: PathBuf },
    /// SkyPilot has no such file.
    Missing { file: String, from: PathBuf },
}

/// Every file considered, in [`SKYPILOT_FILES`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub from: PathBuf,
    pub to: PathBuf,
    pub files: Vec<ImportedFile>,
}

impl ImportReport {
    /// How many files were written.
    pub fn imported(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f, ImportedFile::Imported { .. }))
            .count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{from} is Sky's own home (SKY_HOME points there), not SkyPilot's; nothing to import")]
    SameHome { from: PathBuf },
    #[error("no user home directory is known, so SkyPilot's ~/.sky cannot be found; pass --from")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SkyPilot's {file} is not valid for Sky, nothing imported: {source}")]
    InvalidConfig {
        file: PathBuf,
        // Boxed: a config error carries its position and text, which would make every
        // `Result` of this module as large.
        #[source]
        source: Box<ConfigError>,
    },
    #[error("SkyPilot's {file} is not valid for Sky, nothing imported: {source}")]
    InvalidPools {
        file: PathBuf,
        #[source]
        source: PoolError,
    },
    #[error(
        "{to} already exists and differs from SkyPilot's {from}; nothing imported (pass --force to replace it)"
    )]
    Exists { from: PathBuf, to: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            ImportError::InvalidConfig { .. }
            | ImportError::InvalidPools { .. }
            | ImportError::Exists { .. }
            | ImportError::SameHome { .. } => crate::ErrorCode::InvalidConfig,
            _ => crate::ErrorCode::Internal,
        }
    }
}

/// Copies SkyPilot's files from `from` (default `~/.sky`) into `paths`' home.
pub fn import_skypilot(
    paths: &Paths,
    from: Option<&Path>,
    force: bool,
) -> Result<ImportReport, ImportError> {
    let from = match from {
        Some(dir) => dir.to_path_buf(),
        None => super::legacy_home().ok_or(ImportError::NoHome)?,
    };
    let to = paths.sky_home();
    if same_dir(&from, &to) {
        return Err(ImportError::SameHome { from });
    }
    // Read and check everything first, so a bad second file leaves nothing half imported.
    let mut planned = Vec::new();
    let mut files = Vec::new();
    for file in SKYPILOT_FILES {
        let src = from.join(file);
        let bytes = match std::fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                files.push(ImportedFile::Missing {
                    file: (*file).to_owned(),
                    from: src,
                });
                continue;
            }
            Err(source) => return Err(ImportError::Read { path: src, source }),
        };
        validate(file, &src, &bytes)?;
        let dst = to.join(file);
        let replaced = match std::fs::read(&dst) {
            Ok(existing) if existing == bytes => {
                files.push(ImportedFile::Unchanged {
                    file: (*file).to_owned(),
                    to: dst,
                });
                continue;
            }
            Ok(_) if !force => return Err(ImportError::Exists { from: src, to: dst }),
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => return Err(ImportError::Read { path: dst, source }),
        };
        files.push(ImportedFile::Imported {
            file: (*file).to_owned(),
            from: src,
            to: dst.clone(),
            replaced,
        });
        planned.push((dst, bytes));
    }
    for (dst, bytes) in planned {
        write_atomically(&dst, &bytes)?;
    }
    Ok(ImportReport { from, to, files })
}

fn validate(file: &str, src: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::Read {
        path: src.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    if file == pools::POOLS_FILE {
        pools::parse(text, src).map_err(|source| ImportError::InvalidPools {
            file: src.to_path_buf(),
            source,
        })?;
    } else {
        SkyConfig::parse(text, &src.display().to_string()).map_err(|source| {
            ImportError::InvalidConfig {
                file: src.to_path_buf(),
                source: Box::new(source),
            }
        })?;
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A temp file beside the target, then a rename: a reader never sees half a config.
fn write_atomically(dst: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let write = |path: &Path, source| ImportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = dst.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| write(dir, e))?;
    let name = dst
        .file_name()
        .map_or_else(|| "import".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.import-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| write(&tmp, e))?;
    std::fs::rename(&tmp, dst).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write(dst, e)
    })
}
