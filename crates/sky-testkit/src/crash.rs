//! Crash points: a client process killed with SIGKILL right after its Nth request to a fake took
//! effect, before the answer reaches it (the worst moment: the cloud acted, the client never
//! learned). The moto proxy and the GCP and Azure fakes call [`CrashAfter::after_request`] once
//! a request is handled; a test arms the trigger with N, starts the client and names its pid.
//!
//! The kill is waited on (the process is a zombie or gone) before the answer is sent, so the
//! client cannot act on it: the crash point is exact, not a race.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Inner {
    /// Kill after this many requests, counted from [`CrashAfter::arm`].
    after: Option<usize>,
    pid: Option<u32>,
    seen: Vec<String>,
    fired: bool,
}

/// Shared by a fake and the test that drives it; a default one is never armed.
#[derive(Debug, Clone, Default)]
pub struct CrashAfter(Arc<Mutex<Inner>>);

impl CrashAfter {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts requests from now; the `n`th (1-based) kills the process named by
    /// [`CrashAfter::target`]. `None` only counts (a calibration run).
    pub fn arm(&self, n: Option<usize>) {
        *self.lock() = Inner {
            after: n,
            ..Inner::default()
        };
    }

    /// The process to kill (set just after spawning it: a request that arrives first waits).
    pub fn target(&self, pid: u32) {
        self.lock().pid = Some(pid);
    }

    /// Stops counting; what was seen since [`CrashAfter::arm`], as `METHOD path` or the action.
    pub fn disarm(&self) -> Vec<String> {
        let mut inner = self.lock();
        inner.after = None;
        inner.pid = None;
        std::mem::take(&mut inner.seen)
    }

    /// Whether the armed kill happened.
    pub fn fired(&self) -> bool {
        self.lock().fired
    }

    /// Called by a fake once `request` took effect, before its answer is written.
    pub async fn after_request(&self, request: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = {
            let mut inner = self.lock();
            inner.seen.push(request.to_owned());
            if inner.fired || inner.after != Some(inner.seen.len()) {
                return;
            }
            inner.fired = true;
            inner.pid
        };
        // The test names the pid right after spawning; a first request can beat it.
        let pid = match pid {
            Some(pid) => pid,
            None => loop {
                if let Some(pid) = self.lock().pid {
                    break pid;
                }
                assert!(Instant::now() < deadline, "crash point: no pid to kill");
                tokio::time::sleep(Duration::from_millis(5)).await;
            },
        };
        let killed = std::process::Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -s KILL {pid}: {killed}");
        while !dead(pid) {
            assert!(
                Instant::now() < deadline,
                "crash point: {pid} still runs after SIGKILL"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Gone, or a zombie waiting to be reaped by the test.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`, as comm may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}
