//! Where a real launch may go: the ranked placements across every provider that can take the
//! task now, for `launch` (and its preview) to hand to failover.
//!
//! Two sources are merged. Priced clouds (those with a catalog) are ranked by the optimizer over
//! the clouds whose provider is configured now; machines Sky does not price (this machine, SSH node
//! pools) are offered by their providers. Free machines would win every price comparison, so they
//! are used only when the task names their cloud, or when no priced cloud is configured at all:
//! a user with AWS credentials asking for `cpus: 4` gets an AWS VM, not their laptop. What this
//! module does not do: pick among the placements (failover walks them in order) or show the
//! all-cloud comparison that `--dryrun` prints (that ignores credentials on purpose).

use crate::catalog::Catalog;
use crate::cloud::CloudId;
use crate::optimizer::{self, Blocklist, Candidate, Target, TaskRequest};
use crate::provision::Launchable;
use crate::resources::ChoiceKind;
use crate::task::Task;

use super::{Sky, SkyError};

/// SkyPilot's tie-breaking order between priced clouds; the optimizer keeps it for equal prices.
const PRICED_ORDER: [CloudId; 3] = [CloudId::Aws, CloudId::Gcp, CloudId::Azure];

impl Sky {
    /// Every placement that can run `task` now, best first (see the module docs for the rules).
    pub fn candidates(&self, task: &Task) -> Result<Vec<Launchable>, SkyError> {
        let mut misfits = Vec::new();
        let offers = self.offers(task, &mut misfits);
        let priced_clouds = self.configured_priced_clouds();
        let pins_unpriced = task.resources.options.iter().any(|o| {
            o.placement
                .cloud
                .is_some_and(|c| !CloudId::PRICED.contains(&c))
        });
        let priced = if priced_clouds.is_empty() {
            Vec::new()
        } else {
            match self.ranked_from_catalog(task, &priced_clouds) {
                Ok(list) => list,
                Err(why) => {
                    misfits.push(why);
                    Vec::new()
                }
            }
        };
        let out = if pins_unpriced || priced_clouds.is_empty() {
            let mut out = offers;
            out.extend(priced);
            out
        } else {
            priced
        };
        // Placements the catalog prices but the provider cannot create (GCP's TPU VMs) are left
        // out, and say why if nothing else is left.
        let out: Vec<Launchable> = out
            .into_iter()
            .filter(
                |l| match self.registry.get(l.cloud).map(|p| p.can_create(l)) {
                    Some(Err(why)) => {
                        let line = format!("{} {}: {why}", l.cloud, l.instance_type);
                        if !misfits.contains(&line) {
                            misfits.push(line);
                        }
                        false
                    }
                    _ => true,
                },
            )
            .collect();
        if out.is_empty() {
            // A cloud the task asks for by name gets its reason (an expired login says which
            // command renews it); the others are listed.
            let pinned: Vec<CloudId> = task
                .resources
                .options
                .iter()
                .filter_map(|o| o.placement.cloud)
                .collect();
            let mut disabled = Vec::new();
            for c in self.check().into_iter().filter(|c| !c.enabled) {
                if pinned.contains(&c.cloud) {
                    misfits.push(format!("{}: not enabled: {}", c.cloud, c.reason));
                } else {
                    disabled.push(c.cloud.to_string());
                }
            }
            if !disabled.is_empty() {
                misfits.push(format!(
                    "{}: not enabled (see `sky check`)",
                    disabled.join(", ")
                ));
            }
            return Err(SkyError::NoFeasibleResources(format!(
                "no enabled cloud can run this task: {}",
                misfits.join("; ")
            )));
        }
        Ok(out)
    }

    /// Placements providers offer outside the catalog (this machine, SSH node pools).
    fn offers(&self, task: &Task, misfits: &mut Vec<String>) -> Vec<Launchable> {
        let mut out: Vec<Launchable> = Vec::new();
        for provider in self.registry.providers() {
            let cloud = provider.cloud();
            if !self.options.allowed_clouds.contains(&cloud) || !provider.check().enabled {
                continue;
            }
            for option in &task.resources.options {
                match provider.offer(option, task.num_nodes) {
                    Some(Ok(l)) if !out.contains(&l) => out.push(l),
                    Some(Ok(_)) | None => {}
                    Some(Err(why)) => misfits.push(format!("{cloud}: {why}")),
                }
            }
        }
        if task.resources.kind == ChoiceKind::AnyOf {
            out.sort_by(|a, b| a.hourly_price.total_cmp(&b.hourly_price));
        }
        out
    }

    /// Priced clouds that are allowed and whose provider is configured, in tie-breaking order.
    fn configured_priced_clouds(&self) -> Vec<CloudId> {
        PRICED_ORDER
            .into_iter()
            .filter(|c| self.options.allowed_clouds.contains(c))
            .filter(|c| self.registry.get(*c).is_some_and(|p| p.check().enabled))
            .collect()
    }

    /// The optimizer's full ranking over `clouds`, as launchable placements.
    fn ranked_from_catalog(
        &self,
        task: &Task,
        clouds: &[CloudId],
    ) -> Result<Vec<Launchable>, String> {
        let catalog = Catalog::load(&self.paths.sky_home()).map_err(|e| e.to_string())?;
        let request = TaskRequest::from(task);
        let plan = optimizer::optimize(
            &catalog,
            std::slice::from_ref(&request),
            clouds,
            &Blocklist::default(),
            Target::Cost,
        )
        .map_err(|e| e.to_string())?;
        Ok(plan
            .tasks
            .into_iter()
            .next()
            .map(|t| t.candidates.into_iter().map(launchable).collect())
            .unwrap_or_default())
    }
}

pub(super) fn launchable(c: Candidate) -> Launchable {
    Launchable::from(c)
}

impl From<Candidate> for Launchable {
    /// What a provider is asked to create for one of the optimizer's candidates.
    fn from(c: Candidate) -> Launchable {
        Launchable {
            cloud: c.cloud,
            region: c.region,
            zone: c.zone,
            instance_type: c.instance_type,
            use_spot: c.use_spot,
            vcpus: c.vcpus.unwrap_or(0.0),
            memory_gib: c.memory_gib.unwrap_or(0.0),
            accelerators: c.accelerators,
            hourly_price: c.hourly_price,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::Paths;
    use crate::error::ErrorCode;
    use crate::provision::Registry;
    use crate::testing::FakeCloud;

    fn sky_with(home: &std::path::Path, providers: Vec<FakeCloud>) -> Sky {
        let registry = providers
            .into_iter()
            .fold(Registry::new(), |r, p| r.with(Arc::new(p)));
        Sky::open(
            Paths::with_home(home),
            registry,
            Arc::new(SystemClock),
            super::super::SkyOptions::default(),
        )
        .expect("sky")
    }

    fn task(yaml: &str) -> Task {
        let vocab = crate::task::StaticVocabulary::default();
        crate::task::parse_chain(yaml, "task.yaml", &vocab)
            .expect("task")
            .remove(0)
    }

    #[test]
    fn a_configured_priced_cloud_is_ranked_from_the_catalog_cheapest_first() {
        let home = tempfile::tempdir().expect("tmp");
        let sky = sky_with(
            home.path(),
            vec![
                FakeCloud::new(CloudId::Aws),
                FakeCloud::disabled(CloudId::Gcp),
            ],
        );
        let got = sky
            .candidates(&task("resources:\n  cpus: 4+\nrun: echo hi\n"))
            .expect("candidates");
        // One instance type in every region that has it (the optimizer's choice per cloud).
        assert!(got.len() >= 2, "{} placements", got.len());
        assert!(
            got.iter()
                .all(|l| l.cloud == CloudId::Aws && l.vcpus >= 4.0)
        );
        assert!(
            got.windows(2)
                .all(|w| w[0].hourly_price <= w[1].hourly_price + 1e-9),
            "not ranked by price"
        );
    }

    #[test]
    fn with_no_provider_configured_the_error_names_the_disabled_clouds() {
        let home = tempfile::tempdir().expect("tmp");
        let sky = sky_with(home.path(), vec![FakeCloud::disabled(CloudId::Aws)]);
        let err = sky
            .candidates(&task("run: echo hi\n"))
            .expect_err("nothing enabled");
        assert_eq!(err.code(), ErrorCode::NoFeasibleResources);
        assert!(err.to_string().contains("AWS"), "{err}");
    }

    #[test]
    fn a_task_the_configured_clouds_cannot_fit_says_why() {
        let home = tempfile::tempdir().expect("tmp");
        let sky = sky_with(home.path(), vec![FakeCloud::new(CloudId::Aws)]);
        let err = sky
            .candidates(&task("resources:\n  infra: gcp\nrun: echo hi\n"))
            .expect_err("gcp is not configured");
        assert_eq!(err.code(), ErrorCode::NoFeasibleResources);
        assert!(
            err.to_string().contains("GCP") || err.to_string().contains("gcp"),
            "{err}"
        );
    }
}
