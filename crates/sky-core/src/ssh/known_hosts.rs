//! Host keys per cluster, trust on first use: the first key a node presents is recorded in
//! `$SKY_HOME/ssh/known_hosts/<cluster>` and every later connection must present the same one.
//!
//! Per cluster rather than one global file because cloud IPs are recycled: a new cluster on an old
//! address must not trip over the previous machine's key. What this module does not do: read the
//! user's `~/.ssh/known_hosts` or verify host certificates.

use std::fs;
use std::path::{Path, PathBuf};

use russh::keys::{HashAlg, PublicKey};

use super::SshError;

#[derive(Debug, Clone)]
pub struct KnownHosts {
    file: PathBuf,
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

    fn entries(&self) -> Vec<(String, String)> {
        let Ok(text) = fs::read_to_string(&self.file) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| {
                let (host, fp) = l.trim().split_once(' ')?;
                Some((host.to_owned(), fp.trim().to_owned()))
            })
            .collect()
    }

    /// Accepts `key` for `host:port` if it is the recorded one, or records it when none is.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), SshError> {
        let name = format!("[{host}]:{port}");
        let seen = key.fingerprint(HashAlg::Sha256).to_string();
        if let Some((_, recorded)) = self.entries().into_iter().find(|(h, _)| *h == name) {
            if recorded == seen {
                return Ok(());
            }
            return Err(SshError::HostKeyMismatch {
                host: name,
                recorded,
                presented: seen,
                file: self.file.display().to_string(),
            });
        }
        let io = |e: std::io::Error| SshError::Key {
            path: self.file.display().to_string(),
            message: e.to_string(),
        };
        if let Some(parent) = self.file.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let mut text = fs::read_to_string(&self.file).unwrap_or_default();
        text.push_str(&format!("{name} {seen}\n"));
        fs::write(&self.file, text).map_err(io)?;
        tracing::debug!(host = %name, fingerprint = %seen, "recorded host key on first contact");
        Ok(())
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
        assert!(text.contains("[10.0.0.1]:22"), "{text}");
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
}
