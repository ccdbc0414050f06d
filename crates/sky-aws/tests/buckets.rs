//! Buckets the S3 store creates for storage objects, against moto: created in the asked region
//! and tagged as this home's, reused only with that tag, uploaded into incrementally (a large
//! file in parts), and deleted only with that tag; a bucket anyone else made is never written,
//! claimed or deleted.

mod support;

use aws_sdk_s3::primitives::ByteStream;
use sky_aws::CredentialSource;
use sky_aws::storage::S3Store;
use sky_core::storage::{Claimed, ObjectStore, Ownership, StorageError, upload_files};
use support::*;

const OWNER: &str = "0123456789abcdef";

async fn body(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect(key)
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn a_claimed_bucket_is_tagged_reused_uploaded_incrementally_and_deleted() {
    let moto = start_moto().await;
    let store = S3Store::new(
        CredentialSource::Fixed(test_credentials()),
        Some(moto.url()),
    );
    assert_eq!(
        store.ownership("sky-made", OWNER).await.expect("ask"),
        Ownership::Missing
    );
    assert_eq!(
        store
            .claim("sky-made", Some("eu-west-1"), OWNER)
            .await
            .expect("create"),
        Claimed::Created
    );
    assert_eq!(
        store.ownership("sky-made", OWNER).await.expect("ask"),
        Ownership::Ours {
            region: "eu-west-1".into()
        }
    );
    assert_eq!(
        store.claim("sky-made", None, OWNER).await.expect("reuse"),
        Claimed::Reused
    );
    let theirs = store
        .ownership("sky-made", "fedcba9876543210")
        .await
        .expect("ask");
    assert!(
        matches!(&theirs, Ownership::Theirs { why } if why.contains("another Sky home")),
        "{theirs:?}"
    );

    let src = tempfile::tempdir().expect("src");
    std::fs::create_dir_all(src.path().join("sub")).expect("mkdir");
    std::fs::write(src.path().join("a.txt"), "alpha").expect("a");
    std::fs::write(src.path().join("sub/b.txt"), "beta").expect("b");
    std::fs::write(src.path().join("skip.log"), "ignored").expect("log");
    std::fs::write(src.path().join(".skyignore"), "*.log\n").expect("ignore");
    // Past the multipart threshold, and not a whole number of parts.
    let big: Vec<u8> = (0..(70u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.path().join("big.bin"), &big).expect("big");
    let files = upload_files(&[src.path().to_path_buf()]).expect("files");
    let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [".skyignore", "a.txt", "big.bin", "sub/b.txt"]);

    let first = store.upload("sky-made", OWNER, &files).await.expect("up");
    assert_eq!((first.files, first.unchanged), (4, 0), "{first:?}");
    let client = s3_client(&moto, "us-east-1");
    assert_eq!(body(&client, "sky-made", "sub/b.txt").await, b"beta");
    assert!(
        body(&client, "sky-made", "big.bin").await == big,
        "the parts join into the file"
    );

    let again = store.upload("sky-made", OWNER, &files).await.expect("up");
    assert_eq!((again.files, again.unchanged), (0, 4), "{again:?}");
    std::fs::write(src.path().join("a.txt"), "alpha, longer").expect("edit");
    let files = upload_files(&[src.path().to_path_buf()]).expect("files");
    let edited = store.upload("sky-made", OWNER, &files).await.expect("up");
    assert_eq!((edited.files, edited.unchanged), (1, 3), "{edited:?}");
    assert_eq!(body(&client, "sky-made", "a.txt").await, b"alpha, longer");

    let usage = store.usage("sky-made").await.expect("usage");
    assert_eq!((usage.objects, usage.region.as_str()), (4, "eu-west-1"));
    assert_eq!(usage.bytes, big.len() as u64 + 13 + 4 + 6);

    assert!(store.delete_owned("sky-made", OWNER).await.expect("delete"));
    assert_eq!(
        store.ownership("sky-made", OWNER).await.expect("ask"),
        Ownership::Missing
    );
    assert!(!store.delete_owned("sky-made", OWNER).await.expect("gone"));
}

#[tokio::test]
async fn a_bucket_sky_did_not_tag_is_never_claimed_written_or_deleted() {
    let moto = start_moto().await;
    let client = s3_client(&moto, "us-east-1");
    client
        .create_bucket()
        .bucket("colleague-data")
        .send()
        .await
        .expect("bucket");
    client
        .put_object()
        .bucket("colleague-data")
        .key("results.csv")
        .body(ByteStream::from_static(b"precious"))
        .send()
        .await
        .expect("put");
    let store = S3Store::new(
        CredentialSource::Fixed(test_credentials()),
        Some(moto.url()),
    );
    let ownership = store.ownership("colleague-data", OWNER).await.expect("ask");
    assert!(
        matches!(&ownership, Ownership::Theirs { why } if why.contains("no sky-owner tag")),
        "{ownership:?}"
    );
    let claim = store
        .claim("colleague-data", None, OWNER)
        .await
        .expect_err("taken");
    assert!(
        matches!(&claim, StorageError::Taken { bucket, .. } if bucket == "colleague-data"),
        "{claim}"
    );
    assert!(
        claim
            .to_string()
            .contains("read it with `source: s3://colleague-data`"),
        "{claim}"
    );
    let src = tempfile::tempdir().expect("src");
    std::fs::write(src.path().join("results.csv"), "overwritten").expect("file");
    let files = upload_files(&[src.path().to_path_buf()]).expect("files");
    let upload = store
        .upload("colleague-data", OWNER, &files)
        .await
        .expect_err("refused");
    assert!(matches!(upload, StorageError::Taken { .. }), "{upload}");
    let delete = store
        .delete_owned("colleague-data", OWNER)
        .await
        .expect_err("refused");
    assert!(matches!(delete, StorageError::Taken { .. }), "{delete}");
    assert_eq!(
        body(&client, "colleague-data", "results.csv").await,
        b"precious",
        "their object is untouched"
    );
}
