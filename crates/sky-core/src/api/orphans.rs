//! Orphans: clusters a provider finds tagged as Sky's that the state database does not know, e.g.
//! nodes of a launch whose `sky` was killed before it recorded them in a since-wiped Sky home, or
//! of a record deleted by hand. `sky status --refresh` lists them; `sky down --orphan NAME`
//! terminates one. Also `verify_clouds`, the authenticated `sky check`.
//!
//! What this module does not do: adopt an orphan into the database (a provider's listing does not
//! say which instance type and price the nodes have, so a record would be a guess), or decide that
//! an orphan is safe to delete: Sky on another machine with the same account also shows up here,
//! so termination is only ever on the user's explicit request.

use serde::Serialize;

use super::views::CloudCheckView;
use super::{Sky, SkyError};
use crate::cloud::CloudId;
use crate::events::{Event, EventSink};
use crate::provision::ProvisionError;

/// One cluster found in a cloud but not in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanView {
    pub cloud: CloudId,
    pub name: String,
    pub instance_ids: Vec<String>,
    /// The head's public address, else its private one.
    pub head_ip: Option<String>,
}

impl Sky {
    /// Clusters each allowed provider lists that have no record here, asked concurrently.
    /// A provider that fails to list is reported as an error naming its cloud.
    pub async fn orphans(&self) -> Result<Vec<OrphanView>, SkyError> {
        let known: std::collections::HashSet<String> =
            self.db()?.list()?.into_iter().map(|r| r.name).collect();
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
            for (name, nodes) in listed {
                if known.contains(&name) {
                    continue;
                }
                out.push(OrphanView {
                    cloud,
                    head_ip: nodes.first().map(|n| {
                        n.external_ip
                            .clone()
                            .unwrap_or_else(|| n.internal_ip.clone())
                    }),
                    instance_ids: nodes.into_iter().map(|n| n.instance_id).collect(),
                    name,
                });
            }
        }
        out.sort_by(|a, b| (a.cloud.as_str(), &a.name).cmp(&(b.cloud.as_str(), &b.name)));
        Ok(out)
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
