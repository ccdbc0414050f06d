//! The SSH test harness: real OpenSSH `sshd`s on loopback ports, one per "node", each node its
//! own Unix user (`skyt…`) with its own home, so nodes share this machine's filesystem without
//! sharing Sky's files. Needs root (users, sshd) and `/usr/sbin/sshd`; without them the tests
//! that use it say so on stderr and return early.
//!
//! Why loopback ports and not network namespaces for the nodes: namespaces need `ip netns` rights
//! CI may not grant, and the port form exercises the same code (per-host port and user in the
//! pool file). Only the jump-host test needs a host this machine cannot reach directly: [`Netns`]
//! makes one (a namespace joined to this one by a veth pair) and [`SshNodes::start_in`] runs
//! sshd inside it. Everything started here is ended by pid on drop, the users are deleted and the
//! namespace removed.

use sky_testkit::hosts::run;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub(crate) struct Node {
    pub user: String,
    pub uid: u32,
    pub port: u16,
    pub home: PathBuf,
    sshd: Child,
}

pub(crate) struct SshNodes {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Whether this machine can run the harness (root, Debian's sshd); the reason when it cannot.
pub(crate) use sky_testkit::hosts::unavailable;

impl SshNodes {
    /// Starts `n` nodes on loopback that accept `authorized_key` (an OpenSSH public key line).
    pub(crate) fn start(n: usize, authorized_key: &str) -> Result<SshNodes, String> {
        SshNodes::start_in(n, authorized_key, None, "127.0.0.1")
    }

    /// [`SshNodes::start`] with each sshd listening on `listen`, inside network namespace `netns`
    /// when given.
    pub(crate) fn start_in(
        n: usize,
        authorized_key: &str,
        netns: Option<&str>,
        listen: &str,
    ) -> Result<SshNodes, String> {
        SshNodes::start_with(n, authorized_key, netns, listen, true)
    }

    /// [`SshNodes::start_in`]; with `user_keys` false the sshds read only the harness's own
    /// keys file, not the logins' `~/.ssh/authorized_keys` (as some company sshd configs do).
    pub(crate) fn start_with(
        n: usize,
        authorized_key: &str,
        netns: Option<&str>,
        listen: &str,
        user_keys: bool,
    ) -> Result<SshNodes, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let host_key = sky_testkit::hosts::prepare_sshd(dir.path())?;
        let keys = dir.path().join("authorized_keys");
        fs::write(&keys, format!("{authorized_key}\n")).map_err(|e| e.to_string())?;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
        let mut nodes = SshNodes {
            dir,
            nodes: Vec::new(),
        };
        for i in 0..n {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let user = format!("skyt{}x{seq}x{i}", std::process::id());
            let home = nodes.dir.path().join(format!("home-{i}"));
            // Idempotent: a user left by a crashed run is reused.
            let _ = run(Command::new("useradd")
                .args(["-M", "-s", "/bin/bash", "-p", "*", "-d"])
                .arg(&home)
                .arg(&user));
            let uid: u32 = run(Command::new("id").arg("-u").arg(&user))?
                .parse()
                .map_err(|e| format!("uid of {user}: {e}"))?;
            fs::create_dir_all(&home).map_err(|e| e.to_string())?;
            run(Command::new("chown").arg(format!("{user}:")).arg(&home))?;
            let port = free_port()?;
            let config = nodes.dir.path().join(format!("sshd-{i}.conf"));
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress {listen}\nHostKey {}\nPidFile {}\n\
                     AuthorizedKeysFile {}{}\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {user}\n\
                     Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 100\nMaxStartups 100\n",
                    host_key.display(),
                    nodes.dir.path().join(format!("sshd-{i}.pid")).display(),
                    keys.display(),
                    if user_keys { " .ssh/authorized_keys" } else { "" },
                ),
            )
            .map_err(|e| e.to_string())?;
            let log = fs::File::create(nodes.dir.path().join(format!("sshd-{i}.log")))
                .map_err(|e| e.to_string())?;
            let mut sshd = match netns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    // `ip netns exec` execs sshd: the child's pid is sshd's.
                    c.args(["netns", "exec", ns, SSHD]);
                    c
                }
                None => Command::new(SSHD),
            };
            let sshd = sshd
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("{SSHD}: {e}"))?;
            nodes.nodes.push(Node {
                user,
                uid,
                port,
                home,
                sshd,
            });
        }
        for node in &nodes.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            let listening = || match netns {
                None => std::net::TcpStream::connect((listen, node.port)).is_ok(),
                Some(ns) => Command::new("ip")
                    .args(["netns", "exec", ns, "/bin/bash", "-c"])
                    .arg(format!(": </dev/tcp/{listen}/{}", node.port))
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
            };
            while !listening() {
                if Instant::now() > deadline {
                    return Err(format!("sshd on port {} did not start", node.port));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(nodes)
    }

    /// A pool file declaring these nodes as pool `name`.
    pub(crate) fn pool_yaml(&self, name: &str) -> String {
        let mut text = format!("{name}:\n  hosts:\n");
        for n in &self.nodes {
            text.push_str(&format!(
                "    - ip: 127.0.0.1\n      user: {}\n      port: {}\n",
                n.user, n.port
            ));
        }
        text
    }

    /// Pids of every process running as `node`'s user.
    pub(crate) fn processes_of(node: &Node) -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("Uid:"))
                            .and_then(|l| l.split_whitespace().nth(1))
                            .and_then(|u| u.parse::<u32>().ok())
                    })
                    == Some(node.uid)
            })
            .collect()
    }

    /// Process groups of the jobs Sky's runtime recorded on `node` (`procs/*` in any cluster's
    /// directory, each `<pgid> <start time>`); the head records none (it runs its ranks as
    /// children of its agent).
    pub(crate) fn job_groups(node: &Node) -> Vec<i32> {
        let Ok(clusters) = fs::read_dir(node.home.join(sky_core::ssh::node_dir::NODES_ROOT)) else {
            return Vec::new();
        };
        clusters
            .flatten()
            .filter_map(|c| fs::read_dir(c.path().join(sky_core::ssh::node_dir::PROCS)).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|e| {
                fs::read_to_string(e.path())
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }
}

/// A network namespace joined to this one by a veth pair: `outside` is this side's address,
/// `inside` the namespace's. The namespace's own loopback is unreachable from here, which is
/// what the jump-host test relies on. Removed (with the veth pair) on drop.
pub(crate) struct Netns {
    pub name: String,
    pub inside: String,
}

impl Netns {
    pub(crate) fn create() -> Result<Netns, String> {
        let id = std::process::id() % 250 + 1;
        let name = format!("skyt{}", std::process::id());
        let (outer_if, inner_if) = (format!("skyo{id}"), format!("skyi{id}"));
        let (outside, inside) = (format!("10.213.{id}.1"), format!("10.213.{id}.2"));
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns {
            name: name.clone(),
            inside: inside.clone(),
        };
        let in_ns = |args: &[&str]| {
            run(Command::new("ip")
                .args(["netns", "exec", &name, "ip"])
                .args(args))
        };
        run(Command::new("ip").args([
            "link", "add", &outer_if, "type", "veth", "peer", "name", &inner_if,
        ]))?;
        run(Command::new("ip").args(["link", "set", &inner_if, "netns", &name]))?;
        run(Command::new("ip").args(["addr", "add", &format!("{outside}/30"), "dev", &outer_if]))?;
        run(Command::new("ip").args(["link", "set", &outer_if, "up"]))?;
        in_ns(&["addr", "add", &format!("{inside}/30"), "dev", &inner_if])?;
        in_ns(&["link", "set", &inner_if, "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Drop for SshNodes {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.sshd.kill();
            let _ = node.sshd.wait();
            // Agents and jobs the test left behind, by pid.
            for pid in SshNodes::processes_of(node) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
            let _ = Command::new("userdel").arg(&node.user).output();
        }
    }
}
