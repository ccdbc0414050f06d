//! Lookups over the catalog: canonical accelerator spelling, regions, zones, instance types, and
//! "did you mean" suggestions for near misses.
//!
//! Names are matched case-insensitively, as SkyPilot does for accelerators (`a100` -> `A100`);
//! regions, zones and instance types are matched exactly first, then case-insensitively.
//!
//! What this module does not do: rank or price candidates (the optimizer does) or format output.

use std::collections::{BTreeMap, BTreeSet};

use crate::cloud::CloudId;

use super::{AcceleratorHostRule, Catalog, CloudCatalog, InstanceType, Offer};

/// Minimum Jaro-Winkler similarity (on lowercased names) for a suggestion. Chosen so that typos
/// (`A1000`, `us-east1`, `p3.2xlage`) are caught while unrelated names are not offered.
const SUGGESTION_THRESHOLD: f64 = 0.8;

/// The candidate most similar to `input`, if any is similar enough to be worth suggesting.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let needle = input.trim().to_lowercase();
    if needle.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&needle, &candidate.to_lowercase());
        // Strictly greater keeps the first of equally similar names, so results are stable.
        if score >= SUGGESTION_THRESHOLD && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, name)| name)
}

impl Catalog {
    /// Every accelerator name known: SkyPilot's common list plus every name any loaded cloud
    /// offers, sorted and de-duplicated.
    pub fn accelerator_names(&self) -> Vec<&str> {
        let mut names: BTreeSet<&str> = self.accelerator_names.iter().map(String::as_str).collect();
        for cloud in &self.clouds {
            names.extend(cloud.offered_accelerator_names());
        }
        names.into_iter().collect()
    }

    /// The catalog's spelling of an accelerator name, matched case-insensitively
    /// (`a100-80gb` -> `A100-80GB`). Names any cloud offers win over SkyPilot's common list.
    pub fn canonical_accelerator(&self, name: &str) -> Option<&str> {
        let name = name.trim();
        self.clouds
            .iter()
            .flat_map(|c| c.offered_accelerator_names())
            .chain(self.accelerator_names.iter().map(String::as_str))
            .find(|known| known.eq_ignore_ascii_case(name))
    }

    /// The closest known accelerator name, for "did you mean" in errors.
    pub fn suggest_accelerator(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.accelerator_names())
    }

    /// Clouds whose catalog has this region (exact name).
    pub fn clouds_with_region(&self, region: &str) -> Vec<CloudId> {
        self.clouds
            .iter()
            .filter(|c| c.region_index(region).is_some())
            .map(|c| c.cloud)
            .collect()
    }

    /// Clouds whose catalog has this instance type (exact name).
    pub fn clouds_with_instance_type(&self, name: &str) -> Vec<CloudId> {
        self.clouds
            .iter()
            .filter(|c| c.instance_type_index(name).is_some())
            .map(|c| c.cloud)
            .collect()
    }

    /// Only the given clouds (e.g. `allowed_clouds` from config), in their catalog order.
    pub fn restricted_to(&self, clouds: &[CloudId]) -> Catalog {
        Catalog {
            clouds: self
                .clouds
                .iter()
                .filter(|c| clouds.contains(&c.cloud))
                .cloned()
                .collect(),
            accelerator_names: self.accelerator_names.clone(),
        }
    }
}

impl CloudCatalog {
    /// Index into `regions` of a region name; exact match first, then case-insensitive.
    pub fn region_index(&self, name: &str) -> Option<u32> {
        position(self.regions.iter().map(String::as_str), name)
    }

    /// Index into `zones` of a zone name; exact match first, then case-insensitive.
    pub fn zone_index(&self, name: &str) -> Option<u32> {
        position(self.zones.iter().map(|z| z.name.as_str()), name)
    }

    /// Index into `instance_types`; exact match first, then case-insensitive.
    pub fn instance_type_index(&self, name: &str) -> Option<u32> {
        position(self.instance_types.iter().map(|t| t.name.as_str()), name)
    }

    pub fn instance_type(&self, name: &str) -> Option<&InstanceType> {
        self.instance_type_index(name)
            .map(|i| &self.instance_types[i as usize])
    }

    pub fn region_name(&self, index: u32) -> &str {
        &self.regions[index as usize]
    }

    pub fn zone_name(&self, index: u32) -> &str {
        &self.zones[index as usize].name
    }

    /// The region a zone belongs to.
    pub fn region_of_zone(&self, zone: &str) -> Option<&str> {
        self.zone_index(zone)
            .map(|z| self.region_name(self.zones[z as usize].region))
    }

    /// Zones of one region, in catalog order.
    pub fn zones_in_region(&self, region: &str) -> Vec<&str> {
        let Some(region) = self.region_index(region) else {
            return Vec::new();
        };
        self.zones
            .iter()
            .filter(|z| z.region == region)
            .map(|z| z.name.as_str())
            .collect()
    }

    /// All offers of one instance type.
    pub fn offers_of(&self, instance_type: u32) -> impl Iterator<Item = &Offer> {
        self.offers
            .iter()
            .filter(move |o| o.instance_type == instance_type)
    }

    pub fn suggest_region(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.regions.iter().map(String::as_str))
    }

    pub fn suggest_zone(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.zones.iter().map(|z| z.name.as_str()))
    }

    pub fn suggest_instance_type(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.instance_types.iter().map(|t| t.name.as_str()))
    }

    /// Accelerator names this cloud offers, on instance types or attachable.
    pub fn offered_accelerator_names(&self) -> impl Iterator<Item = &str> {
        self.instance_types
            .iter()
            .filter_map(|t| t.accelerator.as_ref())
            .chain(self.attachable_accelerators.iter().map(|a| &a.accelerator))
            .map(|a| a.name.as_str())
    }

    /// Accelerator name -> the counts one can get (instance types and attachable offers), sorted.
    pub fn accelerator_counts(&self) -> BTreeMap<&str, Vec<f64>> {
        let mut counts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let infos = self
            .instance_types
            .iter()
            .filter_map(|t| t.accelerator.as_ref())
            .chain(self.attachable_accelerators.iter().map(|a| &a.accelerator));
        for acc in infos {
            let list = counts.entry(acc.name.as_str()).or_default();
            if !list.contains(&acc.count) {
                list.push(acc.count);
            }
        }
        for list in counts.values_mut() {
            list.sort_by(f64::total_cmp);
        }
        counts
    }

    /// The host rule for `count` x `accelerator` (attachable accelerators): an exact name wins
    /// over a `prefix*` rule, which wins over the default (`accelerator: None`) rule.
    pub fn host_rule_for(&self, accelerator: &str, count: f64) -> Option<&AcceleratorHostRule> {
        let same_count = |r: &&AcceleratorHostRule| r.count == count;
        let exact = self
            .host_rules
            .iter()
            .filter(same_count)
            .find(|r| r.accelerator.as_deref() == Some(accelerator));
        let named = |r: &&AcceleratorHostRule| r.accelerator.as_deref() == Some(accelerator);
        // A name listed for other counts only is not served by the default rule (SkyPilot: A100
        // has its own table, so `A100:3` has no host at all).
        if exact.is_none() && self.host_rules.iter().any(|r| named(&r)) {
            return None;
        }
        exact
            .or_else(|| {
                self.host_rules.iter().find(|r| {
                    r.accelerator
                        .as_deref()
                        .and_then(|p| p.strip_suffix('*'))
                        .is_some_and(|prefix| accelerator.starts_with(prefix))
                })
            })
            .or_else(|| {
                self.host_rules
                    .iter()
                    .filter(same_count)
                    .find(|r| r.accelerator.is_none())
            })
    }

    /// Offers and instance-type counts, for `sky catalog`.
    pub fn stats(&self) -> CatalogStats {
        CatalogStats {
            instance_types: self.instance_types.len(),
            regions: self.regions.len(),
            zones: self.zones.len(),
            offers: self.offers.len(),
            attachable_accelerator_offers: self.attachable_accelerators.len(),
            images: self.images.len(),
        }
    }
}

/// Sizes of one cloud's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CatalogStats {
    pub instance_types: usize,
    pub regions: usize,
    pub zones: usize,
    pub offers: usize,
    pub attachable_accelerator_offers: usize,
    pub images: usize,
}

fn position<'a>(mut names: impl Iterator<Item = &'a str> + Clone, name: &str) -> Option<u32> {
    let name = name.trim();
    let index = names
        .clone()
        .position(|n| n == name)
        .or_else(|| names.position(|n| n.eq_ignore_ascii_case(name)))?;
    Some(u32::try_from(index).expect("fewer than 4 billion entries"))
}

#[cfg(test)]
mod tests;
