//! A cluster's own directory on every node it reaches by SSH, `~/.sky-nodes/<cluster>-<id>`, and
//! the shell scripts that create it and release it.
//!
//! Why a directory per cluster and not `~/.sky`: `~/.sky` is SkyPilot's home, and on a pool host
//! that shares the client's home (NFS, or this very machine) it may be the client's own Sky home;
//! removing it at `down` destroyed both. The id is a hash of this Sky home's random id
//! (`$SKY_HOME/ssh/home-id`, made once) and the cluster name, so two Sky homes (two laptops with
//! the same user name and path) never share a directory on a host.
//!
//! The directory holds the head's agent (`agent/`, its home `agent/home`), the workers' login
//! keys on the head (`ssh/`, also the ControlMaster sockets), the job process groups started on
//! a worker (`procs/<key>`, each `<pgid> <start time>`), a marker `owner` written when the
//! directory is made (the proof release asks for), and `workdir-created` when this cluster
//! created `~/sky_workdir` (which stays where SkyPilot tasks expect it).
//!
//! Release ends only processes this cluster started: the agent only when its executable lies
//! in this directory, a job group only when its leader's start time (`/proc/<pid>/stat` field 22)
//! is the one recorded at spawn, so a recycled pid is left alone. It then removes the directory
//! (and the workdir when this cluster made it), refusing when the marker is missing or when the
//! path is, or holds, the login's home or the client's Sky home.
//!
//! What this module does not do: run anything (callers run the scripts over SSH, the head's
//! agent runs the autostop one), or clean up what older Sky versions left in `~/.sky` (nothing
//! proves whose it is).

use std::fs;
use std::io::Write;
use std::path::Path;

use super::SshError;
use super::session::quote;
use crate::jobs::WORKDIR_NAME;

/// Parent of every cluster's directory, relative to the login's home.
pub const NODES_ROOT: &str = ".sky-nodes";
/// The client's random identity, under its Sky home.
pub const HOME_ID_FILE: &str = "ssh/home-id";
/// The marker proving a directory is this cluster's.
pub const MARKER: &str = "owner";
/// Present when this cluster created `~/sky_workdir`.
pub const WORKDIR_MARK: &str = "workdir-created";
/// Exit code of the scripts when they refuse (nothing was changed).
pub const REFUSED: i32 = 3;
/// Job process groups started on a node, one file each holding `<pgid> <start time>`.
pub const PROCS: &str = "procs";
/// A shell function printing the start time of process `$1` (`/proc/<pid>/stat` field 22, in
/// clock ticks since boot), empty when there is no such process. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `) `: field 22 is the 20th.
/// Recorded at spawn and compared before a kill, so a pid the kernel gave to another process
/// since is never signalled.
pub const START_TIME_FN: &str =
    r#"start_time() { sed -n 's/^.*) //p' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }"#;

/// Sky's directory for one cluster on its nodes, and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDir {
    /// Relative to the login's home: `.sky-nodes/<cluster>-<id>`.
    rel: String,
    cluster: String,
    home_id: String,
    /// The client's Sky home as the client names it (a host sharing the file system sees it
    /// there too).
    client_home: String,
}

/// The 64-bit FNV-1a hash: stable across builds and platforms, which a std hasher is not.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// This Sky home's random id (16 hex digits), created once. Racing first uses agree: the file is
/// written privately and linked into place, and whoever lost reads the winner's.
pub fn home_id(sky_home: &Path) -> Result<String, SshError> {
    let path = sky_home.join(HOME_ID_FILE);
    let io = |p: &Path, e: std::io::Error| SshError::Local(format!("{}: {e}", p.display()));
    if let Ok(text) = fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(id.to_owned());
        }
        return Err(SshError::Local(format!(
            "{}: not a Sky home id ('{id}'); remove it to make a new one",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(sky_home);
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw)
        .map_err(|e| SshError::Local(format!("no system randomness for a home id: {e}")))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!("home-id.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&tmp, e))?;
    drop(file);
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => home_id(sky_home),
        Err(e) => Err(io(&path, e)),
    }
}

impl NodeDir {
    /// The directory of `cluster` launched from `sky_home` (its id created on first use).
    pub fn for_cluster(sky_home: &Path, cluster: &str) -> Result<NodeDir, SshError> {
        let home_id = home_id(sky_home)?;
        Ok(NodeDir::new(
            &home_id,
            cluster,
            &sky_home.display().to_string(),
        ))
    }

    pub fn new(home_id: &str, cluster: &str, client_home: &str) -> NodeDir {
        // Cluster names are already limited to letters, digits, '-', '_' and '.'; anything else
        // (and length) is kept out of the path anyway, since the name is only there for people.
        let readable: String = cluster
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let hash = fnv1a(format!("{home_id}\n{cluster}").as_bytes());
        NodeDir {
            rel: format!("{NODES_ROOT}/{readable}-{:08x}", hash as u32),
            cluster: cluster.to_owned(),
            home_id: home_id.to_owned(),
            client_home: client_home.to_owned(),
        }
    }

    /// Relative to the login's home.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// The directory on a node whose login's home is `home`.
    pub fn on(&self, home: &str) -> String {
        format!("{}/{}", home.trim_end_matches('/'), self.rel)
    }

    pub fn agent_dir(&self, home: &str) -> String {
        format!("{}/agent", self.on(home))
    }

    /// The head agent's `--home`.
    pub fn agent_home(&self, home: &str) -> String {
        format!("{}/agent/home", self.on(home))
    }

    /// The comment that marks this cluster's worker key in a worker's `authorized_keys`: unique
    /// to the cluster and the client's Sky home, so removing it never removes another's line.
    pub fn worker_key_mark(&self) -> String {
        format!("sky-worker:{}", self.rel)
    }

    /// Adds the key line read from stdin to `~/.ssh/authorized_keys`, replacing an earlier line
    /// of this cluster; the file is rewritten in place (its inode, owner and mode kept).
    pub fn authorize_worker_key_script(&self) -> String {
        format!(
            r#"umask 077
wm={wm}
mkdir -p "$HOME/.ssh" && f="$HOME/.ssh/authorized_keys" && touch "$f" || exit 1
{{ awk -v m="$wm" '$NF != m' "$f"; cat; }} > "$f.sky-tmp" && cat "$f.sky-tmp" > "$f"
s=$?; rm -f "$f.sky-tmp"; exit $s
"#,
            wm = quote(&self.worker_key_mark()),
        )
    }

    /// Worker keys, known hosts and ControlMaster sockets on the head.
    pub fn keys_dir(&self, home: &str) -> String {
        format!("{}/ssh", self.on(home))
    }

    /// Job process groups recorded on a worker (see [`PROCS`]).
    pub fn procs_dir(&self, home: &str) -> String {
        format!("{}/{PROCS}", self.on(home))
    }

    /// What the marker file holds: which client home and cluster made the directory.
    fn mark(&self) -> String {
        format!(
            "sky-node 1 home-id {} cluster {}",
            self.home_id, self.cluster
        )
    }

    /// Shell variables every script starts with (`$HOME` is the node's login's).
    fn preamble(&self) -> String {
        format!(
            "d=\"$HOME\"/{rel}\nmark={mark}\nclient_home={client}\nhome_id={id}\ncluster={cluster}\n",
            rel = quote(&self.rel),
            mark = quote(&self.mark()),
            client = quote(&self.client_home),
            id = quote(&self.home_id),
            cluster = quote(&self.cluster),
        )
    }

    /// Creates the directory with its marker (0700), or checks that an existing one is this
    /// cluster's; exits [`REFUSED`] naming the path otherwise.
    pub fn ensure_script(&self) -> String {
        format!(
            r#"{pre}umask 077
if [ -L "$d" ]; then echo "sky: $d is a symbolic link, not a directory Sky made; refusing to use it" >&2; exit {REFUSED}; fi
if [ ! -d "$d" ]; then
  mkdir -p "$HOME"/{root} && mkdir "$d" && printf '%s\n' "$mark" > "$d/{MARKER}.part" && mv -f "$d/{MARKER}.part" "$d/{MARKER}" || exit 1
fi
if [ "$(cat "$d/{MARKER}" 2>/dev/null)" != "$mark" ]; then
  echo "sky: $d exists but its {MARKER} file does not say it is this cluster's ($mark); refusing to use it" >&2; exit {REFUSED}
fi
chmod 700 "$d"
"#,
            pre = self.preamble(),
            root = quote(NODES_ROOT),
        )
    }

    /// Run before the workdir is replaced: records that this cluster creates `~/sky_workdir`,
    /// or refuses when one exists that this cluster did not create (another cluster's, or the
    /// user's own), since the upload would replace it.
    pub fn claim_workdir_script(&self) -> String {
        format!(
            r#"{pre}w="$HOME"/{wd}
if [ -e "$w" ] || [ -L "$w" ]; then
  [ -f "$d/{WORKDIR_MARK}" ] || {{ echo "sky: $w exists and was not created by cluster $cluster (another cluster's or your own); move it away to launch here" >&2; exit {REFUSED}; }}
else
  : > "$d/{WORKDIR_MARK}"
fi
"#,
            pre = self.preamble(),
            wd = quote(WORKDIR_NAME),
        )
    }

    /// Ends what this cluster started on the node and removes what it made (see the module
    /// docs); a node with no directory of this cluster is left as it is.
    pub fn release_script(&self) -> String {
        format!(
            r#"{pre}phys() {{ (cd -P -- "$1" 2>/dev/null && pwd -P); }}
{START_TIME_FN}
# Why removing $1 would destroy what is not this cluster's; nothing (status 1) when it would not.
unsafe_to_remove() {{
  p=$(phys "$1") || return 1
  h=$(phys "$HOME")
  case "$h/" in "${{p%/}}"/*) echo "it is the login's home or holds it ($h)"; return 0;; esac
  if c=$(phys "$client_home"); then
    case "$c/" in "${{p%/}}"/*) echo "it is the client's Sky home or holds it ($c)"; return 0;; esac
  fi
  f=$(find "$p" -maxdepth 4 -path '*/{HOME_ID_FILE}' -exec grep -qx -- "$home_id" {{}} \; -print 2>/dev/null | head -n 1)
  [ -n "$f" ] && {{ echo "it holds the client's Sky home ($f)"; return 0; }}
  return 1
}}
# This cluster's worker key (its line carries a mark no other cluster or home has).
wm={wm}
ak="$HOME/.ssh/authorized_keys"
if [ -f "$ak" ] && [ ! -L "$ak" ] && awk -v m="$wm" '$NF == m {{ found = 1 }} END {{ exit !found }}' "$ak"; then
  awk -v m="$wm" '$NF != m' "$ak" > "$ak.sky-tmp" && cat "$ak.sky-tmp" > "$ak"; rm -f "$ak.sky-tmp"
fi
if [ -L "$d" ]; then echo "sky: $d is a symbolic link, not a directory Sky made; left alone" >&2; exit {REFUSED}; fi
[ -d "$d" ] || exit 0
if [ "$(cat "$d/{MARKER}" 2>/dev/null)" != "$mark" ]; then
  echo "sky: $d has no {MARKER} file of this cluster ($mark); left alone" >&2; exit {REFUSED}
fi
if why=$(unsafe_to_remove "$d"); then echo "sky: refusing to remove $d: $why" >&2; exit {REFUSED}; fi
pd=$(phys "$d")
if [ -f "$d/agent/home/agent.pid" ]; then
  pid=$(cat "$d/agent/home/agent.pid")
  case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in "$pd"/*) kill -TERM "$pid" 2>/dev/null;; esac
fi
for f in "$d"/{PROCS}/*; do
  [ -f "$f" ] || continue
  read -r pg st < "$f" || true
  case "$pg" in ''|*[!0-9]*) continue;; esac
  if [ -n "$st" ] && [ "$(start_time "$pg")" = "$st" ]; then kill -s KILL -- "-$pg" 2>/dev/null; fi
done
w="$HOME"/{wd}
if [ -f "$d/{WORKDIR_MARK}" ] && {{ [ -e "$w" ] || [ -L "$w" ]; }}; then
  if why=$(unsafe_to_remove "$w"); then echo "sky: refusing to remove $w: $why" >&2; exit {REFUSED}; fi
  rm -rf "$w"
fi
rm -rf "$d"
rmdir "$HOME"/{root} 2>/dev/null
true
"#,
            pre = self.preamble(),
            wm = quote(&self.worker_key_mark()),
            wd = quote(WORKDIR_NAME),
            root = quote(NODES_ROOT),
        )
    }
}

#[cfg(test)]
#[path = "node_dir_tests.rs"]
mod tests;
