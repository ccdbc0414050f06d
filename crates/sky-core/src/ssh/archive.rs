//! The tar stream a workdir or a `file_mounts` entry travels in, and the fan-out that carries one
//! stream to every node at once.
//!
//! Format: POSIX ustar headers (the `tar` crate's), with a PAX extended header (`x`) in front of
//! an entry whose path or link target is not ASCII or does not fit ustar's fields (100-byte name,
//! 155-byte prefix, 100-byte link), or whose size is 8 GiB or more (ustar's 11 octal digits). PAX
//! rather than GNU's `L`/`K` entries because it is the POSIX format GNU tar, bsdtar and busybox
//! all read, and it states names as UTF-8. Every field is written as bytes, so no name can make
//! the writer slice inside a character. Ownership is left out (uid/gid 0, no names: the remote
//! side extracts with `--no-same-owner`); mode bits and mtimes are kept, as `rsync -a` keeps them.
//!
//! Streaming: [`stream_to`] reads the tree once, in a blocking thread, and hands each node the same
//! chunks through its own bounded queue. A node that falls behind makes the reader wait (the
//! slowest node paces the rest: the sync succeeds only when all nodes have everything anyway), so
//! memory stays at about `(QUEUE + 2) * CHUNK` however big the tree and however many nodes,
//! and nothing touches the disk. Packing once to a temporary file was the other choice: it costs
//! the archive's size in local disk (a sparse 100 GiB checkpoint would become real), a second
//! read, and a first byte on the wire only after the whole tree is packed.
//!
//! What this module does not do: compress (a LAN or cloud link is rarely the bottleneck next to
//! tar's own speed), keep hard links (sent as separate files, as `rsync -a` without `-H`), sparse
//! holes (sent as zeros), or extended attributes.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use tar::{EntryType, Header};
use tokio::sync::mpsc;

use super::SshError;
use crate::api::sync::{EntryKind, workdir_entries};

/// Bytes per chunk handed to the nodes; large enough to amortize a queue hand-off and an SSH
/// packet's framing, small enough that `QUEUE` of them per cluster is a few MiB.
pub const CHUNK: usize = 256 * 1024;
/// Chunks a node may lag behind the reader before the reader waits for it.
pub const QUEUE: usize = 8;

/// The largest size ustar's 11 octal digits hold (8 GiB - 1); above it the size goes in PAX.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// What an upload sends, read once for all nodes.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory's tree, filtered by `.skyignore`/`.gitignore` (see `workdir_entries`).
    Tree(std::path::PathBuf),
    /// One file, as a one-entry archive whose entry is called `name` (the remote side extracts it
    /// under a temporary name, so a cut-off stream never replaces the old file).
    File {
        path: std::path::PathBuf,
        name: String,
    },
}

impl Source {
    /// Writes the whole archive to `out`; returns the regular files in it.
    pub fn write_to<W: Write>(&self, out: &mut W) -> Result<usize, SshError> {
        match self {
            Source::Tree(src) => write_tree(src, out),
            Source::File { path, name } => {
                let mut packer = Packer::new(out);
                packer.file(name.as_bytes(), path)?;
                packer.finish(path)?;
                Ok(1)
            }
        }
    }
}

/// Packs the filtered tree of `src` (entries relative to it, directories with a trailing `/`)
/// into `out` as it walks it; returns the regular files packed. Symlinks become links to the
/// same target, never followed.
pub fn write_tree<W: Write>(src: &Path, out: &mut W) -> Result<usize, SshError> {
    let mut packer = Packer::new(out);
    let mut files = 0;
    for entry in workdir_entries(src).map_err(SshError::Local)? {
        let (rel, kind) = entry.map_err(SshError::Local)?;
        let name = archive_name(&rel);
        let path = src.join(&rel);
        match kind {
            EntryKind::Dir => packer.dir(&name, &path)?,
            EntryKind::Symlink => packer.symlink(&name, &path)?,
            EntryKind::File => {
                packer.file(&name, &path)?;
                files += 1;
            }
        }
    }
    packer.finish(src)?;
    Ok(files)
}

/// A relative path as archive bytes: `/`-separated on every platform.
fn archive_name(rel: &Path) -> Vec<u8> {
    let parts: Vec<Vec<u8>> = rel.components().map(|c| os_bytes(c.as_os_str())).collect();
    parts.join(&b'/')
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

/// Windows names are UTF-16; a name that is not valid Unicode cannot be stated in PAX's UTF-8.
#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().replace('\\', "/").into_bytes()
}

fn local(path: &Path, e: impl std::fmt::Display) -> SshError {
    SshError::Local(format!("{}: {e}", path.display()))
}

struct Packer<'a, W: Write> {
    builder: tar::Builder<&'a mut W>,
}

impl<'a, W: Write> Packer<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Packer {
            builder: tar::Builder::new(out),
        }
    }

    fn dir(&mut self, name: &[u8], path: &Path) -> Result<(), SshError> {
        let meta = fs::symlink_metadata(path).map_err(|e| local(path, e))?;
        let mut name = name.to_vec();
        name.push(b'/');
        // Owner rwx always: a later sync must be able to replace the tree (`rm -rf`).
        let mode = mode_of(&meta) | 0o700;
        self.append(
            &name,
            EntryType::Directory,
            mode,
            mtime_of(&meta),
            0,
            None,
            io::empty(),
        )
        .map_err(|e| local(path, e))
    }

    fn symlink(&mut self, name: &[u8], path: &Path) -> Result<(), SshError> {
        let meta = fs::symlink_metadata(path).map_err(|e| local(path, e))?;
        let target = fs::read_link(path).map_err(|e| local(path, e))?;
        let target = os_bytes(target.as_os_str());
        self.append(
            name,
            EntryType::Symlink,
            0o777,
            mtime_of(&meta),
            0,
            Some(&target),
            io::empty(),
        )
        .map_err(|e| local(path, e))
    }

    fn file(&mut self, name: &[u8], path: &Path) -> Result<(), SshError> {
        // Size and mode from the open file, so they describe the bytes actually read.
        let file = fs::File::open(path).map_err(|e| local(path, e))?;
        let meta = file.metadata().map_err(|e| local(path, e))?;
        let size = meta.len();
        let data = Exact {
            inner: file,
            left: size,
        };
        self.append(
            name,
            EntryType::Regular,
            mode_of(&meta),
            mtime_of(&meta),
            size,
            None,
            data,
        )
        .map_err(|e| local(path, e))
    }

    fn finish(mut self, what: &Path) -> Result<(), SshError> {
        self.builder.finish().map_err(|e| local(what, e))?;
        let out = self.builder.into_inner().map_err(|e| local(what, e))?;
        out.flush().map_err(|e| local(what, e))
    }

    /// One entry: a PAX header first when a field does not fit ustar, then the ustar header and
    /// exactly `size` bytes of `data`.
    #[allow(clippy::too_many_arguments)] // one private call shape for three entry kinds
    fn append(
        &mut self,
        name: &[u8],
        kind: EntryType,
        mode: u32,
        mtime: u64,
        size: u64,
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        let mut header = Header::new_ustar();
        let mut pax = Vec::new();
        if !set_ustar_path(&mut header, name)? {
            pax_record(&mut pax, "path", name);
            set_field(&mut header.as_old_mut().name, &fallback(name));
        }
        if let Some(link) = link {
            if link.is_ascii() && link.len() <= 100 {
                set_field(&mut header.as_old_mut().linkname, link);
            } else {
                pax_record(&mut pax, "linkpath", link);
                set_field(&mut header.as_old_mut().linkname, &fallback(link));
            }
        }
        if size > USTAR_MAX_SIZE {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            set_field(&mut x.as_old_mut().name, b"././@PaxHeader");
            x.set_entry_type(EntryType::XHeader);
            x.set_mode(0o644);
            x.set_mtime(mtime);
            x.set_size(pax.len() as u64);
            x.set_cksum();
            self.builder.append(&x, pax.as_slice())?;
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        // Above the octal range the crate writes base-256, which GNU tar also reads; the PAX
        // record is what other readers use.
        header.set_size(size);
        header.set_cksum();
        self.builder.append(&header, data)
    }
}

/// Puts `name` in ustar's name (and prefix) fields if it is ASCII and fits; false otherwise.
fn set_ustar_path(header: &mut Header, name: &[u8]) -> io::Result<bool> {
    if !name.is_ascii() {
        return Ok(false);
    }
    if name.len() <= 100 {
        set_field(&mut header.as_old_mut().name, name);
        return Ok(true);
    }
    // Split at a `/` so that the prefix has at most 155 bytes and the rest at most 100.
    let split = (0..name.len())
        .rev()
        .filter(|&i| name[i] == b'/')
        .find(|&i| i > 0 && i <= 155 && (1..=100).contains(&(name.len() - i - 1)));
    let Some(i) = split else { return Ok(false) };
    let ustar = header
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("a ustar header has no ustar fields"))?;
    set_field(&mut ustar.prefix, &name[..i]);
    set_field(&mut ustar.name, &name[i + 1..]);
    Ok(true)
}

/// Copies `value` into a NUL-padded header field; the caller made sure it fits.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

/// What a reader that ignores PAX sees: the name with non-ASCII bytes as `_`, cut to 100 bytes.
fn fallback(name: &[u8]) -> Vec<u8> {
    name.iter()
        .take(100)
        .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .collect()
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(meta: &fs::Metadata) -> u32 {
    match (meta.is_dir(), meta.permissions().readonly()) {
        (true, _) => 0o755,
        (false, true) => 0o444,
        (false, false) => 0o644,
    }
}

/// Seconds since the epoch; a time before it (or unreadable) is sent as the epoch.
fn mtime_of(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Reads exactly the `left` bytes the header announced: a file that grew is cut there, one that
/// shrank while being read fails instead of leaving the stream out of step with its headers.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("shrank by {} bytes while being sent", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The writer end of [`stream_to`]: buffers up to [`CHUNK`] bytes, then hands the same chunk to
/// every node's queue, waiting while a queue is full.
struct Fanout {
    outs: Vec<mpsc::Sender<Bytes>>,
    buf: BytesMut,
    /// Set when a node's queue was found closed: the node failed, and its error is the one to
    /// report rather than the packer's "stopped reading".
    gone: Arc<AtomicBool>,
}

impl Fanout {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK);
        self.each(&chunk)
    }

    fn each(&self, chunk: &Bytes) -> io::Result<()> {
        for out in &self.outs {
            if out.blocking_send(chunk.clone()).is_err() {
                self.gone.store(true, Ordering::SeqCst);
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "a node stopped reading the archive",
                ));
            }
        }
        Ok(())
    }

    /// Sends what is buffered, then the end marker (an empty chunk): only a stream that got it
    /// is complete (see `SshSession::run_fed`).
    fn end(mut self) -> io::Result<()> {
        self.send()?;
        self.each(&Bytes::new())
    }
}

impl Write for Fanout {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Packs `source` once, in a blocking thread, and streams it to `nodes` consumers at once:
/// `consume(rank, queue)` gets a bounded queue of chunks that ends with an empty chunk when the
/// archive is complete, or closes without it when packing failed. Returns the regular files
/// sent; on failure the root cause: the packer's own error (a file unreadable or changed), else
/// the first failing node's (by rank), never the packer's "a node stopped reading".
pub async fn stream_to<F, Fut>(
    source: Source,
    nodes: usize,
    mut consume: F,
) -> Result<usize, SshError>
where
    F: FnMut(usize, mpsc::Receiver<Bytes>) -> Fut,
    Fut: Future<Output = Result<(), SshError>> + Send + 'static,
{
    let gone = Arc::new(AtomicBool::new(false));
    let (outs, ins): (Vec<_>, Vec<_>) = (0..nodes).map(|_| mpsc::channel(QUEUE)).unzip();
    let mut writer = Fanout {
        outs,
        buf: BytesMut::with_capacity(CHUNK),
        gone: gone.clone(),
    };
    let packing = tokio::task::spawn_blocking(move || {
        let files = source.write_to(&mut writer)?;
        writer
            .end()
            .map_err(|e| SshError::Local(format!("sending the archive: {e}")))?;
        Ok::<usize, SshError>(files)
    });
    let mut set = tokio::task::JoinSet::new();
    for (rank, queue) in ins.into_iter().enumerate() {
        let fut = consume(rank, queue);
        set.spawn(async move { (rank, fut.await) });
    }
    let mut failed: Vec<(usize, SshError)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((rank, Err(e))) => failed.push((rank, e)),
            Err(e) => failed.push((usize::MAX, SshError::Local(e.to_string()))),
        }
    }
    let packed = packing
        .await
        .map_err(|e| SshError::Local(format!("packing stopped: {e}")))?;
    failed.sort_by_key(|(rank, _)| *rank);
    match (packed, failed.into_iter().next()) {
        (Err(e), _) if !gone.load(Ordering::SeqCst) => Err(e),
        (_, Some((_, e))) => Err(e),
        (packed, None) => packed,
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
