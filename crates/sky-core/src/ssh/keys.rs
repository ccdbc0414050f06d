//! The user's SSH key pair: one ed25519 key in `$SKY_HOME/ssh/sky-key` (0600) with its public half
//! in `sky-key.pub`, generated on first need and reused for every cluster.
//!
//! What this module does not do: install the public key on machines (clouds put it in their
//! instance metadata; node pools are the user's own machines) or read ssh-agent keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey};

use super::SshError;

/// File name of the private key under `$SKY_HOME/ssh`.
pub const KEY_FILE: &str = "sky-key";

/// A loaded private key and where it lives.
#[derive(Clone)]
pub struct UserKey {
    pub path: PathBuf,
    pub key: Arc<PrivateKey>,
}

impl std::fmt::Debug for UserKey {
    // Never print key material, only where it is and whose it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl UserKey {
    /// The public half in `authorized_keys` form (`ssh-ed25519 AAAA... sky`).
    pub fn public_openssh(&self) -> Result<String, SshError> {
        self.key
            .public_key()
            .to_openssh()
            .map_err(|e| SshError::Key {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })
    }

    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The private key in OpenSSH form, for copying to a head node so its agent can reach the
    /// workers. Kept in memory only for the upload.
    pub fn private_openssh(&self) -> Result<SecretText, SshError> {
        self.key
            .to_openssh(LineEnding::LF)
            .map(|s| SecretText(s.to_string()))
            .map_err(|e| SshError::Key {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })
    }
}

/// Private key text on its way to a head node; kept out of `Debug` output.
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// Loads an existing private key (a pool's `identity_file`).
pub fn load(path: &Path) -> Result<UserKey, SshError> {
    let key = russh::keys::load_secret_key(path, None).map_err(|e| SshError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(UserKey {
        path: path.to_path_buf(),
        key: Arc::new(key),
    })
}

/// A new ed25519 key from the OS's randomness, with `comment`.
fn generate(comment: &str, what: &str) -> Result<PrivateKey, SshError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| SshError::Key {
        path: what.to_owned(),
        message: format!("no system randomness: {e}"),
    })?;
    let pair = Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    PrivateKey::new(KeypairData::Ed25519(pair), comment).map_err(|e| SshError::Key {
        path: what.to_owned(),
        message: e.to_string(),
    })
}

/// A key of one cluster's own, for its head to log in to its workers: never written on this
/// machine, it lives only on the head (0600) and in the workers' `authorized_keys` under
/// `comment`, so a head holds no key that opens anything but its own workers.
pub fn worker_key(comment: &str) -> Result<UserKey, SshError> {
    let what = format!("(worker key {comment})");
    Ok(UserKey {
        key: Arc::new(generate(comment, &what)?),
        path: PathBuf::from(what),
    })
}

/// The user's key, created (ed25519, 0600) when it does not exist yet.
pub fn load_or_create(sky_home: &Path) -> Result<UserKey, SshError> {
    let dir = sky_home.join("ssh");
    let path = dir.join(KEY_FILE);
    if path.is_file() {
        return load(&path);
    }
    let io = |p: &Path, e: std::io::Error| SshError::Key {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let key = generate("sky", &path.display().to_string())?;
    let text = key.to_openssh(LineEnding::LF).map_err(|e| SshError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    // Write to a private temp file and rename, so a concurrent first use never reads half a key
    // and the key is never readable by others, even briefly.
    let tmp = dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(text.as_bytes()).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    drop(file);
    let public = key.public_key().to_openssh().map_err(|e| SshError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let pub_path = dir.join(format!("{KEY_FILE}.pub"));
    fs::write(&pub_path, format!("{public}\n")).map_err(|e| io(&pub_path, e))?;
    if fs::hard_link(&tmp, &path).is_err() && !path.is_file() {
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    }
    let _ = fs::remove_file(&tmp);
    // Whoever won a race, use the key that is on disk now.
    load(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_once_and_reuses_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = load_or_create(dir.path()).expect("create");
        let again = load_or_create(dir.path()).expect("reuse");
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert!(
            first
                .public_openssh()
                .expect("pub")
                .starts_with("ssh-ed25519 ")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&first.path)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let public = fs::read_to_string(dir.path().join("ssh/sky-key.pub")).expect("pub file");
        assert_eq!(public.trim(), first.public_openssh().expect("pub"));
        assert!(
            !format!("{first:?}").contains("PRIVATE"),
            "Debug hides the key"
        );
    }
}
