//! Logging and timeline tracing, set up once at start.
//!
//! - `SKY_DEV=1` shows debug logs (otherwise warnings only, or `RUST_LOG` if set).
//! - `SKY_TIMELINE_FILE_PATH=FILE` writes a Chrome trace of the run's spans (Perfetto, chrome://tracing).
//! - `SKY_MINIMIZE_LOGGING=1` shortens progress output (read by the printing code via [`minimize_logging`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the trace file open; flushed when dropped at the end of `main`.
pub struct Telemetry {
    _chrome: Option<tracing_chrome::FlushGuard>,
}

pub fn init() -> Telemetry {
    let dev = env_flag("SKY_DEV");
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ if dev => EnvFilter::new("debug"),
        _ => EnvFilter::new("warn"),
    };
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(dev)
        .with_ansi(stderr_color())
        .without_time();
    let (chrome_layer, guard) = match std::env::var_os("SKY_TIMELINE_FILE_PATH") {
        Some(path) if !path.is_empty() => {
            let (layer, guard) = tracing_chrome::ChromeLayerBuilder::new()
                .file(path)
                .include_args(true)
                .build();
            (Some(layer), Some(guard))
        }
        _ => (None, None),
    };
    // The timeline needs every span whatever the log level, so the filter applies to the
    // terminal output only.
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(chrome_layer)
        .init();
    Telemetry { _chrome: guard }
}

/// Colour on stderr only for a terminal, never with `NO_COLOR` (https://no-color.org).
fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

pub fn minimize_logging() -> bool {
    env_flag("SKY_MINIMIZE_LOGGING")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

use tracing_subscriber::Layer as _;
