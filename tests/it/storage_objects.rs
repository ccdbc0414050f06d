//! Storage objects with a local `source` through the real `sky` binary, with moto as S3: Sky
//! creates the bucket (tagged as this home's), uploads the files honouring `.skyignore`, the
//! nodes copy it before setup, `sky storage ls` shows it, `persistent: false` deletes it at
//! `down`, a persistent one is reused by the next launch and deleted by `sky storage delete`, and
//! a bucket of that name that Sky did not create is refused before anything is created.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sky_testkit::moto::{self, Moto};

use crate::local_cloud::{Home, sky};
use crate::storage::{configure, moto_remote, seed};

/// The files a local source holds: `debug.log` is ignored by its `.skyignore`.
fn source_dir(home: &Path) {
    let up = home.join("up");
    std::fs::create_dir_all(up.join("sub")).expect("mkdir");
    std::fs::write(up.join("a.txt"), "alpha").expect("a");
    std::fs::write(up.join("sub/b.txt"), "beta").expect("b");
    std::fs::write(up.join("debug.log"), "noise").expect("log");
    std::fs::write(up.join(".skyignore"), "*.log\n").expect("ignore");
}

fn task(home: &Path, bucket: &str, persistent: bool) {
    std::fs::write(
        home.join("task.yaml"),
        format!(
            "resources:\n  infra: local\nfile_mounts:\n  ~/up:\n    name: {bucket}\n    \
             source: ./up\n    mode: COPY\n    persistent: {persistent}\n\
             run: echo \"node sees $(cat ~/up/a.txt) $(cat ~/up/sub/b.txt) \
             $(ls -A ~/up | tr '\\n' ' ')\"\n"
        ),
    )
    .expect("task");
}

/// Runs `sky` in `home` with `env`; returns the whole output.
async fn run(home: &Path, env: &[(&'static str, String)], args: &[&str]) -> Output {
    let mut cmd = sky(home);
    cmd.current_dir(home).envs(env.iter().cloned()).args(args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("sky runs")
}

async fn ok(home: &Path, env: &[(&'static str, String)], args: &[&str]) -> (String, String) {
    let out = run(home, env, args).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "sky {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

async fn storage_ls(home: &Path, env: &[(&'static str, String)]) -> Vec<Value> {
    let (stdout, _) = ok(home, env, &["storage", "ls", "-o", "json"]).await;
    serde_json::from_str(&stdout).expect("storage ls json")
}

/// The keys in `bucket`, as rclone lists them; `None` when the bucket does not exist.
fn keys(moto: &Moto, bucket: &str) -> Option<Vec<String>> {
    let (id, secret) = moto::made_up_credentials();
    let out = Command::new("rclone")
        .args(["--config", "/dev/null", "lsf", "-R", "--files-only"])
        .arg(moto_remote(moto, bucket))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RCLONE_S3_ACCESS_KEY_ID", &id)
        .env("RCLONE_S3_SECRET_ACCESS_KEY", &secret)
        .output()
        .expect("rclone");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("directory not found") || stderr.contains("NoSuchBucket"),
            "rclone lsf {bucket}: {stderr}"
        );
        return None;
    }
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    Some(keys)
}

const UPLOADED: [&str; 3] = [".skyignore", "a.txt", "sub/b.txt"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_source_gets_a_bucket_that_persistent_false_deletes_at_down() {
    let moto = moto::start_moto().await;
    let home = Home::new();
    let env = configure(home.path(), &moto);
    source_dir(home.path());
    task(home.path(), "sky-it-up", false);
    let (stdout, stderr) = ok(
        home.path(),
        &env,
        &["launch", "-y", "-c", "obj", "task.yaml"],
    )
    .await;
    assert!(
        stdout.contains("node sees alpha beta .skyignore a.txt sub"),
        "{stdout}"
    );
    assert!(
        stderr.contains("file_mounts.~/up: created bucket s3://sky-it-up in us-east-1"),
        "{stderr}"
    );
    assert!(stderr.contains("uploaded 3 files"), "{stderr}");
    assert_eq!(keys(&moto, "sky-it-up").expect("bucket"), UPLOADED);
    let listed = storage_ls(home.path(), &env).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let s = &listed[0];
    assert_eq!(s["name"], "sky-it-up");
    assert_eq!(s["store"], "s3");
    assert_eq!(s["clusters"], serde_json::json!(["obj"]));
    assert_eq!(s["objects"], 3);
    assert_eq!(s["persistent"], false);
    assert_eq!(s["sources"], serde_json::json!(["./up"]));

    let (_, stderr) = ok(home.path(), &env, &["down", "-y", "obj"]).await;
    assert!(
        stderr.contains("deleted bucket 'sky-it-up' (persistent: false)"),
        "{stderr}"
    );
    assert_eq!(keys(&moto, "sky-it-up"), None, "the bucket is gone");
    assert!(storage_ls(home.path(), &env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_bucket_outlives_down_is_reused_and_deleted_only_when_unused() {
    let moto = moto::start_moto().await;
    let home = Home::new();
    let env = configure(home.path(), &moto);
    source_dir(home.path());
    task(home.path(), "sky-it-keep", true);
    ok(
        home.path(),
        &env,
        &["launch", "-y", "-c", "p1", "task.yaml"],
    )
    .await;
    ok(home.path(), &env, &["down", "-y", "p1"]).await;
    assert_eq!(keys(&moto, "sky-it-keep").expect("kept"), UPLOADED);
    let listed = storage_ls(home.path(), &env).await;
    assert_eq!(listed[0]["clusters"], serde_json::json!([]), "{listed:?}");

    std::fs::write(home.path().join("up/new.txt"), "gamma").expect("new");
    let (stdout, stderr) = ok(
        home.path(),
        &env,
        &["launch", "-y", "-c", "p2", "task.yaml"],
    )
    .await;
    assert!(
        stderr.contains("reusing this home's bucket s3://sky-it-keep"),
        "{stderr}"
    );
    assert!(
        stderr.contains("uploaded 1 files") && stderr.contains("3 unchanged files not sent again"),
        "{stderr}"
    );
    assert!(stdout.contains("new.txt"), "{stdout}");

    let busy = run(
        home.path(),
        &env,
        &["storage", "delete", "-y", "sky-it-keep"],
    )
    .await;
    assert!(!busy.status.success());
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        stderr.contains("bucket 'sky-it-keep' is used by cluster(s) p2"),
        "{stderr}"
    );
    ok(home.path(), &env, &["down", "-y", "p2"]).await;
    assert!(keys(&moto, "sky-it-keep").is_some(), "persistent: kept");
    let (stdout, _) = ok(
        home.path(),
        &env,
        &["storage", "delete", "-y", "sky-it-keep", "-o", "json"],
    )
    .await;
    let deleted: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        deleted,
        serde_json::json!([{"name": "sky-it-keep", "existed": true}])
    );
    assert_eq!(keys(&moto, "sky-it-keep"), None);

    let unknown = run(
        home.path(),
        &env,
        &["storage", "delete", "-y", "sky-it-keep"],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no bucket 'sky-it-keep' in this Sky home's records"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_name_sky_did_not_create_is_refused_before_anything_is_created() {
    let moto = moto::start_moto().await;
    seed(&moto, "sky-it-theirs", &[("results.csv", "precious")]);
    let home = Home::new();
    let env = configure(home.path(), &moto);
    source_dir(home.path());
    task(home.path(), "sky-it-theirs", false);
    let out = run(
        home.path(),
        &env,
        &["launch", "-y", "-c", "th", "task.yaml"],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "file_mounts.~/up: bucket 'sky-it-theirs' exists and is not this Sky home's (it has \
             no sky-owner tag); choose another `name`, or read it with `source: \
             s3://sky-it-theirs`"
        ),
        "{stderr}"
    );
    assert_eq!(
        keys(&moto, "sky-it-theirs").expect("still there"),
        ["results.csv"]
    );
    assert!(storage_ls(home.path(), &env).await.is_empty());
    let (stdout, _) = ok(home.path(), &env, &["status", "-o", "json"]).await;
    assert!(!stdout.contains("\"th\""), "no cluster record: {stdout}");
}
