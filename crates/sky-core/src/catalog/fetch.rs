//! `sky catalog update`: turn the clouds' public price lists into a refreshed catalog.
//!
//! Parsing and merging are plain functions over response bodies, tested offline on recorded
//! samples in the real shapes (`tests/fixtures/catalog/`). Only [`http`] (behind the `fetch`
//! cargo feature) talks to the network.
//!
//! What the public lists give, and so what a refresh can do without an account:
//! - AWS price-list files: every instance type's vCPUs, memory and on-demand Linux price per
//!   region; no spot prices, zones or GPU names. Instance types the snapshot knows keep their
//!   accelerators, zones and spot prices; new ones get region-level on-demand offers.
//! - Azure Retail Prices API: on-demand and spot prices per size and region, but no vCPUs or
//!   memory, so only sizes whose shape the snapshot knows can be refreshed.
//! - GCP Cloud Billing Catalog API: needs an API key (`SKY_GCP_API_KEY`); per-vCPU and per-GiB
//!   prices per machine family and region, and per-GPU prices. Only machine types and GPUs the
//!   snapshot knows are re-priced; the rest keep their snapshot prices and are counted.
//!
//! What this module does not do: write files (see `load::write_override`) or guess shapes.

pub mod aws;
pub mod azure;
pub mod gcp;
#[cfg(feature = "fetch")]
pub mod http;

use crate::error::ErrorCode;

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{what}: unexpected response shape: {message}")]
    Parse { what: String, message: String },
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },
    #[error("{0}")]
    CredentialsMissing(String),
    #[error("{0}")]
    NotBuilt(String),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
}

impl FetchError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FetchError::CredentialsMissing(_) => ErrorCode::CredentialsMissing,
            FetchError::Http { .. } => ErrorCode::ResourcesUnavailable,
            _ => ErrorCode::Internal,
        }
    }
}

pub(crate) fn parse_err(what: &str, err: impl std::fmt::Display) -> FetchError {
    FetchError::Parse {
        what: what.to_owned(),
        message: err.to_string(),
    }
}

/// Refreshes one cloud into `$SKY_HOME/catalogs/` from its public price list; `today` is the
/// `YYYY-MM-DD` recorded as the data date.
pub fn update_cloud(
    sky_home: &std::path::Path,
    embedded: &super::Catalog,
    cloud: crate::CloudId,
    today: &str,
) -> Result<std::path::PathBuf, FetchError> {
    #[cfg(feature = "fetch")]
    {
        http::update_cloud(sky_home, embedded, cloud, today)
    }
    #[cfg(not(feature = "fetch"))]
    {
        let _ = (sky_home, embedded, cloud, today);
        Err(FetchError::NotBuilt(
            "this build has no network fetcher (build sky-core with the `fetch` feature)".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
