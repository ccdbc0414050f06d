//! Logging and timeline tracing, set up once at start.
//!
//! - `SKY_DEV=1` shows debug logs of Sky's own crates (otherwise warnings only).
//! - `SKY_TIMELINE_FILE_PATH=FILE` writes a Chrome trace of Sky's own spans (Perfetto,
//!   chrome://tracing).
//! - `RUST_LOG`: a bare level (`RUST_LOG=trace`) applies to Sky's crates only; a directive that
//!   names a target (`RUST_LOG=hyper=debug,sky_core=trace`) is the user's own choice and is
//!   honoured as written, in the terminal and in the timeline.
//! - `SKY_MINIMIZE_LOGGING=1` shortens progress output (read by the printing code via [`minimize_logging`]).
//!
//! Why only Sky's targets: dependencies (HTTP clients, cloud SDKs, SSH) log signed request
//! headers, tokens and bodies at debug/trace, and the timeline records span arguments. Sky's own
//! spans keep secrets out of their fields at the source (`skip(...)`), dependencies do not.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The tracing targets of Sky's own crates (a target matches by prefix, so `sky_desktop` covers
/// `sky_desktop_lib`).
pub const SKY_TARGETS: &[&str] = &[
    "sky_core",
    "sky_cli",
    "sky_aws",
    "sky_gcp",
    "sky_azure",
    "sky_clouds",
    "sky_agent",
    "sky_desktop",
];

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Filter directives: `others` for every target, `sky_level` for Sky's targets, then the
/// directives of `rust_log`, where a bare level is narrowed to Sky's targets and a directive
/// naming a target is kept as written. Later directives for the same target win in `EnvFilter`
/// (more specific wins), so the user's own targets override the defaults.
pub fn directives(rust_log: Option<&str>, sky_level: &str, others: &str) -> String {
    let mut out = vec![others.to_string()];
    out.extend(SKY_TARGETS.iter().map(|t| format!("{t}={sky_level}")));
    for directive in rust_log
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        if LEVELS.iter().any(|l| directive.eq_ignore_ascii_case(l)) {
            out.extend(SKY_TARGETS.iter().map(|t| format!("{t}={directive}")));
        } else {
            out.push(directive.to_string());
        }
    }
    out.join(",")
}

/// The filter for the terminal (and the desktop app's stderr): `default` for Sky's crates,
/// `SKY_DEV=1` raising that to debug, `RUST_LOG` as described in the module docs. Invalid
/// directives are dropped rather than widening the filter.
pub fn log_filter(default: &str) -> EnvFilter {
    let sky_level = if env_flag("SKY_DEV") {
        "debug"
    } else {
        default
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    EnvFilter::builder().parse_lossy(directives(rust_log.as_deref(), sky_level, "warn"))
}

/// The timeline records every span of Sky's crates whatever the log level, and a dependency's
/// only when `RUST_LOG` names it.
fn timeline_filter() -> EnvFilter {
    let rust_log = std::env::var("RUST_LOG").ok();
    let named: Vec<&str> = rust_log
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !LEVELS.iter().any(|l| d.eq_ignore_ascii_case(l)))
        .collect();
    EnvFilter::builder().parse_lossy(directives(Some(&named.join(",")), "trace", "off"))
}

/// Keeps the trace file open; flushed when dropped at the end of `main`.
pub struct Telemetry {
    _chrome: Option<tracing_chrome::FlushGuard>,
}

pub fn init() -> Telemetry {
    let dev = env_flag("SKY_DEV");
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
            (Some(layer.with_filter(timeline_filter())), Some(guard))
        }
        _ => (None, None),
    };
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(log_filter("warn")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_levels_reach_only_sky_targets() {
        let d = directives(Some("trace"), "debug", "warn");
        assert!(d.starts_with("warn,"), "{d}");
        assert!(
            d.contains("sky_core=trace") && d.contains("sky_desktop=trace"),
            "{d}"
        );
        assert!(!d.split(',').any(|x| x == "trace"), "{d}");
    }

    #[test]
    fn named_targets_are_the_users_choice() {
        let d = directives(Some("hyper=debug, russh"), "warn", "warn");
        assert!(d.ends_with(",hyper=debug,russh"), "{d}");
    }

    #[test]
    fn filters_parse() {
        for d in [
            directives(None, "warn", "warn"),
            directives(Some("info,aws_sigv4=trace"), "debug", "off"),
        ] {
            EnvFilter::builder().parse(&d).expect(&d);
        }
    }
}
