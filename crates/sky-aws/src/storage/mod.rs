//! S3 buckets for `file_mounts`, through `aws-sdk-s3` and `aws-sdk-sts`, behind
//! [`ObjectStore`].
//!
//! Before provisioning the client checks each bucket path with the user's own credentials (the
//! same lookup as EC2's): `HeadBucket` (missing, denied, or in which region), then `HeadObject`
//! (the path is one object) or one page of `ListObjectsV2` under `path/` (a prefix, and not
//! empty). For the nodes it asks STS for a federation token whose policy allows only reading that
//! path (`GetFederationToken`: 12 hours, no other rights), so the nodes never hold the user's
//! keys; credentials that are already temporary (SSO, an assumed role: they carry a session
//! token and STS refuses to federate them) are passed on as they are. With `aws.endpoint_url`
//! set (an S3-compatible service, or moto in tests) both the SDK and the nodes' rclone use it,
//! path-style.
//!
//! Buckets for storage objects with a local `source` are created, uploaded into and deleted in
//! [`buckets`], only ever when they carry this home's owner tag.

mod buckets;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use sky_core::credentials::{AwsCredentials, Secret};
use sky_core::storage::{
    BucketUri, BucketUsage, Claimed, Listing, NodeAccess, ObjectStore, Ownership, StorageError,
    StoreKind, UploadFile, Uploaded,
};

use crate::HOME_REGION;
use crate::client::{
    CredentialSource, Found, Lookup, lookup, sdk_retries, sdk_timeouts, sts_client,
};

/// How long the nodes' read-only credentials last: long enough for a large copy on a slow
/// link, short enough that a leaked one soon expires.
const NODE_ACCESS_SECONDS: i32 = 12 * 3600;
/// Objects counted before the copy starts; a larger prefix is still copied whole.
const LIST_PAGE: i32 = 1000;

/// S3 as the client and the nodes reach it.
pub struct S3Store {
    source: CredentialSource,
    endpoint: Option<String>,
    lookup: OnceLock<Lookup>,
    by_region: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    /// Each bucket's region, as `HeadBucket` told it.
    regions: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    pub fn new(source: CredentialSource, endpoint: Option<String>) -> Self {
        S3Store {
            source,
            endpoint,
            lookup: OnceLock::new(),
            by_region: Mutex::new(HashMap::new()),
            regions: Mutex::new(HashMap::new()),
        }
    }

    fn creds(&self) -> Result<&Found, StorageError> {
        let auth = |why: String| StorageError::Auth {
            store: StoreKind::S3,
            why,
        };
        match self.lookup.get_or_init(|| lookup(&self.source)) {
            Lookup::Found(found) => match found.logged_out() {
                None => Ok(found),
                Some(why) => Err(auth(why)),
            },
            Lookup::Missing(why) => Err(auth(why.clone())),
        }
    }

    fn client(&self, region: &str) -> Result<aws_sdk_s3::Client, StorageError> {
        let creds = self.creds()?;
        let mut map = self
            .by_region
            .lock()
            .map_err(|_| StorageError::Other("S3 client cache poisoned by a panic".into()))?;
        if let Some(c) = map.get(region) {
            return Ok(c.clone());
        }
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(creds.provider.clone())
            .identity_cache(creds.identity_cache())
            .retry_config(sdk_retries())
            .timeout_config(sdk_timeouts());
        if let Some(url) = &self.endpoint {
            // S3-compatible services and moto answer on one host, not per-bucket names.
            builder = builder.endpoint_url(url.clone()).force_path_style(true);
        }
        let client = aws_sdk_s3::Client::from_conf(builder.build());
        map.insert(region.to_owned(), client.clone());
        Ok(client)
    }

    fn sts(&self) -> Result<aws_sdk_sts::Client, StorageError> {
        Ok(sts_client(self.creds()?, self.endpoint.as_deref()))
    }

    /// The bucket's region: asked once with `HeadBucket` (which also proves it exists and is
    /// readable); S3 names the region even when it answers from another one.
    async fn region_of(&self, uri: &BucketUri) -> Result<String, StorageError> {
        if let Some(r) = self
            .regions
            .lock()
            .ok()
            .and_then(|m| m.get(&uri.bucket).cloned())
        {
            return Ok(r);
        }
        let region = match self
            .client(HOME_REGION)?
            .head_bucket()
            .bucket(&uri.bucket)
            .send()
            .await
        {
            Ok(out) => out.bucket_region().unwrap_or(HOME_REGION).to_owned(),
            Err(e) => match (status_of(&e), header_of(&e, "x-amz-bucket-region")) {
                // Another region's bucket: S3 says which in a redirect (or, with a newer
                // signature region, a 400); ask there.
                (Some(301 | 307 | 400), Some(region)) => {
                    self.client(&region)?
                        .head_bucket()
                        .bucket(&uri.bucket)
                        .send()
                        .await
                        .map_err(|e| bucket_error(uri, "HeadBucket", &e))?;
                    region
                }
                _ => return Err(bucket_error(uri, "HeadBucket", &e)),
            },
        };
        if let Ok(mut m) = self.regions.lock() {
            m.insert(uri.bucket.clone(), region.clone());
        }
        Ok(region)
    }

    /// The rclone remote for `uri` on the nodes (no secrets in it).
    fn remote(&self, uri: &BucketUri, region: &str) -> String {
        let target = if uri.path.is_empty() {
            uri.bucket.clone()
        } else {
            format!("{}/{}", uri.bucket, uri.path)
        };
        match &self.endpoint {
            // rclone's `AWS` provider always uses per-bucket host names; `Other` is any
            // S3-compatible service at one URL. Quotes in a connection string are doubled.
            Some(url) => format!(
                ":s3,provider=Other,region={region},endpoint='{}':{target}",
                url.replace('\'', "''")
            ),
            None => format!(":s3,provider=AWS,region={region}:{target}"),
        }
    }

    /// Credentials for the nodes to read `uri` with, and whether they are scoped to it: a
    /// federation token whose policy reads only that path, or the user's own when they are
    /// already temporary (STS federates only an IAM user's long-term keys).
    async fn scoped_credentials(
        &self,
        uri: &BucketUri,
    ) -> Result<(AwsCredentials, bool), StorageError> {
        let creds = self
            .creds()?
            .resolve()
            .await
            .map_err(|why| StorageError::Auth {
                store: StoreKind::S3,
                why,
            })?;
        if creds.session_token.is_some() {
            return Ok((creds, false));
        }
        let out = self
            .sts()?
            .get_federation_token()
            .name("sky-file-mounts")
            .policy(read_policy(uri))
            .duration_seconds(NODE_ACCESS_SECONDS)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("no answer");
                let detail = e
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string());
                match status_of(&e) {
                    Some(403) => StorageError::AccessDenied {
                        uri: uri.to_string(),
                        detail: format!(
                            "STS GetFederationToken: {code}: {detail}; Sky gives the nodes a \
                             read-only token for the bucket path, so allow \
                             sts:GetFederationToken, or use temporary credentials (SSO or an \
                             assumed role), which are passed on as they are"
                        ),
                    },
                    Some(_) => {
                        StorageError::Other(format!("STS GetFederationToken: {code}: {detail}"))
                    }
                    None => unavailable(&e),
                }
            })?;
        let c = out.credentials().ok_or_else(|| {
            StorageError::Other("STS GetFederationToken answered without credentials".into())
        })?;
        Ok((
            AwsCredentials {
                access_key_id: c.access_key_id().to_owned(),
                secret_access_key: Secret::new(c.secret_access_key()),
                session_token: Some(Secret::new(c.session_token())),
            },
            true,
        ))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> StoreKind {
        StoreKind::S3
    }

    async fn inspect(&self, uri: &BucketUri) -> Result<Listing, StorageError> {
        let region = self.region_of(uri).await?;
        let client = self.client(&region)?;
        if !uri.path.is_empty() {
            match client
                .head_object()
                .bucket(&uri.bucket)
                .key(&uri.path)
                .send()
                .await
            {
                Ok(out) => {
                    return Ok(Listing {
                        objects: 1,
                        bytes: out.content_length().unwrap_or(0).max(0) as u64,
                        is_object: true,
                        complete: true,
                    });
                }
                // No such object: the path may still be a prefix.
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(bucket_error(uri, "HeadObject", &e)),
            }
        }
        let prefix = if uri.path.is_empty() {
            String::new()
        } else {
            format!("{}/", uri.path)
        };
        let page = client
            .list_objects_v2()
            .bucket(&uri.bucket)
            .prefix(prefix)
            .max_keys(LIST_PAGE)
            .send()
            .await
            .map_err(|e| bucket_error(uri, "ListObjectsV2", &e))?;
        let objects = page.contents();
        if objects.is_empty() {
            return Err(StorageError::Empty {
                uri: uri.to_string(),
            });
        }
        Ok(Listing {
            objects: objects.len() as u64,
            bytes: objects
                .iter()
                .map(|o| o.size().unwrap_or(0).max(0) as u64)
                .sum(),
            is_object: false,
            complete: !page.is_truncated().unwrap_or(false),
        })
    }

    async fn read_access(&self, uri: &BucketUri) -> Result<NodeAccess, StorageError> {
        let region = self.region_of(uri).await?;
        let (creds, scoped) = self.scoped_credentials(uri).await?;
        let mut secrets = vec![
            (
                "RCLONE_S3_ACCESS_KEY_ID".to_owned(),
                Secret::new(creds.access_key_id),
            ),
            (
                "RCLONE_S3_SECRET_ACCESS_KEY".to_owned(),
                creds.secret_access_key,
            ),
        ];
        if let Some(token) = creds.session_token {
            secrets.push(("RCLONE_S3_SESSION_TOKEN".to_owned(), token));
        }
        let access = NodeAccess::new(self.remote(uri, &region), secrets)?;
        Ok(if scoped {
            access
        } else {
            access.with_caveat(format!(
                "the nodes copy {uri} with your temporary AWS credentials as they are (STS \
                 federates only an IAM user's long-term keys), so they can do what this \
                 session can until it expires; use an IAM user's keys to give them a read-only \
                 token instead"
            ))
        })
    }

    async fn ownership(&self, name: &str, owner: &str) -> Result<Ownership, StorageError> {
        self.ownership_of(name, owner).await
    }

    async fn claim(
        &self,
        name: &str,
        region: Option<&str>,
        owner: &str,
    ) -> Result<Claimed, StorageError> {
        self.claim_bucket(name, region, owner).await
    }

    async fn upload(
        &self,
        name: &str,
        owner: &str,
        files: &[UploadFile],
    ) -> Result<Uploaded, StorageError> {
        self.upload_files(name, owner, files).await
    }

    async fn usage(&self, name: &str) -> Result<BucketUsage, StorageError> {
        self.usage_of(name).await
    }

    async fn delete_owned(&self, name: &str, owner: &str) -> Result<bool, StorageError> {
        self.delete_bucket(name, owner).await
    }
}

/// An IAM policy that allows reading the objects at or under `uri`'s path and listing only that
/// part of the bucket.
fn read_policy(uri: &BucketUri) -> String {
    let bucket = format!("arn:aws:s3:::{}", uri.bucket);
    let (objects, prefixes) = if uri.path.is_empty() {
        (serde_json::json!([format!("{bucket}/*")]), None)
    } else {
        let p = &uri.path;
        (
            serde_json::json!([format!("{bucket}/{p}"), format!("{bucket}/{p}/*")]),
            Some(serde_json::json!([p, format!("{p}/*")])),
        )
    };
    let mut list = serde_json::json!({
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": bucket,
    });
    if let Some(prefixes) = prefixes {
        list["Condition"] = serde_json::json!({"StringLike": {"s3:prefix": prefixes}});
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects},
            list,
        ],
    })
    .to_string()
}

type Raw = aws_sdk_s3::config::http::HttpResponse;

fn status_of<E>(e: &SdkError<E, Raw>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn header_of<E>(e: &SdkError<E, Raw>, name: &str) -> Option<String> {
    e.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_owned)
}

fn unavailable<E>(e: &SdkError<E, Raw>) -> StorageError
where
    E: std::error::Error + 'static,
{
    if let Some(why) = crate::client::credentials_cause(e) {
        return StorageError::Auth {
            store: StoreKind::S3,
            why,
        };
    }
    StorageError::Unavailable {
        store: StoreKind::S3,
        why: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// What an S3 error on `uri` means for the user. HEAD answers have no body, so the status says
/// it: 404 no such bucket (or key), 403 denied.
fn bucket_error<E>(uri: &BucketUri, op: &str, e: &SdkError<E, Raw>) -> StorageError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let Some(status) = status_of(e) else {
        return unavailable(e);
    };
    let code = e.code();
    if code == Some("NoSuchBucket") || (status == 404 && op == "HeadBucket") {
        return StorageError::NoSuchBucket {
            bucket: uri.bucket.clone(),
            hint: format!(" (or these credentials cannot see it); check the name in '{uri}'"),
        };
    }
    if status == 403 {
        return StorageError::AccessDenied {
            uri: uri.to_string(),
            detail: format!("{op}: {}", code.unwrap_or("403 Forbidden")),
        };
    }
    StorageError::Other(format!(
        "{op} on {uri}: {} (HTTP {status}){}",
        code.unwrap_or("error"),
        match e.message() {
            Some(m) => format!(": {m}"),
            // No error document (or one the SDK could not read): say what the SDK saw.
            None => format!(": {}", aws_sdk_s3::error::DisplayErrorContext(e)),
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_reads_only_the_path() {
        let uri = BucketUri::parse("s3://data-1/train/v2").expect("valid");
        let policy: serde_json::Value = serde_json::from_str(&read_policy(&uri)).expect("json");
        let s = &policy["Statement"];
        assert_eq!(s[0]["Action"], serde_json::json!(["s3:GetObject"]));
        assert_eq!(
            s[0]["Resource"],
            serde_json::json!([
                "arn:aws:s3:::data-1/train/v2",
                "arn:aws:s3:::data-1/train/v2/*"
            ])
        );
        assert_eq!(s[1]["Resource"], "arn:aws:s3:::data-1");
        assert_eq!(
            s[1]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["train/v2", "train/v2/*"])
        );
        let whole = BucketUri::parse("s3://data-1").expect("valid");
        let policy: serde_json::Value = serde_json::from_str(&read_policy(&whole)).expect("json");
        assert_eq!(
            policy["Statement"][0]["Resource"],
            serde_json::json!(["arn:aws:s3:::data-1/*"])
        );
        assert!(policy["Statement"][1].get("Condition").is_none());
    }

    #[test]
    fn remotes_name_the_region_and_a_custom_endpoint() {
        let uri = BucketUri::parse("s3://data-1/train").expect("valid");
        let aws = S3Store::new(CredentialSource::platform(), None);
        assert_eq!(
            aws.remote(&uri, "eu-west-1"),
            ":s3,provider=AWS,region=eu-west-1:data-1/train"
        );
        let other = S3Store::new(
            CredentialSource::platform(),
            Some("http://10.0.0.1:9000".into()),
        );
        assert_eq!(
            other.remote(&uri, "us-east-1"),
            ":s3,provider=Other,region=us-east-1,endpoint='http://10.0.0.1:9000':data-1/train"
        );
    }
}
