//! Workdir sync for nodes that are directories on this machine: copies the task's workdir into
//! `<node dir>/sky_workdir` on every node, honouring `.skyignore` (or, without one, `.gitignore`)
//! as SkyPilot does.
//!
//! The same nodes' `file_mounts` ([`place_file_mounts`]). What this module does not do: send
//! files to remote nodes (`crate::ssh::sync` packs the same entry list into a tar stream over
//! SSH).

use std::fs;
use std::path::{Path, PathBuf};

use crate::jobs::WORKDIR_NAME;
use crate::storage::{BucketCopy, NodeMounts, local_destination};

/// What one entry of a workdir is. Symlinks are kept as links, never followed, whatever they point
/// at (inside the tree, outside it, or nowhere), as SkyPilot's `rsync -a` keeps them: the link is
/// the user's data, and following one could send a whole home directory or loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// What a workdir sync sends: paths relative to `src` and what each is, parents before children,
/// honouring `.skyignore` (else `.gitignore`) and skipping `.git`. Shared by the local copy and
/// the SSH upload so both send the same entries. An iterator, so a tree of millions of files is
/// walked as it is sent rather than listed first. Other kinds (FIFOs, sockets, devices) are left
/// out with a warning naming them, as `rsync -a` does without `-D`.
pub(crate) fn workdir_entries(
    src: &Path,
) -> Result<impl Iterator<Item = Result<(PathBuf, EntryKind), String>>, String> {
    if !src.is_dir() {
        return Err(format!("{} is not a directory", src.display()));
    }
    let has_skyignore = src.join(".skyignore").is_file();
    let walker = ignore::WalkBuilder::new(src)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .ignore(false)
        .git_ignore(!has_skyignore)
        .follow_links(false)
        .add_custom_ignore_filename(".skyignore")
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let root = src.to_path_buf();
    Ok(walker.filter_map(move |entry| {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e.to_string())),
        };
        let rel = match entry.path().strip_prefix(&root) {
            Ok(rel) if rel.as_os_str().is_empty() => return None,
            Ok(rel) => rel.to_path_buf(),
            Err(e) => return Some(Err(e.to_string())),
        };
        let kind = match entry.file_type() {
            Some(k) if k.is_symlink() => EntryKind::Symlink,
            Some(k) if k.is_dir() => EntryKind::Dir,
            Some(k) if k.is_file() => EntryKind::File,
            _ => {
                tracing::warn!(path = %entry.path().display(), "not a file, directory or symlink: not synced");
                return None;
            }
        };
        Some(Ok((rel, kind)))
    }))
}

/// Replaces `node_dir/sky_workdir` with a filtered copy of `src`; returns the files copied.
/// Symlinks are recreated with the same target (see [`EntryKind`]), like the SSH upload's.
pub(crate) fn sync_workdir(src: &Path, node_dir: &Path) -> Result<usize, String> {
    if !src.is_dir() {
        return Err(format!("{} is not a directory", src.display()));
    }
    let dest = node_dir.join(WORKDIR_NAME);
    match fs::remove_dir_all(&dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {}: {e}", dest.display())),
    }
    fs::create_dir_all(&dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut copied = 0;
    for entry in workdir_entries(src)? {
        let (rel, kind) = entry?;
        let target: PathBuf = dest.join(&rel);
        let from = src.join(&rel);
        if kind == EntryKind::Dir {
            fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        if kind == EntryKind::Symlink {
            let to = fs::read_link(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            symlink(&from, &to, &target)
                .map_err(|e| format!("{}: cannot recreate the symlink: {e}", from.display()))?;
        } else {
            fs::copy(&from, &target).map_err(|e| format!("{}: {e}", from.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Places a task's `file_mounts` in a node that is a directory on this machine: local files
/// and directories are copied (a directory merged into what is there, filtered like the
/// workdir), bucket paths copied by the same command a remote node runs, with a clean
/// environment (this shell's cloud keys stay out of it) and the credentials on its stdin.
pub(crate) async fn place_file_mounts(node_dir: &Path, mounts: &NodeMounts) -> Result<(), String> {
    for (remote, src) in &mounts.local {
        let dest = local_destination(node_dir, remote)
            .map_err(|e| format!("file_mounts.{remote}: {e}"))?;
        place_local(src, &dest).map_err(|e| format!("file_mounts.{remote}: {e}"))?;
    }
    for copy in &mounts.buckets {
        let dest = local_destination(node_dir, &copy.remote)
            .map_err(|e| format!("file_mounts.{}: {e}", copy.remote))?;
        run_copy(node_dir, copy, &dest)
            .await
            .map_err(|e| format!("file_mounts.{}: copying {}: {e}", copy.remote, copy.uri))?;
    }
    Ok(())
}

fn place_local(src: &Path, dest: &Path) -> Result<(), String> {
    if !src.is_dir() {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let part = dest.with_extension("sky-part");
        fs::copy(src, &part).map_err(|e| format!("{}: {e}", src.display()))?;
        return fs::rename(&part, dest).map_err(|e| format!("{}: {e}", dest.display()));
    }
    fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    for entry in workdir_entries(src)? {
        let (rel, kind) = entry?;
        let target = dest.join(&rel);
        let from = src.join(&rel);
        match kind {
            EntryKind::Dir => {
                fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            }
            EntryKind::File => {
                fs::copy(&from, &target).map_err(|e| format!("{}: {e}", from.display()))?;
            }
            EntryKind::Symlink => {
                let to = fs::read_link(&from).map_err(|e| format!("{}: {e}", from.display()))?;
                // A merge replaces what is there, as a copy of a file does.
                let _ = fs::remove_file(&target);
                symlink(&from, &to, &target).map_err(|e| format!("{}: {e}", target.display()))?;
            }
        }
    }
    Ok(())
}

async fn run_copy(node_dir: &Path, copy: &BucketCopy, dest: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let script = copy.script(&crate::ssh::session::quote(&dest.to_string_lossy()));
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", node_dir)
        .current_dir(node_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&copy.stdin())
            .await
            .map_err(|e| format!("cannot hand the copy its credentials: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("the copy did not finish: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(last_lines(&stderr, 8))
    }
}

/// The end of a tool's error output: what went wrong is last.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(unix)]
fn symlink(_from: &Path, to: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(to, link)
}

/// Windows has two kinds of links; the original's target decides (a dangling one is a file link).
#[cfg(windows)]
fn symlink(from: &Path, to: &Path, link: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::os::windows::fs::symlink_dir(to, link)
    } else {
        std::os::windows::fs::symlink_file(to, link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .build()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_some_and(|k| k.is_file()))
            .filter_map(|e| {
                e.path()
                    .strip_prefix(dir)
                    .ok()
                    .map(|p| p.display().to_string())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn skyignore_wins_over_gitignore_and_git_dir_is_skipped() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        for f in ["a.py", "data/big.bin", "logs/x.log", ".git/HEAD", ".env"] {
            let p = src.join(f);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, "x").expect("write");
        }
        fs::write(src.join(".gitignore"), "data/\n").expect("gitignore");
        let node = tmp.path().join("node-0");
        sync_workdir(&src, &node).expect("sync");
        assert_eq!(
            files(&node.join(WORKDIR_NAME)),
            [".env", ".gitignore", "a.py", "logs/x.log"]
        );

        fs::write(src.join(".skyignore"), "*.log\n").expect("skyignore");
        sync_workdir(&src, &node).expect("sync again replaces");
        assert_eq!(
            files(&node.join(WORKDIR_NAME)),
            [".env", ".gitignore", ".skyignore", "a.py", "data/big.bin"]
        );
    }

    #[test]
    fn a_missing_workdir_is_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let err = sync_workdir(&tmp.path().join("nope"), tmp.path()).expect_err("missing");
        assert!(err.contains("is not a directory"), "{err}");
    }
}
