//! The host pool on its own, with OpenSSH's client: an attached instance answers on port 22 of
//! its own address as the pool's user with the key it was given, sees its own home, gets a new
//! address after a power cycle, and is gone (processes included) after a detach.

use std::process::Command;

use sky_testkit::hosts::{Hosts, Isolation, unavailable};

fn ssh(dir: &std::path::Path, user: &str, addr: &str, cmd: &str) -> Result<String, String> {
    let out = Command::new("ssh")
        .args(["-i"])
        .arg(dir.join("id"))
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@{addr}"))
        .arg(cmd)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn hosts_have_their_own_address_home_and_keys() {
    if let Some(why) = unavailable() {
        sky_testkit::require::cannot_run("hosts test", &why);
        return;
    }
    if Command::new("ssh").arg("-V").output().is_err() {
        sky_testkit::require::cannot_run("hosts test", "no OpenSSH client");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("id"))
        .status()
        .expect("ssh-keygen");
    assert!(keygen.success());
    let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("public key");

    let hosts = Hosts::start(3).expect("hosts");
    let user = hosts.user();
    let a = hosts.attach("vm-a").expect("attach a");
    let b = hosts.attach("vm-b").expect("attach b");
    assert_ne!(a, b);
    if hosts.isolation() == Isolation::Netns {
        assert!(a.starts_with("10.213."), "{a}");
    }
    // Only vm-a has the key so far.
    hosts.authorize("vm-a", &public);
    assert!(ssh(dir.path(), &user, &b, "true").is_err());
    ssh(dir.path(), &user, &a, "echo a > ~/mark").expect("ssh a");
    hosts.authorize_all(&public);
    assert_eq!(
        ssh(dir.path(), &user, &b, "cat ~/mark 2>/dev/null || echo none").expect("ssh b"),
        "none"
    );
    assert_eq!(
        ssh(dir.path(), &user, &a, "cat ~/mark").expect("ssh a"),
        "a"
    );

    // A process left running is killed by the power-off; the disk survives the cycle.
    ssh(dir.path(), &user, &a, "nohup sleep 300 >/dev/null 2>&1 &").expect("background job");
    hosts.detach("vm-a");
    assert!(hosts.user_processes().iter().all(|p| {
        std::fs::read_to_string(format!("/proc/{p}/cmdline")).map_or(true, |c| !c.contains("sleep"))
    }));
    let a2 = hosts.attach("vm-a").expect("attach a again");
    assert_ne!(a, a2, "a restarted instance gets a new address");
    assert_eq!(
        ssh(dir.path(), &user, &a2, "cat ~/mark").expect("ssh a2"),
        "a"
    );
    hosts.delete("vm-a");
    hosts.delete("vm-b");
    assert!(hosts.placed().is_empty());
}

/// A guest's `shutdown` reaches the fake that owns the instance, by key, and only that one;
/// the fake powers the host off as a hypervisor would.
#[test]
fn a_guest_shutdown_is_handed_to_the_fake_that_owns_the_instance() {
    if let Some(why) = unavailable() {
        sky_testkit::require::cannot_run("hosts test", &why);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("id"))
        .status()
        .expect("ssh-keygen");
    assert!(keygen.success());
    let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("public key");
    let hosts = Hosts::start(2).expect("hosts");
    hosts.authorize_all(&public);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    hosts.on_guest_shutdown(|_, key| key.starts_with("other-"));
    hosts.on_guest_shutdown(move |hosts, key| {
        hosts.detach(key);
        tx.lock().expect("tx").send(key.to_owned()).is_ok()
    });
    let user = hosts.user();
    let a = hosts.attach("vm-a").expect("attach a");
    hosts.attach("vm-b").expect("attach b");
    // As the guest OS's own command, found first on the login's PATH.
    let out = ssh(
        dir.path(),
        &user,
        &a,
        "command -v shutdown && shutdown -h now",
    )
    .expect("ssh");
    assert_eq!(out, "/usr/local/bin/shutdown");
    let key = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the shutdown was handed over");
    assert_eq!(key, "vm-a");
    let placed: Vec<String> = hosts.placed().into_iter().map(|(k, _)| k).collect();
    assert_eq!(placed, ["vm-b"], "only the halted guest is off");
}
