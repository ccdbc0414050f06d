//! Buckets Sky creates for storage objects with a local `source`: what a store answers about who
//! owns a bucket, and the files a local source uploads.
//!
//! Ownership follows the rule clusters follow: a bucket is this Sky home's only when it carries
//! the home's owner tag ([`crate::provision::owner::TAG_OWNER`]), set by the store right after
//! creating it. A bucket that exists without that tag (a colleague's, SkyPilot's, or one whose
//! creation was interrupted before it was tagged) is never written to, reused or deleted.
//! What this module does not do: talk to a store (each store implements
//! [`super::ObjectStore`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

/// Who a bucket name belongs to, as its store tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// No bucket of that name exists (that these credentials can see).
    Missing,
    /// It exists and carries this home's owner tag.
    Ours { region: String },
    /// It exists and nothing proves it is this home's: why, for the message.
    Theirs { why: String },
}

/// What [`super::ObjectStore::claim`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Created now, and tagged as this home's.
    Created,
    /// It already existed with this home's owner tag (a persistent bucket of an earlier launch).
    Reused,
}

/// One local file to upload, at `key` in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    pub files: u64,
    pub bytes: u64,
    /// Files already in the bucket with the same size and not older (not sent again).
    pub unchanged: u64,
}

/// A bucket's contents and place, for `sky storage ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketUsage {
    pub region: String,
    pub objects: u64,
    pub bytes: u64,
}

/// The files local `sources` upload, keyed as SkyPilot lays them out: one directory's contents
/// at the bucket's root; one file at the root by its name; several paths each under its own
/// name (a directory's files below it). Directories honour `.skyignore` (else `.gitignore`) and
/// skip `.git`, as the workdir does. Two sources landing on one key are an error.
pub fn upload_files(sources: &[PathBuf]) -> Result<Vec<UploadFile>, String> {
    let mut out: Vec<UploadFile> = Vec::new();
    let single = sources.len() == 1;
    for src in sources {
        let base = if single {
            String::new()
        } else {
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("'{}' has no usable file name", src.display()))?;
            format!("{name}/")
        };
        if src.is_dir() {
            for entry in crate::api::sync::workdir_entries(src)? {
                let (rel, kind) = entry?;
                let path = src.join(&rel);
                match kind {
                    crate::api::sync::EntryKind::Dir => continue,
                    crate::api::sync::EntryKind::File => {}
                    // An object store has no links: a link to a file uploads that file's bytes,
                    // as `aws s3 sync` does; one to a directory or to nothing is left out.
                    crate::api::sync::EntryKind::Symlink if path.is_file() => {}
                    crate::api::sync::EntryKind::Symlink => {
                        tracing::warn!(link = %path.display(), "not uploaded: a link to a directory or to nothing");
                        continue;
                    }
                }
                out.push(file(&path, format!("{base}{}", key_of(&rel)?))?);
            }
        } else {
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("'{}' has no usable file name", src.display()))?;
            out.push(file(src, name.to_owned())?);
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = out.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(format!(
            "'{}' and '{}' would both be uploaded as '{}'",
            w[0].path.display(),
            w[1].path.display(),
            w[0].key
        ));
    }
    Ok(out)
}

fn file(path: &Path, key: String) -> Result<UploadFile, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(UploadFile {
        key,
        path: path.to_path_buf(),
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// An object key for a relative path: `/`-separated, UTF-8 (S3, GCS and Azure keys are text).
fn key_of(rel: &Path) -> Result<String, String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/")).ok_or_else(|| {
        format!(
            "'{}' is not valid UTF-8, so it cannot be a key",
            rel.display()
        )
    })
}
