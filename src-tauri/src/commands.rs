//! The commands the page may invoke. Each is a few lines: deserialize, call `sky-core`, map to a
//! view, return `Result<_, UiError>`. Keychain calls block (D-Bus round trips, a possible unlock
//! prompt), so they run on the blocking pool, never on the event loop.
//!
//! No domain logic lives here; every new command must also be listed in `build.rs` and granted
//! in `capabilities/main.json`.

use sky_core::CloudId;
use sky_core::api::views::{CloudCheckView, CostReportView, StatusView};
use sky_core::api::{Sky, SshIncludeView, StorageDeleted, StorageView};
use sky_core::credentials::{self, CloudCredentials};
use sky_core::events::NullSink;
use sky_core::state::Autostop;
use tauri::State;
use tauri::ipc::Channel;

use crate::chart::{self, PriceBar};
use crate::error::{UiError, UiResult};
use crate::logs::{self, JobView, LogMessage};
use crate::state::AppState;
use crate::views::{AppInfo, CredentialStatus, ImportRequest};

/// Runs keychain work off the event loop.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> UiResult<T> + Send + 'static,
) -> UiResult<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| UiError::task_failed(&e))?
}

/// The page calls this once, after its first page has been painted: the start-up figure users
/// feel, logged with the wall clock so a harness can subtract the moment it started the process.
#[tauri::command]
pub fn app_ready(state: State<'_, AppState>) {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    tracing::info!(
        since_main_ms = state.started.elapsed().as_millis(),
        unix_ms,
        "first page interactive"
    );
}

/// Async so that the first keychain open (a D-Bus round trip) runs off the event loop.
#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> UiResult<AppInfo> {
    let store = state.credentials();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        keychain: store.as_ref().ok().map(|s| s.backend()),
        keychain_error: store.err().map(|e| e.message),
    })
}

/// Each priced cloud's credential state, in a fixed order.
#[tauri::command]
pub async fn credentials_list(state: State<'_, AppState>) -> UiResult<Vec<CredentialStatus>> {
    let store = state.credentials()?;
    blocking(move || {
        Ok(CloudId::PRICED
            .into_iter()
            .map(|cloud| status_of(&store, cloud))
            .collect())
    })
    .await
}

fn status_of(store: &credentials::CredentialStore, cloud: CloudId) -> CredentialStatus {
    match store.load(cloud) {
        Ok(Some(creds)) => CredentialStatus::stored(&creds, store.backend()),
        Ok(None) => CredentialStatus::missing(cloud),
        Err(e) => CredentialStatus::error(cloud, e.to_string()),
    }
}

#[tauri::command]
pub async fn credentials_save(
    state: State<'_, AppState>,
    credentials: CloudCredentials,
) -> UiResult<CredentialStatus> {
    let store = state.credentials()?;
    let saved = blocking(move || {
        store.save(&credentials)?;
        Ok(CredentialStatus::stored(&credentials, store.backend()))
    })
    .await?;
    state.reload_sky();
    Ok(saved)
}

#[tauri::command]
pub async fn credentials_delete(state: State<'_, AppState>, cloud: CloudId) -> UiResult<bool> {
    let store = state.credentials()?;
    let deleted = blocking(move || Ok(store.delete(cloud)?)).await?;
    state.reload_sky();
    Ok(deleted)
}

/// Reads credentials from where the cloud's own tools keep them and stores them in the keychain.
#[tauri::command]
pub async fn credentials_import(
    state: State<'_, AppState>,
    request: ImportRequest,
) -> UiResult<CredentialStatus> {
    let store = state.credentials()?;
    let env = state.import_env.clone();
    let imported = blocking(move || {
        let creds = match request {
            ImportRequest::Aws => credentials::import_aws(&env)?,
            ImportRequest::Gcp {
                json: Some(json),
                project,
            } => credentials::gcp_from_json(&json, project.as_deref())?,
            ImportRequest::Gcp {
                json: None,
                project,
            } => credentials::import_gcp(&env, project.as_deref())?,
            ImportRequest::Azure { json, subscription } => {
                credentials::azure_from_sp_json(&json, subscription.as_deref())?
            }
        };
        store.save(&creds)?;
        Ok(CredentialStatus::stored(&creds, store.backend()))
    })
    .await?;
    state.reload_sky();
    Ok(imported)
}

/// The on-demand vs spot chart for the given candidates, as SVG text.
#[tauri::command]
pub fn price_chart(bars: Vec<PriceBar>) -> UiResult<String> {
    Ok(chart::price_chart(&bars)?)
}

/// The ranked candidates for a task, on-demand vs spot, with the chart and "why not cheaper".
#[tauri::command]
pub async fn plan(state: State<'_, AppState>, yaml: String) -> UiResult<crate::plan::PlanView> {
    let catalog = state.catalog()?;
    blocking(move || crate::plan::plan(&catalog, &yaml)).await
}

/// Runs a facade future on the blocking pool: the facade's futures hold its database lock across
/// awaits, so they are driven to completion on their own thread rather than on the event loop.
async fn facade<T: Send + 'static, F>(
    state: &AppState,
    f: impl FnOnce(std::sync::Arc<Sky>) -> F + Send + 'static,
) -> UiResult<T>
where
    F: std::future::Future<Output = Result<T, sky_core::api::SkyError>>,
{
    let sky = state.sky()?;
    blocking(move || Ok(tauri::async_runtime::block_on(f(sky))?)).await
}

/// Every cluster; with `refresh`, each first reconciled with its provider.
#[tauri::command]
pub async fn clusters_status(state: State<'_, AppState>, refresh: bool) -> UiResult<StatusView> {
    facade(&state, move |sky| async move {
        sky.status(&[], refresh, &NullSink).await
    })
    .await
}

#[tauri::command]
pub async fn cluster_stop(state: State<'_, AppState>, name: String) -> UiResult<()> {
    facade(&state, move |sky| async move {
        sky.stop(&name, &NullSink).await
    })
    .await
}

#[tauri::command]
pub async fn cluster_start(state: State<'_, AppState>, name: String) -> UiResult<()> {
    facade(&state, move |sky| async move {
        sky.start(&name, &NullSink).await
    })
    .await
}

#[tauri::command]
pub async fn cluster_down(state: State<'_, AppState>, name: String) -> UiResult<()> {
    facade(&state, move |sky| async move {
        sky.down(&name, false, &NullSink).await
    })
    .await
}

/// Sets autostop after `idle_minutes` idle (stop, or down with `down`); `null` cancels it.
#[tauri::command]
pub async fn cluster_autostop(
    state: State<'_, AppState>,
    name: String,
    idle_minutes: Option<u32>,
    down: bool,
) -> UiResult<()> {
    let setting = idle_minutes.map(|idle_minutes| Autostop { idle_minutes, down });
    facade(&state, move |sky| async move {
        sky.autostop(&name, setting, &NullSink).await
    })
    .await
}

/// The job queue of an UP cluster, oldest first.
#[tauri::command]
pub async fn cluster_queue(state: State<'_, AppState>, name: String) -> UiResult<Vec<JobView>> {
    let sky = state.sky()?;
    blocking(move || tauri::async_runtime::block_on(logs::queue(&sky, &name))).await
}

/// Streams a job's log (the latest job when `job` is null) until it ends.
#[tauri::command]
pub async fn job_logs(
    state: State<'_, AppState>,
    name: String,
    job: Option<u64>,
    channel: Channel<LogMessage>,
) -> UiResult<()> {
    let sky = state.sky()?;
    blocking(move || tauri::async_runtime::block_on(logs::follow(&sky, &name, job, &channel))).await
}

/// What every launch so far has cost, gone clusters included.
#[tauri::command]
pub async fn cost_report(state: State<'_, AppState>) -> UiResult<CostReportView> {
    let sky = state.sky()?;
    blocking(move || Ok(sky.cost_report()?)).await
}

/// Each cloud's credentials as Sky would use them now (keychain, environment or the cloud CLI's
/// login), checked with one authenticated call per cloud, as `sky check` does. Looked for afresh:
/// the Credentials page asks this when it opens, which is where a person looks after signing in
/// in a terminal.
#[tauri::command]
pub async fn clouds_check(state: State<'_, AppState>) -> UiResult<Vec<CloudCheckView>> {
    state.reload_sky();
    facade(
        &state,
        move |sky| async move { Ok(sky.verify_clouds().await) },
    )
    .await
}

/// Whether `ssh CLUSTER` works from a terminal (`~/.ssh/config` includes Sky's cluster configs).
#[tauri::command]
pub async fn ssh_include(state: State<'_, AppState>) -> UiResult<SshIncludeView> {
    let sky = state.sky()?;
    blocking(move || Ok(sky.ssh_include()?)).await
}

/// Adds or removes the `Include` line in `~/.ssh/config`; the page asked the user first.
#[tauri::command]
pub async fn ssh_include_set(state: State<'_, AppState>, on: bool) -> UiResult<SshIncludeView> {
    let sky = state.sky()?;
    blocking(move || Ok(sky.set_ssh_include(on)?)).await
}

/// The buckets Sky created for storage objects, with what their stores hold now.
#[tauri::command]
pub async fn storage_list(state: State<'_, AppState>) -> UiResult<Vec<StorageView>> {
    facade(&state, move |sky| async move { sky.storage_list().await }).await
}

/// Empties and deletes buckets Sky created (the page has asked the user first).
#[tauri::command]
pub async fn storage_delete(
    state: State<'_, AppState>,
    names: Vec<String>,
) -> UiResult<Vec<StorageDeleted>> {
    facade(&state, move |sky| async move {
        sky.storage_delete(&names).await
    })
    .await
}

/// Launches the task on the picked candidate (the local cloud when its cloud is not enabled),
/// streaming progress events; returns how the job ended.
#[tauri::command]
pub async fn launch(
    state: State<'_, AppState>,
    request: crate::launch::LaunchRequest,
    channel: Channel<sky_core::events::Event>,
) -> UiResult<sky_core::api::RunOutcome> {
    let task = crate::plan::single_task(&*state.catalog()?, &request.yaml)?;
    let sky = state.sky()?;
    let launches = state.launches.clone();
    blocking(move || {
        tauri::async_runtime::block_on(crate::launch::launch(
            &sky, &launches, task, &request, &channel,
        ))
    })
    .await
}

/// Cancels a running launch at its next safe point; `false` when it had already ended.
#[tauri::command]
pub async fn launch_cancel(state: State<'_, AppState>, launch_id: String) -> UiResult<bool> {
    if !state.launches.is_running(&launch_id) {
        return Ok(false);
    }
    let sky = state.sky()?;
    let launches = state.launches.clone();
    blocking(move || {
        tauri::async_runtime::block_on(crate::launch::cancel(&sky, &launches, &launch_id))
    })
    .await
}

/// Runs `command` on an UP cluster as a new job (SkyPilot's `sky exec CLUSTER CMD`), detached:
/// the page then follows its log on the Jobs page. Returns the job id.
#[tauri::command]
pub async fn cluster_exec(
    state: State<'_, AppState>,
    name: String,
    command: String,
) -> UiResult<Option<u64>> {
    if command.trim().is_empty() {
        return Err(UiError::new(
            sky_core::ErrorCode::InvalidTask,
            format!("exec on '{name}': the command is empty; type what to run"),
        ));
    }
    // JSON is YAML: quoting through serde_json keeps any command text a plain `run` string.
    let yaml = serde_json::json!({ "run": command }).to_string();
    let task = crate::plan::single_task(&*state.catalog()?, &yaml)?;
    facade(&state, move |sky| async move {
        let outcome = sky.exec(&name, &task, true, &NullSink).await?;
        Ok(outcome.job_id)
    })
    .await
}

/// Cumulative spend over time as SVG; `null` before anything was ever launched.
#[tauri::command]
pub async fn spend_chart(state: State<'_, AppState>) -> UiResult<Option<String>> {
    let sky = state.sky()?;
    blocking(move || {
        let report = sky.cost_report()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(crate::spend::spend_chart(&report.clusters, now)?)
    })
    .await
}
