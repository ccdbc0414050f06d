//! The network half of `sky catalog update` (cargo feature `fetch`): downloads the public price
//! lists, hands the bodies to the parsers, and writes the refreshed catalog atomically.
//!
//! What this does not do: parse or merge (see `aws`, `azure`), or read any credentials besides
//! the GCP API key, which is passed on to Google only and never logged or written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FetchError, aws, azure, gcp};
use crate::catalog::{Catalog, write_override};
use crate::cloud::CloudId;

/// Environment variable holding the API key the GCP Cloud Billing Catalog API requires.
pub const GCP_API_KEY_ENV: &str = "SKY_GCP_API_KEY";

/// Refreshes one cloud and returns the file written under `$SKY_HOME/catalogs/`.
pub fn update_cloud(
    sky_home: &Path,
    embedded: &Catalog,
    cloud: CloudId,
    today: &str,
) -> Result<PathBuf, FetchError> {
    let snapshot = embedded
        .cloud(cloud)
        .ok_or_else(|| FetchError::NotBuilt(format!("no embedded {cloud} catalog to refresh")))?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| FetchError::Http {
            url: String::new(),
            message: e.to_string(),
        })?;
    let get = |url: &str| -> Result<Vec<u8>, FetchError> {
        // The GCP URL carries the API key: only the redacted form is logged or reported, and
        // reqwest's own message is stripped of the URL.
        let shown = gcp::redact_key(url);
        tracing::info!(url = %shown, "downloading");
        let http = |e: reqwest::Error| FetchError::Http {
            url: shown.clone(),
            message: e.without_url().to_string(),
        };
        let response = client.get(url).send().map_err(http)?;
        let response = response.error_for_status().map_err(http)?;
        Ok(response.bytes().map_err(http)?.to_vec())
    };
    let refreshed = match cloud {
        CloudId::Aws => {
            let index = get(&format!("{}{}", aws::PRICING_HOST, aws::OFFERS_INDEX_PATH))?;
            let region_index_path = aws::region_index_path(&index)?;
            let regions =
                aws::region_files(&get(&format!("{}{region_index_path}", aws::PRICING_HOST))?)?;
            let mut prices = Vec::new();
            for (_, path) in regions {
                prices.extend(aws::parse_region_file(&get(&format!(
                    "{}{path}",
                    aws::PRICING_HOST
                ))?)?);
            }
            aws::merge(snapshot, &prices, today)
        }
        CloudId::Azure => {
            let mut prices = Vec::new();
            let mut next = Some(azure::FIRST_PAGE_URL.to_owned());
            while let Some(url) = next {
                let page = azure::parse_page(&get(&url)?)?;
                prices.extend(page.prices);
                next = page.next;
            }
            let (catalog, skipped) = azure::merge(snapshot, &prices, today);
            if skipped > 0 {
                tracing::warn!(skipped, "Azure sizes without a known shape were skipped");
            }
            catalog
        }
        CloudId::Gcp => {
            if std::env::var_os(GCP_API_KEY_ENV).is_none_or(|k| k.is_empty()) {
                return Err(FetchError::CredentialsMissing(format!(
                    "the GCP Cloud Billing Catalog API requires an API key: create one in the \
                     Google Cloud console (APIs & Services > Credentials, with the Cloud \
                     Billing API enabled) and set {GCP_API_KEY_ENV}"
                )));
            }
            let api_key = std::env::var(GCP_API_KEY_ENV).map_err(|_| {
                FetchError::CredentialsMissing(format!("{GCP_API_KEY_ENV} is not valid UTF-8"))
            })?;
            let mut prices = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = gcp::parse_page(&get(&gcp::skus_url(&api_key, token.as_deref()))?)?;
                prices.extend(page.prices);
                match page.next_page_token {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            let (catalog, report) = gcp::merge(snapshot, &prices, today);
            if report.skipped > 0 {
                tracing::warn!(
                    skipped = report.skipped,
                    repriced = report.repriced,
                    "GCP offers without a core/RAM or GPU SKU kept their snapshot prices"
                );
            }
            catalog
        }
        CloudId::Local | CloudId::Ssh => {
            return Err(FetchError::NotBuilt(format!(
                "the {} cloud has no price catalog",
                cloud.as_str()
            )));
        }
    };
    Ok(write_override(sky_home, &refreshed)?)
}
