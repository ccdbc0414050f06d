//! The long-lived daemon (`sky-agent daemon`): single-instance lock, Unix socket, one task per
//! request, the scheduling/autostop tick, log streaming and setup runs.
//!
//! Speaks exactly the JSON-lines protocol of [`sky_core::jobs::wire`] on its socket; `sky-agent
//! rpc` bridges a client's stdio to it. Job state transitions live in [`crate::state`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sky_core::jobs::JobId;
use sky_core::jobs::wire::{
    AgentInfo, Event, LogChunk, PROTOCOL_VERSION, Reply, Request, ResponseBody, ResponseEnvelope,
    SetupResult, SetupSpec, TailEnd, WireError, WireErrorKind, parse_request,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, mpsc, watch};

use crate::db::Db;
use crate::env::JobEnv;
use crate::paths::Home;
use crate::runtime::{NodeRuntime, ProcessSpec, exit_code};
use crate::state::{Agent, Settings, Shared, job_not_found};
use crate::tail::Tailer;

/// How often the daemon re-checks the queue and autostop, and log followers poll files.
const TICK: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(50);
const MAX_LINES_PER_CHUNK: usize = 2000;
/// Answers queued per connection before a sender waits. With one read step per file
/// (`tail::MAX_READ`) in flight at a time, this bounds what a slow or stalled `sky logs` can make
/// the daemon hold in memory, whatever the size of the log.
const OUTBOX_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("agent home {path}: {source}")]
    Home {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Outcome of trying to become the daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    Ran,
    /// Another daemon holds the lock; nothing was done.
    AlreadyRunning,
}

/// Run the daemon until a `shutdown` request. Returns at once if another daemon owns `home`.
pub async fn run(home_dir: &Path) -> Result<Started, DaemonError> {
    let home = Home::new(home_dir);
    let io_err = |source| DaemonError::Home {
        path: home_dir.display().to_string(),
        source,
    };
    crate::private::ensure_private_dir(home_dir).map_err(io_err)?;
    crate::private::create_dir_all(&home.logs()).map_err(io_err)?;
    let lock = crate::private::create(&home.lock()).map_err(io_err)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Started::AlreadyRunning),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    {
        use std::io::Write as _;
        crate::private::create(&home.pid())
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .map_err(io_err)?;
    }
    let db = Db::open(&home.db())?;
    // Local nodes run here; workers of remote clusters over SSH (see crate::remote).
    let runtime: Arc<dyn NodeRuntime> = Arc::new(crate::remote::HostRuntime::default());
    let mut agent = Agent::new(home.clone(), db, runtime, Settings::from_env());
    let lost = agent.recover()?;
    if !lost.is_empty() {
        tracing::warn!(
            ?lost,
            "jobs left by a previous agent were marked FAILED_DRIVER"
        );
    }
    let socket = home.prepare_socket().map_err(io_err)?;
    // The lock proves no live daemon owns the socket, so a leftover file is stale.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|source| DaemonError::Bind {
        path: socket.display().to_string(),
        source,
    })?;
    tracing::info!(pid = std::process::id(), socket = %socket.display(), "agent daemon up");

    let shared: Shared = Arc::new(Mutex::new(agent));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let changed = shared.lock().await.changed.clone();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, shared.clone(), stop_tx.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = tick.tick() => {}
            _ = changed.notified() => {}
            _ = stop_rx.changed() => break,
        }
        let mut agent = shared.lock().await;
        if let Err(e) = agent.schedule(&shared) {
            tracing::error!(error = %e, "scheduling failed");
        }
        if let Err(e) = agent.check_autostop() {
            tracing::error!(error = %e, "autostop check failed");
        }
    }
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(home.pid());
    tracing::info!("agent daemon exiting");
    drop(lock);
    Ok(Started::Ran)
}

/// Bounded: a sender waits while the client is slow to read (back-pressure).
type Outbox = mpsc::Sender<String>;

async fn send(out: &Outbox, id: u64, body: ResponseBody) -> bool {
    let env = ResponseEnvelope {
        v: PROTOCOL_VERSION,
        id,
        body,
    };
    match serde_json::to_string(&env) {
        Ok(line) => out.send(line).await.is_ok(),
        Err(_) => false,
    }
}

/// One client connection: read request lines, answer each in its own task; when the client
/// closes its side, finish the answers in flight, then close.
async fn serve(stream: UnixStream, shared: Shared, stop: watch::Sender<bool>) {
    let (read, mut write) = stream.into_split();
    let (out, mut outbox) = mpsc::channel::<String>(OUTBOX_DEPTH);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = outbox.recv().await {
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    let mut lines = BufReader::new(read).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match parse_request(&line) {
            Ok(env) => {
                let (shared, out, stop) = (shared.clone(), out.clone(), stop.clone());
                tasks.spawn(async move {
                    let id = env.id;
                    let body = match handle(env.body, id, &shared, &out, &stop).await {
                        Ok(reply) => ResponseBody::Ok(reply),
                        Err(e) => ResponseBody::Error(e),
                    };
                    send(&out, id, body).await;
                });
            }
            Err((id, e)) => {
                send(&out, id, ResponseBody::Error(e)).await;
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(out);
    let _ = writer.await;
}

async fn handle(
    request: Request,
    id: u64,
    shared: &Shared,
    out: &Outbox,
    stop: &watch::Sender<bool>,
) -> Result<Reply, WireError> {
    match request {
        Request::Info => {
            let agent = shared.lock().await;
            Ok(Reply::Info(Box::new(AgentInfo {
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
                protocol_version: PROTOCOL_VERSION,
                pid: std::process::id(),
                home: agent.home.dir.display().to_string(),
                config: agent.config().cloned(),
                autostop: agent.autostop(),
                idle_seconds: agent.idle_for().as_secs_f64(),
                idle_unit_seconds: agent.settings.idle_unit.as_secs_f64(),
            })))
        }
        Request::Configure(config) => {
            shared.lock().await.configure(config)?;
            Ok(Reply::Done)
        }
        Request::Submit(spec) => {
            let job_id = shared.lock().await.submit(spec)?;
            Ok(Reply::Submitted { job_id })
        }
        Request::Queue => Ok(Reply::Jobs {
            jobs: shared.lock().await.db().jobs(&[])?,
        }),
        Request::Status { ids } => {
            let agent = shared.lock().await;
            let jobs = ids
                .iter()
                .map(|id| agent.job(*id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Reply::Jobs { jobs })
        }
        Request::Cancel { jobs, all } => {
            if !all && jobs.is_empty() {
                return Err(WireError::new(
                    WireErrorKind::BadRequest,
                    "cancel: name at least one job, or set all",
                ));
            }
            let job_ids = cancel_and_wait(shared, if all { None } else { Some(&jobs) }).await?;
            Ok(Reply::Cancelled { job_ids })
        }
        Request::Tail {
            job,
            offsets,
            follow,
        } => tail(shared, job, offsets, follow, id, out).await,
        Request::SetAutostop(setting) => {
            shared.lock().await.set_autostop(Some(setting))?;
            Ok(Reply::Done)
        }
        Request::CancelAutostop => {
            shared.lock().await.set_autostop(None)?;
            Ok(Reply::Done)
        }
        Request::Setup(spec) => setup(shared, spec, id, out).await,
        Request::CancelSetup => {
            kill_setups(shared).await;
            Ok(Reply::Done)
        }
        Request::Shutdown { kill_jobs } => {
            if kill_jobs {
                kill_setups(shared).await;
                cancel_and_wait(shared, None).await?;
            }
            let stop = stop.clone();
            // Let this reply reach the client before the daemon goes away.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = stop.send(true);
            });
            Ok(Reply::Done)
        }
    }
}

/// Cancel, then wait until every cancelled job is terminal and its process groups are gone (the
/// SIGKILL after the grace period guarantees both), so "cancelled" means "nothing left running".
async fn cancel_and_wait(shared: &Shared, ids: Option<&[JobId]>) -> Result<Vec<JobId>, WireError> {
    let (cancelled, groups) = shared.lock().await.cancel(ids)?;
    let (runtime, grace) = {
        let agent = shared.lock().await;
        (agent.runtime(), agent.settings.kill_grace)
    };
    let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(5);
    loop {
        let groups_alive = groups
            .iter()
            .any(|(node, pgid)| matches!(runtime.signal_group(node, *pgid, None), Ok(true)));
        let jobs_done = {
            let agent = shared.lock().await;
            cancelled.iter().all(|id| {
                agent
                    .job(*id)
                    .map(|j| j.status.is_terminal())
                    .unwrap_or(true)
            })
        };
        if (!groups_alive && jobs_done) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(cancelled)
}

/// SIGTERM every setup's process group on every node, SIGKILL what is left after the grace
/// period, and return once the groups are gone (or a bounded wait passed), so a cancelled setup
/// leaves nothing running. The setup requests themselves end on their own as their processes exit.
async fn kill_setups(shared: &Shared) {
    let (groups, runtime, grace) = {
        let agent = shared.lock().await;
        let groups: Vec<(sky_core::jobs::wire::NodeSpec, u32)> =
            agent.setup_groups.values().flatten().cloned().collect();
        (groups, agent.runtime(), agent.settings.kill_grace)
    };
    if groups.is_empty() {
        return;
    }
    tracing::info!(groups = groups.len(), "cancelling setup");
    let signal_all = |signal| {
        groups
            .iter()
            .filter(|(node, pgid)| matches!(runtime.signal_group(node, *pgid, signal), Ok(true)))
            .count()
    };
    signal_all(Some(nix::sys::signal::Signal::SIGTERM));
    let term_deadline = tokio::time::Instant::now() + grace;
    let deadline = term_deadline + Duration::from_secs(5);
    let mut killed = false;
    loop {
        if signal_all(None) == 0 {
            return;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            tracing::warn!("setup processes survived SIGKILL; giving up waiting for them");
            return;
        }
        if now >= term_deadline && !killed {
            signal_all(Some(nix::sys::signal::Signal::SIGKILL));
            killed = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn tail(
    shared: &Shared,
    job: Option<JobId>,
    offsets: Vec<u64>,
    follow: bool,
    id: u64,
    out: &Outbox,
) -> Result<Reply, WireError> {
    let (job_id, num_nodes, log_dir, changed) = {
        let agent = shared.lock().await;
        let job_id = match job {
            Some(id) => id,
            None => agent.db().latest_job()?.ok_or_else(|| {
                WireError::new(WireErrorKind::JobNotFound, "this cluster has no jobs yet")
            })?,
        };
        let record = agent.job(job_id)?;
        (
            job_id,
            record.num_nodes,
            std::path::PathBuf::from(record.log_dir),
            agent.changed.clone(),
        )
    };
    let files = (0..num_nodes)
        .map(|r| log_dir.join(format!("node-{r}.log")))
        .collect();
    let mut tailer = Tailer::new(files, offsets);
    loop {
        // Status first: if it is terminal now, the files are complete when read below.
        let record = shared
            .lock()
            .await
            .db()
            .job(job_id)?
            .ok_or_else(|| job_not_found(job_id))?;
        let finished = record.status.is_terminal();
        let lines = tailer.read_new(finished).map_err(|e| {
            WireError::new(
                WireErrorKind::Internal,
                format!("reading logs of job {job_id}: {e}"),
            )
        })?;
        if !emit(out, id, num_nodes, lines, tailer.offsets()).await {
            // The client went away; nobody is listening.
            return Ok(Reply::Done);
        }
        if !tailer.caught_up() {
            // Backlog left: the next step goes as soon as the client took this one.
            continue;
        }
        if finished || !follow {
            return Ok(Reply::TailEnd(TailEnd {
                job_id,
                status: record.status,
                exit_code: record.exit_code,
            }));
        }
        let _ = tokio::time::timeout(POLL, changed.notified()).await;
    }
}

async fn emit(
    out: &Outbox,
    id: u64,
    num_nodes: u32,
    lines: Vec<sky_core::jobs::wire::LogLine>,
    offsets: &[u64],
) -> bool {
    if lines.is_empty() {
        return !out.is_closed();
    }
    let mut rest = lines;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_LINES_PER_CHUNK));
        let chunk = LogChunk {
            num_nodes,
            lines: rest,
            offsets: offsets.to_vec(),
        };
        if !send(out, id, ResponseBody::Event(Event::Log(chunk))).await {
            return false;
        }
        rest = tail;
    }
    true
}

/// Run setup on every node at once, streaming lines, then report each node's exit code.
async fn setup(
    shared: &Shared,
    spec: SetupSpec,
    id: u64,
    out: &Outbox,
) -> Result<Reply, WireError> {
    let (config, runtime, log_dir) = {
        let mut agent = shared.lock().await;
        let config = agent.config().cloned().ok_or_else(|| {
            WireError::new(
                WireErrorKind::NotConfigured,
                "the agent has no cluster configuration yet (configure it first)",
            )
        })?;
        agent.active_setups += 1;
        agent.touch();
        let stamp = crate::state::now_unix();
        let dir = agent
            .home
            .logs()
            .join(format!("setup-{}", (stamp * 1000.0) as u64));
        (config, agent.runtime(), dir)
    };
    let key = {
        let mut agent = shared.lock().await;
        agent.next_setup += 1;
        agent.next_setup
    };
    let result = run_setup(shared, key, &config, runtime, &spec, &log_dir, id, out).await;
    {
        let mut agent = shared.lock().await;
        agent.active_setups -= 1;
        agent.setup_groups.remove(&key);
        agent.touch();
    }
    let exit_codes = result?;
    Ok(Reply::SetupDone(SetupResult {
        exit_codes,
        log_dir: log_dir.display().to_string(),
    }))
}

#[allow(clippy::too_many_arguments)]
async fn run_setup(
    shared: &Shared,
    key: u64,
    config: &sky_core::jobs::wire::ClusterConfig,
    runtime: Arc<dyn NodeRuntime>,
    spec: &SetupSpec,
    log_dir: &Path,
    id: u64,
    out: &Outbox,
) -> Result<Vec<i32>, WireError> {
    let all: Vec<u32> = (0..config.nodes.len() as u32).collect();
    let demand = sky_core::jobs::JobDemand::default();
    let env = JobEnv {
        config,
        job_id: JobId(0),
        task_id: "setup",
        demand: &demand,
        envs: &spec.envs,
        secrets: Some(&spec.secrets),
        nodes: &all,
    };
    let mut waits = tokio::task::JoinSet::new();
    let mut files = Vec::new();
    for (rank, node) in config.nodes.iter().enumerate() {
        let log = log_dir.join(format!("node-{rank}.log"));
        let vars = env.for_rank(rank as u32);
        let process = ProcessSpec {
            script: &spec.commands,
            env: &vars,
            log: &log,
        };
        let mut child = runtime.spawn(node, &process).map_err(|e| {
            WireError::new(
                WireErrorKind::Internal,
                format!("could not start setup on node {rank}: {e}"),
            )
        })?;
        files.push(log);
        // Registered as soon as it exists: a cancel arriving between two spawns still sees it.
        if let Some(pgid) = child.id() {
            shared
                .lock()
                .await
                .setup_groups
                .entry(key)
                .or_default()
                .push((node.clone(), pgid));
        }
        waits.spawn(async move {
            let code = child.wait().await.map(exit_code).unwrap_or(-1);
            (rank, code)
        });
    }
    let num_nodes = config.nodes.len() as u32;
    let mut tailer = Tailer::new(files, Vec::new());
    let mut codes = vec![-1; config.nodes.len()];
    let mut remaining = config.nodes.len();
    loop {
        let finished = remaining == 0;
        let lines = tailer.read_new(finished).map_err(|e| {
            WireError::new(WireErrorKind::Internal, format!("reading setup logs: {e}"))
        })?;
        emit(out, id, num_nodes, lines, tailer.offsets()).await;
        if !tailer.caught_up() {
            continue;
        }
        if finished {
            return Ok(codes);
        }
        match tokio::time::timeout(POLL, waits.join_next()).await {
            Ok(Some(Ok((rank, code)))) => {
                codes[rank] = code;
                remaining -= 1;
            }
            Ok(Some(Err(e))) => return Err(WireError::new(WireErrorKind::Internal, e.to_string())),
            Ok(None) => remaining = 0,
            Err(_) => {}
        }
    }
}
