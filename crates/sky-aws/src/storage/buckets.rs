//! Buckets Sky creates for storage objects with a local `source`: created in a region and tagged
//! `sky-owner=<owner id>` at once, uploaded into (only when that tag is there), counted for
//! `sky storage ls`, and emptied and deleted (only when that tag is there).
//!
//! S3 answers `CreateBucket` with 200 in us-east-1 when the same account already owns the name,
//! so success there does not prove the bucket is new: [`S3Store::ownership`] is asked first, and a
//! bucket that exists without this home's tag is refused, never tagged. The window between that
//! answer and the create is a round trip; a bucket whose tagging fails after the create is left
//! untagged (so Sky never uses or deletes it) and the error names it.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, ObjectIdentifier, Tag, Tagging,
};
use futures::{StreamExt, TryStreamExt};
use sky_core::provision::owner::TAG_OWNER;
use sky_core::storage::{
    BucketUri, BucketUsage, Claimed, Ownership, StorageError, StoreKind, UploadFile, Uploaded,
};

use super::{S3Store, bucket_error, status_of};
use crate::HOME_REGION;

/// Files larger than this go up in parts (S3 takes at most 5 GiB in one PUT, and parts let a
/// large file's upload use several connections' worth of retries instead of one).
const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// S3's limit on parts per upload; parts grow past 64 MiB for files past 640 GiB.
const MAX_PARTS: u64 = 10_000;
/// Files (or parts) in flight at once.
const UPLOAD_CONCURRENCY: usize = 8;
/// `DeleteObjects` takes at most this many keys.
const DELETE_BATCH: usize = 1000;

fn whole(name: &str) -> BucketUri {
    BucketUri {
        store: StoreKind::S3,
        account: None,
        bucket: name.to_owned(),
        path: String::new(),
    }
}

fn taken(name: &str, why: impl Into<String>) -> StorageError {
    StorageError::Taken {
        bucket: name.to_owned(),
        store_scheme: "s3".into(),
        why: why.into(),
    }
}

impl S3Store {
    pub(super) async fn ownership_of(
        &self,
        name: &str,
        owner: &str,
    ) -> Result<Ownership, StorageError> {
        let uri = whole(name);
        let region = match self.region_of(&uri).await {
            Ok(r) => r,
            Err(StorageError::NoSuchBucket { .. }) => return Ok(Ownership::Missing),
            Err(StorageError::AccessDenied { .. }) => {
                return Ok(Ownership::Theirs {
                    why: "another AWS account owns it, or these credentials may not read it".into(),
                });
            }
            Err(e) => return Err(e),
        };
        let tags = match self
            .client(&region)?
            .get_bucket_tagging()
            .bucket(name)
            .send()
            .await
        {
            Ok(out) => out.tag_set().to_vec(),
            Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
            Err(e) if status_of(&e) == Some(403) => {
                return Ok(Ownership::Theirs {
                    why: "these credentials may not read its tags (s3:GetBucketTagging), so \
                          nothing proves it is this home's"
                        .into(),
                });
            }
            Err(e) => return Err(bucket_error(&uri, "GetBucketTagging", &e)),
        };
        Ok(
            match tags
                .iter()
                .find(|t| t.key() == TAG_OWNER)
                .map(|t| t.value())
            {
                Some(v) if v == owner => Ownership::Ours { region },
                Some(other) => Ownership::Theirs {
                    why: format!("another Sky home made it ({TAG_OWNER}={other})"),
                },
                None => Ownership::Theirs {
                    why: format!("it has no {TAG_OWNER} tag"),
                },
            },
        )
    }

    pub(super) async fn claim_bucket(
        &self,
        name: &str,
        region: Option<&str>,
        owner: &str,
    ) -> Result<Claimed, StorageError> {
        match self.ownership_of(name, owner).await? {
            Ownership::Ours { .. } => return Ok(Claimed::Reused),
            Ownership::Theirs { why } => return Err(taken(name, why)),
            Ownership::Missing => {}
        }
        let region = region.unwrap_or(HOME_REGION);
        let uri = whole(name);
        let client = self.client(region)?;
        let mut create = client.create_bucket().bucket(name);
        if region != HOME_REGION {
            // us-east-1 is the one region S3 refuses as an explicit location constraint.
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        if let Err(e) = create.send().await {
            return Err(match e.code() {
                Some("BucketAlreadyExists") => taken(
                    name,
                    "another AWS account owns the name (S3 bucket names are global)",
                ),
                // It appeared between the ownership check and the create: not proven ours.
                Some("BucketAlreadyOwnedByYou") => {
                    taken(name, "it was created by someone else a moment ago")
                }
                _ => bucket_error(&uri, "CreateBucket", &e),
            });
        }
        let tagging = Tagging::builder()
            .tag_set(
                Tag::builder()
                    .key(TAG_OWNER)
                    .value(owner)
                    .build()
                    .map_err(|e| StorageError::Other(e.to_string()))?,
            )
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        client
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| {
                StorageError::Other(format!(
                    "bucket '{name}' was created in {region} but tagging it as this Sky home's \
                     failed ({}), so Sky will not use or delete it; allow s3:PutBucketTagging, \
                     then delete it (`aws s3 rb s3://{name}`) and launch again",
                    bucket_error(&uri, "PutBucketTagging", &e)
                ))
            })?;
        if let Ok(mut m) = self.regions.lock() {
            m.insert(name.to_owned(), region.to_owned());
        }
        Ok(Claimed::Created)
    }

    /// Every object of `name` (in `region`): key, size and when it was last written.
    async fn objects(
        &self,
        name: &str,
        region: &str,
    ) -> Result<Vec<(String, u64, Option<SystemTime>)>, StorageError> {
        let uri = whole(name);
        let mut pages = self
            .client(region)?
            .list_objects_v2()
            .bucket(name)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| bucket_error(&uri, "ListObjectsV2", &e))?
        {
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push((
                    key.to_owned(),
                    o.size().unwrap_or(0).max(0) as u64,
                    o.last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                ));
            }
        }
        Ok(out)
    }

    async fn owned_region(&self, name: &str, owner: &str) -> Result<String, StorageError> {
        match self.ownership_of(name, owner).await? {
            Ownership::Ours { region } => Ok(region),
            Ownership::Theirs { why } => Err(taken(name, why)),
            Ownership::Missing => Err(StorageError::NoSuchBucket {
                bucket: name.to_owned(),
                hint: String::new(),
            }),
        }
    }

    pub(super) async fn upload_files(
        &self,
        name: &str,
        owner: &str,
        files: &[UploadFile],
    ) -> Result<Uploaded, StorageError> {
        let region = self.owned_region(name, owner).await?;
        let there: HashMap<String, (u64, Option<SystemTime>)> = self
            .objects(name, &region)
            .await?
            .into_iter()
            .map(|(k, size, at)| (k, (size, at)))
            .collect();
        let mut done = Uploaded::default();
        let mut todo = Vec::new();
        for f in files {
            match there.get(&f.key) {
                // As `aws s3 sync`: same size and written since the file last changed, to the
                // second (S3 keeps whole seconds, so a file written and uploaded within one
                // second would otherwise look newer than its copy).
                Some((size, Some(at))) if *size == f.size && secs(*at) >= secs(f.modified) => {
                    done.unchanged += 1
                }
                _ => todo.push(f),
            }
        }
        let client = self.client(&region)?;
        // Built in a loop, not a closure: a closure over `&UploadFile` makes the future's
        // lifetime higher-ranked, which `async_trait`'s `Send` bound cannot prove.
        let mut puts = Vec::with_capacity(todo.len());
        for f in todo {
            let client = client.clone();
            puts.push(async move { put_file(&client, name, f).await.map(|()| f.size) });
        }
        let sent: Vec<u64> = futures::stream::iter(puts)
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .try_collect()
            .await?;
        done.files = sent.len() as u64;
        done.bytes = sent.iter().sum();
        Ok(done)
    }

    pub(super) async fn usage_of(&self, name: &str) -> Result<BucketUsage, StorageError> {
        let region = self.region_of(&whole(name)).await?;
        let objects = self.objects(name, &region).await?;
        Ok(BucketUsage {
            objects: objects.len() as u64,
            bytes: objects.iter().map(|(_, s, _)| s).sum(),
            region,
        })
    }

    pub(super) async fn delete_bucket(
        &self,
        name: &str,
        owner: &str,
    ) -> Result<bool, StorageError> {
        let region = match self.owned_region(name, owner).await {
            Ok(r) => r,
            Err(StorageError::NoSuchBucket { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let uri = whole(name);
        let client = self.client(&region)?;
        let keys: Vec<String> = self
            .objects(name, &region)
            .await?
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let out = client
                .delete_objects()
                .bucket(name)
                .delete(delete)
                .send()
                .await
                .map_err(|e| bucket_error(&uri, "DeleteObjects", &e))?;
            if let Some(err) = out.errors().first() {
                return Err(StorageError::Other(format!(
                    "DeleteObjects on s3://{name}: {} of {} objects not deleted, first '{}': {}",
                    out.errors().len(),
                    batch.len(),
                    err.key().unwrap_or("?"),
                    err.message().or(err.code()).unwrap_or("refused")
                )));
            }
        }
        client
            .delete_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| bucket_error(&uri, "DeleteBucket", &e))?;
        if let Ok(mut m) = self.regions.lock() {
            m.remove(name);
        }
        Ok(true)
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One file into `bucket` at its key: one PUT, or a multipart upload for a large file (aborted
/// when a part fails, so no invisible parts keep billing).
async fn put_file(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    f: &UploadFile,
) -> Result<(), StorageError> {
    let uri = BucketUri {
        path: f.key.clone(),
        ..whole(bucket)
    };
    let read_err = |e: &dyn std::fmt::Display| {
        StorageError::Other(format!("cannot read {}: {e}", f.path.display()))
    };
    if f.size <= MULTIPART_THRESHOLD {
        let body = ByteStream::from_path(&f.path)
            .await
            .map_err(|e| read_err(&e))?;
        client
            .put_object()
            .bucket(bucket)
            .key(&f.key)
            .body(body)
            .send()
            .await
            .map_err(|e| bucket_error(&uri, "PutObject", &e))?;
        return Ok(());
    }
    let part_size = MULTIPART_THRESHOLD.max(f.size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20));
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(&f.key)
        .send()
        .await
        .map_err(|e| bucket_error(&uri, "CreateMultipartUpload", &e))?;
    let id = upload
        .upload_id()
        .ok_or_else(|| StorageError::Other("CreateMultipartUpload gave no upload id".into()))?
        .to_owned();
    let parts = f.size.div_ceil(part_size);
    let result: Result<Vec<CompletedPart>, StorageError> =
        futures::stream::iter((0..parts).map(|i| {
            let (client, id, uri) = (client.clone(), id.clone(), uri.clone());
            async move {
                let offset = i * part_size;
                let body = ByteStream::read_from()
                    .path(&f.path)
                    .offset(offset)
                    .length(Length::Exact(part_size.min(f.size - offset)))
                    .build()
                    .await
                    .map_err(|e| read_err(&e))?;
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let out = client
                    .upload_part()
                    .bucket(bucket)
                    .key(&f.key)
                    .upload_id(&id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| bucket_error(&uri, "UploadPart", &e))?;
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build())
            }
        }))
        .buffered(UPLOAD_CONCURRENCY)
        .try_collect()
        .await;
    let completed = match result {
        Ok(parts) => client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&f.key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| bucket_error(&uri, "CompleteMultipartUpload", &e))
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if completed.is_err() {
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&f.key)
            .upload_id(&id)
            .send()
            .await;
    }
    completed
}
