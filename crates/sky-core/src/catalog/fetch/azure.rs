//! Azure's Retail Prices API (no account needed): pages of meters linked by `NextPageLink`, of
//! which we keep Linux virtual-machine consumption meters, on-demand and spot.
//!
//! What this does not do: fetch (see `http`), or learn a size's vCPUs and memory, which the
//! API does not return; sizes the snapshot does not know are counted and skipped.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{FetchError, parse_err};
use crate::catalog::{CatalogSource, CloudCatalog, Offer};

/// First page: Linux and Windows VM consumption meters (Windows is filtered out locally, since
/// the API cannot filter on a product-name suffix).
pub const FIRST_PAGE_URL: &str = "https://prices.azure.com/api/retail/prices?$filter=serviceName%20eq%20%27Virtual%20Machines%27%20and%20priceType%20eq%20%27Consumption%27";

/// One Linux VM meter.
#[derive(Debug, Clone, PartialEq)]
pub struct VmPrice {
    pub size: String,
    pub region: String,
    pub spot: bool,
    pub price: f64,
}

/// A parsed page: its kept meters and the next page's URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub prices: Vec<VmPrice>,
    pub next: Option<String>,
}

pub fn parse_page(body: &[u8]) -> Result<Page, FetchError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Body {
        items: Vec<Item>,
        next_page_link: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Item {
        currency_code: String,
        retail_price: f64,
        arm_region_name: String,
        product_name: String,
        sku_name: String,
        service_name: String,
        unit_of_measure: String,
        #[serde(rename = "type")]
        kind: String,
        arm_sku_name: String,
    }
    let body: Body =
        serde_json::from_slice(body).map_err(|e| parse_err("Azure retail prices page", e))?;
    let prices = body
        .items
        .into_iter()
        .filter(|i| {
            i.currency_code == "USD"
                && i.service_name == "Virtual Machines"
                && i.kind == "Consumption"
                && i.unit_of_measure == "1 Hour"
                && !i.product_name.ends_with("Windows")
                && !i.sku_name.contains("Low Priority")
                && !i.arm_sku_name.is_empty()
                && !i.arm_region_name.is_empty()
        })
        .map(|i| VmPrice {
            spot: i.sku_name.ends_with("Spot"),
            size: i.arm_sku_name,
            region: i.arm_region_name,
            price: i.retail_price,
        })
        .collect();
    Ok(Page {
        prices,
        next: body.next_page_link.filter(|l| !l.is_empty()),
    })
}

/// A refreshed Azure catalog over the sizes the snapshot knows; returns it and how many sizes
/// were skipped for lack of a known shape.
pub fn merge(
    embedded: &CloudCatalog,
    prices: &[VmPrice],
    data_date: &str,
) -> (CloudCatalog, usize) {
    // (size, region) -> (on-demand, spot); BTreeMap keeps the output order stable.
    let mut by_key: BTreeMap<(&str, &str), PricePair> = BTreeMap::new();
    let mut unknown: Vec<&str> = Vec::new();
    for p in prices {
        if embedded.instance_type_index(&p.size).is_none() {
            unknown.push(&p.size);
            continue;
        }
        let slot = by_key.entry((&p.size, &p.region)).or_default();
        let target = if p.spot { &mut slot.1 } else { &mut slot.0 };
        // Several meters can price one size; the cheapest is what a launch would pay.
        *target = Some(target.map_or(p.price, |v: f64| v.min(p.price)));
    }
    unknown.sort_unstable();
    unknown.dedup();

    let mut out = CloudCatalog {
        cloud: embedded.cloud,
        source: CatalogSource {
            description: "Azure Retail Prices API (Linux, on-demand and spot), fetched by \
                          `sky catalog update`"
                .into(),
            data_date: data_date.to_owned(),
            partial_coverage: (!unknown.is_empty()).then(|| {
                format!(
                    "{} sizes not in the embedded snapshot were skipped (the API gives no \
                     vCPUs or memory)",
                    unknown.len()
                )
            }),
        },
        regions: Vec::new(),
        zones: Vec::new(),
        instance_types: Vec::new(),
        offers: Vec::new(),
        attachable_accelerators: Vec::new(),
        host_rules: embedded.host_rules.clone(),
        images: embedded.images.clone(),
    };
    let mut region_ids: HashMap<&str, u32> = HashMap::new();
    let mut type_ids: HashMap<&str, u32> = HashMap::new();
    for ((size, region), (price, spot_price)) in by_key {
        let region_id = *region_ids.entry(region).or_insert_with(|| {
            out.regions.push(region.to_owned());
            index(out.regions.len() - 1)
        });
        let type_id = *type_ids.entry(size).or_insert_with(|| {
            let known = embedded
                .instance_type(size)
                .expect("filtered to known sizes");
            out.instance_types.push(known.clone());
            index(out.instance_types.len() - 1)
        });
        out.offers.push(Offer {
            instance_type: type_id,
            region: region_id,
            zone: None,
            price,
            spot_price,
        });
    }
    (out, unknown.len())
}

/// (on-demand, spot) USD per hour.
type PricePair = (Option<f64>, Option<f64>);

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion entries")
}
