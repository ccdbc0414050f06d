//! Workdir upload to remote nodes: the filtered file list (the same `.skyignore`/`.gitignore`
//! rules as the local copy) packed as a tar stream into one exec channel running `tar -x`.
//!
//! Why tar over the session instead of rsync: one round trip per node, no rsync binary needed on
//! the client (Windows) and the same replace-the-whole-workdir semantics as the local cloud; the
//! cost is re-sending unchanged files, which only matters for workdirs of hundreds of MB (rsync
//! over the same connection is the upgrade path then). `file_mounts` of local paths go the same
//! way ([`MountUpload`]); bucket paths are copied by the node itself ([`copy_bucket`]). What
//! this module does not do: FUSE mounts of buckets or deletion-preserving incremental sync.

use std::path::Path;

use super::SshError;
use super::session::{SshSession, quote};
use crate::api::sync::workdir_entries;
use crate::jobs::WORKDIR_NAME;
use crate::storage::BucketCopy;

/// Replaces `~/sky_workdir` on the node with `src` (filtered); returns the files sent.
pub async fn upload_workdir(session: &SshSession, src: &Path) -> Result<usize, SshError> {
    let (archive, files) = pack(src)?;
    let dest = format!("\"$HOME\"/{WORKDIR_NAME}");
    let command =
        format!("rm -rf {dest} && mkdir -p {dest} && tar -xf - -C {dest} --no-same-owner");
    session.run(&command, Some(&archive)).await?;
    Ok(files)
}

/// One `file_mounts` entry of a local path, read (and for a directory packed, with the same
/// `.skyignore`/`.gitignore` filter as the workdir, as SkyPilot's rsync does) once for all nodes.
#[derive(Debug, Clone)]
pub struct MountUpload {
    /// Where it goes on the node: absolute, `~/...` (the login's home) or relative to the home.
    pub remote: String,
    payload: Payload,
}

#[derive(Debug, Clone)]
enum Payload {
    File { data: Vec<u8>, mode: u32 },
    Dir { archive: Vec<u8> },
}

impl MountUpload {
    /// Reads `src` (a file or a directory) for placing at `remote`.
    pub fn prepare(remote: &str, src: &Path) -> Result<MountUpload, SshError> {
        let payload = if src.is_dir() {
            Payload::Dir {
                archive: pack(src)?.0,
            }
        } else {
            let data = std::fs::read(src)
                .map_err(|e| SshError::Local(format!("{}: {e}", src.display())))?;
            Payload::File {
                data,
                mode: file_mode(src),
            }
        };
        Ok(MountUpload {
            remote: remote.to_owned(),
            payload,
        })
    }

    /// Places the file or directory on the node in one command, its bytes on stdin. A directory
    /// is merged into what is there (as rsync would); a file replaces the old one atomically.
    /// Parents are created, with `sudo -n` when the login may not write there (a VM's `/data`).
    pub async fn upload(&self, session: &SshSession) -> Result<(), SshError> {
        let path = remote_path(&self.remote);
        let (dir, rest, data) = match &self.payload {
            Payload::Dir { archive } => (
                r#""$p""#,
                r#"tar -xf - -C "$p" --no-same-owner"#.to_owned(),
                archive,
            ),
            Payload::File { data, mode } => (
                r#""$(dirname -- "$p")""#,
                format!(
                    r#"cat > "$p.sky-part" && chmod {mode:o} "$p.sky-part" && mv -f "$p.sky-part" "$p""#
                ),
                data,
            ),
        };
        let command = format!(
            "p={path} && d={dir} && {{ mkdir -p \"$d\" 2>/dev/null || {{ sudo -n mkdir -p \"$d\" && \
             sudo -n chown \"$(id -u):$(id -g)\" \"$d\"; }}; }} && {rest}"
        );
        session.run(&command, Some(data)).await?;
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

/// The filtered tree of `src` as an uncompressed ustar archive.
pub fn pack(src: &Path) -> Result<(Vec<u8>, usize), SshError> {
    let entries = workdir_entries(src).map_err(SshError::Local)?;
    let mut out = Vec::new();
    let mut files = 0;
    for (rel, is_dir) in entries {
        let name = rel.to_string_lossy().replace('\\', "/");
        if is_dir {
            header(&mut out, &format!("{name}/"), 0, 0o755, b'5')?;
            continue;
        }
        let path = src.join(&rel);
        let data = std::fs::read(&path)
            .map_err(|e| SshError::Local(format!("{}: {e}", path.display())))?;
        let mode = file_mode(&path);
        header(&mut out, &name, data.len() as u64, mode, b'0')?;
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        files += 1;
    }
    out.resize(out.len() + 1024, 0);
    Ok((out, files))
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> u32 {
    0o644
}

/// One ustar header block; names longer than 100 bytes use the 155-byte prefix field.
fn header(out: &mut Vec<u8>, name: &str, size: u64, mode: u32, kind: u8) -> Result<(), SshError> {
    let mut block = [0u8; 512];
    let bytes = name.as_bytes();
    let (prefix, rest) = if bytes.len() <= 100 {
        (&b""[..], bytes)
    } else {
        let split = name[..name.len().min(156)]
            .rfind('/')
            .filter(|i| bytes.len() - i - 1 <= 100 && *i <= 155)
            .ok_or_else(|| {
                SshError::Local(format!(
                    "workdir path too long to send (max 255 bytes): {name}"
                ))
            })?;
        (&bytes[..split], &bytes[split + 1..])
    };
    block[..rest.len()].copy_from_slice(rest);
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0);
    block[148..156].fill(b' ');
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[345..345 + prefix.len()].copy_from_slice(prefix);
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    octal(&mut block[148..155], u64::from(sum));
    out.extend_from_slice(&block);
    Ok(())
}

/// Zero-padded octal, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
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

    #[test]
    fn packs_a_tree_that_tar_can_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let src = dir.path().join("src");
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        for f in ["a.txt", "sub/b.txt", long.as_str(), "skip.log"] {
            let p = src.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, format!("content of {f}")).expect("write");
        }
        std::fs::write(src.join(".skyignore"), "*.log\n").expect("ignore");
        let (archive, files) = pack(&src).expect("pack");
        assert_eq!(files, 4, "a.txt, sub/b.txt, the long one and .skyignore");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).expect("out");
        let mut tar = std::process::Command::new("tar")
            .args(["-xf", "-", "-C"])
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("tar runs");
        std::io::Write::write_all(tar.stdin.as_mut().expect("stdin"), &archive).expect("feed");
        drop(tar.stdin.take());
        assert!(tar.wait().expect("wait").success());
        assert_eq!(
            std::fs::read_to_string(out.join(&long)).expect("long name"),
            format!("content of {long}")
        );
        assert_eq!(
            std::fs::read_to_string(out.join("sub/b.txt")).expect("b"),
            "content of sub/b.txt"
        );
        assert!(!out.join("skip.log").exists());
    }
}
