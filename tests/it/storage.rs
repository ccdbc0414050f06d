//! Buckets in `file_mounts` end to end through the real `sky` binary, with moto as S3 and STS:
//! bucket paths and `mode: COPY` storage objects copied onto local-cloud nodes and SSH nodes
//! before setup, and every task Sky cannot serve refused, naming the field, before anything is
//! created.

use std::path::Path;
use std::process::Command;

use sky_testkit::moto::{self, Moto};

use crate::local_cloud::{Home, sky};
use crate::ssh::{Pool, ok};

/// An rclone remote for moto's S3 (path-style, any region).
pub(crate) fn moto_remote(moto: &Moto, target: &str) -> String {
    format!(
        ":s3,provider=Other,region=us-east-1,endpoint='{}':{target}",
        moto.url()
    )
}

/// Puts `files` into a new `bucket` of moto with rclone (as a user's own upload would).
pub(crate) fn seed(moto: &Moto, bucket: &str, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("seed dir");
    for (key, body) in files {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("seed file");
    }
    let (id, secret) = moto::made_up_credentials();
    for args in [
        vec!["mkdir".to_owned(), moto_remote(moto, bucket)],
        vec![
            "copy".to_owned(),
            dir.path().display().to_string(),
            moto_remote(moto, bucket),
        ],
    ] {
        let out = Command::new("rclone")
            .args(["--config", "/dev/null"])
            .args(&args)
            // rclone's S3 backend refuses to start when AWS_CA_BUNDLE names no file it reads.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RCLONE_S3_ACCESS_KEY_ID", &id)
            .env("RCLONE_S3_SECRET_ACCESS_KEY", &secret)
            .output()
            .expect("rclone is installed (scripts/lib.sh installs it)");
        assert!(
            out.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Sky home whose AWS endpoint is `moto`, and the made-up keys `sky` gets in its environment.
pub(crate) fn configure(home: &Path, moto: &Moto) -> Vec<(&'static str, String)> {
    std::fs::write(
        home.join("config.yaml"),
        format!("aws:\n  endpoint_url: {}\n", moto.url()),
    )
    .expect("config.yaml");
    let (id, secret) = moto::made_up_credentials();
    vec![("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)]
}

const DATASET: &[(&str, &str)] = &[
    ("train/a.txt", "alpha"),
    ("train/sub/b.txt", "beta"),
    ("train2/not-me.txt", "another prefix"),
    ("model.bin", "weights"),
];

/// The mounts every launch here asks for: a prefix, one object, and a `mode: COPY` object.
const MOUNTS: &str = "file_mounts:\n  ~/data: s3://sky-it-data/train\n  \
                      ~/model.bin: s3://sky-it-data/model.bin\n  ~/copied:\n    \
                      source: s3://sky-it-data/train/sub\n    mode: COPY\n";

const SETUP: &str = "setup: echo \"setup sees $(cat ~/data/a.txt) $(cat ~/model.bin)\"\n\
                     run: echo \"run sees $(cat ~/data/sub/b.txt) $(cat ~/copied/b.txt) \
                     $(ls ~/data | tr '\\n' ' ')\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_paths_are_on_every_local_node_before_setup() {
    let moto = moto::start_moto().await;
    seed(&moto, "sky-it-data", DATASET);
    let home = Home::new();
    let env = configure(home.path(), &moto);
    std::fs::write(
        home.path().join("task.yaml"),
        format!("resources:\n  infra: local\nnum_nodes: 2\n{MOUNTS}{SETUP}"),
    )
    .expect("task");
    let mut cmd = sky(home.path());
    cmd.current_dir(home.path())
        .envs(env.clone())
        .args(["launch", "-y", "-c", "bk", "task.yaml"]);
    let stdout = tokio::task::spawn_blocking(move || ok(&mut cmd))
        .await
        .expect("join");
    for (role, rank) in [("head", 0), ("worker1", 1)] {
        for expected in [
            format!("({role}, rank={rank}) setup sees alpha weights"),
            format!("({role}, rank={rank}) run sees beta beta a.txt sub"),
        ] {
            assert!(
                stdout.lines().any(|l| l.trim_end() == expected),
                "missing {expected:?} in:\n{stdout}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_paths_reach_ssh_nodes_with_a_read_only_token() {
    let Some(pool) = Pool::start(2) else { return };
    let moto = moto::start_moto().await;
    seed(&moto, "sky-it-data", DATASET);
    let env = configure(pool.path(), &moto);
    // And a bucket Sky makes from a local directory, deleted at `down` (persistent: false).
    std::fs::create_dir_all(pool.path().join("up")).expect("up");
    std::fs::write(pool.path().join("up/u.txt"), "uploaded").expect("u");
    let made = "  ~/up:\n    name: sky-it-ssh-up\n    source: ./up\n    mode: COPY\n    \
                persistent: false\n";
    std::fs::write(
        pool.path().join("task.yaml"),
        format!("resources:\n  infra: ssh/p\nnum_nodes: 2\n{MOUNTS}{made}{SETUP}"),
    )
    .expect("task");
    let nodes: Vec<_> = pool.nodes.nodes.iter().map(|n| n.home.clone()).collect();
    let mut cmd = pool.sky();
    cmd.current_dir(pool.path())
        .envs(env.clone())
        .args(["launch", "-y", "-c", "bk", "task.yaml"]);
    let stdout = tokio::task::spawn_blocking(move || ok(&mut cmd))
        .await
        .expect("join");
    for (role, rank) in [("head", 0), ("worker1", 1)] {
        for expected in [
            format!("({role}, rank={rank}) setup sees alpha weights"),
            format!("({role}, rank={rank}) run sees beta beta a.txt sub"),
        ] {
            assert!(
                stdout.lines().any(|l| l.trim_end() == expected),
                "missing {expected:?} in:\n{stdout}"
            );
        }
    }
    let secret = &env[1].1;
    for home in &nodes {
        assert_eq!(
            std::fs::read_to_string(home.join("data/sub/b.txt")).expect("copied"),
            "beta"
        );
        assert_eq!(
            std::fs::read_to_string(home.join("up/u.txt")).expect("from the made bucket"),
            "uploaded"
        );
        assert!(!home.join("data.sky-part").exists(), "no stage left");
        assert!(!home.join("data/not-me.txt").exists() && !home.join("train2").exists());
        // The user's secret is nowhere on the node's disk.
        for file in crate::ssh::walk(home) {
            if let Ok(text) = std::fs::read_to_string(&file) {
                assert!(!text.contains(secret.as_str()), "secret in {file}");
            }
        }
    }
    let mut down = pool.sky();
    down.envs(env.clone()).args(["down", "-y", "bk"]);
    tokio::task::spawn_blocking(move || down.output())
        .await
        .expect("join")
        .map(|out| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "down: {stderr}");
            assert!(
                stderr.contains("deleted bucket 'sky-it-ssh-up' (persistent: false)"),
                "{stderr}"
            );
        })
        .expect("sky runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_sky_cannot_serve_are_refused_before_anything_is_created() {
    let moto = moto::start_moto().await;
    seed(&moto, "sky-it-data", DATASET);
    let home = Home::new();
    let env = configure(home.path(), &moto);
    let cases = [
        (
            "~/d: s3://sky-it-missing/x",
            "file_mounts.~/d: bucket 'sky-it-missing' does not exist",
        ),
        (
            "~/d: s3://sky-it-data/nothing",
            "file_mounts.~/d: s3://sky-it-data/nothing holds no objects",
        ),
        (
            "~/d:\n    source: s3://sky-it-data/train\n    mode: MOUNT",
            "file_mounts.~/d.mode: MOUNT of 's3://sky-it-data/train' is not supported yet",
        ),
        (
            "~/d:\n    name: sky-it-new\n    source: ./task.yaml",
            "file_mounts.~/d.mode: MOUNT of bucket 'sky-it-new' is not supported yet",
        ),
        (
            "~/d:\n    name: sky-it-new\n    source: ./not-here\n    mode: COPY",
            "file_mounts.~/d.source: local path './not-here' does not exist",
        ),
        (
            "~/d:\n    name: sky-it-out\n    mode: COPY",
            "file_mounts.~/d: an empty bucket for outputs ('sky-it-out', no `source`)",
        ),
        (
            "~/d: gs://sky-it-data/train",
            "file_mounts.~/d: Sky cannot read gcs buckets yet",
        ),
        (
            "~/d: r2://sky-it-data",
            "task.yaml:4:8: file_mounts.~/d: 'r2://sky-it-data' is on Cloudflare R2",
        ),
        (
            "/abs: s3://sky-it-data/train",
            "file_mounts./abs: '/abs' is outside the node's directory",
        ),
    ];
    for (mount, expected) in cases {
        std::fs::write(
            home.path().join("task.yaml"),
            format!("resources:\n  infra: local\nfile_mounts:\n  {mount}\nrun: echo hi\n"),
        )
        .expect("task");
        let mut cmd = sky(home.path());
        cmd.current_dir(home.path()).envs(env.clone()).args([
            "launch",
            "-y",
            "-c",
            "fm",
            "task.yaml",
        ]);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("sky runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mount} must be refused");
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
        let status = sky(home.path())
            .args(["status", "-o", "json"])
            .output()
            .expect("status");
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(!text.contains("\"fm\""), "no record for {mount}: {text}");
    }
}
