//! Files and directories only this user may read: the agent's home, logs, job database and
//! socket directory hold job output and commands, which may contain secrets. Everything the
//! agent creates goes through here (files 0600, directories 0700) rather than the umask.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `mkdir -p` whose new directories are 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Open for appending, creating it 0600 when missing.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Create (or truncate) for writing, 0600 when created.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Make `dir` a directory that only this user can enter: create it 0700 when missing (a single
/// `mkdir`, which fails on an existing name, so a directory someone else made first is never
/// adopted silently), then check what is there. Another owner, or a symlink, is refused; our own
/// directory with wider permissions (made by an older agent under the umask) is narrowed.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                create_dir_all(parent)?;
            }
            DirBuilder::new().mode(0o700).create(dir)?;
        }
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(refuse(dir, "is not a directory (or is a symlink)"));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(
            dir,
            &format!("belongs to uid {}, not this user ({me})", meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn refuse(dir: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{} {why}; refusing to use it for the agent", dir.display()),
    )
}

/// Whether a peer's uid (from `SO_PEERCRED`) is this user.
pub fn is_me(uid: u32) -> bool {
    uid == nix::unistd::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_and_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).expect("create");
        let mode = std::fs::metadata(&dir).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&dir).expect("narrowed");
        assert_eq!(std::fs::metadata(&dir).expect("meta").mode() & 0o777, 0o700);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert!(ensure_private_dir(&link).is_err(), "a symlink is refused");
        let file = dir.join("f.log");
        drop(open_append(&file).expect("open"));
        assert_eq!(
            std::fs::metadata(&file).expect("meta").mode() & 0o777,
            0o600
        );
    }
}
