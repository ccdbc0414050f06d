//! Sky's providers: implementations of [`sky_core::provision::Provider`].
//!
//! `local` and `ssh` are always built; `aws`, `gcp` and `azure` sit behind default-on cargo
//! features of the same names (each in its own crate), so a build without a cloud's SDK still
//! compiles and runs. This is the only crate that
//! knows how a particular cloud works. What it does not do: choose placements or keep state (the
//! core does both).

pub mod local;
pub mod ssh_pool;

use std::sync::Arc;

use sky_core::config::{Paths, SkyConfig};
use sky_core::provision::Registry;

/// Every provider this build has, for a front end's composition root. Cloud providers read their
/// endpoint overrides from `config` and their credentials lazily, on first use, so building the
/// registry costs nothing for commands that never reach a cloud.
pub fn registry(paths: &Paths, config: &SkyConfig) -> Registry {
    let registry = Registry::new()
        .with(Arc::new(local::LocalCloud::new(&paths.sky_home())))
        .with(Arc::new(ssh_pool::SshPoolCloud::new(&paths.sky_home())));
    #[cfg(feature = "aws")]
    let registry = {
        let aws = sky_aws::AwsOptions::from_config(paths, config);
        registry
            .with_store(sky_aws::s3_store(&aws))
            .with(Arc::new(sky_aws::AwsProvider::new(aws)))
    };
    #[cfg(feature = "gcp")]
    let registry = registry.with(sky_gcp::provider(paths, config));
    #[cfg(feature = "azure")]
    let registry = registry.with(sky_azure::provider(paths, config));
    #[cfg(not(any(feature = "aws", feature = "gcp", feature = "azure")))]
    let _ = config;
    registry
}
