//! Records of the buckets Sky created for storage objects (migration 4), and which clusters use
//! them. A record is written only after the store has created (or proved it already owns) the
//! bucket, and removed only after the store has deleted it or said it is gone.

use rusqlite::params;
use serde::Serialize;

use super::{StateError, StateStore};
use crate::clock::UnixSeconds;
use crate::storage::StoreKind;

/// One bucket Sky created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageRecord {
    pub name: String,
    pub store: StoreKind,
    pub region: String,
    /// Kept at `down` (`true`), or deleted when its last user goes down.
    pub persistent: bool,
    /// The local paths the last launch uploaded, as written in the task.
    pub sources: Vec<String>,
    pub created_at: UnixSeconds,
    pub last_used_at: UnixSeconds,
    /// Clusters whose launch uses it, by name.
    pub clusters: Vec<String>,
}

impl StateStore {
    /// Records (or refreshes) bucket `rec.name` and links it to `cluster`, in one transaction.
    /// `created_at` of an existing record is kept.
    pub fn record_storage(
        &mut self,
        rec: &StorageRecord,
        cluster: &str,
        now: UnixSeconds,
    ) -> Result<(), StateError> {
        let sources =
            serde_json::to_string(&rec.sources).map_err(|e| StateError::CorruptStorage {
                name: rec.name.clone(),
                message: e.to_string(),
            })?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO buckets (name, store, region, persistent, sources_json, created_at, last_used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (name) DO UPDATE SET store = ?2, region = ?3, persistent = ?4,
                 sources_json = ?5, last_used_at = ?6",
            params![rec.name, rec.store.as_str(), rec.region, rec.persistent, sources, now],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO bucket_users (bucket, cluster) VALUES (?1, ?2)",
            params![rec.name, cluster],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn storage(&self, name: &str) -> Result<Option<StorageRecord>, StateError> {
        Ok(self.storage_where("WHERE name = ?1", [name])?.pop())
    }

    /// Every recorded bucket, by name.
    pub fn storage_list(&self) -> Result<Vec<StorageRecord>, StateError> {
        self.storage_where("", [])
    }

    /// Unlinks `cluster` from every bucket; returns the buckets it used.
    pub fn release_storage(&mut self, cluster: &str) -> Result<Vec<StorageRecord>, StateError> {
        let used = self.storage_where(
            "WHERE name IN (SELECT bucket FROM bucket_users WHERE cluster = ?1)",
            [cluster],
        )?;
        self.conn
            .execute("DELETE FROM bucket_users WHERE cluster = ?1", [cluster])?;
        Ok(used
            .into_iter()
            .map(|mut r| {
                r.clusters.retain(|c| c != cluster);
                r
            })
            .collect())
    }

    /// Forgets bucket `name` (its store has deleted it, or said it is gone).
    pub fn remove_storage(&mut self, name: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM buckets WHERE name = ?1", [name])?;
        Ok(())
    }

    fn storage_where<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> Result<Vec<StorageRecord>, StateError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT name, store, region, persistent, sources_json, created_at, last_used_at,
                    (SELECT json_group_array(cluster) FROM
                        (SELECT cluster FROM bucket_users WHERE bucket = buckets.name ORDER BY cluster))
             FROM buckets {filter} ORDER BY name"
        ))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, UnixSeconds>(5)?,
                    r.get::<_, UnixSeconds>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(name, store, region, persistent, sources, created, used, clusters)| {
                    let corrupt = |what: &str| StateError::CorruptStorage {
                        name: name.clone(),
                        message: what.to_owned(),
                    };
                    Ok(StorageRecord {
                        store: StoreKind::parse(&store)
                            .ok_or_else(|| corrupt(&format!("unknown store '{store}'")))?,
                        region,
                        persistent,
                        sources: serde_json::from_str(&sources)
                            .map_err(|e| corrupt(&format!("sources: {e}")))?,
                        created_at: created,
                        last_used_at: used,
                        clusters: serde_json::from_str(&clusters)
                            .map_err(|e| corrupt(&format!("clusters: {e}")))?,
                        name,
                    })
                },
            )
            .collect()
    }
}
