//! What the app keeps for its lifetime, shared by every command through `tauri::State`.
//!
//! The keychain is opened once at start-up; if that fails the app still runs (local launches need
//! no credentials) and the Credentials page shows why.

use sky_core::credentials::{CredentialStore, ImportEnv};

use crate::error::{UiError, UiResult};

pub struct AppState {
    /// Loaded on first use: start-up stays fast and a broken override shows on the page.
    catalog: std::sync::OnceLock<std::sync::Arc<sky_core::catalog::Catalog>>,
    credentials: Result<CredentialStore, UiError>,
    /// Home directory and environment the importers read, fixed at start-up so tests inject theirs.
    pub import_env: ImportEnv,
}

impl AppState {
    pub fn new(credentials: Result<CredentialStore, UiError>, import_env: ImportEnv) -> Self {
        AppState {
            catalog: std::sync::OnceLock::new(),
            credentials,
            import_env,
        }
    }

    /// The platform keychain and the real environment.
    pub fn from_platform() -> Self {
        let credentials = CredentialStore::open_platform().map_err(UiError::from);
        if let Err(e) = &credentials {
            tracing::warn!(error = %e.message, "keychain unavailable; credentials cannot be stored");
        }
        AppState::new(credentials, ImportEnv::from_process())
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

    pub fn credentials(&self) -> UiResult<CredentialStore> {
        self.credentials.clone()
    }
}
