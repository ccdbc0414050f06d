//! The S3 store against moto's S3 and STS: what `inspect` tells about bucket paths (a prefix,
//! one object, nothing there, no bucket, another region's bucket), the read-only access it
//! hands the nodes, and the nodes' real rclone copy with that access.

mod support;

use std::process::Stdio;

use aws_sdk_s3::primitives::ByteStream;
use sky_aws::CredentialSource;
use sky_aws::storage::S3Store;
use sky_core::credentials::Secret;
use sky_core::storage::{BucketCopy, BucketUri, ObjectStore, StorageError};
use support::*;
use tokio::io::AsyncWriteExt;

async fn seeded_moto() -> Moto {
    let moto = start_moto().await;
    let client = |region: &str| s3_client(&moto, region);
    let us = client("us-east-1");
    us.create_bucket()
        .bucket("sky-data")
        .send()
        .await
        .expect("bucket");
    for (key, body) in [
        ("train/a.txt", "alpha"),
        ("train/sub/b.txt", "beta"),
        ("train2/not-me.txt", "other prefix"),
        ("one.bin", "single object"),
    ] {
        us.put_object()
            .bucket("sky-data")
            .key(key)
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .expect("put");
    }
    let eu = client("eu-west-1");
    eu.create_bucket()
        .bucket("sky-eu-data")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("eu bucket");
    eu.put_object()
        .bucket("sky-eu-data")
        .key("x/y.txt")
        .body(ByteStream::from_static(b"from eu"))
        .send()
        .await
        .expect("put eu");
    moto
}

fn uri(s: &str) -> BucketUri {
    BucketUri::parse(s).expect(s)
}

#[tokio::test]
async fn inspect_tells_prefixes_objects_empty_paths_and_missing_buckets_apart() {
    let moto = seeded_moto().await;
    let store = S3Store::new(
        CredentialSource::Fixed(test_credentials()),
        Some(moto.url()),
    );

    let prefix = store
        .inspect(&uri("s3://sky-data/train"))
        .await
        .expect("prefix");
    // `train2/` is another prefix, not part of `train`.
    assert_eq!((prefix.objects, prefix.bytes), (2, 9), "{prefix:?}");
    assert!(!prefix.is_object && prefix.complete);

    let object = store
        .inspect(&uri("s3://sky-data/one.bin"))
        .await
        .expect("object");
    assert!(object.is_object, "{object:?}");
    assert_eq!(object.bytes, "single object".len() as u64);

    let whole = store.inspect(&uri("s3://sky-data")).await.expect("bucket");
    assert_eq!(whole.objects, 4);

    let empty = store.inspect(&uri("s3://sky-data/nothing/here")).await;
    assert_eq!(
        empty,
        Err(StorageError::Empty {
            uri: "s3://sky-data/nothing/here".into()
        })
    );

    let missing = store
        .inspect(&uri("s3://sky-no-such-bucket"))
        .await
        .expect_err("missing bucket");
    assert!(
        matches!(&missing, StorageError::NoSuchBucket { bucket, .. } if bucket == "sky-no-such-bucket"),
        "{missing}"
    );
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    let eu = store.inspect(&uri("s3://sky-eu-data/x")).await.expect("eu");
    assert_eq!(eu.objects, 1);
    let access = store
        .read_access(&uri("s3://sky-eu-data/x"))
        .await
        .expect("access");
    assert!(
        access.remote().contains("region=eu-west-1"),
        "the nodes ask the bucket's own region: {}",
        access.remote()
    );
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_not_missing() {
    let dead = S3Store::new(
        CredentialSource::Fixed(test_credentials()),
        Some("http://127.0.0.1:1".into()),
    );
    let err = dead
        .inspect(&uri("s3://sky-data/x"))
        .await
        .expect_err("dead");
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
}

/// Runs `copy`'s script into `dest` as a node does: a shell, the credentials on stdin, nothing
/// of this process's environment but PATH and HOME.
async fn node_copy(copy: &BucketCopy, dest: &std::path::Path) -> std::process::Output {
    let script = copy.script(&sky_core::ssh::session::quote(&dest.display().to_string()));
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dest.parent().expect("parent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&copy.stdin()).await.expect("write");
    drop(stdin);
    child.wait_with_output().await.expect("wait")
}

#[tokio::test]
async fn nodes_copy_with_a_federated_read_only_token_not_the_users_keys() {
    let moto = seeded_moto().await;
    let user = test_credentials();
    let store = S3Store::new(CredentialSource::Fixed(user.clone()), Some(moto.url()));
    let path = uri("s3://sky-data/train");
    let listing = store.inspect(&path).await.expect("inspect");
    let access = store.read_access(&path).await.expect("access");
    let debug = format!("{access:?}");
    assert!(debug.contains("RCLONE_S3_SESSION_TOKEN"), "{debug}");
    assert!(!debug.contains(user.secret_access_key.expose()), "{debug}");
    assert_eq!(
        access.caveat(),
        None,
        "a token scoped to the path needs no warning"
    );
    let copy = BucketCopy {
        remote: "~/data".into(),
        uri: path,
        listing,
        access,
    };
    let stdin = String::from_utf8(copy.stdin()).expect("utf8");
    assert!(
        !stdin.contains(user.secret_access_key.expose()),
        "the nodes get STS's token, not the user's secret"
    );
    for secret in stdin.lines() {
        assert!(
            !copy.script("x").contains(secret),
            "secrets go on stdin only"
        );
    }

    let node = tempfile::tempdir().expect("node");
    let dest = node.path().join("data");
    let out = node_copy(&copy, &dest).await;
    assert!(
        out.status.success(),
        "copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("a.txt")).expect("a"),
        "alpha"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/b.txt")).expect("b"),
        "beta"
    );
    assert!(!dest.join("not-me.txt").exists() && !node.path().join("data.sky-part").exists());

    let one = uri("s3://sky-data/one.bin");
    let file = BucketCopy {
        remote: "~/one.bin".into(),
        listing: store.inspect(&one).await.expect("inspect"),
        access: store.read_access(&one).await.expect("access"),
        uri: one,
    };
    let out = node_copy(&file, &node.path().join("one.bin")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(node.path().join("one.bin")).expect("file"),
        "single object"
    );
}

#[tokio::test]
async fn temporary_credentials_are_passed_on_as_they_are() {
    let moto = seeded_moto().await;
    let mut creds = test_credentials();
    creds.session_token = Some(Secret::new(format!("made-up-token-{}", std::process::id())));
    let store = S3Store::new(CredentialSource::Fixed(creds.clone()), Some(moto.url()));
    let path = uri("s3://sky-data/train");
    let copy = BucketCopy {
        remote: "~/data".into(),
        listing: store.inspect(&path).await.expect("inspect"),
        access: store.read_access(&path).await.expect("access"),
        uri: path,
    };
    let stdin = String::from_utf8(copy.stdin()).expect("utf8");
    let lines: Vec<&str> = stdin.lines().collect();
    assert_eq!(
        lines,
        [
            creds.access_key_id.as_str(),
            creds.secret_access_key.expose(),
            creds.session_token.as_ref().expect("token").expose()
        ],
        "STS refuses to federate temporary credentials; they already expire"
    );
    let caveat = copy.access.caveat().expect("the user is told");
    assert!(
        caveat.contains("s3://sky-data/train") && caveat.contains("until it expires"),
        "{caveat}"
    );
    assert!(!caveat.contains(creds.secret_access_key.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_slows_down_is_retried_and_a_refusal_mid_copy_leaves_the_destination() {
    let moto = seeded_moto().await;
    let proxy = start_proxy(moto.port).await;
    let store = S3Store::new(
        CredentialSource::Fixed(test_credentials()),
        Some(proxy.url()),
    );
    let path = uri("s3://sky-data/train");
    let copy = BucketCopy {
        remote: "~/data".into(),
        listing: store.inspect(&path).await.expect("inspect"),
        access: store.read_access(&path).await.expect("access"),
        uri: path,
    };
    let node = tempfile::tempdir().expect("node");

    // Two 503 SlowDown answers for one object mid-copy: rclone's retries carry it through.
    proxy.set_faults(vec![
        Fault::s3("S3 GET /sky-data/train/sub/b.txt", "SlowDown", 503).times(2),
    ]);
    let dest = node.path().join("data");
    let out = node_copy(&copy, &dest).await;
    assert!(
        out.status.success(),
        "retried copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.faults_sent().len(), 2, "both faults were met");
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/b.txt")).expect("b"),
        "beta"
    );

    // The object is refused for good mid-copy (say, its access was revoked; a store that
    // answers 503 for ever is retried with backoff for minutes, as it should be, so it is not
    // the case measured here): the copy fails saying why, and what the destination held is all
    // it holds (nothing half-copied next to it, no stage left).
    proxy.set_faults(vec![Fault::s3(
        "S3 GET /sky-data/train/sub/b.txt",
        "AccessDenied",
        403,
    )]);
    let kept = node.path().join("kept");
    std::fs::create_dir_all(&kept).expect("kept");
    std::fs::write(kept.join("mine.txt"), "mine").expect("mine");
    let out = node_copy(&copy, &kept).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a copy that cannot finish fails");
    assert!(
        stderr.contains("AccessDenied") || stderr.contains("403"),
        "the store's answer is in the error: {stderr}"
    );
    let mut left: Vec<_> = std::fs::read_dir(&kept)
        .expect("kept")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["mine.txt"], "the destination is as it was");
    assert!(!node.path().join("kept.sky-part").exists(), "no stage left");
}
