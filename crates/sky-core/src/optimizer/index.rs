//! Lookup tables over a loaded catalog, built once so that each query touches only the offers
//! it can use (instance types by name, by accelerator, by default family; offers by type).
//!
//! What this module does not do: decide anything. It answers "which rows" questions quickly.

use std::collections::HashMap;

use crate::catalog::{Catalog, CloudCatalog, InstanceType};
use crate::cloud::CloudId;

use super::profile::{self, CloudProfile};

/// Indexes over every priced cloud of a catalog. Borrowing the catalog keeps building cheap.
#[derive(Debug)]
pub struct CatalogIndex<'c> {
    clouds: Vec<CloudIndex<'c>>,
}

impl<'c> CatalogIndex<'c> {
    pub fn new(catalog: &'c Catalog) -> Self {
        let clouds = catalog
            .clouds
            .iter()
            .filter_map(|c| profile::profile(c.cloud).map(|p| CloudIndex::new(c, p)))
            .collect();
        CatalogIndex { clouds }
    }

    pub(crate) fn cloud(&self, cloud: CloudId) -> Option<&CloudIndex<'c>> {
        self.clouds.iter().find(|c| c.catalog.cloud == cloud)
    }
}

#[derive(Debug)]
pub(crate) struct CloudIndex<'c> {
    pub catalog: &'c CloudCatalog,
    pub profile: &'static CloudProfile,
    type_by_name: HashMap<&'c str, u32>,
    /// Offer indices per instance type, in catalog order.
    pub offers_by_type: Vec<Vec<u32>>,
    /// Instance types carrying an accelerator, by lowercase accelerator name.
    types_by_accelerator: HashMap<String, Vec<u32>>,
    /// Attachable accelerator offers by lowercase name.
    attachable_by_name: HashMap<String, Vec<u32>>,
    pub default_types: Vec<u32>,
    pub host_types: Vec<u32>,
    region_by_lower: HashMap<String, u32>,
    zone_by_lower: HashMap<String, u32>,
}

impl<'c> CloudIndex<'c> {
    fn new(catalog: &'c CloudCatalog, profile: &'static CloudProfile) -> Self {
        let mut offers_by_type = vec![Vec::new(); catalog.instance_types.len()];
        for (i, offer) in catalog.offers.iter().enumerate() {
            if let Some(list) = offers_by_type.get_mut(offer.instance_type as usize) {
                list.push(i as u32);
            }
        }
        let mut type_by_name = HashMap::with_capacity(catalog.instance_types.len());
        let mut types_by_accelerator: HashMap<String, Vec<u32>> = HashMap::new();
        let mut default_types = Vec::new();
        let mut host_types = Vec::new();
        for (i, it) in catalog.instance_types.iter().enumerate() {
            let i = i as u32;
            type_by_name.entry(it.name.as_str()).or_insert(i);
            if let Some(acc) = &it.accelerator {
                types_by_accelerator
                    .entry(acc.name.to_ascii_lowercase())
                    .or_default()
                    .push(i);
            }
            if profile.default_families.matches(&it.name) {
                default_types.push(i);
            }
            if profile
                .attach
                .is_some_and(|a| a.host_families.matches(&it.name))
            {
                host_types.push(i);
            }
        }
        let mut attachable_by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, a) in catalog.attachable_accelerators.iter().enumerate() {
            attachable_by_name
                .entry(a.accelerator.name.to_ascii_lowercase())
                .or_default()
                .push(i as u32);
        }
        let region_by_lower = catalog
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.to_ascii_lowercase(), i as u32))
            .collect();
        let zone_by_lower = catalog
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| (z.name.to_ascii_lowercase(), i as u32))
            .collect();
        CloudIndex {
            catalog,
            profile,
            type_by_name,
            offers_by_type,
            types_by_accelerator,
            attachable_by_name,
            default_types,
            host_types,
            region_by_lower,
            zone_by_lower,
        }
    }

    pub fn instance_type_id(&self, name: &str) -> Option<u32> {
        self.type_by_name.get(name).copied()
    }

    pub fn instance_type(&self, id: u32) -> &'c InstanceType {
        &self.catalog.instance_types[id as usize]
    }

    pub fn types_with_accelerator(&self, name: &str) -> &[u32] {
        self.types_by_accelerator
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn attachable_named(&self, name: &str) -> &[u32] {
        self.attachable_by_name
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn region_id(&self, name: &str) -> Option<u32> {
        self.region_by_lower
            .get(&name.to_ascii_lowercase())
            .copied()
    }

    pub fn zone_id(&self, name: &str) -> Option<u32> {
        self.zone_by_lower.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn region_name(&self, id: u32) -> &'c str {
        &self.catalog.regions[id as usize]
    }

    pub fn zone_name(&self, id: u32) -> &'c str {
        &self.catalog.zones[id as usize].name
    }

    pub fn zone_region(&self, id: u32) -> u32 {
        self.catalog.zones[id as usize].region
    }
}
