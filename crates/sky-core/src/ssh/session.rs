//! One SSH connection to one node (russh), with the operations Sky needs on it: run a command and
//! collect its output, open a long-lived byte stream (the agent's `rpc` channel), and upload a file
//! by SFTP. Connecting retries with backoff until [`ConnectOptions::total_wait`], because a fresh
//! VM refuses connections (or keys) for a while.
//!
//! Channels are cheap and independent, so callers open many on one session (parallel setup, log
//! following and a submit at once). What this module does not do: choose keys or hosts (callers
//! pass a [`SshTarget`]) or retry commands (only connecting is retried).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelStream, Disconnect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::known_hosts::KnownHosts;
use super::{ConnectOptions, SshError, SshTarget};

/// Receives russh callbacks: only the host key check matters to Sky.
struct Handler {
    host: String,
    port: u16,
    known: KnownHosts,
    /// Why the host key was refused, for an error better than russh's "unknown key".
    refused: Arc<Mutex<Option<SshError>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is pinned by its key like a plain host key.
        let key: PublicKey = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        match self.known.check(&self.host, self.port, &key) {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.refused.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }
}

/// What a finished command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit status, or 128 + signal number, or -1 when the server reported neither.
    pub code: i32,
}

impl ExecOutput {
    /// Takes in one message of the command's channel: output, or how it ended.
    fn record(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } => self.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => self.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => {
                self.code = i32::try_from(exit_status).unwrap_or(-1);
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.code = 128 + signal_number(&signal_name);
            }
            _ => {}
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end().to_owned()
    }
}

pub struct SshSession {
    handle: Handle<Handler>,
    target: SshTarget,
    /// The bastion's session; it must outlive the tunnelled one.
    _jump: Option<Box<SshSession>>,
    /// The proxy command carrying the connection; killed when the session is dropped.
    _proxy: Option<ProxyChild>,
}

/// A running `ssh_proxy_command`, and what it wrote on stderr (its reason when it fails).
struct ProxyChild {
    _child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
}

impl ProxyChild {
    /// The proxy's stderr so far, for an error message (it has ended or is ending).
    async fn said(self) -> String {
        drop(self._child);
        match tokio::time::timeout(Duration::from_secs(2), self.stderr).await {
            Ok(Ok(text)) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => "it said nothing on stderr".to_owned(),
        }
    }
}

/// Starts `target`'s proxy command (through the shell, as OpenSSH runs `ProxyCommand`) and
/// returns its stdout and stdin as one stream.
fn proxy_stream(
    target: &SshTarget,
) -> Result<
    (
        tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
        ProxyChild,
    ),
    SshError,
> {
    let line = target.proxy_command_line().unwrap_or_default();
    let mut cmd = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.arg("/C").arg(&line);
        c
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(&line);
        c
    };
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            protocol(
                target,
                format!("cannot start the proxy command `{line}`: {e}"),
            )
        })?;
    let (Some(stdout), Some(stdin), Some(mut stderr)) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(protocol(target, "the proxy command has no pipes"));
    };
    let stderr = tokio::spawn(async move {
        let mut text = Vec::new();
        // Bounded: a chatty proxy cannot grow this without end.
        let _ = (&mut stderr).take(16 * 1024).read_to_end(&mut text).await;
        // Drained to the end, so a chatty proxy never blocks on a full pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&text).into_owned()
    });
    Ok((
        tokio::io::join(stdout, stdin),
        ProxyChild {
            _child: child,
            stderr,
        },
    ))
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("target", &self.target)
            .finish()
    }
}

fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        // Keepalives notice a dead peer on long-lived channels (following logs); without them a
        // vanished node would leave the client waiting forever.
        keepalive_interval: Some(Duration::from_secs(10)),
        keepalive_max: 3,
        ..Default::default()
    })
}

fn protocol(target: &SshTarget, e: impl std::fmt::Display) -> SshError {
    SshError::Protocol {
        target: target.to_string(),
        message: e.to_string(),
    }
}

/// Errors worth another attempt while a machine boots; a host key mismatch or a bad local key
/// never gets better.
fn retryable(e: &SshError) -> bool {
    !matches!(e, SshError::HostKeyMismatch { .. } | SshError::Key { .. })
}

impl SshSession {
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Whether the connection ended (the peer closed it, or keepalives went unanswered).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Connects and authenticates with `key`, retrying with backoff (0.25 s doubling to 5 s) until
    /// `opts.total_wait` has passed.
    #[tracing::instrument(name = "ssh_connect", level = "debug", skip_all, fields(target = %target))]
    pub async fn connect(
        target: &SshTarget,
        key: &PrivateKey,
        known: &KnownHosts,
        opts: ConnectOptions,
    ) -> Result<SshSession, SshError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt = tokio::time::timeout(
                opts.attempt_timeout,
                Box::pin(Self::connect_once(target, key, known, opts)),
            )
            .await;
            let err = match attempt {
                Ok(Ok(session)) => return Ok(session),
                Ok(Err(e)) => e,
                Err(_) => protocol(
                    target,
                    format!("no answer within {} s", opts.attempt_timeout.as_secs()),
                ),
            };
            if !retryable(&err) {
                return Err(err);
            }
            let elapsed = started.elapsed();
            if elapsed + delay > opts.total_wait {
                return Err(SshError::Unreachable {
                    target: target.to_string(),
                    attempts,
                    secs: elapsed.as_secs(),
                    last: err.to_string(),
                });
            }
            tracing::debug!(%target, attempts, error = %err, "SSH not ready yet, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect_once(
        target: &SshTarget,
        key: &PrivateKey,
        known: &KnownHosts,
        opts: ConnectOptions,
    ) -> Result<SshSession, SshError> {
        let refused = Arc::new(Mutex::new(None));
        let handler = Handler {
            host: target.host.clone(),
            port: target.port,
            known: known.clone(),
            refused: refused.clone(),
        };
        let mut proxy = None;
        let (handle, jump) = match &target.jump {
            None if target.proxy_command.is_some() => {
                let (stream, child) = proxy_stream(target)?;
                proxy = Some(child);
                (
                    client::connect_stream(config(), stream, handler).await,
                    None,
                )
            }
            None => {
                let handle =
                    client::connect(config(), (target.host.as_str(), target.port), handler).await;
                (handle, None)
            }
            Some(jump) => {
                let bastion = Box::pin(Self::connect(jump, key, known, opts)).await?;
                let channel = bastion
                    .handle
                    .channel_open_direct_tcpip(
                        target.host.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| protocol(target, format!("tunnel through {jump}: {e}")))?;
                let handle = client::connect_stream(config(), channel.into_stream(), handler).await;
                (handle, Some(Box::new(bastion)))
            }
        };
        let mut handle = match handle {
            Ok(handle) => handle,
            Err(e) => {
                let refused = refused.lock().ok().and_then(|mut slot| slot.take());
                return Err(match (refused, proxy) {
                    (Some(refused), _) => refused,
                    (None, Some(child)) => protocol(
                        target,
                        format!("{e} (through the proxy command: {})", child.said().await),
                    ),
                    (None, None) => protocol(target, e),
                });
            }
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| protocol(target, e))?
            .flatten();
        let auth = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key.clone()), hash),
            )
            .await
            .map_err(|e| protocol(target, e))?;
        if !auth.success() {
            return Err(protocol(
                target,
                format!("the server refused the key for user '{}'", target.user),
            ));
        }
        Ok(SshSession {
            handle,
            target: target.clone(),
            _jump: jump,
            _proxy: proxy,
        })
    }

    /// Runs `command` (a shell command line on the remote side), feeding `stdin` if given, and
    /// waits for it to end.
    #[tracing::instrument(name = "ssh_exec", level = "debug", skip_all, fields(target = %self.target, command = %first_line(command)))]
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        let mut channel = self.open_exec(command).await?;
        if let Some(data) = stdin {
            channel
                .data(data)
                .await
                .map_err(|e| protocol(&self.target, e))?;
        }
        channel.eof().await.map_err(|e| protocol(&self.target, e))?;
        let mut out = ExecOutput {
            code: -1,
            ..Default::default()
        };
        while let Some(msg) = channel.wait().await {
            out.record(msg);
        }
        Ok(out)
    }

    /// A session channel running `command`.
    async fn open_exec(&self, command: &str) -> Result<russh::Channel<client::Msg>, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| protocol(&self.target, e))?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| protocol(&self.target, e))?;
        Ok(channel)
    }

    /// `out`'s stdout, or the command's stderr as the error when it did not exit 0.
    fn succeeded(&self, command: &str, out: ExecOutput) -> Result<String, SshError> {
        if out.code != 0 {
            return Err(SshError::Remote {
                target: self.target.to_string(),
                command: first_line(command),
                code: out.code,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout_text())
    }

    /// [`SshSession::exec`], failing with the command's stderr when it does not exit 0.
    pub async fn run(&self, command: &str, stdin: Option<&[u8]>) -> Result<String, SshError> {
        let out = self.exec(command, stdin).await?;
        self.succeeded(command, out)
    }

    /// [`SshSession::run`] with stdin streamed from `stdin` as it arrives, so a large upload never
    /// sits in memory whole; output is read meanwhile, so a chatty command cannot stall the feed.
    /// An empty chunk marks the end of a complete input. A feed that stops without it (its
    /// producer failed) still ends with EOF, so the command exits on the cut-off stream instead
    /// of waiting on stdin for ever, and fails here, so a cut-off stream is never reported as
    /// sent.
    #[tracing::instrument(name = "ssh_exec_fed", level = "debug", skip_all, fields(target = %self.target, command = %first_line(command)))]
    pub async fn run_fed(
        &self,
        command: &str,
        mut stdin: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Result<String, SshError> {
        let channel = self.open_exec(command).await?;
        let (mut read, write) = channel.split();
        let mut feed = Box::pin(async {
            loop {
                match stdin.recv().await {
                    Some(chunk) if chunk.is_empty() => {
                        write.eof().await?;
                        return Ok(true);
                    }
                    Some(chunk) => write.data_bytes(chunk).await?,
                    None => {
                        // The archive is incomplete (packing failed). End the input anyway: the
                        // remote `tar` then exits on the cut-off stream instead of waiting on
                        // stdin for ever, and the caller reports the packer's error.
                        write.eof().await?;
                        return Ok::<bool, russh::Error>(false);
                    }
                }
            }
        });
        // None while feeding; then whether the input was complete.
        let mut fed: Option<bool> = None;
        let mut out = ExecOutput {
            code: -1,
            ..Default::default()
        };
        loop {
            tokio::select! {
                done = &mut feed, if fed.is_none() => {
                    fed = Some(done.map_err(|e| protocol(&self.target, e))?);
                }
                msg = read.wait() => match msg {
                    None => break,
                    Some(msg) => out.record(msg),
                },
            }
        }
        if out.code != 0 {
            return self.succeeded(command, out);
        }
        drop(feed);
        // A command that succeeded before the end marker arrived took what it needed (tar stops
        // at the archive's end blocks). The rest is drained rather than dropped: the producer
        // serves every node, and a queue closed early reads to it as a node that failed.
        if fed.is_none() {
            fed = Some(false);
            while let Some(chunk) = stdin.recv().await {
                if chunk.is_empty() {
                    fed = Some(true);
                    break;
                }
            }
        }
        if fed == Some(false) {
            return Err(protocol(&self.target, "the input stream was cut off"));
        }
        self.succeeded(command, out)
    }

    /// Starts `command` and hands back its stdin/stdout as one byte stream (stderr is dropped),
    /// for a protocol spoken over the channel, like the agent's `rpc`.
    pub async fn open_stream(&self, command: &str) -> Result<ChannelStream<client::Msg>, SshError> {
        let channel = self.open_exec(command).await?;
        Ok(channel.into_stream())
    }

    /// Uploads `local` to `remote` (relative paths are under the login's home) by SFTP, through a
    /// temporary name and a rename so a reader never sees half a file, and sets `mode`.
    pub async fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<(), SshError> {
        let data = tokio::fs::read(local)
            .await
            .map_err(|e| SshError::Local(format!("{}: {e}", local.display())))?;
        self.upload_bytes(&data, remote, mode).await
    }

    #[tracing::instrument(name = "sftp_upload", level = "debug", skip_all, fields(target = %self.target, path = remote, bytes = data.len()))]
    pub async fn upload_bytes(&self, data: &[u8], remote: &str, mode: u32) -> Result<(), SshError> {
        let sftp_err = |message: String| SshError::Sftp {
            target: self.target.to_string(),
            path: remote.to_owned(),
            message,
        };
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| protocol(&self.target, e))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| sftp_err(e.to_string()))?;
        let sftp = russh_sftp::client::SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| sftp_err(e.to_string()))?;
        let tmp = format!("{remote}.{}.part", std::process::id());
        let mut file = sftp
            .create(&tmp)
            .await
            .map_err(|e| sftp_err(e.to_string()))?;
        file.write_all(data)
            .await
            .map_err(|e| sftp_err(e.to_string()))?;
        file.shutdown().await.map_err(|e| sftp_err(e.to_string()))?;
        drop(file);
        let mut attrs = russh_sftp::protocol::FileAttributes::empty();
        attrs.permissions = Some(mode);
        sftp.set_metadata(&tmp, attrs)
            .await
            .map_err(|e| sftp_err(format!("chmod: {e}")))?;
        // SFTP rename fails when the target exists; a shell `mv -f` replaces atomically.
        let _ = sftp.close().await;
        self.run(&format!("mv -f {} {}", quote(&tmp), quote(remote)), None)
            .await?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn first_line(command: &str) -> String {
    let line = command.lines().next().unwrap_or_default();
    if line.len() > 80 {
        format!("{}...", &line[..line.floor_char_boundary(80)])
    } else {
        line.to_owned()
    }
}

fn signal_number(sig: &russh::Sig) -> i32 {
    match sig {
        russh::Sig::HUP => 1,
        russh::Sig::INT => 2,
        russh::Sig::QUIT => 3,
        russh::Sig::ILL => 4,
        russh::Sig::ABRT => 6,
        russh::Sig::FPE => 8,
        russh::Sig::KILL => 9,
        russh::Sig::USR1 => 10,
        russh::Sig::SEGV => 11,
        russh::Sig::PIPE => 13,
        russh::Sig::ALRM => 14,
        russh::Sig::TERM => 15,
        _ => 0,
    }
}

/// Single-quotes `text` for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
