//! Bucket URIs in SkyPilot's spellings, and the stores' bucket-name rules.
//!
//! `s3://BUCKET/PATH`, `gs://BUCKET/PATH`, and for Azure Blob
//! `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH` (SkyPilot's form). The names are
//! checked against each store's rules here, so a typo is an error at parse time, with the rule,
//! rather than a 400 from the cloud after the cluster is billing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An object store Sky can read buckets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    S3,
    Gcs,
    Azure,
}

impl StoreKind {
    pub const ALL: [StoreKind; 3] = [StoreKind::S3, StoreKind::Gcs, StoreKind::Azure];

    /// The name a task's `store:` uses (SkyPilot's).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::S3 => "s3",
            StoreKind::Gcs => "gcs",
            StoreKind::Azure => "azure",
        }
    }

    pub fn parse(s: &str) -> Option<StoreKind> {
        match s.to_ascii_lowercase().as_str() {
            "s3" => Some(StoreKind::S3),
            "gcs" => Some(StoreKind::Gcs),
            "azure" => Some(StoreKind::Azure),
            _ => None,
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bucket, or a path in one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BucketUri {
    pub store: StoreKind,
    /// The Azure storage account; `None` on S3 and GCS.
    pub account: Option<String>,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The object key or key prefix, without leading or trailing `/`; empty for the whole bucket.
    pub path: String,
}

/// SkyPilot schemes Sky does not read from, with the store's name for the message.
const OTHER_SCHEMES: &[(&str, &str)] = &[
    ("r2://", "Cloudflare R2"),
    ("cos://", "IBM Cloud Object Storage"),
    ("oci://", "OCI Object Storage"),
    ("nebius://", "Nebius Object Storage"),
    (
        "az://",
        "Azure Blob (written https://ACCOUNT.blob.core.windows.net/CONTAINER)",
    ),
];

pub const ALLOWED_URIS: &str = "s3://BUCKET[/PATH], gs://BUCKET[/PATH] or https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]";

impl BucketUri {
    /// Whether `s` is meant as a bucket URI (rather than a local path), known store or not.
    pub fn looks_like_uri(s: &str) -> bool {
        s.contains("://")
    }

    /// Reads a bucket URI; the error says what is wrong and what is allowed.
    pub fn parse(s: &str) -> Result<BucketUri, String> {
        let s = s.trim();
        let (store, account, rest) = if let Some(rest) = s.strip_prefix("s3://") {
            (StoreKind::S3, None, rest)
        } else if let Some(rest) = s.strip_prefix("gs://") {
            (StoreKind::Gcs, None, rest)
        } else if let Some(rest) = s.strip_prefix("https://") {
            let (host, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let Some(account) = host.strip_suffix(".blob.core.windows.net") else {
                return Err(format!(
                    "'{s}' is not a bucket URI Sky reads (an https URL must be an Azure Blob \
                     container, https://ACCOUNT.blob.core.windows.net/CONTAINER); allowed: \
                     {ALLOWED_URIS}"
                ));
            };
            check_account(account).map_err(|why| format!("'{s}': {why}"))?;
            (StoreKind::Azure, Some(account.to_owned()), rest)
        } else {
            if let Some((_, store)) = OTHER_SCHEMES.iter().find(|(p, _)| s.starts_with(p)) {
                return Err(format!(
                    "'{s}' is on {store}, which Sky cannot read from; allowed: {ALLOWED_URIS}"
                ));
            }
            return Err(format!(
                "'{s}' is not a bucket URI Sky knows; allowed: {ALLOWED_URIS}"
            ));
        };
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket_name(store, bucket).map_err(|why| format!("'{s}': {why}"))?;
        let path = path.trim_matches('/');
        if path.split('/').any(|part| part == "." || part == "..") {
            return Err(format!(
                "'{s}': a bucket path may not contain '.' or '..' segments"
            ));
        }
        Ok(BucketUri {
            store,
            account,
            bucket: bucket.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The same bucket, at another path in it.
    pub fn at(&self, path: &str) -> BucketUri {
        BucketUri {
            path: path.trim_matches('/').to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for BucketUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.store, &self.account) {
            (StoreKind::Azure, Some(account)) => {
                write!(f, "https://{account}.blob.core.windows.net/{}", self.bucket)?
            }
            (StoreKind::Gcs, _) => write!(f, "gs://{}", self.bucket)?,
            _ => write!(f, "s3://{}", self.bucket)?,
        }
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

/// The store's bucket (container) naming rules, as its documentation states them.
pub fn check_bucket_name(store: StoreKind, name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return Err(format!(
            "bucket name '{name}' must be 3 to 63 characters long (it has {len})"
        ));
    }
    let allowed = |c: char| match store {
        StoreKind::S3 => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
        StoreKind::Gcs => {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
        }
        StoreKind::Azure => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
    };
    let rule = match store {
        StoreKind::S3 => "lowercase letters, digits, '-' and '.'",
        StoreKind::Gcs => "lowercase letters, digits, '-', '_' and '.'",
        StoreKind::Azure => "lowercase letters, digits and '-'",
    };
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "bucket name '{name}' has '{bad}'; {store} bucket names may use only {rule}"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err(format!(
            "bucket name '{name}' must begin and end with a lowercase letter or digit"
        ));
    }
    if name.contains("..") || (store == StoreKind::Azure && name.contains("--")) {
        return Err(format!(
            "bucket name '{name}' may not have two '.' (or, on Azure, two '-') in a row"
        ));
    }
    if store != StoreKind::Azure && name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(format!("bucket name '{name}' may not be an IP address"));
    }
    Ok(())
}

/// Azure storage account names: 3 to 24 lowercase letters and digits.
fn check_account(account: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&account.len())
        && account
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "storage account '{account}' must be 3 to 24 lowercase letters and digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_read_and_print_back() {
        for s in [
            "s3://my-data/train/part-1",
            "gs://my_data",
            "https://acct1.blob.core.windows.net/ckpts/run/7",
        ] {
            assert_eq!(BucketUri::parse(s).expect(s).to_string(), s);
        }
        let u = BucketUri::parse("s3://b-1/a/b/").expect("valid");
        assert_eq!((u.bucket.as_str(), u.path.as_str()), ("b-1", "a/b"));
        let az = BucketUri::parse("https://acct1.blob.core.windows.net/c01").expect("valid");
        assert_eq!(az.account.as_deref(), Some("acct1"));
        assert_eq!(az.store, StoreKind::Azure);
    }

    #[test]
    fn bad_names_and_other_stores_say_what_is_allowed() {
        let cases = [
            ("s3://AB", "must be 3 to 63 characters long (it has 2)"),
            (
                "s3://Big-Bucket",
                "bucket name 'Big-Bucket' has 'B'; s3 bucket names may use only",
            ),
            (
                "gs://-data",
                "must begin and end with a lowercase letter or digit",
            ),
            ("s3://192.168.1.1", "may not be an IP address"),
            (
                "r2://bucket",
                "is on Cloudflare R2, which Sky cannot read from; allowed: s3://",
            ),
            (
                "https://example.com/x",
                "an https URL must be an Azure Blob container",
            ),
            (
                "https://A.blob.core.windows.net/c01",
                "storage account 'A' must be 3 to 24",
            ),
            ("s3://data/../etc", "may not contain '.' or '..' segments"),
            ("ftp://x/y", "is not a bucket URI Sky knows"),
        ];
        for (uri, want) in cases {
            let got = BucketUri::parse(uri).expect_err(uri);
            assert!(got.contains(want), "{uri}: {got}");
        }
    }
}
