//! Real "VM" hosts for tests: a pool of hosts, each with its own IPv4 address and an OpenSSH
//! `sshd` on port 22, onto which the cloud fakes place their instances.
//!
//! A host is a network namespace (`ip netns add`) joined by a veth pair to a bridge that belongs
//! to this test process, addressed `10.213.S.H/24`. When namespaces cannot be made, hosts fall
//! back to loopback addresses (`127.213.S.H`, port 22) and the pool says so loudly on stderr.
//! Either way each host's `sshd` runs in its own mount namespace where the instance's "disk" (a
//! directory) is bind-mounted over the login user's home: the hosts share this machine's
//! filesystem, but every instance has its own home, as separate VMs would.
//!
//! Instances are placed by key (an instance id or name): [`Hosts::attach`] gives a key a free host
//! (a different one after a stop than before, as clouds change IPs) and starts its `sshd`;
//! [`Hosts::detach`] powers it off, killing every process the host ran. Keys are installed per
//! instance with [`Hosts::authorize`], or for every instance with [`Hosts::authorize_all`] (what
//! cloud-init does with an imported key pair).
//!
//! Each host's guest OS halts as a VM's would: `shutdown`, `poweroff` and `halt` (found first on
//! the PATH, in `/usr/local/bin` and `/usr/local/sbin` of the host's mount namespace) ask the
//! cloud fake that placed the instance to power it off, as a hypervisor does after a guest
//! shutdown ([`Hosts::on_guest_shutdown`]); what the cloud then records (stopped, terminated) is
//! the fake's to decide.
//!
//! Root only (namespaces, `useradd`, `sshd`). Everything is ended by pid on drop, and again at the
//! next start for a run that crashed: namespaces, bridges and sshds whose owning process is gone.
//! What it does not do: model disks' contents across deletion, or networks beyond one /24.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
/// Every namespace this harness makes starts with it; the owning pid follows.
const NS_PREFIX: &str = "skyh-";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Why this machine cannot run hosts at all (not root, no sshd); `None` when it can.
pub fn unavailable() -> Option<String> {
    if !Path::new(SSHD).is_file() {
        return Some(format!(
            "{SSHD} is not installed (apt-get install openssh-server)"
        ));
    }
    match run(Command::new("id").arg("-u")) {
        Ok(uid) if uid == "0" => None,
        Ok(_) => Some("real SSH hosts need root (namespaces, useradd, sshd)".into()),
        Err(e) => Some(e),
    }
}

/// Readies `dir` for sshds run from it: traversable by the test users whose homes, disks and
/// keys live below it, with sshd's privilege-separation directory present and a fresh ed25519
/// host key (returned) made for this run.
pub fn prepare_sshd(dir: &Path) -> Result<PathBuf, String> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
    let host_key = dir.join("host_key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&host_key))?;
    Ok(host_key)
}

/// Runs `cmd`; its trimmed stdout, or an error naming the command and its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// How hosts are separated on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// One network namespace per host, on a bridge.
    Netns,
    /// Loopback addresses in the root namespace (namespaces were refused).
    Loopback,
}

/// A Unix user created for one test (idempotently: a user left by a crashed run is reused),
/// deleted on drop. All hosts of a pool log in as it.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    /// Its home path; on each host an instance's own directory is mounted here.
    pub home: PathBuf,
}

impl TestUser {
    pub fn create(dir: &Path) -> Result<TestUser, String> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("skyt{}h{seq}", std::process::id());
        let home = dir.join("home");
        fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let _ = run(Command::new("useradd")
            .args(["-M", "-s", "/bin/bash", "-p", "*", "-d"])
            .arg(&home)
            .arg(&name));
        let uid: u32 = run(Command::new("id").arg("-u").arg(&name))?
            .parse()
            .map_err(|e| format!("uid of {name}: {e}"))?;
        run(Command::new("chown").arg(format!("{name}:")).arg(&home))?;
        Ok(TestUser { name, uid, home })
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

struct Slot {
    addr: String,
    /// Network namespace name (netns isolation only).
    ns: Option<String>,
    /// The instance placed here, its sshd, and the sshd's mount namespace (for power-off).
    running: Option<Running>,
}

struct Running {
    key: String,
    sshd: Child,
    mnt_ns: Option<String>,
}

struct Inner {
    dir: tempfile::TempDir,
    isolation: Isolation,
    bridge: Option<String>,
    user: TestUser,
    host_key: PathBuf,
    slots: Vec<Slot>,
    /// Where the next attach starts looking, so a restarted instance gets a new address.
    cursor: usize,
    /// Keys every instance accepts.
    all_keys: Vec<String>,
    /// Keys of single instances.
    keys: BTreeMap<String, Vec<String>>,
    attaches: u32,
}

/// A pool of hosts; cheap to clone, shared by a test and the fakes it starts.
#[derive(Clone)]
pub struct Hosts {
    inner: Arc<Mutex<Inner>>,
    shutdowns: Arc<Mutex<Vec<ShutdownHandler>>>,
}

/// What a cloud fake does when the guest of one of its instances (by key) shuts down; `false`
/// when the key is not one of its instances.
pub type ShutdownHandler = Arc<dyn Fn(&Hosts, &str) -> bool + Send + Sync>;

/// How often halted guests are looked for: the "hypervisor" reacting, not a wait in a test.
const HALT_POLL: Duration = Duration::from_millis(50);

impl Hosts {
    /// Makes `n` hosts whose logins are one fresh test user.
    pub fn start(n: usize) -> Result<Hosts, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        clean_stale();
        let pid = std::process::id();
        // The owner's pid in the path lets a later run recognise this run's sshds as stale.
        let dir = tempfile::Builder::new()
            .prefix(&format!("sky-hosts-{pid}-"))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let host_key = prepare_sshd(dir.path())?;
        let user = TestUser::create(dir.path())?;
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // One /24 per pool: 10.213.S.0 where S comes from pid and pool, so pools of one run (and,
        // almost always, of concurrent runs) never share a subnet.
        let subnet = 1 + (pid.wrapping_mul(7).wrapping_add(seq * 31)) % 250;
        let mut inner = Inner {
            dir,
            isolation: Isolation::Netns,
            bridge: None,
            user,
            host_key,
            slots: Vec::new(),
            cursor: 0,
            all_keys: Vec::new(),
            keys: BTreeMap::new(),
            attaches: 0,
        };
        match make_netns(&mut inner, n, pid, seq, subnet) {
            Ok(()) => {}
            Err(e) => {
                teardown_net(&mut inner);
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "!!! sky-testkit hosts: network namespaces unavailable ({e}); FALLING BACK \
                         to loopback addresses 127.213.{subnet}.X on port 22 (hosts share one \
                         network stack)"
                    );
                }
                inner.isolation = Isolation::Loopback;
                inner.slots = (0..n)
                    .map(|i| Slot {
                        addr: format!("127.213.{subnet}.{}", i + 2),
                        ns: None,
                        running: None,
                    })
                    .collect();
            }
        }
        fs::create_dir_all(halts_dir(&inner)).map_err(|e| e.to_string())?;
        // Guests run as the test user and leave their halt requests here.
        fs::set_permissions(halts_dir(&inner), fs::Permissions::from_mode(0o1777))
            .map_err(|e| e.to_string())?;
        Ok(Hosts {
            inner: Arc::new(Mutex::new(inner)),
            shutdowns: Arc::default(),
        })
    }

    /// Calls `handler` with the key of each instance whose guest OS shuts down, from a thread
    /// of this pool (the first handler starts it); handlers are asked in the order they came
    /// until one says the key is its own. The handler powers the host off ([`Hosts::detach`],
    /// [`Hosts::delete`]) when its cloud would.
    pub fn on_guest_shutdown(
        &self,
        handler: impl Fn(&Hosts, &str) -> bool + Send + Sync + 'static,
    ) {
        let first = {
            let mut list = self.shutdowns.lock().unwrap_or_else(|p| p.into_inner());
            list.push(Arc::new(handler));
            list.len() == 1
        };
        if !first {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let shutdowns = self.shutdowns.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(HALT_POLL);
                // Ends with the pool: the thread never keeps the hosts alive between looks.
                let Some(inner) = weak.upgrade() else { return };
                let hosts = Hosts {
                    inner,
                    shutdowns: shutdowns.clone(),
                };
                for key in hosts.take_halts() {
                    let handlers = shutdowns.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if !handlers.iter().any(|h| h(&hosts, &key)) {
                        #[allow(clippy::print_stderr)]
                        {
                            eprintln!("test hosts: {key} shut down, but no cloud fake claims it");
                        }
                    }
                }
            }
        });
    }

    /// Keys of the instances whose guests asked to halt since the last call, oldest first.
    fn take_halts(&self) -> Vec<String> {
        let dir = halts_dir(&self.lock());
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, String)> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".part"))
            .filter_map(|e| {
                let when = e.metadata().ok()?.modified().ok()?;
                let key = fs::read_to_string(e.path()).ok()?;
                let _ = fs::remove_file(e.path());
                Some((when, key.trim().to_owned()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, key)| key).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn isolation(&self) -> Isolation {
        self.lock().isolation
    }

    /// The login name on every host.
    pub fn user(&self) -> String {
        self.lock().user.name.clone()
    }

    pub fn uid(&self) -> u32 {
        self.lock().user.uid
    }

    /// How many times an instance was powered on (placed and its sshd started).
    pub fn attaches(&self) -> u32 {
        self.lock().attaches
    }

    /// Every instance key with a running host, and its address.
    pub fn placed(&self) -> Vec<(String, String)> {
        self.lock()
            .slots
            .iter()
            .filter_map(|s| Some((s.running.as_ref()?.key.clone(), s.addr.clone())))
            .collect()
    }

    /// This test process's own address on the hosts' network: where a service the guests must
    /// reach (a metadata server, a cloud API the head calls) listens. The bridge's address with
    /// namespaces; loopback without them.
    pub fn gateway(&self) -> String {
        let inner = self.lock();
        match inner.slots.first() {
            Some(slot) if inner.bridge.is_some() => match slot.addr.rsplit_once('.') {
                Some((net, _)) => format!("{net}.1"),
                None => "127.0.0.1".to_owned(),
            },
            _ => "127.0.0.1".to_owned(),
        }
    }

    /// The address of `key`'s host while it runs.
    pub fn address_of(&self, key: &str) -> Option<String> {
        self.lock()
            .slots
            .iter()
            .find(|s| s.running.as_ref().is_some_and(|r| r.key == key))
            .map(|s| s.addr.clone())
    }

    /// Installs `public_key` (an OpenSSH line) for every instance, present and future.
    pub fn authorize_all(&self, public_key: &str) {
        let mut inner = self.lock();
        let line = public_key.trim().to_owned();
        if !inner.all_keys.contains(&line) {
            inner.all_keys.push(line);
        }
        let keys: Vec<String> = inner.keys.keys().cloned().collect();
        for k in keys {
            let _ = write_keys(&inner, &k);
        }
    }

    /// Installs `public_key` for the instance `key` (its metadata or OS profile says so).
    pub fn authorize(&self, key: &str, public_key: &str) {
        let mut inner = self.lock();
        let list = inner.keys.entry(key.to_owned()).or_default();
        let line = public_key.trim().to_owned();
        if !list.contains(&line) {
            list.push(line);
        }
        let _ = write_keys(&inner, key);
    }

    /// Powers `key` on: the host it runs on already, else the next free one, its disk mounted
    /// as the user's home and its sshd listening. `None` when every host is taken.
    pub fn attach(&self, key: &str) -> Result<String, String> {
        let mut inner = self.lock();
        if let Some(s) = inner
            .slots
            .iter()
            .find(|s| s.running.as_ref().is_some_and(|r| r.key == key))
        {
            return Ok(s.addr.clone());
        }
        let n = inner.slots.len();
        let start = inner.cursor;
        let Some(i) = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| inner.slots[i].running.is_none())
        else {
            return Err(format!(
                "all {n} test hosts are taken; start the pool with more"
            ));
        };
        inner.cursor = (i + 1) % n;
        inner.keys.entry(key.to_owned()).or_default();
        write_keys(&inner, key)?;
        let disk = disk_dir(&inner, key);
        let home = disk.join("home");
        if !home.exists() {
            fs::create_dir_all(&home).map_err(|e| e.to_string())?;
            run(Command::new("chown")
                .arg(format!("{}:", inner.user.name))
                .arg(&home))?;
        }
        let running = start_sshd(&inner, i, key)?;
        inner.slots[i].running = Some(running);
        inner.attaches += 1;
        Ok(inner.slots[i].addr.clone())
    }

    /// Powers `key` off: its sshd and everything its host ran are killed; its disk stays.
    pub fn detach(&self, key: &str) {
        let mut inner = self.lock();
        for slot in &mut inner.slots {
            if slot.running.as_ref().is_some_and(|r| r.key == key)
                && let Some(r) = slot.running.take()
            {
                power_off(slot.ns.as_deref(), r);
            }
        }
    }

    /// Powers `key` off and forgets its disk and keys (the instance was deleted).
    pub fn delete(&self, key: &str) {
        self.detach(key);
        let mut inner = self.lock();
        inner.keys.remove(key);
        let disk = disk_dir(&inner, key);
        let _ = fs::remove_dir_all(disk);
    }

    /// Pids of every process of the test user still alive, on any host.
    pub fn user_processes(&self) -> Vec<u32> {
        let uid = self.uid();
        processes(|pid| uid_of(pid) == Some(uid))
    }
}

fn halts_dir(inner: &Inner) -> PathBuf {
    inner.dir.path().join("halts")
}

/// The host's `shutdown`, `poweroff` and `halt`: each leaves the instance's key in the halts
/// directory and returns, as a guest's shutdown returns before the VM powers off.
fn write_guest_commands(inner: &Inner, i: usize, key: &str) -> Result<PathBuf, String> {
    let bin = inner.dir.path().join(format!("guest-{i}"));
    fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let halts = halts_dir(inner);
    let file = halts.join(safe_key(key));
    let script = format!(
        "#!/bin/sh\n# A test host's guest OS: ask the cloud fake to power this instance off.\n\
         printf '%s\\n' '{key}' > '{part}' && mv -f '{part}' '{file}'\n",
        part = format!("{}.part", file.display()),
        file = file.display(),
    );
    for name in ["shutdown", "poweroff", "halt"] {
        let path = bin.join(name);
        fs::write(&path, &script).map_err(|e| e.to_string())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    }
    Ok(bin)
}

fn safe_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn disk_dir(inner: &Inner, key: &str) -> PathBuf {
    inner.dir.path().join("disks").join(safe_key(key))
}

fn write_keys(inner: &Inner, key: &str) -> Result<(), String> {
    let disk = disk_dir(inner, key);
    fs::create_dir_all(&disk).map_err(|e| e.to_string())?;
    fs::set_permissions(&disk, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let mut text = String::new();
    for line in inner
        .all_keys
        .iter()
        .chain(inner.keys.get(key).into_iter().flatten())
    {
        text.push_str(line);
        text.push('\n');
    }
    let path = disk.join("authorized_keys");
    fs::write(&path, text).map_err(|e| e.to_string())?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())
}

fn start_sshd(inner: &Inner, i: usize, key: &str) -> Result<Running, String> {
    let slot = &inner.slots[i];
    let disk = disk_dir(inner, key);
    let conf = inner.dir.path().join(format!("sshd-{i}.conf"));
    fs::write(
        &conf,
        format!(
            "Port 22\nListenAddress {}\nHostKey {}\nPidFile none\nAuthorizedKeysFile {} .ssh/authorized_keys\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nAllowUsers {}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n\
             MaxSessions 100\nMaxStartups 100\n",
            slot.addr,
            inner.host_key.display(),
            disk.join("authorized_keys").display(),
            inner.user.name,
        ),
    )
    .map_err(|e| e.to_string())?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(inner.dir.path().join(format!("sshd-{i}.log")))
        .map_err(|e| e.to_string())?;
    let guest = write_guest_commands(inner, i, key)?;
    // The instance's own home over the user's home, and its guest's halt commands first on the
    // PATH, in a mount namespace only this host sees.
    let script = format!(
        "mount --bind '{}' '{}' && for d in /usr/local/bin /usr/local/sbin; do \
         if [ -d \"$d\" ]; then mount --bind '{}' \"$d\" || exit 1; fi; done && \
         exec {SSHD} -D -e -f '{}'",
        disk.join("home").display(),
        inner.user.home.display(),
        guest.display(),
        conf.display()
    );
    let mut cmd = match &slot.ns {
        // `ip netns exec` enters a fresh mount namespace whose mounts do not propagate back.
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "sh", "-c", &script]);
            c
        }
        None => {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "slave", "sh", "-c", &script]);
            c
        }
    };
    let sshd = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start sshd for {key}: {e}"))?;
    let pid = sshd.id();
    let mut running = Running {
        key: key.to_owned(),
        sshd,
        mnt_ns: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = running.sshd.try_wait() {
            return Err(format!(
                "sshd for {key} on {} exited ({status}); see {}",
                slot.addr,
                inner.dir.path().join(format!("sshd-{i}.log")).display()
            ));
        }
        let listening = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(
                slot.addr
                    .parse()
                    .map_err(|e| format!("address {}: {e}", slot.addr))?,
                22,
            ),
            Duration::from_millis(200),
        )
        .is_ok();
        if listening {
            break;
        }
        if Instant::now() > deadline {
            power_off(slot.ns.as_deref(), running);
            return Err(format!(
                "sshd on {}:22 did not start within 10 s",
                slot.addr
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.mnt_ns = fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|p| p.display().to_string());
    Ok(running)
}

/// Kills the host's sshd and every process in its mount namespace (sessions, agents, jobs).
fn power_off(ns: Option<&str>, mut r: Running) {
    let _ = r.sshd.kill();
    let _ = r.sshd.wait();
    let mut victims: BTreeSet<u32> = BTreeSet::new();
    if let Some(mnt) = &r.mnt_ns {
        victims.extend(processes(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .is_ok_and(|p| &p.display().to_string() == mnt)
        }));
    }
    if let Some(ns) = ns
        && let Ok(pids) = run(Command::new("ip").args(["netns", "pids", ns]))
    {
        victims.extend(pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    kill_all(&victims);
}

fn kill_all(pids: &BTreeSet<u32>) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
    }
}

fn processes(pred: impl Fn(u32) -> bool) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && pred(pid))
        .collect()
}

fn uid_of(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn make_netns(inner: &mut Inner, n: usize, pid: u32, seq: u32, subnet: u32) -> Result<(), String> {
    // Interface names have at most 15 characters.
    let bridge = format!("skyb{pid}x{seq}");
    run(Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]))?;
    inner.bridge = Some(bridge.clone());
    run(Command::new("ip").args([
        "addr",
        "add",
        &format!("10.213.{subnet}.1/24"),
        "dev",
        &bridge,
    ]))?;
    run(Command::new("ip").args(["link", "set", &bridge, "up"]))?;
    for i in 0..n {
        let ns = format!("{NS_PREFIX}{pid}-{seq}-{i}");
        run(Command::new("ip").args(["netns", "add", &ns]))?;
        let addr = format!("10.213.{subnet}.{}", i + 2);
        inner.slots.push(Slot {
            addr: addr.clone(),
            ns: Some(ns.clone()),
            running: None,
        });
        let outside = format!("skyv{pid}x{seq}x{i}");
        let inside = format!("skyn{pid}x{seq}x{i}");
        run(Command::new("ip").args([
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]))?;
        run(Command::new("ip").args(["link", "set", &inside, "netns", &ns]))?;
        run(Command::new("ip").args(["link", "set", &outside, "master", &bridge, "up"]))?;
        let in_ns = |args: &[&str]| run(Command::new("ip").args(["-n", &ns]).args(args));
        in_ns(&["link", "set", "lo", "up"])?;
        in_ns(&["addr", "add", &format!("{addr}/24"), "dev", &inside])?;
        in_ns(&["link", "set", &inside, "up"])?;
        in_ns(&[
            "route",
            "add",
            "default",
            "via",
            &format!("10.213.{subnet}.1"),
        ])?;
    }
    Ok(())
}

fn teardown_net(inner: &mut Inner) {
    for slot in &mut inner.slots {
        if let Some(r) = slot.running.take() {
            power_off(slot.ns.as_deref(), r);
        }
        if let Some(ns) = slot.ns.take() {
            // Deleting the namespace deletes its end of the veth pair, and so both ends.
            let _ = run(Command::new("ip").args(["netns", "del", &ns]));
        }
    }
    if let Some(b) = inner.bridge.take() {
        let _ = run(Command::new("ip").args(["link", "del", &b]));
    }
}

/// Removes what crashed runs left: namespaces and bridges whose owning process is gone, with
/// every process still inside those namespaces.
fn clean_stale() {
    if let Ok(list) = run(Command::new("ip").args(["netns", "list"])) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let Some(owner) = name
                .strip_prefix(NS_PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if alive(owner) {
                continue;
            }
            if let Ok(pids) = run(Command::new("ip").args(["netns", "pids", name])) {
                kill_all(&pids.lines().filter_map(|l| l.trim().parse().ok()).collect());
            }
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
    }
    // Loopback hosts' sshds (and anything under them) carry their owner's pid in their config path.
    let stale_sshds = processes(|pid| {
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        cmd.contains(SSHD)
            && cmd
                .split("sky-hosts-")
                .nth(1)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|owner| !alive(owner))
    });
    kill_all(&stale_sshds.into_iter().collect());
    if let Ok(links) = run(Command::new("ip").args(["-o", "link", "show"])) {
        for name in links.lines().filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            Some(name.split('@').next()?.to_owned())
        }) {
            let Some(owner) = ["skyb", "skyv"]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .and_then(|rest| rest.split('x').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !alive(owner) {
                let _ = run(Command::new("ip").args(["link", "del", &name]));
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        teardown_net(self);
        // Loopback hosts have no namespace to sweep: whatever still runs as the user goes.
        let uid = self.user.uid;
        kill_all(
            &processes(|pid| uid_of(pid) == Some(uid))
                .into_iter()
                .collect(),
        );
    }
}
