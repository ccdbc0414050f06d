//! The buckets Sky created for storage objects, through the facade: `sky storage ls`, `sky
//! storage delete`, and what happens to them when their clusters go.
//!
//! Only buckets with a record here are listed or deleted, and each deletion is the store's own
//! check that the bucket carries this home's owner tag ([`crate::storage::ObjectStore::delete_owned`]):
//! a record alone never deletes anything. A `persistent: false` bucket is deleted when the last
//! cluster using it goes (`down`, or a refresh that finds it autodowned); a failure leaves the
//! bucket and its record, and says how to delete it later.

use futures::future::join_all;
use serde::Serialize;

use super::{Sky, SkyError};
use crate::events::{Event, EventSink};
use crate::state::StorageRecord;
use crate::storage::StoreKind;

/// One bucket as `sky storage ls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageView {
    pub name: String,
    pub store: StoreKind,
    pub region: String,
    pub persistent: bool,
    /// The local paths the last launch uploaded.
    pub sources: Vec<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    /// Clusters that use it now.
    pub clusters: Vec<String>,
    /// What the store counts now; `None` when it could not be asked (see `problem`).
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
    /// Why the store could not be asked, or that the bucket is gone.
    pub problem: Option<String>,
}

/// What `sky storage delete` did to one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageDeleted {
    pub name: String,
    /// `false`: the store had no such bucket any more, so only the record went.
    pub existed: bool,
}

impl Sky {
    /// Every bucket this home created, with what its store holds now (asked concurrently).
    pub async fn storage_list(&self) -> Result<Vec<StorageView>, SkyError> {
        let records = self.live_storage()?;
        let usages = join_all(records.iter().map(|r| async move {
            match self.registry.store(r.store) {
                Some(store) => store.usage(&r.name).await.map_err(|e| e.to_string()),
                None => Err(format!("this build has no {} store", r.store)),
            }
        }))
        .await;
        Ok(records
            .into_iter()
            .zip(usages)
            .map(|(r, usage)| {
                let (objects, bytes, problem) = match usage {
                    Ok(u) => (Some(u.objects), Some(u.bytes), None),
                    Err(e) => (None, None, Some(e)),
                };
                StorageView {
                    name: r.name,
                    store: r.store,
                    region: r.region,
                    persistent: r.persistent,
                    sources: r.sources,
                    created_at: r.created_at,
                    last_used_at: r.last_used_at,
                    clusters: r.clusters,
                    objects,
                    bytes,
                    problem,
                }
            })
            .collect())
    }

    /// Empties and deletes each named bucket, in order; stops at the first that cannot go (not
    /// in this home's records, still used by a cluster, or its store refuses), keeping its
    /// record. What went before it stays deleted.
    pub async fn storage_delete(&self, names: &[String]) -> Result<Vec<StorageDeleted>, SkyError> {
        let records = self.live_storage()?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let Some(rec) = records.iter().find(|r| &r.name == name) else {
                let known: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
                return Err(SkyError::InvalidRequest(format!(
                    "no bucket '{name}' in this Sky home's records (Sky deletes only buckets it \
                     created{}); see `sky storage ls`",
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!("; it has: {}", known.join(", "))
                    }
                )));
            };
            if !rec.clusters.is_empty() {
                return Err(SkyError::InvalidRequest(format!(
                    "bucket '{name}' is used by cluster(s) {}; tear them down first (`sky down \
                     {}`)",
                    rec.clusters.join(", "),
                    rec.clusters.join(" ")
                )));
            }
            let existed = self.delete_recorded(rec).await?;
            out.push(StorageDeleted {
                name: name.clone(),
                existed,
            });
        }
        Ok(out)
    }

    /// Unlinks `cluster` from its buckets (its record is gone) and deletes those that were
    /// `persistent: false` and are used by no other cluster; returns what to tell the user.
    pub(super) async fn release_buckets(&self, cluster: &str) -> Vec<String> {
        let released = match self
            .db()
            .and_then(|mut db| Ok(db.release_storage(cluster)?))
        {
            Ok(r) => r,
            Err(e) => return vec![format!("could not update the buckets it used: {e}")],
        };
        let live = self.live_clusters();
        let mut notes = Vec::new();
        for rec in released {
            let users: Vec<&String> = rec
                .clusters
                .iter()
                .filter(|c| live.as_ref().is_none_or(|l| l.contains(c)))
                .collect();
            if rec.persistent || !users.is_empty() {
                continue;
            }
            notes.push(match self.delete_recorded(&rec).await {
                Ok(true) => format!("deleted bucket '{}' (persistent: false)", rec.name),
                Ok(false) => format!("bucket '{}' was already gone", rec.name),
                Err(e) => format!(
                    "bucket '{}' (persistent: false) was not deleted: {e}; delete it with `sky \
                     storage delete {}`",
                    rec.name, rec.name
                ),
            });
        }
        notes
    }

    /// [`Sky::release_buckets`] for a cluster whose record just went, each note shown.
    pub(super) async fn release_buckets_noting(&self, cluster: &str, sink: &dyn EventSink) {
        for message in self.release_buckets(cluster).await {
            sink.emit(Event::Note {
                message: format!("{cluster}: {message}"),
            });
        }
    }

    /// Deletes `rec`'s bucket through its store (which checks the owner tag), then the record.
    async fn delete_recorded(&self, rec: &StorageRecord) -> Result<bool, SkyError> {
        let store = self.registry.store(rec.store).ok_or_else(|| {
            SkyError::InvalidRequest(format!(
                "bucket '{}' is on {}, which this build has no store for",
                rec.name, rec.store
            ))
        })?;
        let owner = self.owner_id()?;
        let existed = store
            .delete_owned(&rec.name, &owner)
            .await
            .map_err(|e| SkyError::InvalidRequest(format!("bucket '{}': {e}", rec.name)))?;
        self.db()?.remove_storage(&rec.name)?;
        Ok(existed)
    }

    /// The records, with each one's users narrowed to clusters that still have records (a
    /// launch that failed and removed its record leaves no live user behind).
    fn live_storage(&self) -> Result<Vec<StorageRecord>, SkyError> {
        let db = self.db()?;
        let live: Vec<String> = db.list()?.into_iter().map(|r| r.name).collect();
        let mut records = db.storage_list()?;
        for r in &mut records {
            r.clusters.retain(|c| live.contains(c));
        }
        Ok(records)
    }

    fn live_clusters(&self) -> Option<Vec<String>> {
        let db = self.db().ok()?;
        db.list()
            .ok()
            .map(|l| l.into_iter().map(|r| r.name).collect())
    }
}
