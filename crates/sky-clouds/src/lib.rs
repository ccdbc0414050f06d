//! Sky's providers: implementations of [`sky_core::provision::Provider`].
//!
//! Only `local` exists so far; `aws`, `gcp` and `azure` will come behind cargo features of the same
//! names, so a build without a cloud's SDK still compiles and runs. This is the only crate that
//! knows how a particular cloud works. What it does not do: choose placements or keep state (the
//! core does both).

pub mod local;

use std::path::Path;
use std::sync::Arc;

use sky_core::provision::Registry;

/// Every provider this build has, for a front end's composition root.
pub fn registry(sky_home: &Path) -> Registry {
    Registry::new().with(Arc::new(local::LocalCloud::new(sky_home)))
}
