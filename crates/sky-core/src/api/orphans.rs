//! Orphans: clusters a provider finds tagged as Sky's that the state database does not know, e.g.
//! nodes of a launch whose `sky` was killed before it recorded them in a since-wiped Sky home, or
//! of a record deleted by hand. `sky status --refresh` lists them; `sky adopt NAME` records one
//! (priced from the catalog by the instance type and region the cloud reports) so every other
//! command works on it; `sky down --orphan NAME` terminates one. Also `verify_clouds`, the
//! authenticated `sky check`.
//!
//! Ownership (see `provision::owner`): an orphan is a cluster carrying *this* home's owner id.
//! Clusters of other Sky homes in the same account are listed apart ([`Sky::foreign_clusters`]),
//! read-only: only `sky down --orphan NAME --owner OWNER_ID`, naming their owner, acts on one.
//! Resources without Sky's tags (SkyPilot's, anyone's) are never listed at all.
//!
//! What this module does not do: decide that an orphan is safe to delete or to adopt: both are
//! only ever done on the user's explicit request.

use serde::Serialize;

use super::views::CloudCheckView;
use super::{Sky, SkyError};
use crate::catalog::Catalog;
use crate::cloud::CloudId;
use crate::events::{Event, EventSink};
use crate::optimizer::{self, Blocklist, Target, TaskRequest};
use crate::provision::{
    CLUSTER_INFO_VERSION, ClusterInfo, FoundCluster, Launchable, ProvisionError,
};
use crate::resources::{ChoiceKind, Placement, ResourceChoice, Resources};

/// One cluster found in a cloud but not in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanView {
    pub cloud: CloudId,
    pub name: String,
    /// The owner id of the Sky home that created it: `None` for this home's own orphans.
    pub owner: Option<String>,
    pub instance_ids: Vec<String>,
    /// The head's public address, else its private one.
    pub head_ip: Option<String>,
    /// Where and what the nodes are, when the cloud's listing says (needed to adopt).
    pub region: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub use_spot: bool,
    /// Every node is stopped.
    pub stopped: bool,
}

impl OrphanView {
    fn of(cloud: CloudId, found: &FoundCluster) -> OrphanView {
        let p = found.placement.as_ref();
        OrphanView {
            cloud,
            name: found.name.clone(),
            owner: None,
            head_ip: found.nodes.first().map(|n| {
                n.external_ip
                    .clone()
                    .unwrap_or_else(|| n.internal_ip.clone())
            }),
            instance_ids: found.nodes.iter().map(|n| n.instance_id.clone()).collect(),
            region: p.map(|p| p.region.clone()),
            zone: p.and_then(|p| p.zone.clone()),
            instance_type: p.map(|p| p.instance_type.clone()),
            use_spot: p.is_some_and(|p| p.use_spot),
            stopped: p.is_some_and(|p| p.stopped),
        }
    }
}

impl Sky {
    /// This Sky home's owner id, which tags everything it creates in a cloud.
    pub fn owner_id(&self) -> Result<String, SkyError> {
        Ok(self.db()?.owner_id()?)
    }

    /// This home's clusters each allowed provider lists that have no record here, asked
    /// concurrently. A provider that fails to list is reported as an error naming its cloud.
    pub async fn orphans(&self) -> Result<Vec<OrphanView>, SkyError> {
        Ok(self
            .found_orphans()
            .await?
            .iter()
            .map(|(cloud, found)| OrphanView::of(*cloud, found))
            .collect())
    }

    /// Clusters other Sky homes created in the same accounts (each with its owner id), for
    /// showing only: acting on one needs [`Sky::terminate_foreign`] naming the owner.
    pub async fn foreign_clusters(&self) -> Result<Vec<OrphanView>, SkyError> {
        let own = self.owner_id()?;
        Ok(self
            .found_all()
            .await?
            .iter()
            .filter_map(|(cloud, found)| match &found.owner {
                Some(owner) if *owner != own => Some(OrphanView {
                    owner: Some(owner.clone()),
                    ..OrphanView::of(*cloud, found)
                }),
                _ => None,
            })
            .collect())
    }

    /// This home's orphans as the providers listed them, sorted by cloud and name: clusters
    /// carrying this home's owner id (or from a provider whose clusters are all this home's)
    /// that no record names.
    async fn found_orphans(&self) -> Result<Vec<(CloudId, FoundCluster)>, SkyError> {
        let own = self.owner_id()?;
        let known: std::collections::HashSet<String> =
            self.db()?.list()?.into_iter().map(|r| r.name).collect();
        Ok(self
            .found_all()
            .await?
            .into_iter()
            .filter(|(_, found)| found.owner.as_ref().is_none_or(|o| *o == own))
            .filter(|(_, found)| !known.contains(&found.name))
            .collect())
    }

    /// Every Sky-tagged cluster each allowed provider lists, whoever owns it.
    async fn found_all(&self) -> Result<Vec<(CloudId, FoundCluster)>, SkyError> {
        let mut set = tokio::task::JoinSet::new();
        for p in self.registry.providers() {
            if !self.options.allowed_clouds.contains(&p.cloud()) || !p.check().enabled {
                continue;
            }
            let p = p.clone();
            set.spawn(async move { (p.cloud(), p.list_clusters().await) });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (cloud, listed) = joined.map_err(|e| SkyError::Provider {
                cluster: "(orphan scan)".into(),
                source: ProvisionError::fatal(format!("listing task failed: {e}")),
            })?;
            let listed = listed.map_err(|source| SkyError::Provider {
                cluster: format!("(orphan scan on {})", cloud.display_name()),
                source,
            })?;
            out.extend(listed.into_iter().map(|found| (cloud, found)));
        }
        out.sort_by(|a, b| (a.0.as_str(), &a.1.name).cmp(&(b.0.as_str(), &b.1.name)));
        Ok(out)
    }

    /// `sky adopt NAME`: records the orphan `name` as a cluster of this Sky home, UP or STOPPED
    /// as the cloud reports it, priced from the catalog; from then on `status`, `exec`, `stop`,
    /// `down` and the cost report treat it like a cluster launched here (its agent is installed
    /// on first use). Refused when the name is known here, listed by more than one cloud, or the
    /// cloud does not say what the nodes are.
    pub async fn adopt_orphan(
        &self,
        name: &str,
        sink: &dyn EventSink,
    ) -> Result<crate::state::ClusterRecord, SkyError> {
        // An orphan's name comes from a cloud's tags, which anything can write: it becomes a
        // record only if it keeps the rule every launched name keeps.
        self.check_new_name(name)?;
        let _lock = self.lock(name, sink).await?;
        if let Some(rec) = self.db()?.get(name)? {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: "it is already a cluster of this Sky home; nothing to adopt".into(),
            });
        }
        let mut found: Vec<(CloudId, FoundCluster)> = self
            .found_orphans()
            .await?
            .into_iter()
            .filter(|(_, f)| f.name == name)
            .collect();
        let (cloud, cluster) = match found.len() {
            0 => return Err(SkyError::ClusterNotFound(name.into())),
            1 => found.remove(0),
            _ => {
                let clouds: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
                return Err(SkyError::InvalidRequest(format!(
                    "cannot adopt '{name}': clusters of that name exist on {}; terminate all but one with `sky down --orphan {name}` first",
                    clouds.join(" and ")
                )));
            }
        };
        let Some(placement) = cluster.placement.as_ref() else {
            return Err(SkyError::InvalidRequest(format!(
                "cannot adopt '{name}': {} does not say which instance type its nodes are, so Sky cannot price it; terminate it with `sky down --orphan {name}`",
                cloud.display_name()
            )));
        };
        let mut launchable = self.price_found(cloud, name, placement)?;
        launchable.zone = placement.zone.clone();
        let info = ClusterInfo {
            version: CLUSTER_INFO_VERSION,
            nodes: cluster.nodes.clone(),
        };
        let now = self.clock.now();
        let record = self.db()?.adopt(
            name,
            &launchable,
            &info,
            placement.stopped,
            &format!("sky adopt {name}"),
            now,
        )?;
        sink.emit(Event::Note {
            message: format!(
                "adopted '{name}': {} x {} on {} {} at ${:.4}/h per node, {}",
                info.nodes.len(),
                launchable.instance_type,
                cloud.display_name(),
                launchable.region,
                launchable.hourly_price,
                record.status.as_str()
            ),
        });
        Ok(record)
    }

    /// The catalog's offer for the instance type, region and pricing model a cloud reported.
    fn price_found(
        &self,
        cloud: CloudId,
        name: &str,
        placement: &crate::provision::FoundPlacement,
    ) -> Result<Launchable, SkyError> {
        let catalog = Catalog::load(&self.paths.sky_home())
            .map_err(|e| SkyError::InvalidRequest(e.to_string()))?;
        let resources = Resources {
            placement: Placement {
                cloud: Some(cloud),
                region: Some(placement.region.clone()),
                zone: None,
            },
            instance_type: Some(placement.instance_type.clone()),
            use_spot: placement.use_spot,
            ..Resources::default()
        };
        let request = TaskRequest::new(ResourceChoice {
            kind: ChoiceKind::AnyOf,
            options: vec![resources],
        });
        let plan = optimizer::optimize(
            &catalog,
            std::slice::from_ref(&request),
            &[cloud],
            &Blocklist::default(),
            Target::Cost,
        )
        .map_err(|e| {
            SkyError::NoFeasibleResources(format!(
                "cannot adopt '{name}': Sky's catalog has no {} price for {} in {}: {e}",
                if placement.use_spot {
                    "spot"
                } else {
                    "on-demand"
                },
                placement.instance_type,
                placement.region
            ))
        })?;
        plan.tasks
            .into_iter()
            .next()
            .and_then(|t| t.candidates.into_iter().next())
            .map(super::placement::launchable)
            .ok_or_else(|| {
                SkyError::NoFeasibleResources(format!(
                    "cannot adopt '{name}': Sky's catalog has no offer for {} in {}",
                    placement.instance_type, placement.region
                ))
            })
    }

    /// Terminates the orphan `name` wherever it is found. A cluster the database knows is refused
    /// (use `sky down NAME`); a name no provider lists is `ClusterNotFound`.
    pub async fn terminate_orphan(&self, name: &str, sink: &dyn EventSink) -> Result<(), SkyError> {
        let _lock = self.lock(name, sink).await?;
        if let Some(rec) = self.db()?.get(name)? {
            return Err(SkyError::WrongStatus {
                cluster: name.into(),
                status: rec.status,
                hint: format!("it is a known cluster, not an orphan; use `sky down {name}`"),
            });
        }
        let orphans = self.orphans().await?;
        let found: Vec<&OrphanView> = orphans.iter().filter(|o| o.name == name).collect();
        if found.is_empty() {
            return Err(SkyError::ClusterNotFound(name.into()));
        }
        for o in found {
            let Some(p) = self.registry.get(o.cloud) else {
                continue;
            };
            sink.emit(Event::Note {
                message: format!(
                    "terminating orphan '{name}' on {} ({} nodes)",
                    o.cloud.display_name(),
                    o.instance_ids.len()
                ),
            });
            p.terminate(name)
                .await
                .map_err(|source| SkyError::Provider {
                    cluster: name.into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// `sky down --orphan NAME --owner OWNER_ID`: terminates the cluster `name` that the Sky home
    /// `owner_id` created (listed by [`Sky::foreign_clusters`]), on every cloud listing it. The
    /// owner must be named because the cluster is not this home's to end.
    pub async fn terminate_foreign(
        &self,
        name: &str,
        owner_id: &str,
        sink: &dyn EventSink,
    ) -> Result<(), SkyError> {
        if !crate::provision::owner::is_valid_id(owner_id) {
            return Err(SkyError::InvalidRequest(format!(
                "'{owner_id}' is not an owner id (8-63 lowercase letters, digits, '-' or '_', as `sky status --refresh` lists them)"
            )));
        }
        if owner_id == self.owner_id()? {
            return Err(SkyError::InvalidRequest(format!(
                "{owner_id} is this Sky home's own owner id; use `sky down --orphan {name}`"
            )));
        }
        let found: Vec<OrphanView> = self
            .foreign_clusters()
            .await?
            .into_iter()
            .filter(|o| o.name == name && o.owner.as_deref() == Some(owner_id))
            .collect();
        if found.is_empty() {
            return Err(SkyError::ClusterNotFound(format!(
                "{name} (owner {owner_id})"
            )));
        }
        for o in found {
            let Some(p) = self.registry.get(o.cloud) else {
                continue;
            };
            sink.emit(Event::Note {
                message: format!(
                    "terminating '{name}' of Sky home {owner_id} on {} ({} nodes)",
                    o.cloud.display_name(),
                    o.instance_ids.len()
                ),
            });
            p.terminate_foreign(name, owner_id)
                .await
                .map_err(|source| SkyError::Provider {
                    cluster: name.into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// `sky check`: every provider's authenticated check ([`crate::provision::Provider::verify`]),
    /// all at once, in the order of [`CloudId::ALL`].
    pub async fn verify_clouds(&self) -> Vec<CloudCheckView> {
        let mut views = self.check();
        let mut set = tokio::task::JoinSet::new();
        for (i, v) in views.iter().enumerate() {
            let allowed = self.options.allowed_clouds.contains(&v.cloud);
            if let (true, Some(p)) = (allowed, self.registry.get(v.cloud)) {
                let p = p.clone();
                set.spawn(async move { (i, p.verify().await) });
            }
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, result)) => {
                    if let Some(v) = views.get_mut(i) {
                        v.enabled = result.enabled;
                        v.reason = result.reason;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a cloud check panicked"),
            }
        }
        views
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::Paths;
    use crate::events::RecordingSink;
    use crate::provision::{NodeState, Provider, ProvisionRequest, Registry};
    use crate::state::ClusterStatus;
    use crate::testing::{FakeCloud, launchable};

    struct World {
        _home: tempfile::TempDir,
        fake: Arc<FakeCloud>,
        sky: Sky,
    }

    fn world() -> World {
        let home = tempfile::tempdir().expect("tmp");
        let fake = Arc::new(FakeCloud::new(CloudId::Aws));
        let sky = Sky::open(
            Paths::with_home(home.path()),
            Registry::new().with(fake.clone()),
            Arc::new(SystemClock),
            super::super::SkyOptions::default(),
        )
        .expect("sky");
        World {
            _home: home,
            fake,
            sky,
        }
    }

    /// A cluster created in the cloud behind this Sky home's back (another machine, a wiped home).
    async fn create_behind_the_back(w: &World, name: &str, instance_type: &str) {
        let req = ProvisionRequest {
            cluster_name: name.into(),
            num_nodes: 2,
            launchable: launchable(
                CloudId::Aws,
                "us-east-1",
                Some("us-east-1b"),
                instance_type,
                0.0,
            ),
            resume_stopped: false,
            settings: Default::default(),
            launch_id: "behindtheback".into(),
        };
        w.fake.run_instances(&req).await.expect("run");
    }

    #[tokio::test]
    async fn an_adopted_orphan_is_a_priced_cluster_of_this_home() {
        let w = world();
        create_behind_the_back(&w, "found", "m6i.large").await;
        let orphans = w.sky.orphans().await.expect("orphans");
        assert_eq!(orphans.len(), 1, "{orphans:?}");
        assert_eq!(orphans[0].instance_type.as_deref(), Some("m6i.large"));
        assert_eq!(orphans[0].region.as_deref(), Some("us-east-1"));

        let sink = RecordingSink::default();
        let rec = w.sky.adopt_orphan("found", &sink).await.expect("adopt");
        assert_eq!(rec.status, ClusterStatus::Up);
        assert_eq!(rec.num_nodes, 2);
        let l = rec.launchable.expect("placement recorded");
        assert_eq!(
            (
                l.region.as_str(),
                l.zone.as_deref(),
                l.instance_type.as_str()
            ),
            ("us-east-1", Some("us-east-1b"), "m6i.large")
        );
        // The catalog's on-demand price, not the fake's zero.
        assert!(l.hourly_price > 0.01, "{}", l.hourly_price);
        assert!(w.sky.orphans().await.expect("orphans").is_empty());
        let billed = w.sky.db().expect("db").cost_records().expect("cost");
        assert_eq!(billed.len(), 1);
        assert!(billed[0].intervals[0].1.is_none(), "billing runs from now");
        assert!(
            w.sky
                .db()
                .expect("db")
                .events("found")
                .expect("events")
                .iter()
                .any(|e| e.kind == "adopted"),
        );

        let again = w.sky.adopt_orphan("found", &sink).await.expect_err("known");
        assert!(again.to_string().contains("already a cluster"), "{again}");
    }

    #[tokio::test]
    async fn a_stopped_orphan_arrives_stopped_and_unbilled() {
        let w = world();
        create_behind_the_back(&w, "idle", "m6i.large").await;
        w.fake.set_node_state("idle", NodeState::Stopped);
        let rec = w
            .sky
            .adopt_orphan("idle", &RecordingSink::default())
            .await
            .expect("adopt");
        assert_eq!(rec.status, ClusterStatus::Stopped);
        let billed = w.sky.db().expect("db").cost_records().expect("cost");
        assert!(billed[0].intervals.is_empty(), "{:?}", billed[0].intervals);
    }

    #[tokio::test]
    async fn an_orphan_the_catalog_cannot_price_is_refused_and_nothing_is_recorded() {
        let w = world();
        create_behind_the_back(&w, "odd", "m6i.nonexistent").await;
        let err = w
            .sky
            .adopt_orphan("odd", &RecordingSink::default())
            .await
            .expect_err("unpriced");
        let text = err.to_string();
        assert!(
            text.contains("m6i.nonexistent") && text.contains("us-east-1"),
            "{text}"
        );
        assert!(w.sky.db().expect("db").get("odd").expect("get").is_none());
        let missing = w
            .sky
            .adopt_orphan("nobody", &RecordingSink::default())
            .await
            .expect_err("not found");
        assert!(matches!(missing, SkyError::ClusterNotFound(_)), "{missing}");
    }
}
