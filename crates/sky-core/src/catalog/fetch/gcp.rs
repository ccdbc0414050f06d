//! GCP's Cloud Billing Catalog API (needs an API key): pages of Compute Engine SKUs linked by
//! `nextPageToken`, of which we keep predefined per-vCPU and per-GiB machine prices and attached
//! GPU prices, on-demand and spot, per region.
//!
//! A machine type's price is its vCPUs times its family's core price plus its memory times the
//! family's RAM price, as GCP bills it. Shapes, zones and accelerators come from the snapshot.
//!
//! What this does not do: fetch (see `http`), add machine types the snapshot does not know, or
//! price what core + RAM does not describe (shared-core and custom types, types that carry
//! their accelerators, TPUs, which are billed by another service). Those keep their snapshot
//! prices and are counted as skipped.

use std::collections::HashMap;

use serde::Deserialize;

use super::{FetchError, parse_err};
use crate::catalog::CloudCatalog;

/// Compute Engine's service id in the Cloud Billing Catalog.
pub const COMPUTE_SERVICE_ID: &str = "6F81-5844-456A";

/// URL of one page of Compute Engine SKUs. The key is passed to Google only; never log this URL.
pub fn skus_url(api_key: &str, page_token: Option<&str>) -> String {
    let mut url = format!(
        "https://cloudbilling.googleapis.com/v1/services/{COMPUTE_SERVICE_ID}/skus?key={api_key}"
    );
    if let Some(token) = page_token {
        url.push_str("&pageToken=");
        url.push_str(token);
    }
    url
}

/// What a kept SKU prices.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkuKind {
    /// One vCPU-hour of a machine family (`n2`).
    Core(String),
    /// One GiB-hour of a machine family's memory.
    Ram(String),
    /// One hour of an attached GPU, by catalog name (`V100`, `A100-80GB`).
    Gpu(String),
}

/// One kept SKU: USD per unit-hour in each of its regions.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuPrice {
    pub kind: SkuKind,
    pub regions: Vec<String>,
    pub spot: bool,
    pub price: f64,
}

/// A parsed page: its kept SKUs and the next page's token.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub prices: Vec<SkuPrice>,
    pub next_page_token: Option<String>,
}

pub fn parse_page(body: &[u8]) -> Result<Page, FetchError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        skus: Vec<Sku>,
        next_page_token: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sku {
        description: String,
        category: Category,
        #[serde(default)]
        service_regions: Vec<String>,
        #[serde(default)]
        pricing_info: Vec<PricingInfo>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Category {
        resource_family: String,
        usage_type: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PricingInfo {
        pricing_expression: PricingExpression,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PricingExpression {
        usage_unit: String,
        tiered_rates: Vec<TieredRate>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TieredRate {
        unit_price: Money,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Money {
        currency_code: String,
        // int64 is a JSON string in Google's APIs; absent means zero.
        #[serde(default)]
        units: Option<String>,
        #[serde(default)]
        nanos: i64,
    }

    let what = "GCP Cloud Billing SKUs page";
    let body: Body = serde_json::from_slice(body).map_err(|e| parse_err(what, e))?;
    let mut prices = Vec::new();
    for sku in body.skus {
        if sku.category.resource_family != "Compute" && sku.category.resource_family != "GPU" {
            continue;
        }
        let spot = match sku.category.usage_type.as_str() {
            "OnDemand" => false,
            "Preemptible" => true,
            _ => continue,
        };
        let Some(kind) = sku_kind(&sku.description) else {
            continue;
        };
        // The current price is the first pricingInfo; its last tier is the rate past any free
        // allowance, which is what a running VM pays.
        let Some(expr) = sku.pricing_info.first().map(|p| &p.pricing_expression) else {
            continue;
        };
        let expected_unit = match kind {
            SkuKind::Ram(_) => "GiBy.h",
            _ => "h",
        };
        if expr.usage_unit != expected_unit {
            continue;
        }
        let Some(rate) = expr.tiered_rates.last() else {
            continue;
        };
        let money = &rate.unit_price;
        if money.currency_code != "USD" {
            continue;
        }
        let units: i64 = match money.units.as_deref() {
            None | Some("") => 0,
            Some(u) => u.parse().map_err(|_| {
                parse_err(
                    what,
                    format!(
                        "SKU {:?}: unitPrice.units {u:?} is not an integer",
                        sku.description
                    ),
                )
            })?,
        };
        #[allow(clippy::cast_precision_loss)] // prices are far below 2^52
        let price = units as f64 + money.nanos as f64 / 1e9;
        prices.push(SkuPrice {
            kind,
            regions: sku.service_regions,
            spot,
            price,
        });
    }
    Ok(Page {
        prices,
        next_page_token: body.next_page_token.filter(|t| !t.is_empty()),
    })
}

/// Reads what a SKU description prices: "N2 Instance Core running in Americas",
/// "Spot Preemptible N1 Predefined Instance Ram running in Belgium",
/// "Nvidia Tesla V100 GPU running in Americas". Custom, sole-tenant, commitment and other
/// special SKUs give `None`.
fn sku_kind(description: &str) -> Option<SkuKind> {
    let (what, _) = description.split_once(" running in ")?;
    const SPECIAL: [&str; 7] = [
        "Custom",
        "Sole Tenancy",
        "Commitment",
        "Extended",
        "Premium",
        "Reserved",
        "DWS",
    ];
    if SPECIAL.iter().any(|s| what.contains(s)) {
        return None;
    }
    let what = what
        .strip_prefix("Spot Preemptible ")
        .or_else(|| what.strip_prefix("Preemptible "))
        .unwrap_or(what);
    // Spot GPUs read "Nvidia Tesla V100 GPU attached to Spot Preemptible VMs running in ...".
    let what = what
        .strip_suffix(" attached to Spot Preemptible VMs")
        .or_else(|| what.strip_suffix(" attached to Preemptible VMs"))
        .unwrap_or(what);
    if let Some(gpu) = what.strip_suffix(" GPU") {
        let gpu = gpu.strip_prefix("Nvidia ")?;
        let gpu = gpu.strip_prefix("Tesla ").unwrap_or(gpu);
        return Some(SkuKind::Gpu(gpu.replace(' ', "-")));
    }
    let (family_words, resource) = what.split_once(" Instance ")?;
    let family = family_words.split(' ').next()?.to_ascii_lowercase();
    if family.is_empty() || !family.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match resource {
        "Core" => Some(SkuKind::Core(family)),
        "Ram" => Some(SkuKind::Ram(family)),
        _ => None,
    }
}

/// How much of the snapshot a refresh re-priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// Offers (VM and attached accelerator) given fresh prices.
    pub repriced: usize,
    /// Offers that kept their snapshot prices.
    pub skipped: usize,
}

/// The snapshot re-priced from the SKUs; offers that cannot be priced keep their snapshot prices.
pub fn merge(
    embedded: &CloudCatalog,
    prices: &[SkuPrice],
    data_date: &str,
) -> (CloudCatalog, MergeReport) {
    // (kind, region, spot) -> USD per unit-hour; the cheapest wins if a SKU repeats.
    let mut rates: HashMap<(&SkuKind, &str, bool), f64> = HashMap::new();
    for p in prices {
        for region in &p.regions {
            let slot = rates.entry((&p.kind, region, p.spot)).or_insert(p.price);
            *slot = slot.min(p.price);
        }
    }
    let rate = |kind: &SkuKind, region: &str, spot: bool| rates.get(&(kind, region, spot)).copied();

    let mut out = embedded.clone();
    let mut report = MergeReport::default();
    for offer in &mut out.offers {
        let region = embedded.region_name(offer.region);
        let Some(family) = embedded
            .instance_types
            .get(offer.instance_type as usize)
            .and_then(priceable_family)
        else {
            report.skipped += 1;
            continue;
        };
        let it = &embedded.instance_types[offer.instance_type as usize];
        let vm_price = |spot: bool| {
            let core = rate(&SkuKind::Core(family.clone()), region, spot)?;
            let ram = rate(&SkuKind::Ram(family.clone()), region, spot)?;
            Some(round6(it.vcpus * core + it.memory_gib * ram))
        };
        match vm_price(false) {
            Some(price) => {
                offer.price = Some(price);
                if let Some(spot) = vm_price(true) {
                    offer.spot_price = Some(spot);
                }
                report.repriced += 1;
            }
            None => report.skipped += 1,
        }
    }
    for offer in &mut out.attachable_accelerators {
        let region = embedded.region_name(offer.region);
        let kind = SkuKind::Gpu(offer.accelerator.name.clone());
        // The per-GPU SKU times the count the offer attaches.
        let count = offer.accelerator.count;
        match rate(&kind, region, false) {
            Some(price) => {
                offer.price = Some(round6(price * count));
                if let Some(spot) = rate(&kind, region, true) {
                    offer.spot_price = Some(round6(spot * count));
                }
                report.repriced += 1;
            }
            None => report.skipped += 1,
        }
    }
    out.source.description = "GCP Cloud Billing Catalog API (Compute Engine, on-demand and \
                              spot), fetched by `sky catalog update`"
        .into();
    out.source.data_date = data_date.to_owned();
    out.source.partial_coverage = (report.skipped > 0).then(|| {
        format!(
            "{} of {} offers kept their snapshot prices (shared-core, custom, TPU, \
             accelerator-carrying or unlisted machine types and regions)",
            report.skipped,
            report.skipped + report.repriced
        )
    });
    (out, report)
}

/// The billing family of a machine type whose price is vCPUs x core + memory x RAM.
fn priceable_family(it: &crate::catalog::InstanceType) -> Option<String> {
    // Bundled accelerators (a2/a3/g2) are billed on top of core + RAM; shared-core types bill
    // a fraction of a core; custom types have their own SKUs.
    const SHARED_CORE: [&str; 5] = ["e2-micro", "e2-small", "e2-medium", "f1-micro", "g1-small"];
    if it.accelerator.is_some() || SHARED_CORE.contains(&it.name.as_str()) {
        return None;
    }
    let (family, rest) = it.name.split_once('-')?;
    if rest.contains("custom") || family.is_empty() {
        return None;
    }
    Some(family.to_owned())
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// `url` with the value of its `key=` query parameter replaced, for logs and errors.
pub fn redact_key(url: &str) -> String {
    let Some(start) = url.find("key=").map(|i| i + "key=".len()) else {
        return url.to_owned();
    };
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    format!("{}REDACTED{}", &url[..start], &url[end..])
}
