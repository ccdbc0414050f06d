//! `sky status --refresh`: reconcile every record with what its provider really has, so a crash,
//! a `kill -9`, an autostop or a console action never leaves a ghost record or orphaned nodes.
//!
//! The rules, per cluster whose lock is free (a busy one is being changed right now and is skipped):
//! - no nodes exist: the record is removed;
//! - the record never got a placement (a launch died before nodes were recorded): whatever any
//!   provider has under the name is terminated and the record removed;
//! - every node stopped: STOPPED;
//! - every node running: UP stays UP; STOPPED becomes INIT (a start was interrupted); INIT stays
//!   INIT (the launch did not finish: `sky launch` again or `sky down`);
//! - a mix: INIT.
//!
//! What this module does not do: restart or repair anything beyond removing leftovers of a launch
//! that never recorded its nodes.

use std::time::Duration;

use super::views::RefreshChange;
use super::{Sky, SkyError};
use crate::events::{Event, EventSink};
use crate::lock::{ClusterLock, LockError};
use crate::provision::NodeState;
use crate::state::{ClusterRecord, ClusterStatus};

impl Sky {
    pub(super) async fn refresh(
        &self,
        names: &[String],
        sink: &dyn EventSink,
    ) -> Result<Vec<RefreshChange>, SkyError> {
        let records = self.records(names)?;
        let locks = self.paths.sky_home().join("locks");
        let mut changes = Vec::new();
        for rec in records {
            let _lock = match ClusterLock::acquire(&locks, &rec.name, Duration::ZERO, || {}) {
                Ok(lock) => lock,
                Err(LockError::Busy { .. }) => {
                    sink.emit(Event::Note {
                        message: format!(
                            "cluster '{}' is busy (another sky command holds it); not refreshed",
                            rec.name
                        ),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Re-read under the lock: the command that held it may have just changed the record.
            let Some(rec) = self.db()?.get(&rec.name)? else {
                continue;
            };
            if let Some(change) = self.refresh_one(&rec).await? {
                sink.emit(Event::ClusterStatus {
                    cluster: change.cluster.clone(),
                    status: change.to,
                });
                changes.push(change);
            }
        }
        Ok(changes)
    }

    async fn refresh_one(&self, rec: &ClusterRecord) -> Result<Option<RefreshChange>, SkyError> {
        let name = rec.name.as_str();
        let now = self.clock.now();
        let change = |to: Option<ClusterStatus>, message: String| {
            Some(RefreshChange {
                cluster: name.to_owned(),
                from: Some(rec.status),
                to,
                message,
            })
        };
        if rec.launchable.is_none() {
            // Nothing says where the nodes went: ask every configured provider and clean up after
            // the launch. An unconfigured one cannot be asked, and a launch from here could not
            // have used it either (launches only rank configured clouds).
            let mut removed = Vec::new();
            for provider in self.registry.providers().filter(|p| p.check().enabled) {
                let nodes = provider
                    .query(name)
                    .await
                    .map_err(|source| SkyError::Provider {
                        cluster: name.into(),
                        source,
                    })?;
                if !nodes.is_empty() {
                    provider
                        .terminate(name)
                        .await
                        .map_err(|source| SkyError::Provider {
                            cluster: name.into(),
                            source,
                        })?;
                    removed.push(format!("{} node(s) on {}", nodes.len(), provider.cloud()));
                }
            }
            self.db()?.remove(
                name,
                now,
                "refresh: launch was interrupted before nodes were recorded",
            )?;
            let what = if removed.is_empty() {
                "nothing had been created".to_owned()
            } else {
                format!("terminated {}", removed.join(", "))
            };
            return Ok(change(
                None,
                format!(
                    "launch was interrupted before any node was recorded; {what}; record removed"
                ),
            ));
        }
        let provider = self.provider_of(rec)?;
        let nodes = provider
            .query(name)
            .await
            .map_err(|source| SkyError::Provider {
                cluster: name.into(),
                source,
            })?;
        if nodes.is_empty() {
            self.db()?.remove(name, now, "refresh: no nodes exist")?;
            return Ok(change(
                None,
                "no nodes exist any more; record removed".into(),
            ));
        }
        let running = nodes
            .iter()
            .filter(|(_, s)| *s == NodeState::Running)
            .count();
        let stopped = nodes
            .iter()
            .filter(|(_, s)| *s == NodeState::Stopped)
            .count();
        let complete = u32::try_from(nodes.len()).unwrap_or(u32::MAX) >= rec.num_nodes;
        let (to, message) = if complete && stopped == nodes.len() {
            (ClusterStatus::Stopped, "every node is stopped".to_owned())
        } else if complete && running == nodes.len() {
            match rec.status {
                ClusterStatus::Up => return Ok(None),
                ClusterStatus::Init => {
                    return Ok(change(
                        Some(ClusterStatus::Init),
                        format!(
                            "nodes run but the launch did not finish; `sky launch -c {name}` completes it, `sky down {name}` removes it"
                        ),
                    ));
                }
                ClusterStatus::Stopped => (
                    ClusterStatus::Init,
                    "nodes run although the record said stopped; `sky start` finishes the start"
                        .into(),
                ),
            }
        } else {
            (
                ClusterStatus::Init,
                format!(
                    "{} of {} nodes exist, {running} running, {stopped} stopped",
                    nodes.len(),
                    rec.num_nodes
                ),
            )
        };
        if to == rec.status {
            return Ok(None);
        }
        self.db()?
            .set_status(name, to, now, &format!("refresh: {message}"))?;
        Ok(change(Some(to), message))
    }
}
