//! Host keys per cluster, trust on first use: the first key a node presents is recorded in
//! `$SKY_HOME/ssh/known_hosts/<cluster>` and every later connection must present the same one.
//!
//! Per cluster rather than one global file because cloud IPs are recycled: a new cluster on an old
//! address must not trip over the previous machine's key, so the file goes when the cluster does.
//! Lines are OpenSSH's `known_hosts` format (`[host]:port ssh-ed25519 AAAA...`, `host` alone on
//! port 22), so the `ssh CLUSTER` entries Sky writes for OpenSSH (see [`super::client_config`])
//! pin the same keys. Files of earlier versions held `[host]:port SHA256:fingerprint` lines; they
//! are still honoured, and a line is rewritten in OpenSSH's form the next time its key is seen.
//! What this module does not do: read the user's `~/.ssh/known_hosts` or verify host
//! certificates.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

use super::SshError;

/// Serialises this process's writers (one connection per node checks at once); across processes
/// a new line is one appended write, which the kernel does not interleave.
static WRITING: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
pub struct KnownHosts {
    file: PathBuf,
}

/// One line of the file: the host as OpenSSH names it, and the key's fingerprint; `legacy` for a
/// fingerprint-only line of an earlier version.
struct Entry {
    host: String,
    fingerprint: String,
    legacy: bool,
}

/// `host` on port 22, else `[host]:port`, as OpenSSH writes and looks up `known_hosts`.
pub fn openssh_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

impl KnownHosts {
    pub fn for_cluster(sky_home: &Path, cluster_name: &str) -> KnownHosts {
        KnownHosts {
            file: sky_home.join("ssh").join("known_hosts").join(cluster_name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    fn entries(&self) -> Vec<Entry> {
        let Ok(text) = fs::read_to_string(&self.file) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| {
                let (host, key) = l.trim().split_once(' ')?;
                let key = key.trim();
                if key.starts_with("SHA256:") {
                    return Some(Entry {
                        host: host.to_owned(),
                        fingerprint: key.to_owned(),
                        legacy: true,
                    });
                }
                let key = PublicKey::from_openssh(key).ok()?;
                Some(Entry {
                    host: host.to_owned(),
                    fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
                    legacy: false,
                })
            })
            .collect()
    }

    /// Accepts `key` for `host:port` if it is the recorded one, or records it when none is.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), SshError> {
        let name = openssh_host(host, port);
        // Earlier versions named every host `[host]:port`, port 22 included.
        let legacy_name = format!("[{host}]:{port}");
        let seen = key.fingerprint(HashAlg::Sha256).to_string();
        let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let entries = self.entries();
        let recorded = entries
            .iter()
            .find(|e| e.host == name && !e.legacy)
            .or_else(|| {
                entries
                    .iter()
                    .find(|e| e.legacy && (e.host == legacy_name || e.host == name))
            });
        if let Some(entry) = recorded {
            if entry.fingerprint != seen {
                return Err(SshError::HostKeyMismatch {
                    host: name,
                    recorded: entry.fingerprint.clone(),
                    presented: seen,
                    file: self.file.display().to_string(),
                });
            }
            if entry.legacy {
                self.upgrade(&entry.host, &name, key)?;
            }
            return Ok(());
        }
        self.append(&name, key)?;
        tracing::debug!(host = %name, fingerprint = %seen, "recorded host key on first contact");
        Ok(())
    }

    fn io(&self) -> impl Fn(std::io::Error) -> SshError + '_ {
        |e| SshError::Key {
            path: self.file.display().to_string(),
            message: e.to_string(),
        }
    }

    fn line(name: &str, key: &PublicKey) -> Result<String, SshError> {
        let key = key.to_openssh().map_err(|e| SshError::Key {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        Ok(format!("{name} {key}\n"))
    }

    fn append(&self, name: &str, key: &PublicKey) -> Result<(), SshError> {
        if let Some(parent) = self.file.parent() {
            fs::create_dir_all(parent).map_err(self.io())?;
        }
        let line = Self::line(name, key)?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(self.io())
    }

    /// Replaces the legacy line of `old_name` with the OpenSSH line for `key`.
    fn upgrade(&self, old_name: &str, name: &str, key: &PublicKey) -> Result<(), SshError> {
        let text = fs::read_to_string(&self.file).map_err(self.io())?;
        let mut out = String::with_capacity(text.len() + 64);
        for l in text.lines() {
            let legacy = l
                .trim()
                .split_once(' ')
                .is_some_and(|(h, k)| h == old_name && k.trim().starts_with("SHA256:"));
            if legacy {
                out.push_str(&Self::line(name, key)?);
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        let tmp = self
            .file
            .with_extension(format!("{}.tmp", std::process::id()));
        fs::write(&tmp, out).map_err(self.io())?;
        fs::rename(&tmp, &self.file).map_err(self.io())
    }

    /// Forgets the cluster's hosts (on `down`), so a later cluster of the same name starts fresh.
    pub fn forget(&self) {
        let _ = fs::remove_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};

    use super::*;

    fn key(seed: u8) -> PublicKey {
        let pair = Ed25519Keypair::from_seed(&[seed; 32]);
        PrivateKey::new(KeypairData::Ed25519(pair), "")
            .expect("key")
            .public_key()
            .clone()
    }

    #[test]
    fn first_key_is_recorded_and_a_different_one_is_refused_with_both_fingerprints() {
        let dir = tempfile::tempdir().expect("tmp");
        let known = KnownHosts::for_cluster(dir.path(), "c1");
        known.check("10.0.0.1", 22, &key(1)).expect("first contact");
        known.check("10.0.0.1", 22, &key(1)).expect("same key");
        known.check("10.0.0.2", 22, &key(2)).expect("other host");
        let err = known
            .check("10.0.0.1", 22, &key(2))
            .expect_err("changed key");
        let text = err.to_string();
        assert!(text.contains("host key of 10.0.0.1 changed"), "{text}");
        assert!(
            text.contains(&key(1).fingerprint(HashAlg::Sha256).to_string()),
            "{text}"
        );
        assert!(
            text.contains(&key(2).fingerprint(HashAlg::Sha256).to_string()),
            "{text}"
        );
        let other_cluster = KnownHosts::for_cluster(dir.path(), "c2");
        other_cluster
            .check("10.0.0.1", 22, &key(2))
            .expect("clusters are separate");
        known.forget();
        known.check("10.0.0.1", 22, &key(2)).expect("forgotten");
    }

    #[test]
    fn lines_are_openssh_known_hosts_and_legacy_fingerprints_are_upgraded() {
        let dir = tempfile::tempdir().expect("tmp");
        let known = KnownHosts::for_cluster(dir.path(), "c1");
        known.check("10.0.0.1", 22, &key(1)).expect("first contact");
        known
            .check("127.0.0.1", 2222, &key(2))
            .expect("first contact");
        let text = fs::read_to_string(known.path()).expect("file");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("10.0.0.1 ssh-ed25519 AAAA"), "{text}");
        assert!(
            lines[1].starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"),
            "{text}"
        );

        // A file an earlier version wrote: fingerprints, every host bracketed.
        let legacy = format!(
            "[10.0.0.3]:22 {}\n[10.0.0.4]:22 {}\n",
            key(3).fingerprint(HashAlg::Sha256),
            key(4).fingerprint(HashAlg::Sha256)
        );
        let old = KnownHosts::for_cluster(dir.path(), "old");
        fs::create_dir_all(old.path().parent().expect("dir")).expect("dir");
        fs::write(old.path(), legacy).expect("legacy file");
        let err = old.check("10.0.0.4", 22, &key(5)).expect_err("pinned");
        assert!(err.to_string().contains("changed"), "{err}");
        old.check("10.0.0.3", 22, &key(3)).expect("same key");
        let text = fs::read_to_string(old.path()).expect("file");
        assert!(text.starts_with("10.0.0.3 ssh-ed25519 AAAA"), "{text}");
        assert!(text.contains("[10.0.0.4]:22 SHA256:"), "{text}");
        old.check("10.0.0.3", 22, &key(3))
            .expect("upgraded line still pins");
        assert!(old.check("10.0.0.3", 22, &key(4)).is_err());
    }
}
