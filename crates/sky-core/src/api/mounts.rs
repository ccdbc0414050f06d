//! A task's `file_mounts` from the task file to the nodes: checked before anything is spent,
//! then turned into what each node gets once the cluster exists.
//!
//! Before the lock ([`Sky::plan_file_mounts`]): every local source must exist, every bucket
//! path must exist, be readable with the client's credentials and hold something, and every
//! bucket a storage object would create must be free or already this home's; storage objects Sky
//! cannot serve yet (FUSE mounts, empty buckets for outputs) are refused naming the field. Under
//! the lock, before provisioning ([`Sky::create_buckets`]): those buckets are created (or
//! reused), the local files uploaded, and each recorded as used by the cluster. After
//! provisioning ([`Sky::node_mounts`]): the store hands out short-lived read-only access for
//! each bucket path, which the nodes use to copy it.

use std::path::PathBuf;

use futures::future::join_all;

use super::{Sky, SkyError};
use crate::cloud::CloudId;
use crate::events::{Event, EventSink};
use crate::provision::Launchable;
use crate::state::StorageRecord;
use crate::storage::{
    BucketCopy, BucketUri, Claimed, Listing, NodeMounts, Ownership, StorageError, StorageMode,
    StorageSource, StorageSpec, StoreKind, UploadFile,
};
use crate::task::{FileMount, Task};

/// The task's `file_mounts`, checked: local sources resolved, bucket paths inspected, buckets
/// to create listed with the files they get.
#[derive(Debug, Clone, Default)]
pub(super) struct MountPlan {
    local: Vec<(String, PathBuf)>,
    buckets: Vec<(String, BucketUri, Listing)>,
    created: Vec<Creation>,
}

impl MountPlan {
    pub(super) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.buckets.is_empty() && self.created.is_empty()
    }
}

/// A bucket a storage object makes from local files, then copied onto the nodes like any other.
#[derive(Debug, Clone)]
struct Creation {
    remote: String,
    name: String,
    store: StoreKind,
    /// The local paths as the task wrote them (for the record and messages).
    sources: Vec<String>,
    files: Vec<UploadFile>,
    persistent: bool,
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
    /// A bucket made from these local paths.
    Create(&'a StorageSpec, &'a [String]),
}

impl Sky {
    /// Checks every entry of the task's `file_mounts` (buckets concurrently); the first problem
    /// is an error naming the entry. Paths may hold `${VAR}`-substituted secrets: messages show
    /// them as `${KEY}`.
    pub(super) async fn plan_file_mounts(
        &self,
        task: &Task,
        cluster: &str,
    ) -> Result<MountPlan, SkyError> {
        let redacted = |m: String| SkyError::InvalidRequest(task.redact(&m));
        let mut plan = MountPlan::default();
        let mut inspections = Vec::new();
        let mut claims = Vec::new();
        let owner = if task.file_mounts.values().any(creates_bucket) {
            Some(self.owner_id()?)
        } else {
            None
        };
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
                Wanted::Create(spec, sources) => {
                    let creation = self.creation(task, cluster, &field, remote, spec, sources)?;
                    let store = self.registry.store(creation.store).cloned();
                    let owner = owner.clone().unwrap_or_default();
                    claims.push(async move {
                        let answer = match &store {
                            Some(s) => s.ownership(&creation.name, &owner).await,
                            None => Err(StorageError::Other(format!(
                                "no {} store in this build",
                                creation.store
                            ))),
                        };
                        (creation, answer)
                    });
                }
            }
        }
        for (creation, answer) in join_all(claims).await {
            let field = format!("file_mounts.{}", creation.remote);
            match answer {
                Ok(Ownership::Missing | Ownership::Ours { .. }) => plan.created.push(creation),
                Ok(Ownership::Theirs { why }) => {
                    return Err(redacted(format!(
                        "{field}: {}",
                        StorageError::Taken {
                            bucket: creation.name.clone(),
                            store_scheme: scheme(creation.store).into(),
                            why,
                        }
                    )));
                }
                Err(e) => return Err(redacted(format!("{field}: {e}"))),
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

    /// Where a storage object's bucket goes when the task names no `store`: the cluster's cloud
    /// (an existing cluster's, else the best candidate's) and its region.
    fn bucket_home(&self, task: &Task, cluster: &str) -> Result<(CloudId, String), SkyError> {
        if let Some(l) = self.db()?.get(cluster)?.and_then(|r| r.launchable) {
            return Ok((l.cloud, l.region));
        }
        let first = placeable(task, self.candidates(task)?)?
            .into_iter()
            .next()
            .ok_or_else(|| SkyError::InvalidRequest("no placement fits the task".into()))?;
        Ok((first.cloud, first.region))
    }

    /// The bucket `spec` makes from `sources`: its store (given, else the cluster's cloud's;
    /// clouds with no store of their own use the first this build has) and the files it gets.
    fn creation(
        &self,
        task: &Task,
        cluster: &str,
        field: &str,
        remote: &str,
        spec: &StorageSpec,
        sources: &[String],
    ) -> Result<Creation, SkyError> {
        let invalid = |m: String| SkyError::InvalidRequest(task.redact(&m));
        let mut paths = Vec::with_capacity(sources.len());
        for src in sources {
            let local = local_source(src);
            if !local.exists() {
                return Err(invalid(format!(
                    "{field}.source: local path '{src}' does not exist; allowed: local files or \
                     directories to upload into bucket '{}', or a bucket URI",
                    spec.name
                )));
            }
            paths.push(local);
        }
        let store = match spec.store {
            Some(s) => s,
            None => match self.bucket_home(task, cluster)?.0 {
                CloudId::Aws => StoreKind::S3,
                CloudId::Gcp => StoreKind::Gcs,
                CloudId::Azure => StoreKind::Azure,
                CloudId::Local | CloudId::Ssh => StoreKind::ALL
                    .into_iter()
                    .find(|k| self.registry.store(*k).is_some())
                    .unwrap_or(StoreKind::S3),
            },
        };
        if self.registry.store(store).is_none() {
            return Err(invalid(format!(
                "{field}: Sky cannot create {store} buckets yet (bucket '{}'); allowed: {}",
                spec.name,
                self.creatable_stores()
            )));
        }
        let files = crate::storage::upload_files(&paths)
            .map_err(|why| invalid(format!("{field}.source: {why}")))?;
        Ok(Creation {
            remote: remote.to_owned(),
            name: spec.name.clone(),
            store,
            sources: sources.to_vec(),
            files,
            persistent: spec.persistent,
        })
    }

    /// Creates (or reuses) each bucket the plan makes from local files, uploads the files and
    /// records the bucket as used by `cluster`; the bucket then joins the plan's copies. Runs
    /// under the cluster's lock and before provisioning, so nothing bills while files upload and
    /// a bucket Sky cannot create costs no VM.
    pub(super) async fn create_buckets(
        &self,
        task: &Task,
        cluster: &str,
        plan: &mut MountPlan,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if plan.created.is_empty() {
            return Ok(());
        }
        let owner = self.owner_id()?;
        let (home_cloud, home_region) = self.bucket_home(task, cluster)?;
        for c in std::mem::take(&mut plan.created) {
            let field = format!("file_mounts.{}", c.remote);
            let fail =
                |e: StorageError| SkyError::InvalidRequest(task.redact(&format!("{field}: {e}")));
            let store = self
                .registry
                .store(c.store)
                .ok_or_else(|| fail(StorageError::Other(format!("no {} store", c.store))))?
                .clone();
            let own_cloud = match c.store {
                StoreKind::S3 => CloudId::Aws,
                StoreKind::Gcs => CloudId::Gcp,
                StoreKind::Azure => CloudId::Azure,
            };
            let region = (own_cloud == home_cloud).then_some(home_region.as_str());
            let claimed = store.claim(&c.name, region, &owner).await.map_err(fail)?;
            let usage = store.usage(&c.name).await.map_err(fail)?;
            sink.emit(Event::Note {
                message: match claimed {
                    Claimed::Created => format!(
                        "{field}: created bucket {}://{} in {}",
                        scheme(c.store),
                        c.name,
                        usage.region
                    ),
                    Claimed::Reused => format!(
                        "{field}: reusing this home's bucket {}://{} in {}",
                        scheme(c.store),
                        c.name,
                        usage.region
                    ),
                },
            });
            // Recorded before the upload: a bucket Sky made is listed (and deletable) even when
            // the upload then fails.
            self.db()?.record_storage(
                &StorageRecord {
                    name: c.name.clone(),
                    store: c.store,
                    region: usage.region.clone(),
                    persistent: c.persistent,
                    sources: c.sources.clone(),
                    created_at: self.clock.now(),
                    last_used_at: self.clock.now(),
                    clusters: Vec::new(),
                },
                cluster,
                self.clock.now(),
            )?;
            let sent = store
                .upload(&c.name, &owner, &c.files)
                .await
                .map_err(fail)?;
            sink.emit(Event::Note {
                message: format!(
                    "{field}: uploaded {} files ({}) from {} to {}://{}{}",
                    sent.files,
                    bytesize::ByteSize(sent.bytes).display().iec(),
                    c.sources.join(", "),
                    scheme(c.store),
                    c.name,
                    if sent.unchanged > 0 {
                        format!("; {} unchanged files not sent again", sent.unchanged)
                    } else {
                        String::new()
                    }
                ),
            });
            let total = store.usage(&c.name).await.map_err(fail)?;
            plan.buckets.push((
                c.remote.clone(),
                BucketUri {
                    store: c.store,
                    account: None,
                    bucket: c.name.clone(),
                    path: String::new(),
                },
                Listing {
                    objects: total.objects,
                    bytes: total.bytes,
                    is_object: false,
                    complete: true,
                },
            ));
        }
        Ok(())
    }

    fn creatable_stores(&self) -> String {
        let kinds: Vec<&str> = StoreKind::ALL
            .into_iter()
            .filter(|k| self.registry.store(*k).is_some())
            .map(|k| k.as_str())
            .collect();
        if kinds.is_empty() {
            "none in this build; use the local path itself as the mount's value".into()
        } else {
            format!("store: {}", kinds.join(" or store: "))
        }
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
        (StorageSource::Local(paths), StorageMode::Copy) => Ok(Wanted::Create(spec, paths)),
        (StorageSource::Bucket(uri), mode) => Err(format!(
            "{field}.mode: {} of '{uri}' is not supported yet (it needs a FUSE mount on every \
             node); allowed: COPY (the data is copied onto each node before setup)",
            mode.as_str()
        )),
        (StorageSource::Local(_), mode) => Err(format!(
            "{field}.mode: {} of bucket '{}' is not supported yet (it needs a FUSE mount on every \
             node; MOUNT is the default mode); allowed: COPY (the files are uploaded to the \
             bucket, then copied onto each node before setup)",
            mode.as_str(),
            spec.name
        )),
        (StorageSource::Empty, _) => Err(format!(
            "{field}: an empty bucket for outputs ('{}', no `source`) is written through a FUSE \
             mount, which is not supported yet; allowed: a local `source` or an existing \
             bucket's URI, with mode: COPY",
            spec.name
        )),
    }
}

fn creates_bucket(mount: &FileMount) -> bool {
    matches!(
        mount,
        FileMount::Storage(StorageSpec {
            source: StorageSource::Local(_),
            mode: StorageMode::Copy,
            ..
        })
    )
}

/// The URI scheme of a store's buckets, for messages.
fn scheme(store: StoreKind) -> &'static str {
    match store {
        StoreKind::S3 => "s3",
        StoreKind::Gcs => "gs",
        StoreKind::Azure => "https",
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
