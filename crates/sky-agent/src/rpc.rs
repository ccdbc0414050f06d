//! `sky-agent rpc`: the short-lived bridge between a client's stdio (a pipe for the local cloud,
//! an SSH channel for remote hosts) and the daemon's Unix socket, starting the daemon first when
//! it is not running.
//!
//! It forwards bytes without reading them, so it never sees secrets as anything but bytes in
//! flight and adds no latency of its own beyond the copy. It does not interpret requests.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::paths::Home;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot start the agent daemon ({exe}): {source}")]
    Spawn {
        exe: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent daemon did not come up within {secs} s; see {log}")]
    NoDaemon { secs: u64, log: String },
    #[error("agent home {path}: {source}")]
    Home {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the agent socket {socket} is served by uid {uid}, not this user; refusing to talk to it"
    )]
    Impostor { socket: String, uid: u32 },
    #[error("relaying: {0}")]
    Io(#[from] std::io::Error),
}

const STARTUP_WAIT: Duration = Duration::from_secs(15);

/// Connect to the daemon of `home`, starting it (detached) when nothing answers.
pub async fn connect_or_start(home_dir: &Path) -> Result<UnixStream, RpcError> {
    let home = Home::new(home_dir);
    let home_err = |source| RpcError::Home {
        path: home_dir.display().to_string(),
        source,
    };
    crate::private::create_dir_all(home_dir).map_err(home_err)?;
    // Its directory is ours and 0700 before we connect: nobody else can have put a listener
    // there. The peer check below is the second lock on the same door.
    let socket = home.prepare_socket().map_err(home_err)?;
    if let Ok(stream) = UnixStream::connect(&socket).await {
        return checked(stream, &socket);
    }
    let exe = std::env::current_exe()?;
    // The daemon calls setsid() itself, so it leaves this process's session and survives both
    // this bridge and the SSH session or terminal that started it.
    let mut child = std::process::Command::new(&exe)
        .arg("daemon")
        .arg("--home")
        .arg(home_dir)
        // Over SSH this relay has the login's whole environment; the daemon keeps the
        // allow-listed part only (see sky_core::jobs::inherit).
        .env_clear()
        .envs(sky_core::jobs::inherit::for_agent(std::env::vars_os()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| RpcError::Spawn {
            exe: exe.display().to_string(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        if let Ok(stream) = UnixStream::connect(&socket).await {
            // Reap it later so it is not left a zombie if it exits (e.g. lost the lock race).
            std::thread::spawn(move || child.wait());
            return checked(stream, &socket);
        }
        if let Ok(Some(_)) = child.try_wait() {
            // It exited: either another daemon won the lock race (then the socket appears
            // shortly) or it failed (then its log says why). Keep polling until the deadline.
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RpcError::NoDaemon {
                secs: STARTUP_WAIT.as_secs(),
                log: home.agent_log().display().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The stream, if the process listening on it runs as this user (`SO_PEERCRED`).
fn checked(stream: UnixStream, socket: &Path) -> Result<UnixStream, RpcError> {
    let uid = stream.peer_cred()?.uid();
    if crate::private::is_me(uid) {
        Ok(stream)
    } else {
        Err(RpcError::Impostor {
            socket: socket.display().to_string(),
            uid,
        })
    }
}

/// Relay stdin → daemon and daemon → stdout until the daemon closes the connection (which it
/// does after stdin ends and every answer in flight has been sent).
pub async fn run(home_dir: &Path) -> Result<(), RpcError> {
    let stream = connect_or_start(home_dir).await?;
    let (mut from_daemon, mut to_daemon) = stream.into_split();
    let upstream = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let copied = tokio::io::copy(&mut stdin, &mut to_daemon).await;
        let _ = to_daemon.shutdown().await;
        copied
    });
    let mut stdout = tokio::io::stdout();
    let result = tokio::io::copy(&mut from_daemon, &mut stdout).await;
    let _ = stdout.flush().await;
    upstream.abort();
    match result {
        Ok(_) => Ok(()),
        // The client closed its end early (e.g. stopped following logs): not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}
