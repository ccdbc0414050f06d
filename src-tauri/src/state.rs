//! What the app keeps for its lifetime, shared by every command through `tauri::State`.
//!
//! The keychain is opened on first use, not at start-up: the first window should not wait for a
//! D-Bus round trip (or an unlock prompt). If opening fails the app still runs (local launches
//! need no credentials) and the Credentials page shows why.

use sky_core::credentials::{CredentialStore, ImportEnv};

use crate::error::{UiError, UiResult};

pub struct AppState {
    /// Loaded on first use: start-up stays fast and a broken override shows on the page.
    catalog: std::sync::OnceLock<std::sync::Arc<sky_core::catalog::Catalog>>,
    /// Given by tests; opened from the platform on first use otherwise.
    credentials: std::sync::OnceLock<Result<CredentialStore, UiError>>,
    /// The cluster facade over `sky_home`, opened on first use (its database lives there), and
    /// opened afresh after [`AppState::reload_sky`].
    sky: std::sync::Mutex<Option<std::sync::Arc<sky_core::api::Sky>>>,
    sky_home: std::path::PathBuf,
    /// Home directory and environment the importers read, fixed at start-up so tests inject theirs.
    pub import_env: ImportEnv,
    /// Launches in flight, so the page can cancel them.
    pub launches: std::sync::Arc<crate::launch::Launches>,
    /// When this state was built, at the top of `run`: start-up is reported from here.
    pub started: std::time::Instant,
    /// Holds a close or quit back while clusters bill with no autostop (`quit`).
    pub quit: crate::quit::QuitGate,
}

impl AppState {
    /// A state over the given keychain (tests pass theirs).
    pub fn new(credentials: Result<CredentialStore, UiError>, import_env: ImportEnv) -> Self {
        Self::with_keychain(std::sync::OnceLock::from(credentials), import_env)
    }

    fn with_keychain(
        credentials: std::sync::OnceLock<Result<CredentialStore, UiError>>,
        import_env: ImportEnv,
    ) -> Self {
        // An earlier Sky home in SkyPilot's ~/.sky moves before the home is first resolved, or
        // the app would start an empty home beside it and the CLI could no longer move it.
        match sky_core::home::migrate_legacy_home(&sky_core::config::Paths::from_env()) {
            Ok(Some(what)) => tracing::warn!("{}", what.message()),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "earlier Sky home not moved"),
        }
        AppState {
            catalog: std::sync::OnceLock::new(),
            credentials,
            sky: std::sync::Mutex::new(None),
            sky_home: sky_core::config::Paths::from_env().sky_home(),
            import_env,
            launches: Default::default(),
            started: std::time::Instant::now(),
            quit: Default::default(),
        }
    }

    /// Points the cluster facade at another `SKY_HOME` (tests use a temp dir).
    pub fn with_sky_home(mut self, home: impl Into<std::path::PathBuf>) -> Self {
        self.sky_home = home.into();
        self
    }

    /// The same facade the CLI opens, over the same `SKY_HOME`, so both see the same clusters.
    pub fn sky(&self) -> UiResult<std::sync::Arc<sky_core::api::Sky>> {
        // Held while opening, so two first commands open one facade, not two.
        let mut slot = self.sky.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let paths = sky_core::config::Paths::with_home(&self.sky_home);
        let config = sky_core::config::SkyConfig::load(&paths)
            .map_err(|e| UiError::new(e.code(), e.to_string()))?;
        let options = sky_core::api::SkyOptions {
            // The head agent runs `sky stop|down` when autostop fires: the CLI beside this app.
            sky_program: sky_program(),
            ..sky_core::api::SkyOptions::from_config(&config)
        };
        let registry = sky_clouds::registry(&paths, &config);
        let clock = std::sync::Arc::new(sky_core::clock::SystemClock);
        let sky = std::sync::Arc::new(sky_core::api::Sky::open(paths, registry, clock, options)?);
        *slot = Some(sky.clone());
        Ok(sky)
    }

    /// Makes the next command open the facade afresh: its providers look for credentials again
    /// (ones saved in the keychain here, or a login made in a terminal while the app runs) and
    /// config.yaml is read again. Commands already running keep the facade they hold.
    pub fn reload_sky(&self) {
        *self.sky.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The platform keychain (opened on first use) and the real environment.
    pub fn from_platform() -> Self {
        Self::with_keychain(std::sync::OnceLock::new(), ImportEnv::from_process())
    }

    /// The price catalog: embedded, with per-cloud overrides from `SKY_HOME`.
    pub fn catalog(&self) -> UiResult<std::sync::Arc<sky_core::catalog::Catalog>> {
        if let Some(c) = self.catalog.get() {
            return Ok(c.clone());
        }
        let home = sky_core::config::Paths::from_env().sky_home();
        let catalog = sky_core::catalog::Catalog::load(&home).map_err(|e| {
            UiError::new(sky_core::ErrorCode::Internal, format!("price catalog: {e}"))
        })?;
        Ok(self
            .catalog
            .get_or_init(|| std::sync::Arc::new(catalog))
            .clone())
    }

    /// Blocks on the platform keychain the first time: call it off the event loop.
    pub fn credentials(&self) -> UiResult<CredentialStore> {
        self.credentials
            .get_or_init(|| {
                let opened = CredentialStore::open_platform().map_err(UiError::from);
                if let Err(e) = &opened {
                    tracing::warn!(error = %e.message, "keychain unavailable; credentials cannot be stored");
                }
                opened
            })
            .clone()
    }
}

/// `SKY_PROGRAM`, else this executable, which is also the `sky` CLI (see `main.rs`): the command
/// the head agent runs when autostop fires is `<this app> stop|down NAME -y`.
fn sky_program() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SKY_PROGRAM") {
        return Some(p.into());
    }
    std::env::current_exe().ok()
}
