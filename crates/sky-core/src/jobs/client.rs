//! [`AgentClient`]: the typed client of a cluster's head-node agent, over any byte stream pair
//! (a spawned `sky-agent rpc` process for the local cloud, an SSH channel for remote hosts).
//!
//! Requests may run concurrently on one client (a log tail while submitting): a reader task routes
//! each response line to its request by id. This module does not find clusters (the state DB
//! does) and does not start SSH sessions (the remote runtime does).
//!
//! Finding the agent binary ([`find_agent_binary`]): `SKY_AGENT_BIN` when set, else `sky-agent`
//! beside the current executable, else `sky-agent` on `PATH`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::wire::{
    AgentInfo, ClusterConfig, Event, LogChunk, PROTOCOL_VERSION, Reply, Request, RequestEnvelope,
    ResponseBody, SetupResult, SetupSpec, TailEnd, WireError, WireErrorKind, parse_response,
};
use super::{AutostopSetting, JobId, JobRecord, JobSpec};
use crate::ErrorCode;

/// The environment variable that names the agent binary explicitly.
pub const AGENT_BIN_ENV: &str = "SKY_AGENT_BIN";
const AGENT_BIN_NAME: &str = "sky-agent";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot find the sky-agent binary (looked in {searched}); set {AGENT_BIN_ENV}")]
    AgentBinaryNotFound { searched: String },
    #[error("cannot start the agent {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the agent: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent connection closed{detail}")]
    Closed { detail: String },
    #[error("{0}")]
    Agent(#[from] WireError),
    #[error("the agent answered {got} where {expected} was expected")]
    Unexpected { expected: &'static str, got: String },
}

impl ClientError {
    /// The stable code a front end maps this failure to.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Agent(e) => match e.kind {
                WireErrorKind::JobNotFound => ErrorCode::JobNotFound,
                WireErrorKind::DoesNotFit => ErrorCode::TaskDoesNotFit,
                WireErrorKind::BadRequest => ErrorCode::InvalidTask,
                _ => ErrorCode::Internal,
            },
            _ => ErrorCode::Internal,
        }
    }
}

type Inbox = mpsc::UnboundedSender<Result<ResponseBody, ClientError>>;

#[derive(Default)]
struct Router {
    waiting: HashMap<u64, Inbox>,
    /// Set once the reader stopped; later requests fail at once with it.
    closed: Option<String>,
}

/// A connection to one agent. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct AgentClient {
    writer: tokio::sync::Mutex<Option<Box<dyn AsyncWrite + Send + Unpin>>>,
    router: Arc<Mutex<Router>>,
    next_id: AtomicU64,
    child: Option<tokio::sync::Mutex<Child>>,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("spawned", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the agent binary is: [`AGENT_BIN_ENV`], else beside the current executable, else `PATH`.
/// The variable wins so a test or an unusual install can pin a build explicitly.
pub fn find_agent_binary() -> Result<PathBuf, ClientError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os(AGENT_BIN_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(format!("{AGENT_BIN_ENV}={}", path.display()));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let candidate = dir.join(AGENT_BIN_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(dir.display().to_string());
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(AGENT_BIN_NAME);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        searched.push("PATH".to_string());
    }
    Err(ClientError::AgentBinaryNotFound {
        searched: searched.join(", "),
    })
}

/// A log stream: chunks of lines, then one end item. Dropping it stops listening.
pub struct LogStream {
    rx: mpsc::UnboundedReceiver<Result<ResponseBody, ClientError>>,
    id: u64,
    router: Arc<Mutex<Router>>,
    done: bool,
}

/// One item of a [`LogStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    Chunk(LogChunk),
    /// The end of a job's tail: its status at that moment (terminal when following).
    JobEnd(TailEnd),
    /// The end of a setup run.
    SetupEnd(SetupResult),
}

impl LogStream {
    /// The next item; `None` after the end item.
    pub async fn next(&mut self) -> Option<Result<LogEvent, ClientError>> {
        if self.done {
            return None;
        }
        let item = match self.rx.recv().await {
            None => Err(closed_error(&self.router)),
            Some(Err(e)) => Err(e),
            Some(Ok(ResponseBody::Event(Event::Log(chunk)))) => {
                return Some(Ok(LogEvent::Chunk(chunk)));
            }
            Some(Ok(ResponseBody::Ok(Reply::TailEnd(end)))) => Ok(LogEvent::JobEnd(end)),
            Some(Ok(ResponseBody::Ok(Reply::SetupDone(result)))) => Ok(LogEvent::SetupEnd(result)),
            Some(Ok(ResponseBody::Ok(other))) => Err(unexpected("a log end", &other)),
            Some(Ok(ResponseBody::Error(e))) => Err(ClientError::Agent(e)),
        };
        self.done = true;
        Some(item)
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        if let Ok(mut router) = self.router.lock() {
            router.waiting.remove(&self.id);
        }
    }
}

fn closed_error(router: &Arc<Mutex<Router>>) -> ClientError {
    let detail = router
        .lock()
        .ok()
        .and_then(|r| r.closed.clone())
        .filter(|d| !d.is_empty())
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    ClientError::Closed { detail }
}

fn unexpected(expected: &'static str, got: &Reply) -> ClientError {
    let got = serde_json::to_value(got)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "something else".to_string());
    ClientError::Unexpected { expected, got }
}

impl AgentClient {
    /// A client over an established byte stream pair (e.g. an SSH channel running
    /// `sky-agent rpc --home DIR`). Must be called inside a tokio runtime.
    pub fn new<R, W>(reader: R, writer: W) -> AgentClient
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        Self::build(reader, writer, None, None)
    }

    /// Start `agent_binary rpc --home home` with pipes and talk to it. The `rpc` process starts
    /// the agent's daemon if it is not running; the daemon outlives this client and its jobs too.
    pub fn spawn_local(agent_binary: &Path, home: &Path) -> Result<AgentClient, ClientError> {
        let mut command = Command::new(agent_binary);
        // The relay and the daemon it starts keep only the allow-listed part of this process's
        // environment: cloud keys exported in the caller's shell must not reach local jobs.
        command
            .arg("rpc")
            .arg("--home")
            .arg(home)
            .env_clear()
            .envs(super::inherit::for_agent(std::env::vars_os()));
        Self::spawn(command)
    }

    /// Run `command` (which must end up running `sky-agent rpc --home DIR`, e.g. through `ssh`)
    /// with piped stdio and talk to it. Extra environment set on `command` reaches a daemon that
    /// this call starts (`SKY_AGENT_IDLE_UNIT_SECS`, `SKY_AGENT_KILL_GRACE_SECS`).
    pub fn spawn(mut command: Command) -> Result<AgentClient, ClientError> {
        let binary = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ClientError::Spawn { binary, source })?;
        let (Some(stdin), Some(stdout), stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ClientError::Closed {
                detail: ": the agent process has no pipes".into(),
            });
        };
        Ok(Self::build(stdout, stdin, stderr, Some(child)))
    }

    fn build<R, W>(
        reader: R,
        writer: W,
        stderr: Option<tokio::process::ChildStderr>,
        child: Option<Child>,
    ) -> AgentClient
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let router = Arc::new(Mutex::new(Router::default()));
        let stderr_text = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = stderr {
            let sink = stderr_text.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                // Only the head is kept: it says why the agent failed to start.
                let _ = (&mut stderr).take(16 * 1024).read_to_end(&mut buf).await;
                if let Ok(mut s) = sink.lock() {
                    *s = String::from_utf8_lossy(&buf).trim().to_string();
                }
            });
        }
        let reader = tokio::spawn(read_loop(reader, router.clone(), stderr_text));
        AgentClient {
            writer: tokio::sync::Mutex::new(Some(Box::new(writer))),
            router,
            next_id: AtomicU64::new(1),
            child: child.map(tokio::sync::Mutex::new),
            reader,
        }
    }

    async fn send(
        &self,
        body: Request,
    ) -> Result<
        (
            u64,
            mpsc::UnboundedReceiver<Result<ResponseBody, ClientError>>,
        ),
        ClientError,
    > {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut router = self.router.lock().map_err(|_| ClientError::Closed {
                detail: ": client state poisoned".into(),
            })?;
            if router.closed.is_some() {
                drop(router);
                return Err(closed_error(&self.router));
            }
            router.waiting.insert(id, tx);
        }
        let mut line = serde_json::to_string(&RequestEnvelope {
            v: PROTOCOL_VERSION,
            id,
            body,
        })
        .map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
        line.push('\n');
        let mut writer = self.writer.lock().await;
        let Some(w) = writer.as_mut() else {
            return Err(ClientError::Closed {
                detail: ": the client was closed".into(),
            });
        };
        let written = async {
            w.write_all(line.as_bytes()).await?;
            w.flush().await
        }
        .await;
        if let Err(e) = written {
            if let Ok(mut router) = self.router.lock() {
                router.waiting.remove(&id);
            }
            // A broken pipe means the agent died; its stderr says why.
            return Err(if e.kind() == std::io::ErrorKind::BrokenPipe {
                tokio::time::sleep(Duration::from_millis(50)).await;
                closed_error(&self.router)
            } else {
                ClientError::Io(e)
            });
        }
        Ok((id, rx))
    }

    async fn call(&self, body: Request) -> Result<Reply, ClientError> {
        let (id, mut rx) = self.send(body).await?;
        let result = loop {
            match rx.recv().await {
                None => break Err(closed_error(&self.router)),
                Some(Err(e)) => break Err(e),
                Some(Ok(ResponseBody::Ok(reply))) => break Ok(reply),
                Some(Ok(ResponseBody::Error(e))) => break Err(ClientError::Agent(e)),
                Some(Ok(ResponseBody::Event(_))) => continue,
            }
        };
        if let Ok(mut router) = self.router.lock() {
            router.waiting.remove(&id);
        }
        result
    }

    pub async fn info(&self) -> Result<AgentInfo, ClientError> {
        match self.call(Request::Info).await? {
            Reply::Info(info) => Ok(*info),
            other => Err(unexpected("info", &other)),
        }
    }

    /// Tell the agent its cluster: name, nodes, per-node capacity and autostop hook. Idempotent.
    pub async fn configure(&self, config: ClusterConfig) -> Result<(), ClientError> {
        self.expect_done(Request::Configure(config)).await
    }

    pub async fn submit(&self, spec: JobSpec) -> Result<JobId, ClientError> {
        match self.call(Request::Submit(spec)).await? {
            Reply::Submitted { job_id } => Ok(job_id),
            other => Err(unexpected("a job id", &other)),
        }
    }

    /// Every job on the cluster, oldest first.
    pub async fn queue(&self) -> Result<Vec<JobRecord>, ClientError> {
        match self.call(Request::Queue).await? {
            Reply::Jobs { jobs } => Ok(jobs),
            other => Err(unexpected("jobs", &other)),
        }
    }

    /// The named jobs; an unknown id fails with [`ErrorCode::JobNotFound`].
    pub async fn status(&self, ids: &[JobId]) -> Result<Vec<JobRecord>, ClientError> {
        match self.call(Request::Status { ids: ids.to_vec() }).await? {
            Reply::Jobs { jobs } => Ok(jobs),
            other => Err(unexpected("jobs", &other)),
        }
    }

    /// Cancel the given jobs (or all pending and running ones when `ids` is `None`); returns the
    /// ids actually cancelled, once their processes are gone.
    pub async fn cancel(&self, ids: Option<&[JobId]>) -> Result<Vec<JobId>, ClientError> {
        let request = match ids {
            Some(ids) => Request::Cancel {
                jobs: ids.to_vec(),
                all: false,
            },
            None => Request::Cancel {
                jobs: Vec::new(),
                all: true,
            },
        };
        match self.call(request).await? {
            Reply::Cancelled { job_ids } => Ok(job_ids),
            other => Err(unexpected("cancelled ids", &other)),
        }
    }

    /// Stream a job's log lines (`job: None` = the latest job) from byte `offsets` per rank.
    pub async fn tail(
        &self,
        job: Option<JobId>,
        offsets: Vec<u64>,
        follow: bool,
    ) -> Result<LogStream, ClientError> {
        let (id, rx) = self
            .send(Request::Tail {
                job,
                offsets,
                follow,
            })
            .await?;
        Ok(self.stream(id, rx))
    }

    /// Run setup on every node in parallel, streaming its lines; the end item has exit codes.
    pub async fn setup(&self, spec: SetupSpec) -> Result<LogStream, ClientError> {
        let (id, rx) = self.send(Request::Setup(spec)).await?;
        Ok(self.stream(id, rx))
    }

    fn stream(
        &self,
        id: u64,
        rx: mpsc::UnboundedReceiver<Result<ResponseBody, ClientError>>,
    ) -> LogStream {
        LogStream {
            rx,
            id,
            router: self.router.clone(),
            done: false,
        }
    }

    pub async fn set_autostop(&self, setting: AutostopSetting) -> Result<(), ClientError> {
        self.expect_done(Request::SetAutostop(setting)).await
    }

    /// Kill every setup running on the cluster's nodes; returns once their processes are gone.
    pub async fn cancel_setup(&self) -> Result<(), ClientError> {
        self.expect_done(Request::CancelSetup).await
    }

    pub async fn cancel_autostop(&self) -> Result<(), ClientError> {
        self.expect_done(Request::CancelAutostop).await
    }

    /// Ask the daemon to exit; with `kill_jobs` its running jobs are cancelled first.
    pub async fn shutdown(&self, kill_jobs: bool) -> Result<(), ClientError> {
        self.expect_done(Request::Shutdown { kill_jobs }).await
    }

    async fn expect_done(&self, request: Request) -> Result<(), ClientError> {
        match self.call(request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected("done", &other)),
        }
    }

    /// Close the connection and, for a spawned `rpc` process, wait for it to exit.
    pub async fn close(self) -> Result<(), ClientError> {
        if let Some(mut w) = self.writer.lock().await.take() {
            let _ = w.shutdown().await;
        }
        if let Some(child) = &self.child {
            let mut child = child.lock().await;
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        self.reader.abort();
        Ok(())
    }
}

async fn read_loop<R>(reader: R, router: Arc<Mutex<Router>>, stderr: Arc<Mutex<String>>)
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let mut lines = BufReader::new(reader).lines();
    let reason = loop {
        match lines.next_line().await {
            Ok(Some(line)) if line.trim().is_empty() => continue,
            Ok(Some(line)) => match parse_response(&line) {
                Ok(env) => {
                    let inbox = router
                        .lock()
                        .ok()
                        .and_then(|r| r.waiting.get(&env.id).cloned());
                    if let Some(inbox) = inbox {
                        let _ = inbox.send(Ok(env.body));
                    }
                }
                Err(e) if e.kind == WireErrorKind::UnsupportedVersion => {
                    break format!("the agent speaks another protocol: {e}");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable line from the agent");
                }
            },
            Ok(None) => break String::new(),
            Err(e) => break e.to_string(),
        }
    };
    // Give the stderr reader a moment: when the agent died, its last words explain why.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stderr = stderr.lock().map(|s| s.clone()).unwrap_or_default();
    let detail = match (reason.is_empty(), stderr.is_empty()) {
        (true, true) => String::new(),
        (false, true) => reason,
        (true, false) => format!("agent said: {stderr}"),
        (false, false) => format!("{reason}; agent said: {stderr}"),
    };
    if let Ok(mut r) = router.lock() {
        r.closed = Some(detail);
        // Dropping the senders wakes every waiting request with "closed".
        r.waiting.clear();
    }
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
