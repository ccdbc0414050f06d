//! What every cluster command shares: building the `Sky` facade (the CLI's composition root),
//! printing its progress events, asking for confirmation, and mapping facade errors to exit codes.
//!
//! What this module does not do: decide anything about clusters (sky-core does).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sky_core::api::{Sky, SkyError, SkyOptions};
use sky_core::clock::SystemClock;
use sky_core::config::{Paths, SkyConfig};
use sky_core::events::{AttemptOutcome, Event, EventSink};

use crate::output::CodedError;

/// Moves an earlier Sky home out of SkyPilot's `~/.sky` once (or says why it stays, or that
/// SkyPilot's files there can be imported), before any command opens the home. On stderr, so
/// `-o json` output stays clean.
pub fn announce_home_migration() {
    let line = match sky_core::home::migrate_legacy_home(&Paths::from_env()) {
        Ok(Some(what)) => format!("sky: {}\n", what.message()),
        Ok(None) => return,
        Err(e) => format!("sky: warning: {e}\n"),
    };
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The facade over this machine's SKY_HOME and every provider this build has.
pub fn open_sky(json: bool) -> Result<Sky, CodedError> {
    let paths = Paths::from_env();
    let config = SkyConfig::load(&paths).map_err(|e| CodedError {
        code: e.code(),
        message: e.to_string(),
        json,
    })?;
    let registry = sky_clouds::registry(&paths, &config);
    let options = SkyOptions {
        // The agent runs this same binary when autostop fires.
        sky_program: std::env::current_exe().ok(),
        lock_timeout: lock_timeout(),
        // `ssh CLUSTER` works after a launch, with a notice, as SkyPilot does it.
        ssh_include: sky_core::api::SshInclude::AddWithNotice,
        ..SkyOptions::from_config(&config)
    };
    Sky::open(paths, registry, Arc::new(SystemClock), options).map_err(|e| coded(e, json))
}

/// How long to wait for another command on the same cluster: `SKY_LOCK_TIMEOUT` seconds, else
/// ten minutes.
fn lock_timeout() -> Duration {
    std::env::var("SKY_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(600), Duration::from_secs)
}

pub fn coded(err: SkyError, json: bool) -> CodedError {
    CodedError {
        code: err.code(),
        message: err.to_string(),
        json,
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Asks `prompt [Y/n]` on a terminal. `yes` answers for the user; without a terminal and without
/// `yes` the answer is an error, so scripts never hang on a prompt.
pub fn confirm(prompt: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{prompt}: refusing without a terminal to ask on; pass -y to proceed");
    }
    let mut err = std::io::stderr();
    write!(err, "{prompt} [Y/n]: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let a = answer.trim().to_ascii_lowercase();
    Ok(a.is_empty() || a == "y" || a == "yes")
}

/// Prints progress on stderr (spinners on a terminal) and job output on stdout.
pub struct TermSink {
    spinner: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
    quiet: bool,
    /// `SKY_MINIMIZE_LOGGING=1`: no spinners and no per-stage lines, only what needs attention
    /// (failed attempts, notes) and the job's own output.
    minimize: bool,
}

impl TermSink {
    pub fn new(quiet: bool) -> TermSink {
        TermSink {
            spinner: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
            quiet,
            minimize: crate::telemetry::minimize_logging(),
        }
    }

    fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        let guard = self.spinner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(bar) => bar.println(line),
            None => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{line}");
                }
            }
        }
    }

    fn start_spinner(&self, message: String) {
        if self.minimize {
            return;
        }
        if !self.tty || self.quiet {
            self.say(&format!("{message}..."));
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Some(old) = self
            .spinner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn finish_spinner(&self, message: String) {
        let bar = self
            .spinner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !self.minimize {
            self.say(&message);
        }
    }
}

impl Drop for TermSink {
    fn drop(&mut self) {
        if let Some(bar) = self
            .spinner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for TermSink {
    fn emit(&self, event: Event) {
        match event {
            Event::WaitingForLock { cluster } => self.say(&format!(
                "cluster '{cluster}' is busy with another sky command; waiting for it to finish..."
            )),
            Event::Plan { .. } => {}
            Event::StageStarted { cluster, stage } => {
                self.start_spinner(format!("{cluster}: {}", stage.describe()))
            }
            Event::StageFinished { cluster, stage } => {
                self.finish_spinner(format!("✓ {cluster}: {} done", stage.describe()))
            }
            Event::FailoverAttempt(a) => {
                let place = match &a.zone {
                    Some(z) => format!("{}/{}/{z}", a.cloud.as_str(), a.region),
                    None => format!("{}/{}", a.cloud.as_str(), a.region),
                };
                match a.outcome {
                    AttemptOutcome::Succeeded if self.minimize => {}
                    AttemptOutcome::Succeeded => self.say(&format!(
                        "  attempt {}: {} in {place}: ok",
                        a.number, a.instance_type
                    )),
                    AttemptOutcome::Failed {
                        kind,
                        message,
                        blocked,
                        ..
                    } => self.say(&format!(
                        "  attempt {}: {} in {place}: {} ({message}); skipping {blocked}",
                        a.number,
                        a.instance_type,
                        kind.as_str()
                    )),
                }
            }
            Event::RetryRound { round, wait_secs } => self.say(&format!(
                "every candidate failed; retrying (round {round}) in {wait_secs} s"
            )),
            Event::ClusterStatus { cluster, status } => {
                let s = status.map_or("terminated".to_owned(), |s| s.to_string());
                self.say(&format!("cluster '{cluster}' is {s}"));
            }
            Event::Reusing { cluster, status } => {
                self.say(&format!("reusing existing cluster '{cluster}' ({status})"))
            }
            Event::JobSubmitted { cluster, job_id } => {
                self.say(&format!("job {job_id} submitted to '{cluster}'"))
            }
            Event::Log { line, .. } => {
                let bar = self.spinner.lock().unwrap_or_else(|p| p.into_inner());
                match bar.as_ref() {
                    Some(b) => b.suspend(|| print_line(&line)),
                    None => print_line(&line),
                }
            }
            Event::Note { message } => self.say(&message),
        }
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) must not kill a launch that is still running.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
