//! Sky's desktop app: a Tauri 2 shell over `sky-core` (composition root #2).
//!
//! # Layout
//! - [`commands`]: the thin `#[tauri::command]`s the page invokes.
//! - [`state`]: `AppState`, built once at start-up.
//! - [`views`]: the only types that cross to the page.
//! - [`plan`]: the cost comparison (task parser + optimizer, on-demand vs spot).
//! - [`chart`]: the cost chart, drawn with plotters as SVG.
//! - [`spend`]: the spend-over-time chart of the Cost report.
//! - [`logs`]: job queues and live log streams.
//! - [`launch`]: launches from the window, their progress events and cancellation.
//! - [`watch`]: pushes cluster status to the window as `clusters-changed` events.
//! - [`quit`]: a close or quit with clusters UP and no autostop asks the page first.
//! - [`error`]: `UiError { code, message }`.
//!
//! The shell holds no domain logic; it wires `sky-core` to the window. Security posture: the page
//! is local (`ui/dist`), the CSP forbids remote content, and the `main` window is granted only
//! the commands below (see `capabilities/main.json`).

pub mod chart;
pub mod commands;
pub mod error;
pub mod launch;
pub mod logs;
pub mod plan;
pub mod quit;
pub mod spend;
pub mod state;
pub mod views;
pub mod watch;

use tauri::{Builder, Manager, Runtime};

use crate::state::AppState;

/// Registers state and commands on any runtime, so tests can use the mock one.
pub fn run_app<R: Runtime>(builder: Builder<R>, state: AppState) -> Builder<R> {
    builder
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::app_ready,
            commands::credentials_list,
            commands::credentials_save,
            commands::credentials_delete,
            commands::credentials_import,
            commands::price_chart,
            commands::plan,
            commands::clusters_status,
            commands::cluster_stop,
            commands::cluster_start,
            commands::cluster_down,
            commands::cluster_autostop,
            commands::cluster_queue,
            commands::job_logs,
            commands::cost_report,
            commands::clouds_check,
            commands::ssh_include,
            commands::ssh_include_set,
            commands::storage_list,
            commands::storage_delete,
            commands::launch,
            commands::launch_cancel,
            commands::cluster_exec,
            commands::spend_chart,
            quit::app_quit,
        ])
}

/// Starts the app on the platform's webview; logs go to stderr. Only Sky's own crates log (info,
/// or debug with `SKY_DEV=1`): dependencies such as the cloud SDKs log signed headers and tokens.
/// `RUST_LOG` naming a target is honoured as the user's choice (`sky_cli::telemetry`).
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(sky_cli::telemetry::log_filter("info"))
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a log redirected to a file should read as text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let built = run_app(tauri::Builder::default(), AppState::from_platform())
        .setup(|app| {
            watch::spawn(app.handle().clone());
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && quit::hold(window.app_handle())
            {
                api.prevent_close();
            }
        })
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the desktop app failed to start");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        // A quit from the menu or the dock (no exit code: not the app's own `exit`).
        if let tauri::RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
            && quit::hold(app)
        {
            api.prevent_exit();
        }
    });
}

#[cfg(test)]
mod tests;
