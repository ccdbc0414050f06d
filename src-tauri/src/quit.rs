//! Leaving the app while clusters bill: a window close or a quit with clusters UP and no autostop
//! is held back, and the page asks what to do with them ([`EVENT`]): set autostop, stop them, or
//! leave them running. The page then calls `app_quit`, which lets the next exit through.
//!
//! What this module does not do: act on clusters (the page does, through the same commands as
//! the Clusters page), or hold back an exit the app itself asked for.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use sky_core::api::ClusterView;
use sky_core::events::NullSink;
use sky_core::state::ClusterStatus;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::AppState;

pub const EVENT: &str = "quit-requested";

/// Whether the page has answered and the app may end.
#[derive(Default)]
pub struct QuitGate {
    confirmed: AtomicBool,
}

/// What the page is told when a quit is held back.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuitRequest {
    /// UP clusters without autostop, by name: they bill until someone stops them.
    pub clusters: Vec<String>,
}

/// UP clusters that nothing will stop: no autostop set.
pub fn unattended(clusters: &[ClusterView]) -> Vec<String> {
    clusters
        .iter()
        .filter(|c| c.status == ClusterStatus::Up && c.autostop.is_none())
        .map(|c| c.name.clone())
        .collect()
}

/// Called when the window is about to close or the app to exit: `true` when it held the exit
/// back and asked the page. A state that cannot be read lets the exit through (never trap the
/// user in the app), with a warning in the log.
pub fn hold<R: Runtime>(app: &AppHandle<R>) -> bool {
    let state = app.state::<AppState>();
    if state.quit.confirmed.load(Ordering::SeqCst) {
        return false;
    }
    let view = state.sky().map_err(|e| e.to_string()).and_then(|sky| {
        tauri::async_runtime::block_on(sky.status(&[], false, &NullSink)).map_err(|e| e.to_string())
    });
    let clusters = match view {
        Ok(view) => unattended(&view.clusters),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the clusters before quitting; quitting");
            return false;
        }
    };
    if clusters.is_empty() {
        return false;
    }
    if let Err(e) = app.emit(EVENT, QuitRequest { clusters }) {
        tracing::warn!(error = %e, "cannot ask the page before quitting; quitting");
        return false;
    }
    true
}

/// The page's answer: the app ends now, past the gate.
#[tauri::command]
pub fn app_quit<R: Runtime>(app: AppHandle<R>) {
    app.state::<AppState>()
        .quit
        .confirmed
        .store(true, Ordering::SeqCst);
    app.exit(0);
}
