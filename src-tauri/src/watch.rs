//! Pushes cluster status to the window instead of letting it poll: a background thread reads the
//! state database every [`READ_EVERY`] and, every [`REFRESH_EVERY`], first reconciles each cluster
//! with its provider (what `sky status --refresh` does); whenever the view differs from the last
//! one sent it emits [`EVENT`] with the whole `StatusView`.
//!
//! What this module does not do: change clusters, or run in tests on the mock runtime (the real
//! app starts it, so tests never touch a real `SKY_HOME`).

use std::time::{Duration, Instant};

use sky_core::api::views::StatusView;
use sky_core::events::NullSink;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::AppState;

pub const EVENT: &str = "clusters-changed";
const READ_EVERY: Duration = Duration::from_secs(2);
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Starts the watcher thread; it ends with the process.
pub fn spawn<R: Runtime>(app: AppHandle<R>) {
    let started = std::thread::Builder::new()
        .name("sky-cluster-watch".into())
        .spawn(move || watch(&app));
    if let Err(e) = started {
        tracing::warn!(error = %e, "cluster watcher did not start; the Clusters page falls back to polling");
    }
}

fn watch<R: Runtime>(app: &AppHandle<R>) {
    let mut last: Option<serde_json::Value> = None;
    let mut last_refresh = Instant::now();
    loop {
        std::thread::sleep(READ_EVERY);
        let refresh = last_refresh.elapsed() >= REFRESH_EVERY;
        if refresh {
            last_refresh = Instant::now();
        }
        let view = match read(app, refresh) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "cluster watcher: status failed");
                continue;
            }
        };
        // Compare without the refresh's change list: it describes one refresh, not the state.
        let key = serde_json::to_value(&view.clusters).ok();
        if key.is_some() && key != last {
            last = key;
            if let Err(e) = app.emit(EVENT, &view) {
                tracing::debug!(error = %e, "cluster watcher: emit failed");
            }
        }
    }
}

fn read<R: Runtime>(
    app: &AppHandle<R>,
    refresh: bool,
) -> Result<StatusView, crate::error::UiError> {
    let sky = app.state::<AppState>().sky()?;
    Ok(tauri::async_runtime::block_on(sky.status(
        &[],
        refresh,
        &NullSink,
    ))?)
}
