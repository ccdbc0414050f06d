//! `ssh CLUSTER` from a terminal or VS Code's Remote-SSH: an OpenSSH client config per cluster,
//! and the one `Include` line in `~/.ssh/config` that makes OpenSSH read them.
//!
//! Each cluster Sky reaches over SSH gets `$SKY_HOME/ssh/config.d/<cluster>`: a `Host` block for
//! the head (`CLUSTER`) and one per worker (`CLUSTER-worker1`, ...), with the address, login and
//! key Sky itself uses, and Sky's pinned host keys for that cluster
//! ([`super::known_hosts`], OpenSSH's format) with `StrictHostKeyChecking yes`: OpenSSH trusts
//! exactly the machines Sky trusted on first contact. A bastion becomes its own block
//! (`CLUSTER-jump`) so it is reached with its own key. The file is rewritten only when its
//! content changes (a `start` gave new addresses) and removed with the cluster's record.
//!
//! The `Include` line is the only thing Sky writes in the user's own files. It goes at the top of
//! `~/.ssh/config` (an `Include` after a `Host` line would only apply to that host), through the
//! file's symlink if it is one (dotfile managers), and is removed again by [`remove_include`],
//! which also remembers that the user said no so that Sky never adds it back on its own.
//! Whether Sky adds it unasked is the caller's choice: the CLI does, with a notice; the desktop
//! app asks first.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SshTarget;
use super::known_hosts::KnownHosts;

/// The directory of per-cluster configs, under the Sky home.
pub fn dir(sky_home: &Path) -> PathBuf {
    sky_home.join("ssh").join("config.d")
}

/// The config file of `cluster`.
pub fn path(sky_home: &Path, cluster: &str) -> PathBuf {
    dir(sky_home).join(cluster)
}

/// Marks that the user removed the `Include` line: Sky does not add it again unasked.
fn declined_marker(sky_home: &Path) -> PathBuf {
    sky_home.join("ssh").join("include-declined")
}

/// The first line of the two Sky adds to `~/.ssh/config`; it identifies them for removal.
const INCLUDE_COMMENT: &str =
    "# Added by Sky: `ssh CLUSTER` for Sky's clusters. `sky config ssh --off` removes it.";

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigFileError {
    pub path: String,
    pub message: String,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ConfigFileError + '_ {
    move |e| ConfigFileError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// An argument as OpenSSH's config parser reads it: quoted when it holds a space (macOS's
/// "Application Support"). Quotes inside cannot be escaped in ssh_config, and Sky's paths and
/// host names never hold one.
fn arg(text: &str) -> String {
    if text.contains([' ', '\t']) {
        format!("\"{text}\"")
    } else {
        text.to_owned()
    }
}

/// A proxy command as OpenSSH must be given it to run it as Sky does. OpenSSH expands the same
/// `%h`, `%p` and `%r`, but runs `exec COMMAND` in the user's shell, which ends a compound
/// command (`log && exec ssh -W ...`) after its first part; Sky runs it with `sh -c`, so the
/// config does too.
fn proxy_line(command: &str) -> String {
    if cfg!(windows) {
        return command.to_owned();
    }
    format!("sh -c '{}'", command.replace('\'', "'\\''"))
}

/// The `Host` names of a cluster's nodes, head first: `CLUSTER`, `CLUSTER-worker1`, ...
pub fn host_names(cluster: &str, nodes: usize) -> Vec<String> {
    (0..nodes)
        .map(|rank| {
            if rank == 0 {
                cluster.to_owned()
            } else {
                format!("{cluster}-worker{rank}")
            }
        })
        .collect()
}

fn host_block(
    out: &mut String,
    name: &str,
    target: &SshTarget,
    default_key: &Path,
    known: &Path,
    jump: Option<&str>,
) {
    let key = target.identity_file.as_deref().unwrap_or(default_key);
    out.push_str(&format!("Host {name}\n"));
    out.push_str(&format!("  HostName {}\n", target.host));
    out.push_str(&format!("  User {}\n", target.user));
    out.push_str(&format!("  Port {}\n", target.port));
    out.push_str(&format!(
        "  IdentityFile {}\n",
        arg(&key.display().to_string())
    ));
    out.push_str("  IdentitiesOnly yes\n");
    out.push_str(&format!(
        "  UserKnownHostsFile {}\n",
        arg(&known.display().to_string())
    ));
    out.push_str("  StrictHostKeyChecking yes\n");
    // Keeps an idle terminal or editor session from being dropped by NAT gateways.
    out.push_str("  ServerAliveInterval 30\n");
    if let Some(jump) = jump {
        out.push_str(&format!("  ProxyJump {jump}\n"));
    } else if let Some(proxy) = &target.proxy_command {
        out.push_str(&format!("  ProxyCommand {}\n", proxy_line(proxy)));
    }
    out.push('\n');
}

/// The config text of `cluster` whose nodes are `targets` (head first).
pub fn render(sky_home: &Path, cluster: &str, targets: &[SshTarget]) -> String {
    let default_key = sky_home.join("ssh").join(super::keys::KEY_FILE);
    let known = KnownHosts::for_cluster(sky_home, cluster);
    let mut out = format!(
        "# Written by Sky for cluster {cluster}: rewritten when its addresses change, removed at \
         `sky down`.\n\n"
    );
    let jump_name = format!("{cluster}-jump");
    // Pools have one bastion for all their hosts; the first one found is the one written.
    if let Some(jump) = targets.iter().find_map(|t| t.jump.as_deref()) {
        host_block(&mut out, &jump_name, jump, &default_key, known.path(), None);
    }
    for (name, target) in host_names(cluster, targets.len()).iter().zip(targets) {
        let jump = target.jump.as_ref().map(|_| jump_name.as_str());
        host_block(&mut out, name, target, &default_key, known.path(), jump);
    }
    out
}

/// Writes (or rewrites, when it changed) the config of `cluster`. Returns whether it changed.
pub fn write(
    sky_home: &Path,
    cluster: &str,
    targets: &[SshTarget],
) -> Result<bool, ConfigFileError> {
    let file = path(sky_home, cluster);
    let text = render(sky_home, cluster, targets);
    if fs::read_to_string(&file).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let parent = dir(sky_home);
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    write_private(&file, &text)?;
    Ok(true)
}

/// Removes the config of `cluster` (its record is gone).
pub fn remove(sky_home: &Path, cluster: &str) {
    let _ = fs::remove_file(path(sky_home, cluster));
}

/// Writes `text` to `file` through a private temporary file and a rename, so OpenSSH never reads
/// half a file and the file is never writable by others (OpenSSH refuses such configs).
fn write_private(file: &Path, text: &str) -> Result<(), ConfigFileError> {
    let tmp = file.with_file_name(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config"),
        std::process::id()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io_error(&tmp))?;
    fs::rename(&tmp, file).map_err(io_error(file))
}

/// Where the user's OpenSSH client config is: `~/.ssh/config`.
pub fn user_config(user_home: &Path) -> PathBuf {
    user_home.join(".ssh").join("config")
}

/// Whether `~/.ssh/config` reads Sky's cluster configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncludeState {
    Included,
    /// Not there, and the user never removed it: Sky may add it.
    Absent,
    /// The user removed it (`sky config ssh --off`, or the app's switch): Sky leaves it out until
    /// asked again.
    Declined,
}

fn include_line(sky_home: &Path) -> String {
    format!(
        "Include {}",
        arg(&dir(sky_home).join("*").display().to_string())
    )
}

pub fn include_state(sky_home: &Path, user_home: &Path) -> IncludeState {
    let line = include_line(sky_home);
    let text = fs::read_to_string(user_config(user_home)).unwrap_or_default();
    if text.lines().any(|l| l.trim() == line) {
        IncludeState::Included
    } else if declined_marker(sky_home).exists() {
        IncludeState::Declined
    } else {
        IncludeState::Absent
    }
}

/// The file to edit for `~/.ssh/config`: the target of its symlink when it is one, so a dotfile
/// manager's link stays a link.
fn real_user_config(user_home: &Path) -> PathBuf {
    let file = user_config(user_home);
    fs::canonicalize(&file).unwrap_or(file)
}

/// Adds the `Include` line at the top of `~/.ssh/config` (creating `~/.ssh` 0700 and the file
/// 0600 when missing) and forgets an earlier "no". Returns whether the file changed.
pub fn add_include(sky_home: &Path, user_home: &Path) -> Result<bool, ConfigFileError> {
    let _ = fs::remove_file(declined_marker(sky_home));
    if include_state(sky_home, user_home) == IncludeState::Included {
        return Ok(false);
    }
    let ssh_dir = user_home.join(".ssh");
    if !ssh_dir.exists() {
        fs::create_dir_all(&ssh_dir).map_err(io_error(&ssh_dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))
                .map_err(io_error(&ssh_dir))?;
        }
    }
    let file = real_user_config(user_home);
    let old = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(&file)(e)),
    };
    let text = format!("{INCLUDE_COMMENT}\n{}\n\n{old}", include_line(sky_home));
    write_keeping_mode(&file, &text)?;
    Ok(true)
}

/// Removes the lines [`add_include`] wrote and remembers the "no". Returns whether the file
/// changed.
pub fn remove_include(sky_home: &Path, user_home: &Path) -> Result<bool, ConfigFileError> {
    let marker = declined_marker(sky_home);
    if let Some(parent) = marker.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    fs::write(&marker, "").map_err(io_error(&marker))?;
    let file = real_user_config(user_home);
    let Ok(old) = fs::read_to_string(&file) else {
        return Ok(false);
    };
    let line = include_line(sky_home);
    let mut out = String::with_capacity(old.len());
    let mut lines = old.lines().peekable();
    let mut changed = false;
    while let Some(l) = lines.next() {
        if l.trim() == INCLUDE_COMMENT || l.trim() == line {
            changed = true;
            // The blank line add_include put after the pair goes with it.
            if l.trim() == line && lines.peek().is_some_and(|n| n.trim().is_empty()) {
                lines.next();
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    if changed {
        write_keeping_mode(&file, &out)?;
    }
    Ok(changed)
}

/// Writes the user's own file in place of itself, keeping its permissions (0600 when new).
fn write_keeping_mode(file: &Path, text: &str) -> Result<(), ConfigFileError> {
    let mode = fs::metadata(file).ok().map(|m| m.permissions());
    write_private(file, text)?;
    if let Some(mode) = mode {
        fs::set_permissions(file, mode).map_err(io_error(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> SshTarget {
        SshTarget::new(host, port, "ubuntu")
    }

    #[test]
    fn a_cluster_config_names_the_head_and_workers_with_sky_key_and_pins() {
        let home = Path::new("/home/u/.local/share/sky");
        let text = render(
            home,
            "dev",
            &[target("10.0.0.1", 22), target("10.0.0.2", 2222)],
        );
        assert!(text.contains("Host dev\n  HostName 10.0.0.1\n  User ubuntu\n  Port 22\n"));
        assert!(text.contains("Host dev-worker1\n  HostName 10.0.0.2\n"));
        assert!(text.contains("  Port 2222\n"));
        assert!(text.contains("  IdentityFile /home/u/.local/share/sky/ssh/sky-key\n"));
        assert!(
            text.contains("  UserKnownHostsFile /home/u/.local/share/sky/ssh/known_hosts/dev\n")
        );
        assert!(text.contains("  StrictHostKeyChecking yes\n"));
        assert!(!text.contains("ProxyJump"));
        assert!(!text.contains("ProxyCommand"));

        let mut proxied = target("10.0.0.1", 22);
        proxied.proxy_command = Some("echo %h >> 'my log' && exec ssh -W %h:%p b".into());
        let text = render(home, "p", &[proxied]);
        assert!(
            text.contains(
                "  ProxyCommand sh -c 'echo %h >> '\\''my log'\\'' && exec ssh -W %h:%p b'\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_bastion_is_its_own_host_with_its_own_key_and_spaces_are_quoted() {
        let home = Path::new("/Users/u/Library/Application Support/dev.sky.sky");
        let mut jump = target("bastion.corp", 22);
        jump.identity_file = Some(PathBuf::from("/Users/u/.ssh/corp"));
        let mut node = target("10.1.0.5", 22);
        node.identity_file = Some(PathBuf::from("/Users/u/.ssh/pool"));
        node.jump = Some(Box::new(jump));
        let text = render(home, "pool", &[node]);
        assert!(
            text.contains("Host pool-jump\n  HostName bastion.corp\n"),
            "{text}"
        );
        assert!(
            text.contains("  IdentityFile /Users/u/.ssh/corp\n"),
            "{text}"
        );
        assert!(
            text.contains("  IdentityFile /Users/u/.ssh/pool\n"),
            "{text}"
        );
        assert!(text.contains("  ProxyJump pool-jump\n"), "{text}");
        assert!(text.contains(
            "  UserKnownHostsFile \"/Users/u/Library/Application Support/dev.sky.sky/ssh/known_hosts/pool\"\n"
        ));
    }

    #[test]
    fn the_include_goes_on_top_once_keeps_the_file_and_comes_out_cleanly() {
        let sky = tempfile::tempdir().expect("tmp");
        let user = tempfile::tempdir().expect("tmp");
        assert_eq!(include_state(sky.path(), user.path()), IncludeState::Absent);
        assert!(add_include(sky.path(), user.path()).expect("add"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ssh = fs::metadata(user.path().join(".ssh")).expect("dir");
            assert_eq!(ssh.permissions().mode() & 0o777, 0o700);
            let file = fs::metadata(user_config(user.path())).expect("file");
            assert_eq!(file.permissions().mode() & 0o777, 0o600);
        }
        remove_include(sky.path(), user.path()).expect("remove");
        assert_eq!(
            fs::read_to_string(user_config(user.path())).expect("file"),
            ""
        );

        let mine = "Host work\n  User me\n";
        fs::write(user_config(user.path()), mine).expect("write");
        assert_eq!(
            include_state(sky.path(), user.path()),
            IncludeState::Declined
        );
        assert!(add_include(sky.path(), user.path()).expect("add"));
        assert!(
            !add_include(sky.path(), user.path()).expect("again"),
            "added once"
        );
        let text = fs::read_to_string(user_config(user.path())).expect("file");
        assert!(text.starts_with(INCLUDE_COMMENT), "{text}");
        assert!(text.ends_with(mine), "{text}");
        assert_eq!(
            include_state(sky.path(), user.path()),
            IncludeState::Included
        );
        assert!(remove_include(sky.path(), user.path()).expect("remove"));
        assert_eq!(
            fs::read_to_string(user_config(user.path())).expect("file"),
            mine
        );
        assert_eq!(
            include_state(sky.path(), user.path()),
            IncludeState::Declined
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_stays_a_symlink() {
        let sky = tempfile::tempdir().expect("tmp");
        let user = tempfile::tempdir().expect("tmp");
        let dotfiles = user.path().join("dotfiles");
        fs::create_dir_all(&dotfiles).expect("dir");
        fs::create_dir_all(user.path().join(".ssh")).expect("dir");
        fs::write(dotfiles.join("ssh_config"), "Host a\n").expect("write");
        std::os::unix::fs::symlink(dotfiles.join("ssh_config"), user_config(user.path()))
            .expect("link");
        add_include(sky.path(), user.path()).expect("add");
        assert!(
            fs::symlink_metadata(user_config(user.path()))
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        let text = fs::read_to_string(dotfiles.join("ssh_config")).expect("target");
        assert!(text.contains("Include "), "{text}");
    }

    #[test]
    fn a_config_is_rewritten_only_when_it_changes() {
        let sky = tempfile::tempdir().expect("tmp");
        assert!(write(sky.path(), "c", &[target("10.0.0.1", 22)]).expect("write"));
        assert!(!write(sky.path(), "c", &[target("10.0.0.1", 22)]).expect("same"));
        assert!(write(sky.path(), "c", &[target("10.0.0.9", 22)]).expect("new ip"));
        let text = fs::read_to_string(path(sky.path(), "c")).expect("file");
        assert!(text.contains("HostName 10.0.0.9"), "{text}");
        remove(sky.path(), "c");
        assert!(!path(sky.path(), "c").exists());
    }
}
