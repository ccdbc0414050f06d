//! Process-wide reuse of SSH connections: a launch goes through several provider calls (wait for
//! the nodes, give the head access to the workers, reach the agent, sync, set up), each of which
//! used to open its own connection to every node. Keeping each node's [`RemoteNode`] here makes
//! it one connection (one key exchange, one `$HOME` lookup) per node for the whole command.
//!
//! Entries are keyed by Sky home, cluster and target, so clusters and homes never share a
//! session. A session that closed (keepalives noticed a dead node) is never handed out, and one
//! idle for [`IDLE`] is dropped at the next lookup, so a long-lived process (the desktop app)
//! does not hold connections to clusters nobody is looking at. What this module does not do:
//! connect (see [`super::remote`]) or verify host keys (done once, when the session was made).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::SshTarget;
use super::remote::RemoteNode;

/// How long an unused connection is kept.
pub const IDLE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    sky_home: PathBuf,
    cluster: String,
    target: SshTarget,
}

struct Entry {
    node: Arc<RemoteNode>,
    last_used: Instant,
}

fn entries() -> MutexGuard<'static, HashMap<Key, Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Entry>>> = OnceLock::new();
    // A panic while holding the lock leaves plain data behind: keep using it.
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key(sky_home: &Path, cluster: &str, target: &SshTarget) -> Key {
    Key {
        sky_home: sky_home.to_path_buf(),
        cluster: cluster.to_owned(),
        target: target.clone(),
    }
}

/// A live connection to `target` made earlier for this cluster, if any.
pub(crate) fn get(sky_home: &Path, cluster: &str, target: &SshTarget) -> Option<Arc<RemoteNode>> {
    let now = Instant::now();
    let mut map = entries();
    map.retain(|_, e| !e.node.session.is_closed() && now.duration_since(e.last_used) < IDLE);
    let entry = map.get_mut(&key(sky_home, cluster, target))?;
    entry.last_used = now;
    Some(entry.node.clone())
}

/// Keeps `node` for later calls of this process.
pub(crate) fn put(sky_home: &Path, cluster: &str, node: Arc<RemoteNode>) {
    let k = key(sky_home, cluster, &node.target);
    entries().insert(
        k,
        Entry {
            node,
            last_used: Instant::now(),
        },
    );
}

/// Drops every connection of `cluster` (it was released or torn down); returns them so the
/// caller can close them politely.
pub fn forget(sky_home: &Path, cluster: &str) -> Vec<Arc<RemoteNode>> {
    let mut map = entries();
    let gone: Vec<Key> = map
        .keys()
        .filter(|k| k.sky_home == sky_home && k.cluster == cluster)
        .cloned()
        .collect();
    gone.iter()
        .filter_map(|k| map.remove(k))
        .map(|e| e.node)
        .collect()
}
