//! What the app keeps for its lifetime, shared by every command through `tauri::State`.
//!
//! The keychain is opened once at start-up; if that fails the app still runs (local launches need
//! no credentials) and the Credentials page shows why.

use sky_core::credentials::{CredentialStore, ImportEnv};

use crate::error::{UiError, UiResult};

pub struct AppState {
    credentials: Result<CredentialStore, UiError>,
    /// Home directory and environment the importers read, fixed at start-up so tests inject theirs.
    pub import_env: ImportEnv,
}

impl AppState {
    pub fn new(credentials: Result<CredentialStore, UiError>, import_env: ImportEnv) -> Self {
        AppState {
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

    pub fn credentials(&self) -> UiResult<CredentialStore> {
        self.credentials.clone()
    }
}
