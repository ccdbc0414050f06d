//! Cloud storage in `file_mounts`: bucket URIs and SkyPilot's storage objects, the stores that
//! answer for them, and the one command every node runs to copy a bucket's data.
//!
//! The client checks every bucket a task names before anything is provisioned
//! ([`ObjectStore::inspect`]: it exists, it is readable, it holds something at that path). After
//! provisioning it asks the store for short-lived, read-only access to exactly that path
//! ([`ObjectStore::read_access`]) and every node runs [`BucketCopy::script`]: rclone (one tool for
//! S3, GCS and Azure Blob) copies into a staging directory next to the destination, which replaces
//! or merges into the destination only when the copy is whole. The credentials reach rclone on
//! its standard input and then its environment: never a command line, a file on the node or a
//! log.
//!
//! A storage object with a local `source` gets a bucket of its own ([`ObjectStore::claim`]):
//! created and tagged as this Sky home's (see [`owned`]), or reused when it already carries that
//! tag, then the local files are uploaded ([`ObjectStore::upload`]) and the nodes copy the bucket
//! as above. Only such buckets are ever deleted ([`ObjectStore::delete_owned`]).
//!
//! What this module does not do: FUSE mounts (`mode: MOUNT`, `MOUNT_CACHED`) or empty buckets for
//! outputs (they need a mount to be written); a task asking for those is refused by name.

mod owned;
mod uri;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use owned::{BucketUsage, Claimed, Ownership, UploadFile, Uploaded, upload_files};
pub use uri::{ALLOWED_URIS, BucketUri, StoreKind, check_bucket_name};

use crate::credentials::Secret;

/// How a storage object reaches the nodes (SkyPilot's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageMode {
    /// A FUSE mount; writes go to the bucket. SkyPilot's default.
    Mount,
    /// Downloaded onto each node before setup.
    Copy,
    /// A mount with a local write-back cache.
    MountCached,
}

impl StorageMode {
    pub const NAMES: &'static [&'static str] = &["MOUNT", "COPY", "MOUNT_CACHED"];

    pub fn parse(s: &str) -> Option<StorageMode> {
        match s.to_ascii_uppercase().as_str() {
            "MOUNT" => Some(StorageMode::Mount),
            "COPY" => Some(StorageMode::Copy),
            "MOUNT_CACHED" => Some(StorageMode::MountCached),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Mount => "MOUNT",
            StorageMode::Copy => "COPY",
            StorageMode::MountCached => "MOUNT_CACHED",
        }
    }
}

/// Where a storage object's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageSource {
    /// No source: an empty bucket for outputs.
    Empty,
    /// Local files or directories to upload into the bucket.
    Local(Vec<String>),
    /// An existing bucket, or a path in one.
    Bucket(BucketUri),
}

/// A storage object of `file_mounts` (`/dst: {name, source, store, mode, persistent}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageSpec {
    /// The bucket's name; given, or the source bucket's.
    pub name: String,
    pub source: StorageSource,
    /// The store the bucket lives in (the source URI's, or `store:`); `None` means the cluster's
    /// own cloud.
    pub store: Option<StoreKind>,
    pub mode: StorageMode,
    /// Whether the bucket outlives the cluster (`persistent: false` deletes it at `down`).
    pub persistent: bool,
}

/// What a bucket path holds, as the client saw it before provisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// Objects at or under the path.
    pub objects: u64,
    pub bytes: u64,
    /// The path names one object (copied as a file) rather than a prefix (copied as a directory).
    pub is_object: bool,
    /// Whether `objects` and `bytes` count everything; a store looks at one page of a large
    /// prefix only (the copy still takes all of it).
    pub complete: bool,
}

/// How a node's rclone reaches a bucket: an on-the-fly remote (no config file) and the
/// credentials it needs, as `RCLONE_*` environment variables.
#[derive(Clone)]
pub struct NodeAccess {
    remote: String,
    secrets: Vec<(String, Secret)>,
    caveat: Option<String>,
}

impl NodeAccess {
    /// `remote` is an rclone remote path with no secrets in it (e.g.
    /// `:s3,provider=AWS,region=us-east-1:b/p`); each secret is an `RCLONE_*` variable whose value
    /// is one line (it travels on the copy's standard input, one per line).
    pub fn new(
        remote: impl Into<String>,
        secrets: Vec<(String, Secret)>,
    ) -> Result<NodeAccess, StorageError> {
        for (name, value) in &secrets {
            if !is_rclone_variable(name) {
                return Err(StorageError::Other(format!(
                    "'{name}' is not an rclone variable (RCLONE_[A-Z0-9_]+)"
                )));
            }
            if value.expose().contains(['\n', '\r']) {
                return Err(StorageError::Other(format!(
                    "the value for {name} has a line break"
                )));
            }
        }
        Ok(NodeAccess {
            remote: remote.into(),
            secrets,
            caveat: None,
        })
    }

    /// What the user should know about this access (e.g. that it is broader than the path),
    /// shown when the nodes get it.
    pub fn with_caveat(mut self, caveat: impl Into<String>) -> NodeAccess {
        self.caveat = Some(caveat.into());
        self
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    pub fn caveat(&self) -> Option<&str> {
        self.caveat.as_deref()
    }
}

impl fmt::Debug for NodeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeAccess")
            .field("remote", &self.remote)
            .field(
                "secrets",
                &self.secrets.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("caveat", &self.caveat)
            .finish()
    }
}

/// Why a bucket cannot be used; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("bucket '{bucket}' does not exist{hint}")]
    NoSuchBucket { bucket: String, hint: String },
    #[error("access to {uri} is denied ({detail}); grant these credentials read access to it")]
    AccessDenied { uri: String, detail: String },
    #[error("{uri} holds no objects; check the path, or put the data there first")]
    Empty { uri: String },
    #[error("no {store} credentials: {why}")]
    Auth { store: StoreKind, why: String },
    #[error("{store} is not reachable: {why}")]
    Unavailable { store: StoreKind, why: String },
    #[error(
        "bucket '{bucket}' exists and is not this Sky home's ({why}); choose another `name`, or \
         read it with `source: {store_scheme}://{bucket}`"
    )]
    Taken {
        bucket: String,
        store_scheme: String,
        why: String,
    },
    #[error("{0}")]
    Other(String),
}

/// One object store as the client uses it (sky-aws implements S3).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    fn kind(&self) -> StoreKind;
    /// What `uri` holds; errors if the bucket is missing, unreadable or empty at that path.
    async fn inspect(&self, uri: &BucketUri) -> Result<Listing, StorageError>;
    /// Short-lived credentials that may only read `uri` (and list its bucket under its path),
    /// for the nodes' copy.
    async fn read_access(&self, uri: &BucketUri) -> Result<NodeAccess, StorageError>;
    /// Who bucket `name` belongs to: missing, this home's (`owner`'s tag), or someone else's.
    async fn ownership(&self, name: &str, owner: &str) -> Result<Ownership, StorageError>;
    /// Creates bucket `name` (in `region`, or the store's default) tagged as `owner`'s, or
    /// reuses it when it already is; [`StorageError::Taken`] when it exists and is not.
    async fn claim(
        &self,
        name: &str,
        region: Option<&str>,
        owner: &str,
    ) -> Result<Claimed, StorageError>;
    /// Uploads `files` into `owner`'s bucket `name`, skipping those already there with the same
    /// size and not older; refuses a bucket that is not `owner`'s.
    async fn upload(
        &self,
        name: &str,
        owner: &str,
        files: &[UploadFile],
    ) -> Result<Uploaded, StorageError>;
    /// Counts what bucket `name` holds, and where it is.
    async fn usage(&self, name: &str) -> Result<BucketUsage, StorageError>;
    /// Empties and deletes bucket `name` if it carries `owner`'s tag; `Ok(false)` when it is
    /// already gone, [`StorageError::Taken`] when it is not `owner`'s.
    async fn delete_owned(&self, name: &str, owner: &str) -> Result<bool, StorageError>;
}

/// One bucket path to copy onto every node, at `remote` (the `file_mounts` key).
#[derive(Debug, Clone)]
pub struct BucketCopy {
    pub remote: String,
    pub uri: BucketUri,
    pub listing: Listing,
    pub access: NodeAccess,
}

/// Installs rclone with apt when the node lacks it (root, else passwordless sudo); a fresh cloud
/// image has no package lists yet, so a failed install is retried after `apt-get update`.
const INSTALL_RCLONE: &str = "{ command -v rclone >/dev/null 2>&1 || { \
     echo 'sky: installing rclone on this node' >&2; \
     if [ \"$(id -u)\" = 0 ]; then a='env DEBIAN_FRONTEND=noninteractive apt-get'; \
     else a='sudo -n env DEBIAN_FRONTEND=noninteractive apt-get'; fi; \
     $a install -y -q rclone >&2 || { $a update -q >&2 && $a install -y -q rclone >&2; }; }; }";

impl BucketCopy {
    /// The shell command that copies the data to `dest` (a shell word: quoted, or `"$HOME"/...`),
    /// reading [`BucketCopy::stdin`] first. Staged next to `dest` and moved into place only when
    /// whole: a failed copy leaves `dest` as it was. Installs rclone when the node lacks it, and
    /// says so on stderr (the setup log).
    pub fn script(&self, dest: &str) -> String {
        let names: Vec<&str> = self
            .access
            .secrets
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let reads: String = names
            .iter()
            .map(|k| format!("IFS= read -r {k} && export {k} && "))
            .collect();
        let remote = crate::ssh::session::quote(&self.access.remote);
        // rclone's own retries cover throttling and 5xx answers mid-copy (each request, then the
        // whole pass); what still fails fails the launch with rclone's message. The counts bound
        // a store that never recovers: measured with rclone 1.60 against an endpoint answering
        // 503 to everything, 3 passes of 10 request retries took over 5 minutes before failing,
        // 2 of 5 take about 2.5 minutes (1 of 3: 22 s, too few for a throttling burst).
        let flags = "--config /dev/null --retries 2 --low-level-retries 5 --stats 0";
        let (prepare, copy, place) = if self.listing.is_object {
            (
                r#"d="$(dirname -- "$p")""#,
                format!(r#"rclone copyto {flags} {remote} "$p.sky-part""#),
                r#"mv -f -- "$p.sky-part" "$p""#.to_owned(),
            )
        } else {
            (
                r#"d="$p""#,
                format!(r#"rclone copy {flags} {remote} "$p.sky-part""#),
                // Merged into what is there, as SkyPilot's sync does; then the stage is gone.
                r#"{ cp -a -- "$p.sky-part"/. "$p"/ && rm -rf -- "$p.sky-part"; }"#.to_owned(),
            )
        };
        format!(
            "{reads}p={dest} && {prepare} && \
             {{ mkdir -p \"$d\" 2>/dev/null || {{ sudo -n mkdir -p \"$d\" && \
             sudo -n chown \"$(id -u):$(id -g)\" \"$d\"; }}; }} && \
             {INSTALL_RCLONE} && \
             rm -rf -- \"$p.sky-part\" && \
             {{ {copy} || {{ s=$?; rm -rf -- \"$p.sky-part\"; exit $s; }}; }} && {place}"
        )
    }

    /// The credentials, one per line, in the order [`BucketCopy::script`] reads them.
    pub fn stdin(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, value) in &self.access.secrets {
            out.extend_from_slice(value.expose().as_bytes());
            out.push(b'\n');
        }
        out
    }
}

/// A task's `file_mounts` as the nodes get them: local files and directories to upload, and
/// bucket paths each node copies itself.
#[derive(Debug, Clone, Default)]
pub struct NodeMounts {
    /// `(remote path, local file or directory)`.
    pub local: Vec<(String, PathBuf)>,
    pub buckets: Vec<BucketCopy>,
}

impl NodeMounts {
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.buckets.is_empty()
    }

    /// The remote path of the first mount, for messages of providers that cannot place any.
    pub fn first_remote(&self) -> Option<&str> {
        self.local
            .first()
            .map(|(r, _)| r.as_str())
            .or_else(|| self.buckets.first().map(|b| b.remote.as_str()))
    }
}

/// Where a `file_mounts` destination lands on a node that is a directory on this machine (the
/// local cloud): `~`, `~/x` and `x` are inside the node's directory, its "home"; an absolute path
/// or one that climbs out (`..`) is refused, as it would write outside the node.
pub fn local_destination(node_dir: &Path, remote: &str) -> Result<PathBuf, String> {
    let rel = match remote.strip_prefix('~') {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        Some(_) => {
            return Err(format!(
                "'{remote}' names another user's home; allowed on this cloud: ~/PATH or a \
                 relative PATH (inside the node's directory)"
            ));
        }
        None if remote.starts_with('/') => {
            return Err(format!(
                "'{remote}' is outside the node's directory, and the local cloud's nodes are \
                 directories on this machine; allowed: ~/PATH or a relative PATH (inside the \
                 node's directory), or run the task on an SSH-reached cloud"
            ));
        }
        None => remote,
    };
    if Path::new(rel)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "'{remote}' climbs out of the node's directory ('..'); allowed: ~/PATH or a \
             relative PATH inside it"
        ));
    }
    Ok(node_dir.join(rel))
}

/// Whether `name` may carry a secret into the copy's environment: rclone's own variables only,
/// so no answer from a store can set `PATH` or `LD_PRELOAD` on a node.
pub fn is_rclone_variable(name: &str) -> bool {
    name.strip_prefix("RCLONE_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

#[cfg(test)]
mod tests;
