//! A task's `file_mounts` from the task file to the nodes: checked before anything is spent,
//! then turned into what each node gets once the cluster exists.
//!
//! Before the lock ([`Sky::plan_file_mounts`]): every local source must exist, and every bucket
//! path must exist, be readable with the client's credentials and hold something; storage
//! objects Sky cannot serve yet (FUSE mounts, buckets made from local files) are refused naming
//! the field. After provisioning ([`Sky::node_mounts`]): the store hands out short-lived
//! read-only access for each bucket path, which the nodes use to copy it.

use std::path::PathBuf;

use futures::future::join_all;

use super::{Sky, SkyError};
use crate::cloud::CloudId;
use crate::provision::Launchable;
use crate::storage::{
    BucketCopy, BucketUri, Listing, NodeMounts, StorageMode, StorageSource, StoreKind,
};
use crate::task::{FileMount, Task};

/// The task's `file_mounts`, checked: local sources resolved, bucket paths inspected.
#[derive(Debug, Clone, Default)]
pub(super) struct MountPlan {
    local: Vec<(String, PathBuf)>,
    buckets: Vec<(String, BucketUri, Listing)>,
}

impl MountPlan {
    pub(super) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.buckets.is_empty()
    }
}

/// `candidates` without the local cloud when a mount's destination cannot be inside a local
/// node's directory (an absolute path); an error naming it when nothing else is left.
pub(super) fn placeable(
    task: &Task,
    mut candidates: Vec<Launchable>,
) -> Result<Vec<Launchable>, SkyError> {
    let refusal = task.file_mounts.keys().find_map(|remote| {
        crate::storage::local_destination(std::path::Path::new("/"), remote)
            .err()
            .map(|why| format!("file_mounts.{remote}: {why}"))
    });
    let Some(refusal) = refusal else {
        return Ok(candidates);
    };
    let before = candidates.len();
    candidates.retain(|l| l.cloud != CloudId::Local);
    if candidates.is_empty() && before > 0 {
        return Err(SkyError::InvalidRequest(task.redact(&refusal)));
    }
    Ok(candidates)
}

/// What one entry asks for, before any filesystem or network look.
enum Wanted<'a> {
    Local(&'a str),
    Bucket(&'a BucketUri),
}

impl Sky {
    /// Checks every entry of the task's `file_mounts` (buckets concurrently); the first problem
    /// is an error naming the entry. Paths may hold `${VAR}`-substituted secrets: messages show
    /// them as `${KEY}`.
    pub(super) async fn plan_file_mounts(&self, task: &Task) -> Result<MountPlan, SkyError> {
        let redacted = |m: String| SkyError::InvalidRequest(task.redact(&m));
        let mut plan = MountPlan::default();
        let mut inspections = Vec::new();
        for (remote, mount) in &task.file_mounts {
            let field = format!("file_mounts.{remote}");
            match wanted(&field, mount).map_err(redacted)? {
                Wanted::Local(src) => {
                    let local = local_source(src);
                    if !local.exists() {
                        return Err(redacted(format!(
                            "{field}: local path '{src}' does not exist; allowed: a local file \
                             or directory"
                        )));
                    }
                    plan.local.push((remote.clone(), local));
                }
                Wanted::Bucket(uri) => {
                    let Some(store) = self.registry.store(uri.store) else {
                        return Err(redacted(format!(
                            "{field}: Sky cannot read {} buckets yet ('{uri}'); allowed: {}",
                            uri.store,
                            self.readable_stores()
                        )));
                    };
                    let store = store.clone();
                    let (remote, uri) = (remote.clone(), uri.clone());
                    inspections.push(async move {
                        let listing = store.inspect(&uri).await;
                        (remote, uri, listing)
                    });
                }
            }
        }
        for (remote, uri, listing) in join_all(inspections).await {
            match listing {
                Ok(listing) => plan.buckets.push((remote, uri, listing)),
                Err(e) => return Err(redacted(format!("file_mounts.{remote}: {e}"))),
            }
        }
        Ok(plan)
    }

    /// The plan as nodes get it: read-only access to each bucket path, asked for now (after
    /// provisioning, so the credentials' clock starts when they are needed).
    pub(super) async fn node_mounts(
        &self,
        task: &Task,
        plan: &MountPlan,
    ) -> Result<NodeMounts, SkyError> {
        let accesses = join_all(plan.buckets.iter().map(|(_, uri, _)| async move {
            match self.registry.store(uri.store) {
                Some(store) => store.read_access(uri).await,
                None => Err(crate::storage::StorageError::Other(format!(
                    "no {} store in this build",
                    uri.store
                ))),
            }
        }))
        .await;
        let mut buckets = Vec::with_capacity(plan.buckets.len());
        for ((remote, uri, listing), access) in plan.buckets.iter().zip(accesses) {
            let access = access.map_err(|e| {
                SkyError::InvalidRequest(
                    task.redact(&format!("file_mounts.{remote}: read access to {uri}: {e}")),
                )
            })?;
            buckets.push(BucketCopy {
                remote: remote.clone(),
                uri: uri.clone(),
                listing: *listing,
                access,
            });
        }
        Ok(NodeMounts {
            local: plan.local.clone(),
            buckets,
        })
    }

    fn readable_stores(&self) -> String {
        let kinds: Vec<String> = StoreKind::ALL
            .into_iter()
            .filter(|k| self.registry.store(*k).is_some())
            .map(|k| format!("{}://", k.as_str()))
            .collect();
        if kinds.is_empty() {
            "local files and directories only (this build has no object store)".into()
        } else {
            format!("{} paths, or local files and directories", kinds.join(", "))
        }
    }
}

/// What `mount` asks for, or why Sky cannot serve it yet (naming what to write instead).
fn wanted<'a>(field: &str, mount: &'a FileMount) -> Result<Wanted<'a>, String> {
    let spec = match mount {
        FileMount::Local(src) => return Ok(Wanted::Local(src)),
        FileMount::Bucket(uri) => return Ok(Wanted::Bucket(uri)),
        FileMount::Storage(spec) => spec,
    };
    match (&spec.source, spec.mode) {
        (StorageSource::Bucket(uri), StorageMode::Copy) => Ok(Wanted::Bucket(uri)),
        (StorageSource::Bucket(uri), mode) => Err(format!(
            "{field}.mode: {} of '{uri}' is not supported yet (it needs a FUSE mount on every \
             node); allowed: COPY (the data is copied onto each node before setup)",
            mode.as_str()
        )),
        (StorageSource::Local(_) | StorageSource::Empty, _) => Err(format!(
            "{field}: storage objects that create bucket '{}' (a local or empty `source`) are \
             not supported yet; allowed: an existing bucket's URI as `source` with mode: COPY, \
             or the local path itself as the mount's value",
            spec.name
        )),
    }
}

/// A local source as a path on this machine: `~` is this user's home, relative paths are from
/// the current directory (as for `workdir`).
fn local_source(src: &str) -> PathBuf {
    match (src.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(src),
    }
}
