//! Workdir upload to remote nodes: the filtered file list (the same `.skyignore`/`.gitignore`
//! rules as the local copy) packed as a tar stream into one exec channel running `tar -x`.
//!
//! Why tar over the session instead of rsync: one round trip per node, no rsync binary needed on
//! the client (Windows) and the same replace-the-whole-workdir semantics as the local cloud; the
//! cost is re-sending unchanged files, which only matters for workdirs of hundreds of MB (rsync
//! over the same connection is the upgrade path then). `file_mounts` of local paths go the same
//! way ([`MountUpload`]); bucket paths are copied by the node itself ([`copy_bucket`]). What
//! this module does not do: FUSE mounts of buckets or deletion-preserving incremental sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SshError;
use super::archive::{self, Source};
use super::remote::RemoteNode;
use super::session::{SshSession, quote};
use crate::jobs::WORKDIR_NAME;
use crate::storage::BucketCopy;

/// Replaces `~/sky_workdir` on every node with `src` (filtered), the tree read once and streamed
/// to all nodes at once (see [`archive`]); returns the files sent.
pub async fn upload_workdir(nodes: &[Arc<RemoteNode>], src: &Path) -> Result<usize, SshError> {
    let dest = format!("\"$HOME\"/{WORKDIR_NAME}");
    let command =
        format!("rm -rf {dest} && mkdir -p {dest} && tar -xf - -C {dest} --no-same-owner");
    let nodes = nodes.to_vec();
    archive::stream_to(
        Source::Tree(src.to_path_buf()),
        nodes.len(),
        |rank, queue| {
            let (node, command) = (nodes[rank].clone(), command.clone());
            async move { node.session.run_fed(&command, queue).await.map(drop) }
        },
    )
    .await
}

/// One `file_mounts` entry of a local path (for a directory packed with the same
/// `.skyignore`/`.gitignore` filter as the workdir, as SkyPilot's rsync does), read once for all
/// nodes when it is uploaded.
#[derive(Debug, Clone)]
pub struct MountUpload {
    /// Where it goes on the node: absolute, `~/...` (the login's home) or relative to the home.
    pub remote: String,
    src: PathBuf,
    is_dir: bool,
}

/// The name a single file travels under, extracted next to its destination and then moved over
/// it, so a reader never sees half a file and a cut-off stream never replaces the old one.
const PART_NAME: &str = ".sky-part";

impl MountUpload {
    /// Checks `src` (a file or a directory) for placing at `remote`; nothing is read yet.
    pub fn prepare(remote: &str, src: &Path) -> Result<MountUpload, SshError> {
        let meta = std::fs::metadata(src)
            .map_err(|e| SshError::Local(format!("{}: {e}", src.display())))?;
        Ok(MountUpload {
            remote: remote.to_owned(),
            src: src.to_path_buf(),
            is_dir: meta.is_dir(),
        })
    }

    /// The shell command placing the stream on a node. A directory is merged into what is there
    /// (as rsync would); a file replaces the old one atomically. Parents are created, with
    /// `sudo -n` when the login may not write there (a VM's `/data`).
    fn command(&self) -> String {
        let path = remote_path(&self.remote);
        let (dir, rest) = if self.is_dir {
            (r#""$p""#, r#"tar -xf - -C "$p" --no-same-owner"#.to_owned())
        } else {
            // The part file is unique per upload: two mounts into one directory may run at once.
            (
                r#""$(dirname -- "$p")""#,
                format!(
                    r#"t="$(mktemp -d "$d/{PART_NAME}.XXXXXX")" && tar -xf - -C "$t" --no-same-owner && mv -f "$t/{PART_NAME}" "$p"; s=$?; rm -rf "$t"; exit $s"#
                ),
            )
        };
        format!(
            "p={path} && d={dir} && {{ mkdir -p \"$d\" 2>/dev/null || {{ sudo -n mkdir -p \"$d\" && \
             sudo -n chown \"$(id -u):$(id -g)\" \"$d\"; }}; }} && {rest}"
        )
    }

    /// Places the file or directory on every node in one command each, all at once, the
    /// source read once (see [`archive`]).
    pub async fn upload(&self, nodes: &[Arc<RemoteNode>]) -> Result<(), SshError> {
        let source = if self.is_dir {
            Source::Tree(self.src.clone())
        } else {
            Source::File {
                path: self.src.clone(),
                name: PART_NAME.to_owned(),
            }
        };
        let command = self.command();
        let nodes = nodes.to_vec();
        archive::stream_to(source, nodes.len(), |rank, queue| {
            let (node, command) = (nodes[rank].clone(), command.clone());
            async move { node.session.run_fed(&command, queue).await.map(drop) }
        })
        .await?;
        Ok(())
    }
}

/// Copies one bucket path onto the node with the node's own rclone (installed when missing), the
/// credentials on the command's stdin; a failure names the mount, the bucket and the node, with
/// the end of rclone's message.
pub async fn copy_bucket(session: &SshSession, copy: &BucketCopy) -> Result<(), SshError> {
    let out = session
        .exec(
            &copy.script(&remote_path(&copy.remote)),
            Some(&copy.stdin()),
        )
        .await?;
    if out.code == 0 {
        return Ok(());
    }
    Err(SshError::Local(format!(
        "file_mounts.{}: copying {} on {} failed (exit {}): {}",
        copy.remote,
        copy.uri,
        session.target(),
        out.code,
        crate::api::sync::last_lines(&String::from_utf8_lossy(&out.stderr), 8)
    )))
}

/// A remote path as a shell word: `~` and `~/...` are the login's home, like SkyPilot's.
fn remote_path(remote: &str) -> String {
    match remote.strip_prefix('~') {
        Some("") => r#""$HOME""#.to_owned(),
        Some(rest) if rest.starts_with('/') => format!(r#""$HOME"{}"#, quote(rest)),
        _ => quote(remote),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_expand_the_home_and_quote_the_rest() {
        assert_eq!(remote_path("~"), r#""$HOME""#);
        assert_eq!(remote_path("~/data dir"), r#""$HOME"'/data dir'"#);
        assert_eq!(remote_path("/mnt/it's"), r#"'/mnt/it'\''s'"#);
        assert_eq!(remote_path("rel/x"), "'rel/x'");
        assert_eq!(remote_path("~other/x"), "'~other/x'");
    }
}
