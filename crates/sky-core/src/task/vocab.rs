//! The names a task may use: clouds' regions, zones, instance types and accelerators.
//!
//! The parser validates and canonicalises names against a [`Vocabulary`] so that a typo is caught
//! with a "did you mean" at parse time rather than as an empty plan. The price [`Catalog`]
//! implements it; [`StaticVocabulary`] is a hand-made one for tests and for callers without a
//! catalog.
//!
//! What this module does not do: decide feasibility. Whether an accelerator is offered in a
//! region, or at what price, is the optimizer's question.

use std::collections::BTreeSet;

use crate::catalog::Catalog;
use crate::cloud::CloudId;

/// Lookups the task parser needs. Every list is per cloud; clouds without data return empty lists.
pub trait Vocabulary {
    /// Clouds this vocabulary has names for.
    fn clouds(&self) -> Vec<CloudId>;
    fn regions(&self, cloud: CloudId) -> Vec<&str>;
    /// `(zone, region)` pairs.
    fn zones(&self, cloud: CloudId) -> Vec<(&str, &str)>;
    fn instance_types(&self, cloud: CloudId) -> Vec<&str>;
    /// vCPUs and memory (GiB) of an instance type.
    fn instance_shape(&self, cloud: CloudId, instance_type: &str) -> Option<(f64, f64)>;
    /// Canonical accelerator names offered on `cloud`, with the memory of one device where known.
    fn accelerators(&self, cloud: CloudId) -> Vec<(&str, Option<f64>)>;

    /// Every canonical accelerator spelling, including ones no cloud here offers (SkyPilot's
    /// `common/accelerators.csv`): `a100-80gb` canonicalises even where it cannot run, so the
    /// optimizer can say why. Defaults to the offered ones.
    fn canonical_accelerators(&self) -> Vec<String>
    where
        Self: Sized,
    {
        all_accelerators(self)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// A vocabulary written out by hand.
#[derive(Debug, Clone, Default)]
pub struct StaticVocabulary {
    pub clouds: Vec<CloudWords>,
}

/// One cloud's names in a [`StaticVocabulary`].
#[derive(Debug, Clone)]
pub struct CloudWords {
    pub cloud: CloudId,
    pub regions: Vec<String>,
    /// `(zone, region)`.
    pub zones: Vec<(String, String)>,
    /// `(name, vcpus, memory_gib)`.
    pub instance_types: Vec<(String, f64, f64)>,
    /// `(canonical name, memory_gib)`.
    pub accelerators: Vec<(String, Option<f64>)>,
}

impl StaticVocabulary {
    fn cloud(&self, cloud: CloudId) -> Option<&CloudWords> {
        self.clouds.iter().find(|c| c.cloud == cloud)
    }
}

impl Vocabulary for StaticVocabulary {
    fn clouds(&self) -> Vec<CloudId> {
        self.clouds.iter().map(|c| c.cloud).collect()
    }

    fn regions(&self, cloud: CloudId) -> Vec<&str> {
        self.cloud(cloud)
            .map(|c| c.regions.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn zones(&self, cloud: CloudId) -> Vec<(&str, &str)> {
        self.cloud(cloud)
            .map(|c| {
                c.zones
                    .iter()
                    .map(|(z, r)| (z.as_str(), r.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn instance_types(&self, cloud: CloudId) -> Vec<&str> {
        self.cloud(cloud)
            .map(|c| {
                c.instance_types
                    .iter()
                    .map(|(n, _, _)| n.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn instance_shape(&self, cloud: CloudId, instance_type: &str) -> Option<(f64, f64)> {
        let words = self.cloud(cloud)?;
        words
            .instance_types
            .iter()
            .find(|(n, _, _)| n == instance_type)
            .map(|(_, c, m)| (*c, *m))
    }

    fn accelerators(&self, cloud: CloudId) -> Vec<(&str, Option<f64>)> {
        self.cloud(cloud)
            .map(|c| {
                c.accelerators
                    .iter()
                    .map(|(n, m)| (n.as_str(), *m))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Vocabulary for Catalog {
    fn clouds(&self) -> Vec<CloudId> {
        self.clouds.iter().map(|c| c.cloud).collect()
    }

    fn regions(&self, cloud: CloudId) -> Vec<&str> {
        self.cloud(cloud)
            .map(|c| c.regions.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn zones(&self, cloud: CloudId) -> Vec<(&str, &str)> {
        let Some(c) = self.cloud(cloud) else {
            return Vec::new();
        };
        c.zones
            .iter()
            .filter_map(|z| {
                let region = c.regions.get(usize::try_from(z.region).ok()?)?;
                Some((z.name.as_str(), region.as_str()))
            })
            .collect()
    }

    fn instance_types(&self, cloud: CloudId) -> Vec<&str> {
        self.cloud(cloud)
            .map(|c| c.instance_types.iter().map(|t| t.name.as_str()).collect())
            .unwrap_or_default()
    }

    fn instance_shape(&self, cloud: CloudId, instance_type: &str) -> Option<(f64, f64)> {
        let c = self.cloud(cloud)?;
        c.instance_types
            .iter()
            .find(|t| t.name == instance_type)
            .map(|t| (t.vcpus, t.memory_gib))
    }

    fn accelerators(&self, cloud: CloudId) -> Vec<(&str, Option<f64>)> {
        let Some(c) = self.cloud(cloud) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let infos = c
            .instance_types
            .iter()
            .filter_map(|t| t.accelerator.as_ref())
            .chain(c.attachable_accelerators.iter().map(|a| &a.accelerator));
        for info in infos {
            if seen.insert(info.name.as_str()) {
                out.push((info.name.as_str(), info.memory_gib));
            }
        }
        out
    }

    fn canonical_accelerators(&self) -> Vec<String> {
        let mut names: Vec<String> = self.accelerator_names.clone();
        for (name, _) in all_accelerators(self) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// Every accelerator name across the vocabulary's clouds, deduplicated, in first-seen order.
pub(crate) fn all_accelerators(vocab: &impl Vocabulary) -> Vec<(String, Option<f64>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for cloud in vocab.clouds() {
        for (name, memory) in vocab.accelerators(cloud) {
            if seen.insert(name.to_owned()) {
                out.push((name.to_owned(), memory));
            }
        }
    }
    out
}
