//! AWS's public EC2 price-list files: the offers index -> the EC2 region index -> one file per
//! region, of which we keep on-demand, Linux, shared-tenancy, no-preinstalled-software compute
//! instances (the prices SkyPilot's catalog carries).
//!
//! What this does not do: fetch (see `http`), or produce spot prices and zones, which the price
//! list does not have.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{FetchError, parse_err};
use crate::catalog::{CatalogSource, CloudCatalog, InstanceType, Offer};

/// Public host of the price-list files.
pub const PRICING_HOST: &str = "https://pricing.us-east-1.amazonaws.com";
/// The index of every service's offers.
pub const OFFERS_INDEX_PATH: &str = "/offers/v1.0/aws/index.json";

/// One instance type's on-demand Linux price in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct OnDemandPrice {
    pub instance_type: String,
    pub region: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub arch: String,
    pub price: f64,
}

/// The EC2 region index URL path from the offers index.
pub fn region_index_path(offers_index: &[u8]) -> Result<String, FetchError> {
    #[derive(Deserialize)]
    struct Index {
        offers: HashMap<String, OfferEntry>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OfferEntry {
        current_region_index_url: Option<String>,
    }
    let index: Index =
        serde_json::from_slice(offers_index).map_err(|e| parse_err("AWS offers index", e))?;
    index
        .offers
        .get("AmazonEC2")
        .and_then(|o| o.current_region_index_url.clone())
        .ok_or_else(|| parse_err("AWS offers index", "no AmazonEC2.currentRegionIndexUrl"))
}

/// `(region code, price file path)` pairs from the EC2 region index, sorted by region.
pub fn region_files(region_index: &[u8]) -> Result<Vec<(String, String)>, FetchError> {
    #[derive(Deserialize)]
    struct Index {
        regions: BTreeMap<String, RegionEntry>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RegionEntry {
        region_code: String,
        current_version_url: String,
    }
    let index: Index =
        serde_json::from_slice(region_index).map_err(|e| parse_err("AWS region index", e))?;
    Ok(index
        .regions
        .into_values()
        .map(|r| (r.region_code, r.current_version_url))
        .collect())
}

/// On-demand Linux shared-tenancy prices from one region's price file.
pub fn parse_region_file(body: &[u8]) -> Result<Vec<OnDemandPrice>, FetchError> {
    #[derive(Deserialize)]
    struct File {
        products: HashMap<String, Product>,
        terms: Terms,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Product {
        product_family: Option<String>,
        attributes: HashMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Terms {
        #[serde(rename = "OnDemand", default)]
        on_demand: HashMap<String, HashMap<String, Term>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Term {
        price_dimensions: HashMap<String, Dimension>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Dimension {
        unit: String,
        price_per_unit: HashMap<String, String>,
    }

    let file: File = serde_json::from_slice(body).map_err(|e| parse_err("AWS price file", e))?;
    let mut out = Vec::new();
    for (sku, product) in &file.products {
        let attr = |k: &str| product.attributes.get(k).map(String::as_str).unwrap_or("");
        let wanted = product.product_family.as_deref() == Some("Compute Instance")
            && attr("operatingSystem") == "Linux"
            && attr("tenancy") == "Shared"
            && attr("preInstalledSw") == "NA"
            && attr("capacitystatus") == "Used"
            && attr("licenseModel") == "No License required";
        if !wanted {
            continue;
        }
        let Some(price) = file
            .terms
            .on_demand
            .get(sku)
            .into_iter()
            .flat_map(|terms| terms.values())
            .flat_map(|t| t.price_dimensions.values())
            .find(|d| d.unit == "Hrs")
            .and_then(|d| d.price_per_unit.get("USD"))
        else {
            continue;
        };
        let what = format!("AWS product {sku}");
        let price: f64 = price.parse().map_err(|e| parse_err(&what, e))?;
        let vcpus: f64 = attr("vcpu").parse().map_err(|e| parse_err(&what, e))?;
        let memory_gib = parse_memory(attr("memory")).ok_or_else(|| {
            parse_err(&what, format!("memory '{}' is not 'N GiB'", attr("memory")))
        })?;
        out.push(OnDemandPrice {
            instance_type: attr("instanceType").to_owned(),
            region: attr("regionCode").to_owned(),
            vcpus,
            memory_gib,
            // The price list says "64-bit" for both; Graviton names the ARM parts.
            arch: if attr("physicalProcessor").contains("Graviton") {
                "arm64".to_owned()
            } else {
                "x86_64".to_owned()
            },
            price,
        });
    }
    out.sort_by(|a, b| (&a.instance_type, &a.region).cmp(&(&b.instance_type, &b.region)));
    Ok(out)
}

/// `"61 GiB"` / `"1,952 GiB"` -> GiB.
fn parse_memory(text: &str) -> Option<f64> {
    text.trim()
        .strip_suffix("GiB")?
        .trim()
        .replace(',', "")
        .parse()
        .ok()
}

/// A refreshed AWS catalog: the price list's instance types and on-demand prices, with the
/// snapshot's accelerators, zones and spot prices kept where it knows the instance type.
pub fn merge(embedded: &CloudCatalog, prices: &[OnDemandPrice], data_date: &str) -> CloudCatalog {
    let mut out = CloudCatalog {
        cloud: embedded.cloud,
        source: CatalogSource {
            description: "AWS price-list files (on-demand Linux, shared tenancy), fetched by \
                          `sky catalog update`"
                .into(),
            data_date: data_date.to_owned(),
            partial_coverage: Some(
                "spot prices and zones only for instance types in the embedded snapshot; \
                 accelerator names only for those too"
                    .into(),
            ),
        },
        regions: Vec::new(),
        zones: Vec::new(),
        instance_types: Vec::new(),
        offers: Vec::new(),
        attachable_accelerators: Vec::new(),
        host_rules: embedded.host_rules.clone(),
        images: embedded.images.clone(),
    };
    let mut region_ids: HashMap<String, u32> = HashMap::new();
    let mut zone_ids: HashMap<String, u32> = HashMap::new();
    let mut type_ids: HashMap<String, u32> = HashMap::new();
    for p in prices {
        let region = *region_ids.entry(p.region.clone()).or_insert_with(|| {
            out.regions.push(p.region.clone());
            index(out.regions.len() - 1)
        });
        let known = embedded.instance_type_index(&p.instance_type);
        let instance_type = *type_ids.entry(p.instance_type.clone()).or_insert_with(|| {
            out.instance_types.push(match known {
                Some(i) => embedded.instance_types[i as usize].clone(),
                None => InstanceType {
                    name: p.instance_type.clone(),
                    vcpus: p.vcpus,
                    memory_gib: p.memory_gib,
                    accelerator: None,
                    arch: Some(p.arch.clone()),
                    generation: None,
                },
            });
            index(out.instance_types.len() - 1)
        });
        let old_region = embedded.region_index(&p.region);
        let zone_offers: Vec<&Offer> = match (known, old_region) {
            (Some(t), Some(r)) => embedded
                .offers_of(t)
                .filter(|o| o.region == r && o.zone.is_some())
                .collect(),
            _ => Vec::new(),
        };
        if zone_offers.is_empty() {
            out.offers.push(Offer {
                instance_type,
                region,
                zone: None,
                price: Some(p.price),
                spot_price: None,
            });
            continue;
        }
        for old in zone_offers {
            let zone_name = old.zone.map(|z| embedded.zone_name(z)).unwrap_or_default();
            let zone = *zone_ids.entry(zone_name.to_owned()).or_insert_with(|| {
                out.zones.push(crate::catalog::Zone {
                    name: zone_name.to_owned(),
                    region,
                });
                index(out.zones.len() - 1)
            });
            out.offers.push(Offer {
                instance_type,
                region,
                zone: Some(zone),
                price: Some(p.price),
                spot_price: old.spot_price,
            });
        }
    }
    out
}

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion entries")
}
