//! The packer against the system `tar` (GNU tar here, as on the nodes): every test extracts or
//! lists what was packed. A machine without `tar` fails these tests; it does not skip them.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;

/// What an entry of a tree is, as far as a sync must keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File {
        data: Vec<u8>,
        mode: u32,
        mtime: u64,
    },
    Link(PathBuf),
}

/// Every entry under `root` (relative paths), links not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            if meta.file_type().is_symlink() {
                out.insert(rel, Node::Link(fs::read_link(&path).expect("readlink")));
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &path, out);
            } else {
                out.insert(
                    rel,
                    Node::File {
                        data: fs::read(&path).expect("read"),
                        mode: mode_of(&meta),
                        mtime: mtime_of(&meta),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Packs `src` and extracts it with the system tar, as the nodes do, into a fresh directory.
fn round_trip(src: &Path, out: &Path) -> usize {
    let mut archive = Vec::new();
    let files = write_tree(src, &mut archive).expect("pack");
    fs::create_dir_all(out).expect("out dir");
    let mut tar = Command::new("tar")
        .args(["-xf", "-", "--no-same-owner", "-C"])
        .arg(out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the system tar runs");
    tar.stdin
        .take()
        .expect("stdin")
        .write_all(&archive)
        .expect("feed tar");
    let done = tar.wait_with_output().expect("tar ends");
    assert!(
        done.status.success(),
        "tar -x failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    files
}

fn write(path: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, data).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn long_utf8_names_deep_paths_symlinks_empty_dirs_and_modes_survive_gnu_tar() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let long_utf8 = format!("{}.txt", "ü".repeat(60)); // 124 bytes, one component
    let deep: PathBuf = (0..5).map(|i| format!("{i}-{}", "é".repeat(30))).collect(); // > 300 bytes
    let ascii_split = format!("{}/{}", "d".repeat(120), "f".repeat(90)); // ustar's prefix field
    let ascii_deep = format!("{}/{}/{}", "a".repeat(150), "b".repeat(150), "c".repeat(20));
    write(&src.join(&long_utf8), b"long name", 0o644);
    write(&src.join(&deep).join("leaf.bin"), &[0, 1, 2, 255], 0o600);
    write(&src.join(&ascii_split), b"split", 0o644);
    write(&src.join(&ascii_deep), b"pax path", 0o644);
    write(&src.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
    write(&src.join("skip.log"), b"ignored", 0o644);
    write(&src.join(".skyignore"), b"*.log\n", 0o644);
    fs::create_dir_all(src.join("empty/nested-empty")).expect("empty dirs");
    std::os::unix::fs::symlink("run.sh", src.join("to-file")).expect("link");
    std::os::unix::fs::symlink(&deep, src.join("to-deep-dir")).expect("link");
    std::os::unix::fs::symlink("nowhere/at/all", src.join("dangling")).expect("link");
    std::os::unix::fs::symlink("/etc/hostname", src.join("outside")).expect("link");
    let long_target: PathBuf = std::iter::repeat_n("ß".repeat(40), 3).collect();
    std::os::unix::fs::symlink(&long_target, src.join("long-target")).expect("link");

    let out = tmp.path().join("out");
    let files = round_trip(&src, &out);
    let mut expected = snapshot(&src);
    expected.remove(Path::new("skip.log"));
    assert_eq!(
        files, 6,
        "the regular files, .skyignore included, skip.log not"
    );
    let got = snapshot(&out);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(got, expected, "contents, modes, mtimes and link targets");
    assert_eq!(
        got[Path::new("outside")],
        Node::Link("/etc/hostname".into()),
        "a link out of the workdir stays a link"
    );
}

/// The local cloud's copy and the archive agree on what a workdir holds.
#[test]
fn the_local_copy_keeps_the_same_entries_as_the_archive() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    write(&src.join("a/b.txt"), b"b", 0o644);
    write(&src.join("x.sh"), b"x", 0o755);
    fs::create_dir_all(src.join("empty")).expect("empty");
    std::os::unix::fs::symlink("a/b.txt", src.join("rel")).expect("link");
    std::os::unix::fs::symlink("/nonexistent/dangling", src.join("dangling")).expect("link");
    std::os::unix::fs::symlink("a", src.join("dirlink")).expect("link");
    let out = tmp.path().join("tar");
    round_trip(&src, &out);
    let node = tmp.path().join("node");
    crate::api::sync::sync_workdir(&src, &node).expect("local copy");
    let strip_times = |tree: BTreeMap<PathBuf, Node>| -> BTreeMap<PathBuf, Node> {
        tree.into_iter()
            .map(|(p, n)| match n {
                Node::File { data, mode, .. } => (
                    p,
                    Node::File {
                        data,
                        mode,
                        mtime: 0,
                    },
                ),
                other => (p, other),
            })
            .collect()
    };
    assert_eq!(
        strip_times(snapshot(&node.join(crate::jobs::WORKDIR_NAME))),
        strip_times(snapshot(&out))
    );
}

/// Peak resident memory of this process (Linux's VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

/// An 8 GiB + 3 byte sparse file (no disk used) streamed to two "nodes" at once, each a
/// `tar -tv` that reads every byte from its pipe: both list the exact size, and this process
/// never held more than a sliver of the 8 GiB.
#[test]
fn an_8_gib_file_streams_to_two_nodes_with_its_exact_size_in_bounded_memory() {
    const SIZE: u64 = 8 * 1024 * 1024 * 1024 + 3;
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).expect("src");
    fs::File::create(src.join("huge.bin"))
        .expect("create")
        .set_len(SIZE)
        .expect("sparse file");
    fs::write(src.join("after.txt"), "after the big one").expect("small file");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = std::time::Instant::now();
    let listings = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let files = stream_to(Source::Tree(src.clone()), 2, |_, queue| {
            let tx = tx.clone();
            async move {
                let listing = list_with_tar(queue).await?;
                let _ = tx.send(listing);
                Ok(())
            }
        })
        .await
        .expect("streamed");
        assert_eq!(files, 2);
        drop(tx);
        let mut listings = Vec::new();
        while let Some(l) = rx.recv().await {
            listings.push(l);
        }
        listings
    });
    assert_eq!(listings.len(), 2);
    for listing in listings {
        let huge = listing
            .lines()
            .find(|l| l.ends_with(" huge.bin"))
            .unwrap_or_else(|| panic!("huge.bin listed in:\n{listing}"));
        assert!(
            huge.split_whitespace().any(|w| w == SIZE.to_string()),
            "exact size in {huge:?}"
        );
        assert!(listing.contains(" after.txt"), "{listing}");
    }
    let peak = peak_rss();
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        peak,
        "8 GiB streamed"
    );
    assert!(
        peak < 256 * 1024 * 1024,
        "peak RSS {peak} bytes while streaming 8 GiB to two nodes"
    );
}

/// A "node" that is `tar -tv` fed from `queue` as `run_fed` feeds a channel.
async fn list_with_tar(mut queue: tokio::sync::mpsc::Receiver<Bytes>) -> Result<String, SshError> {
    use tokio::io::AsyncWriteExt;
    let mut tar = tokio::process::Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SshError::Local(format!("tar: {e}")))?;
    let mut stdin = tar.stdin.take().expect("stdin");
    let mut complete = false;
    while let Some(chunk) = queue.recv().await {
        if chunk.is_empty() {
            complete = true;
            break;
        }
        stdin
            .write_all(&chunk)
            .await
            .map_err(|e| SshError::Local(format!("feeding tar: {e}")))?;
    }
    drop(stdin);
    let out = tar
        .wait_with_output()
        .await
        .map_err(|e| SshError::Local(format!("tar: {e}")))?;
    if !complete || !out.status.success() {
        return Err(SshError::Local(format!(
            "complete={complete}, tar: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_failing_node_is_the_error_reported_not_the_packer_that_lost_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    // Bigger than the queues, so the packer is still writing when the node gives up.
    fs::create_dir_all(&src).expect("src");
    fs::File::create(src.join("big"))
        .expect("create")
        .set_len((QUEUE * CHUNK * 4) as u64)
        .expect("sparse");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let err = rt
        .block_on(stream_to(
            Source::Tree(src),
            2,
            |rank, mut queue| async move {
                if rank == 1 {
                    return Err(SshError::Local("node 1 refused".into()));
                }
                while queue.recv().await.is_some() {}
                Ok(())
            },
        ))
        .expect_err("node 1 failed");
    assert_eq!(err.to_string(), "node 1 refused");

    let err = rt
        .block_on(stream_to(
            Source::Tree(tmp.path().join("missing")),
            1,
            |_, mut queue| async move {
                let complete = queue.recv().await.is_some_and(|c| c.is_empty());
                assert!(!complete, "no end marker after a failed pack");
                Err(SshError::Local("cut off".into()))
            },
        ))
        .expect_err("nothing to pack");
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn a_file_that_shrinks_while_read_fails_instead_of_desynchronising_the_stream() {
    let mut short = Exact {
        inner: &b"abc"[..],
        left: 5,
    };
    let mut buf = Vec::new();
    let err = short.read_to_end(&mut buf).expect_err("short");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    let mut grown = Exact {
        inner: &b"abcdef"[..],
        left: 4,
    };
    let mut buf = Vec::new();
    grown
        .read_to_end(&mut buf)
        .expect("cut at the announced size");
    assert_eq!(buf, b"abcd");
}

#[test]
fn pax_records_count_their_own_length() {
    for value_len in [
        0, 1, 4, 5, 6, 85, 86, 87, 88, 94, 95, 96, 990, 995, 996, 997, 5000,
    ] {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &vec![b'x'; value_len]);
        let space = out.iter().position(|&b| b == b' ').expect("space");
        let len: usize = std::str::from_utf8(&out[..space])
            .expect("digits")
            .parse()
            .expect("a number");
        assert_eq!(len, out.len(), "value of {value_len} bytes");
        assert!(out.ends_with(b"\n"));
    }
}

/// One generated entry: a path of 1-3 components and what it is.
#[derive(Debug, Clone)]
enum Gen {
    Dir,
    File { size: usize, exec: bool },
    Link(String),
}

fn component() -> impl Strategy<Value = String> {
    // Short ASCII, multi-byte letters and emoji, and names long enough to need PAX (a component
    // may hold up to 255 bytes on Linux; 50 four-byte characters are 200).
    prop_oneof![
        "[a-z0-9_]{1,12}",
        "[a-zA-Zéüßøå日本語中文 _.-]{1,40}",
        "[🎉🦀ñ]{20,50}",
        "[a-z]{101,200}",
    ]
    .prop_filter("a usable file name", |s| {
        !matches!(
            s.as_str(),
            "." | ".." | ".git" | ".skyignore" | ".gitignore"
        )
    })
}

fn entry() -> impl Strategy<Value = (Vec<String>, Gen)> {
    let kind = prop_oneof![
        Just(Gen::Dir),
        (0usize..20_000, any::<bool>()).prop_map(|(size, exec)| Gen::File { size, exec }),
        "[a-z./éß]{1,150}".prop_map(Gen::Link),
    ];
    (proptest::collection::vec(component(), 1..4), kind)
}

/// Creates what it can of `entries` under `root` (a later entry whose parent is a file or a
/// link, or that already exists, is dropped: generated trees need not be consistent).
fn build(root: &Path, entries: &[(Vec<String>, Gen)]) {
    fs::create_dir_all(root).expect("root");
    for (i, (parts, kind)) in entries.iter().enumerate() {
        let path: PathBuf = parts.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let parent = path.parent().expect("parent");
        if fs::symlink_metadata(&path).is_ok() || fs::create_dir_all(parent).is_err() {
            continue;
        }
        if fs::symlink_metadata(parent).is_ok_and(|m| !m.is_dir()) {
            continue;
        }
        match kind {
            Gen::Dir => drop(fs::create_dir(&path)),
            Gen::File { size, exec } => {
                let data: Vec<u8> = (0..*size).map(|b| (b * 31 + i) as u8).collect();
                write(&path, &data, if *exec { 0o755 } else { 0o644 });
            }
            Gen::Link(target) => drop(std::os::unix::fs::symlink(target, &path)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("SKY_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    /// Any generated tree (UTF-8 names up to 200 bytes, symlinks anywhere, files up to 20 kB)
    /// extracts with GNU tar to the same tree.
    #[test]
    fn generated_trees_round_trip_through_gnu_tar(entries in proptest::collection::vec(entry(), 0..24)) {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        build(&src, &entries);
        let out = tmp.path().join("out");
        round_trip(&src, &out);
        prop_assert_eq!(snapshot(&out), snapshot(&src));
    }
}
