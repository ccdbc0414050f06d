//! The node's copy command, run for real: rclone (from the test machine's packages) copying from
//! its `local` backend, so the staging, merging and failure paths are the ones nodes run.

use std::path::Path;
use std::process::{Command, Stdio};

use super::*;
use crate::ssh::session::quote;

fn copy_of(remote: &str, is_object: bool, secrets: Vec<(String, Secret)>) -> BucketCopy {
    BucketCopy {
        remote: "/data".into(),
        uri: BucketUri::parse("s3://bucket/path").expect("uri"),
        listing: Listing {
            objects: 1,
            bytes: 1,
            is_object,
            complete: true,
        },
        access: NodeAccess::new(remote, secrets).expect("access"),
    }
}

/// Runs the copy as a node would (`sh -c`, credentials on stdin); stdout+stderr and success.
fn run(copy: &BucketCopy, dest: &Path) -> (bool, String) {
    let found = Command::new("rclone").arg("version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "rclone is not installed; the README's test command installs it (Debian's rclone)"
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(copy.script(&quote(&dest.to_string_lossy())))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dest.parent().expect("parent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&copy.stdin()).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_prefix_merges_into_the_destination_and_an_object_becomes_a_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("bucket");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("a.txt"), "a").expect("write");
    std::fs::write(src.join("sub/b.txt"), "b").expect("write");
    let dest = dir.path().join("data");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("kept.txt"), "mine").expect("write");

    let secret = vec![("RCLONE_TEST_TOKEN".to_owned(), Secret::new("s3cr3t"))];
    let (ok, log) = run(
        &copy_of(&format!(":local:{}", src.display()), false, secret),
        &dest,
    );
    assert!(ok, "{log}");
    assert!(!log.contains("s3cr3t"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/b.txt")).expect("b"),
        "b"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("kept.txt")).expect("kept"),
        "mine"
    );
    assert!(
        !dir.path().join("data.sky-part").exists(),
        "the stage is gone"
    );

    let file = dir.path().join("deep/one.txt");
    let (ok, log) = run(
        &copy_of(
            &format!(":local:{}", src.join("a.txt").display()),
            true,
            vec![],
        ),
        &file,
    );
    assert!(ok, "{log}");
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "a");
}

#[test]
fn a_failed_copy_leaves_the_destination_as_it_was_and_says_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("data");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("kept.txt"), "mine").expect("write");
    let missing = dir.path().join("no-such-bucket");
    let (ok, log) = run(
        &copy_of(&format!(":local:{}", missing.display()), false, vec![]),
        &dest,
    );
    assert!(!ok, "{log}");
    assert!(log.contains("directory not found"), "{log}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["data".to_owned()], "no stage is left behind");
    assert_eq!(
        std::fs::read_to_string(dest.join("kept.txt")).expect("kept"),
        "mine"
    );
}

#[test]
fn access_takes_only_rclone_variables_of_one_line() {
    assert!(NodeAccess::new(":s3:b", vec![("PATH".into(), Secret::new("/x"))]).is_err());
    assert!(NodeAccess::new(":s3:b", vec![("RCLONE_".into(), Secret::new("x"))]).is_err());
    let two_lines = vec![("RCLONE_S3_SESSION_TOKEN".into(), Secret::new("a\nb"))];
    assert!(NodeAccess::new(":s3:b", two_lines).is_err());
    let ok = NodeAccess::new(
        ":s3:b",
        vec![("RCLONE_S3_ACCESS_KEY_ID".into(), Secret::new("AKIA"))],
    )
    .expect("valid");
    assert!(!format!("{ok:?}").contains("AKIA"));
}

#[test]
fn local_sources_are_laid_out_as_skypilot_uploads_them() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub/.git")).expect("mkdir");
    std::fs::write(data.join("a.txt"), "a").expect("a");
    std::fs::write(data.join("sub/b.txt"), "bb").expect("b");
    std::fs::write(data.join("sub/.git/HEAD"), "ref").expect("git");
    std::fs::write(data.join("x.log"), "log").expect("log");
    std::fs::write(data.join(".gitignore"), "*.log\n").expect("ignore");
    let one = dir.path().join("one.bin");
    std::fs::write(&one, "1").expect("one");
    let keys = |sources: &[std::path::PathBuf]| -> Vec<String> {
        upload_files(sources)
            .expect("files")
            .into_iter()
            .map(|f| f.key)
            .collect()
    };
    assert_eq!(
        keys(std::slice::from_ref(&data)),
        [".gitignore", "a.txt", "sub/b.txt"],
        "one directory: its contents at the root, ignores honoured, .git skipped"
    );
    assert_eq!(keys(std::slice::from_ref(&one)), ["one.bin"]);
    assert_eq!(
        keys(&[data.clone(), one.clone()]),
        ["data/.gitignore", "data/a.txt", "data/sub/b.txt", "one.bin"],
        "several: each under its own name"
    );
    let err = upload_files(&[one.clone(), one]).expect_err("clash");
    assert!(err.contains("would both be uploaded as 'one.bin'"), "{err}");
    let sizes: u64 = upload_files(&[data])
        .expect("files")
        .iter()
        .map(|f| f.size)
        .sum();
    assert_eq!(sizes, 1 + 2 + 6);
}
