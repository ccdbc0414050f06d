//! Failover: walk the optimizer's ranked candidates, trying each placement until one provisions,
//! and learn from each failure which zones, regions, instance types or clouds to skip.
//!
//! What a failure rules out is its [`BlockScope`]: the cloud's error table sets it when the code
//! says more than its kind (an instance type unsupported in one zone, a global GPU quota), and
//! otherwise the kind decides: capacity, transient and unknown errors block a zone (or the region
//! when the candidate has no zone), quota blocks the region, invalid requests block the instance
//! type on that cloud, auth blocks the cloud; fatal errors stop everything. Nodes created by a
//! failed attempt are terminated before moving on. What this module does not do: rank (the
//! optimizer did), retry a throttled call in place (the providers do, within a bounded wait), or
//! look at a cloud's identity beyond using it as a key.
//!
//! Cancellation ([`provision_cancellable`]) acts between attempts, during the retry wait and while
//! waiting for nodes to boot; it never abandons a `run_instances` call mid-flight (a create request
//! may still land after we gave up on it), and whatever the current attempt created is terminated
//! before returning [`FailoverError::Cancelled`].

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cloud::CloudId;
use crate::events::{Attempt, AttemptOutcome, Event, EventSink};
use crate::provision::{
    BlockScope, ClusterInfo, LaunchAttempt, Launchable, NodeSettings, ProvisionError,
    ProvisionErrorKind, ProvisionRequest, Registry, owner,
};

/// The disk, ports and image a candidate's nodes get: a task's resources resolved for the
/// candidate's region (see [`NodeSettings::for_region`]).
pub type SettingsFor<'a> = &'a (dyn Fn(&Launchable) -> NodeSettings + Sync);

/// Called with each attempt's launch id and destination before its create call; the launch
/// writes it to the cluster's record there (an error aborts before anything is created).
pub type RecordAttempt<'a> = &'a (dyn Fn(&LaunchAttempt) -> Result<(), ProvisionError> + Sync);

/// One thing failover will not try again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Blocked {
    Cloud(CloudId),
    Region {
        cloud: CloudId,
        region: String,
    },
    Zone {
        cloud: CloudId,
        region: String,
        zone: String,
    },
    /// An instance type in one zone (`zone` set), one region (`region` set, `zone` not) or
    /// everywhere on the cloud (neither).
    InstanceType {
        cloud: CloudId,
        instance_type: String,
        region: Option<String>,
        zone: Option<String>,
    },
    /// Every placement with accelerators on the cloud (a global GPU quota).
    Accelerators(CloudId),
}

impl Blocked {
    fn covers(&self, l: &Launchable) -> bool {
        match self {
            Blocked::Cloud(c) => *c == l.cloud,
            Blocked::Region { cloud, region } => *cloud == l.cloud && *region == l.region,
            Blocked::Zone {
                cloud,
                region,
                zone,
            } => *cloud == l.cloud && *region == l.region && l.zone.as_ref() == Some(zone),
            Blocked::InstanceType {
                cloud,
                instance_type,
                region,
                zone,
            } => {
                *cloud == l.cloud
                    && *instance_type == l.instance_type
                    && region.as_ref().is_none_or(|r| *r == l.region)
                    && zone.as_ref().is_none_or(|z| l.zone.as_ref() == Some(z))
            }
            Blocked::Accelerators(c) => *c == l.cloud && l.accelerators.is_some(),
        }
    }

    /// Zone- and region-level blocks pass with time (capacity comes back); the others (cloud,
    /// an instance type everywhere, a global quota) waiting does not fix.
    fn is_local(&self) -> bool {
        match self {
            Blocked::Region { .. } | Blocked::Zone { .. } => true,
            Blocked::InstanceType { region, .. } => region.is_some(),
            Blocked::Cloud(_) | Blocked::Accelerators(_) => false,
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Cloud(c) => write!(f, "cloud {c}"),
            // Zones and regions name their cloud already (`us-east-1a`, `eastus`).
            Blocked::Region { region, .. } => write!(f, "region {region}"),
            Blocked::Zone { zone, .. } => write!(f, "zone {zone}"),
            Blocked::InstanceType {
                cloud,
                instance_type,
                region,
                zone,
            } => match (zone, region) {
                (Some(z), _) => write!(f, "instance type {instance_type} in zone {z} on {cloud}"),
                (None, Some(r)) => {
                    write!(f, "instance type {instance_type} in region {r} on {cloud}")
                }
                (None, None) => write!(f, "instance type {instance_type} on {cloud}"),
            },
            Blocked::Accelerators(c) => write!(f, "accelerator offers in every region of {c}"),
        }
    }
}

/// Placements failover must not try again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocklist {
    entries: Vec<Blocked>,
}

impl Blocklist {
    /// Why `l` is blocked, or `None` if it may be tried.
    pub fn reason(&self, l: &Launchable) -> Option<String> {
        self.entries
            .iter()
            .find(|b| b.covers(l))
            .map(ToString::to_string)
    }

    /// What is blocked, in the order it was learnt.
    pub fn entries(&self) -> &[Blocked] {
        &self.entries
    }

    /// Records what a failure of `kind` at `l` rules out, at the kind's default scope; returns
    /// it in words.
    pub fn block(&mut self, l: &Launchable, kind: ProvisionErrorKind) -> String {
        self.block_scope(l, kind.default_scope().unwrap_or(BlockScope::Cloud))
    }

    /// Records what `error` at `l` rules out (its scope, else its kind's); returns it in words.
    pub fn block_error(&mut self, l: &Launchable, error: &ProvisionError) -> String {
        self.block_scope(l, error.block_scope().unwrap_or(BlockScope::Cloud))
    }

    /// Records `scope` relative to `l`; a zone-level scope on a placement without a zone widens
    /// to the region.
    pub fn block_scope(&mut self, l: &Launchable, scope: BlockScope) -> String {
        let cloud = l.cloud;
        let region = l.region.clone();
        let instance_type = l.instance_type.clone();
        let entry = match (scope, &l.zone) {
            (BlockScope::Zone, Some(zone)) => Blocked::Zone {
                cloud,
                region,
                zone: zone.clone(),
            },
            (BlockScope::Zone | BlockScope::Region, _) => Blocked::Region { cloud, region },
            (BlockScope::InstanceTypeInZone, Some(zone)) => Blocked::InstanceType {
                cloud,
                instance_type,
                region: Some(region),
                zone: Some(zone.clone()),
            },
            (BlockScope::InstanceTypeInZone | BlockScope::InstanceTypeInRegion, _) => {
                Blocked::InstanceType {
                    cloud,
                    instance_type,
                    region: Some(region),
                    zone: None,
                }
            }
            (BlockScope::InstanceType, _) => Blocked::InstanceType {
                cloud,
                instance_type,
                region: None,
                zone: None,
            },
            // A global accelerator quota says nothing about CPU-only offers.
            (BlockScope::Accelerators, _) if l.accelerators.is_some() => {
                Blocked::Accelerators(cloud)
            }
            (BlockScope::Accelerators, _) => Blocked::Region { cloud, region },
            (BlockScope::Cloud, _) => Blocked::Cloud(cloud),
        };
        let words = entry.to_string();
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
        words
    }

    /// Forgets zone and region blocks (capacity comes back); keeps cloud, instance-type-wide and
    /// global-quota blocks, which waiting does not fix.
    fn forget_transient(&mut self) {
        self.entries.retain(|b| !b.is_local());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverOptions {
    /// After every candidate failed, wait and go round again instead of giving up.
    pub retry_until_up: bool,
    pub retry_gap: Duration,
    /// Bound on rounds with `retry_until_up` (`None`: until it works or nothing is left to try).
    pub max_rounds: Option<u32>,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        FailoverOptions {
            retry_until_up: false,
            retry_gap: Duration::from_secs(30),
            max_rounds: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FailoverError {
    #[error("no candidate to try")]
    NoCandidates,
    #[error("every candidate failed ({} attempts): {}", attempts.len(), summary(attempts))]
    Exhausted { attempts: Vec<Attempt> },
    #[error("launch aborted at {where_}: {error}")]
    Fatal {
        where_: String,
        error: ProvisionError,
        attempts: Vec<Attempt>,
    },
    /// The caller cancelled; nothing this call created is left (a failed cleanup is `Fatal`).
    #[error("cancelled after {} attempts", attempts.len())]
    Cancelled { attempts: Vec<Attempt> },
}

impl FailoverError {
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            FailoverError::NoCandidates => &[],
            FailoverError::Exhausted { attempts }
            | FailoverError::Fatal { attempts, .. }
            | FailoverError::Cancelled { attempts } => attempts,
        }
    }
}

fn summary(attempts: &[Attempt]) -> String {
    let parts: Vec<String> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            AttemptOutcome::Failed { kind, .. } => Some(format!(
                "{}/{}{} {}",
                a.cloud.as_str(),
                a.region,
                a.zone
                    .as_deref()
                    .map(|z| format!("/{z}"))
                    .unwrap_or_default(),
                kind.as_str()
            )),
            AttemptOutcome::Succeeded => None,
        })
        .collect();
    parts.join(", ")
}

/// Provisions `num_nodes` for `cluster_name` on the first candidate (best first) that works.
pub async fn provision(
    registry: &Registry,
    cluster_name: &str,
    num_nodes: u32,
    candidates: &[Launchable],
    blocklist: &mut Blocklist,
    options: FailoverOptions,
    sink: &dyn EventSink,
) -> Result<(Launchable, ClusterInfo), FailoverError> {
    let never = CancellationToken::new();
    provision_cancellable(
        registry,
        cluster_name,
        num_nodes,
        candidates,
        blocklist,
        options,
        sink,
        &default_settings,
        &|_: &LaunchAttempt| Ok(()),
        &never,
    )
    .await
}

/// What [`provision`] gives every candidate: the clouds' default disk, ports and image.
fn default_settings(_: &Launchable) -> NodeSettings {
    NodeSettings::default()
}

/// [`provision`] that stops once `cancel` fires: before the next attempt, during the retry wait,
/// or while the current attempt's nodes boot (they are terminated first).
#[allow(clippy::too_many_arguments)]
pub async fn provision_cancellable(
    registry: &Registry,
    cluster_name: &str,
    num_nodes: u32,
    candidates: &[Launchable],
    blocklist: &mut Blocklist,
    options: FailoverOptions,
    sink: &dyn EventSink,
    settings: SettingsFor<'_>,
    record_attempt: RecordAttempt<'_>,
    cancel: &CancellationToken,
) -> Result<(Launchable, ClusterInfo), FailoverError> {
    if candidates.is_empty() {
        return Err(FailoverError::NoCandidates);
    }
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut round = 1u32;
    loop {
        let mut tried_any = false;
        for cand in candidates {
            if cancel.is_cancelled() {
                return Err(FailoverError::Cancelled { attempts });
            }
            if blocklist.reason(cand).is_some() {
                continue;
            }
            let Some(provider) = registry.get(cand.cloud) else {
                // The optimizer offered a cloud this build has no provider for.
                let blocked = blocklist.block(cand, ProvisionErrorKind::Auth);
                let attempt = attempt(
                    &attempts,
                    cand,
                    AttemptOutcome::Failed {
                        kind: ProvisionErrorKind::Auth,
                        message: "no provider for this cloud in this build".into(),
                        blocked,
                        cleaned_up: false,
                    },
                );
                sink.emit(Event::FailoverAttempt(attempt.clone()));
                attempts.push(attempt);
                continue;
            };
            tried_any = true;
            // The launch id reaches the record before the create call (see the module docs of
            // `provision::owner`); without it nothing may be created.
            let recorded = owner::new_launch_id().and_then(|launch_id| {
                record_attempt(&LaunchAttempt {
                    launch_id: launch_id.clone(),
                    cloud: cand.cloud,
                    region: cand.region.clone(),
                    zone: cand.zone.clone(),
                })
                .map(|()| launch_id)
            });
            let launch_id = match recorded {
                Ok(id) => id,
                Err(error) => {
                    return Err(FailoverError::Fatal {
                        where_: place(cand),
                        error,
                        attempts,
                    });
                }
            };
            let req = ProvisionRequest {
                cluster_name: cluster_name.to_owned(),
                num_nodes,
                launchable: cand.clone(),
                resume_stopped: false,
                settings: settings(cand),
                launch_id,
            };
            let result = match provider.run_instances(&req).await {
                // Waiting only polls, so it may be dropped; the nodes it waits for are then
                // terminated below like a failed attempt's.
                Ok(()) => tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    r = provider.wait_instances(cluster_name) => Some(r),
                },
                Err(e) => Some(Err(e)),
            };
            let Some(result) = result else {
                sink.emit(Event::Note {
                    message: format!(
                        "cancelled: terminating what was being created at {}",
                        place(cand)
                    ),
                });
                return match provider.terminate(cluster_name).await {
                    Ok(()) => Err(FailoverError::Cancelled { attempts }),
                    Err(e) => Err(FailoverError::Fatal {
                        where_: place(cand),
                        error: ProvisionError::fatal(format!(
                            "cancelled; then cleaning up failed, nodes may be left behind (run `sky down {cluster_name}`): {}",
                            e.message
                        )),
                        attempts,
                    }),
                };
            };
            let error = match result {
                Ok(info) => {
                    let a = attempt(&attempts, cand, AttemptOutcome::Succeeded);
                    sink.emit(Event::FailoverAttempt(a));
                    return Ok((cand.clone(), info));
                }
                Err(e) => e,
            };
            // Whatever the attempt created must go before we move on, or it leaks (and bills).
            let cleanup = provider.terminate(cluster_name).await;
            let fatal = error.kind == ProvisionErrorKind::Fatal || cleanup.is_err();
            let blocked = if fatal {
                "everything (aborting)".to_owned()
            } else {
                blocklist.block_error(cand, &error)
            };
            let a = attempt(
                &attempts,
                cand,
                AttemptOutcome::Failed {
                    kind: error.kind,
                    message: error.message.clone(),
                    blocked,
                    cleaned_up: cleanup.is_ok(),
                },
            );
            sink.emit(Event::FailoverAttempt(a.clone()));
            attempts.push(a);
            if let Err(cleanup_error) = cleanup {
                return Err(FailoverError::Fatal {
                    where_: place(cand),
                    error: ProvisionError::fatal(format!(
                        "{}; then cleaning up failed, nodes may be left behind (run `sky down {cluster_name}`): {}",
                        error.message, cleanup_error.message
                    )),
                    attempts,
                });
            }
            if error.kind == ProvisionErrorKind::Fatal {
                return Err(FailoverError::Fatal {
                    where_: place(cand),
                    error,
                    attempts,
                });
            }
        }
        let exhausted = || FailoverError::Exhausted {
            attempts: attempts.clone(),
        };
        if !options.retry_until_up || !tried_any || options.max_rounds.is_some_and(|m| round >= m) {
            return Err(exhausted());
        }
        blocklist.forget_transient();
        if candidates.iter().all(|c| blocklist.reason(c).is_some()) {
            return Err(exhausted());
        }
        round += 1;
        sink.emit(Event::RetryRound {
            round,
            wait_secs: options.retry_gap.as_secs(),
        });
        tokio::select! {
            () = cancel.cancelled() => return Err(FailoverError::Cancelled { attempts }),
            () = tokio::time::sleep(options.retry_gap) => {}
        }
    }
}

fn place(l: &Launchable) -> String {
    match &l.zone {
        Some(z) => format!("{}/{}/{}", l.cloud.as_str(), l.region, z),
        None => format!("{}/{}", l.cloud.as_str(), l.region),
    }
}

fn attempt(previous: &[Attempt], l: &Launchable, outcome: AttemptOutcome) -> Attempt {
    Attempt {
        number: u32::try_from(previous.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1),
        cloud: l.cloud,
        region: l.region.clone(),
        zone: l.zone.clone(),
        instance_type: l.instance_type.clone(),
        use_spot: l.use_spot,
        outcome,
    }
}

#[cfg(test)]
mod tests;
