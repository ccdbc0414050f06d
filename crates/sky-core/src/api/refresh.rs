//! `sky status --refresh`: reconcile every record with what its provider really has, so a crash,
//! a `kill -9`, an autostop or a console action never leaves a ghost record or orphaned nodes.
//!
//! The rules, per cluster whose lock is free (a busy one is being changed right now and is skipped):
//! - a record is removed only once every cloud it may have reached answered that nothing of it is
//!   there. A cloud that cannot be asked (no credentials here, a network or auth error) leaves
//!   the record as it is, marked with why (`ClusterRecord::unchecked`, shown by `sky status`);
//! - no nodes exist: what `down` removes beside the nodes (security group, firewall rule, resource
//!   group) is removed, then the record;
//! - the record never got a placement (a launch died before nodes were recorded): what each of
//!   its recorded create attempts made is found by its launch id (tagged with this home's owner
//!   id, in the attempt's own region) and terminated, then the record is removed; nothing is ever
//!   looked up by the cluster's name alone, which other tools and homes may use too;
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
use crate::provision::owner::new_launch_id;
use crate::provision::{LaunchAttempt, NodeState, Provider, ProvisionError};
use crate::state::{ClusterRecord, ClusterStatus};

/// What asking every cloud about a record's create attempts found.
pub(super) struct AttemptsCheck {
    /// What was found and terminated, in words (`2 node(s) on aws/us-east-1`).
    pub terminated: Vec<String>,
    /// Why some cloud could not be asked (empty: every cloud answered).
    pub unchecked: Vec<String>,
}

/// Why `provider` cannot be asked now, if it cannot.
fn unusable(provider: Option<&std::sync::Arc<dyn Provider>>, cloud: &str) -> Option<String> {
    match provider {
        None => Some(format!("this build has no {cloud} provider")),
        Some(p) => {
            let c = p.check();
            (!c.enabled).then(|| format!("{cloud} cannot be asked from here: {}", c.reason))
        }
    }
}

fn could_not_ask(cloud: &str, e: &ProvisionError) -> String {
    format!(
        "{cloud} did not answer ({}): {}",
        e.kind.as_str(),
        e.message
    )
}

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
        if rec.pre_ownership {
            if self.claim_pre_ownership(rec).await? {
                return Ok(change(
                    Some(rec.status),
                    "launched before ownership tags: the nodes its record names now carry this \
                     home's tags, and Sky manages it again"
                        .into(),
                ));
            }
            return self.keep_unchecked(
                rec,
                &[super::pre_ownership_refusal(rec).to_string()],
                "nothing was changed",
            );
        }
        if rec.launchable.is_none() {
            // Nothing says where the nodes went but the recorded attempts, each with the launch
            // id its resources carry. A record without attempts never reached a create call.
            let checked = self.clean_attempts(rec).await;
            let what = if checked.terminated.is_empty() {
                "nothing of it is left".to_owned()
            } else {
                format!("terminated {}", checked.terminated.join(", "))
            };
            if !checked.unchecked.is_empty() {
                return self.keep_unchecked(rec, &checked.unchecked, &what);
            }
            self.remove_record(
                name,
                "refresh: launch was interrupted before nodes were recorded",
            )?;
            return Ok(change(
                None,
                format!(
                    "launch was interrupted before any node was recorded; {what}; record removed"
                ),
            ));
        }
        let provider = match self.provider_of(rec) {
            Ok(p) => p,
            // A cloud this build cannot reach at all: the nodes may well exist.
            Err(e) => return self.keep_unchecked(rec, &[e.to_string()], "nothing was changed"),
        };
        let cloud = provider.cloud().display_name();
        if let Some(why) = unusable(Some(provider), cloud) {
            return self.keep_unchecked(rec, &[why], "nothing was changed");
        }
        let nodes = match provider.query(name).await {
            Ok(nodes) => nodes,
            Err(e) => {
                return self.keep_unchecked(
                    rec,
                    &[could_not_ask(cloud, &e)],
                    "nothing was changed",
                );
            }
        };
        if rec.unchecked.is_some() {
            self.db()?.set_unchecked(name, None)?;
        }
        // Set by the head itself when its cluster stopped or deleted itself while idle.
        let autostopped = rec
            .autostop
            .filter(|_| rec.status == ClusterStatus::Up)
            .map(|a| (a.down, format!("after {} idle minutes", a.idle_minutes)));
        if nodes.is_empty() {
            // Nodes that are gone (deleted by autodown, a `down` killed after its terminate call,
            // the console) leave what `down` deletes beside them: the cluster's security group,
            // firewall rule or resource group, each this home's by its owner id. Removed here,
            // and the record kept while that fails, so nothing of the cluster is left untracked.
            if let Err(e) = provider.terminate(name).await {
                return self.keep_unchecked(
                    rec,
                    &[format!(
                        "its nodes are gone but removing what is left of it failed: {e}"
                    )],
                    "nothing was changed",
                );
            }
            let mut message = "no nodes exist any more; record removed".to_owned();
            if let Some((true, after)) = &autostopped {
                message = format!("autodowned {after}: no nodes are left; record removed");
            }
            self.remove_record(name, &format!("refresh: {message}"))?;
            for note in self.release_buckets(name).await {
                message = format!("{message}; {note}");
            }
            return Ok(change(None, message));
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
            let message = match &autostopped {
                Some((_, after)) => format!("autostopped {after}: every node is stopped"),
                None => "every node is stopped".to_owned(),
            };
            (ClusterStatus::Stopped, message)
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

    /// Re-tags a cluster recorded before ownership tags when its provider can prove its nodes
    /// are this home's by the ids in the record (see `Provider::claim_pre_ownership`); the new
    /// launch id is recorded before any tag is written, as for a create call. `false` (record
    /// untouched) when that cannot be proved.
    async fn claim_pre_ownership(&self, rec: &ClusterRecord) -> Result<bool, SkyError> {
        let (Some(info), Some(l)) = (&rec.handle, &rec.launchable) else {
            return Ok(false);
        };
        let Ok(provider) = self.provider_of(rec) else {
            return Ok(false);
        };
        if info.nodes.is_empty() || unusable(Some(provider), "").is_some() {
            return Ok(false);
        }
        let attempt = LaunchAttempt {
            launch_id: new_launch_id().map_err(|e| SkyError::InvalidRequest(e.to_string()))?,
            cloud: l.cloud,
            region: l.region.clone(),
            zone: l.zone.clone(),
        };
        let record = || {
            self.db()
                .map_err(|e| ProvisionError::fatal(e.to_string()))?
                .add_launch_attempt(&rec.name, &attempt, self.clock.now())
                .map_err(|e| {
                    ProvisionError::fatal(format!("cannot record the launch attempt: {e}"))
                })
        };
        let claimed = provider
            .claim_pre_ownership(&rec.name, &l.region, info, &attempt.launch_id, &record)
            .await;
        match claimed {
            Ok(true) => {
                let mut db = self.db()?;
                db.set_pre_ownership(&rec.name, false)?;
                db.set_unchecked(&rec.name, None)?;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                tracing::warn!(cluster = %rec.name, error = %e, "could not re-tag a cluster launched before ownership tags");
                Ok(false)
            }
        }
    }

    /// Keeps `rec` as it is, marked with why it could not be checked; a change saying so.
    fn keep_unchecked(
        &self,
        rec: &ClusterRecord,
        why: &[String],
        done: &str,
    ) -> Result<Option<RefreshChange>, SkyError> {
        let why = why.join("; ");
        self.db()?.set_unchecked(&rec.name, Some(&why))?;
        Ok(Some(RefreshChange {
            cluster: rec.name.clone(),
            from: Some(rec.status),
            to: Some(rec.status),
            message: format!("record kept, not checked: {why}; {done}"),
        }))
    }

    /// Finds what each of `rec`'s create attempts made, by launch id, and terminates it. Never
    /// fails as a whole: a cloud that cannot be asked is reported in `unchecked`.
    pub(super) async fn clean_attempts(&self, rec: &ClusterRecord) -> AttemptsCheck {
        let mut out = AttemptsCheck {
            terminated: Vec::new(),
            unchecked: Vec::new(),
        };
        for attempt in &rec.launch_attempts {
            let cloud = attempt.cloud.display_name();
            let provider = self.registry.get(attempt.cloud);
            if let Some(why) = unusable(provider, cloud) {
                out.unchecked.push(why);
                continue;
            }
            let Some(provider) = provider else { continue };
            let found = match provider.query_launch(&rec.name, attempt).await {
                Ok(found) => found,
                Err(e) => {
                    out.unchecked.push(could_not_ask(cloud, &e));
                    continue;
                }
            };
            // Called even when no node was found: an attempt killed before its first node may
            // have left the cluster's network pieces (a firewall rule, a resource group with a
            // billed public IP), which this removes; it is idempotent.
            match provider.terminate_launch(&rec.name, attempt).await {
                Ok(()) if found.is_empty() => {}
                Ok(()) => out.terminated.push(format!(
                    "{} node(s) of launch {} on {}/{}",
                    found.len(),
                    attempt.launch_id,
                    attempt.cloud.as_str(),
                    attempt.region
                )),
                Err(e) => out.unchecked.push(format!(
                    "terminating launch {} on {cloud} failed: {}",
                    attempt.launch_id, e.message
                )),
            }
        }
        out
    }

    /// Before relaunching a record whose earlier launch never recorded its nodes, terminates
    /// what that launch's attempts made; refuses when some cloud cannot be asked, since a new
    /// launch would then leave the old nodes billing unseen.
    pub(super) async fn clean_interrupted_attempts(
        &self,
        rec: &ClusterRecord,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if rec.pre_ownership {
            return Err(super::pre_ownership_refusal(rec));
        }
        let checked = self.clean_attempts(rec).await;
        for t in &checked.terminated {
            sink.emit(Event::Note {
                message: format!("'{}': an interrupted launch left {t}; terminated", rec.name),
            });
        }
        if checked.unchecked.is_empty() {
            return Ok(());
        }
        let why = checked.unchecked.join("; ");
        self.db()?.set_unchecked(&rec.name, Some(&why))?;
        Err(SkyError::WrongStatus {
            cluster: rec.name.clone(),
            status: rec.status,
            hint: format!(
                "an earlier launch of it was interrupted and its nodes cannot be checked ({why}); \
                 make that cloud reachable and run `sky status --refresh`, or `sky down {} --purge` \
                 to forget it",
                rec.name
            ),
        })
    }
}
