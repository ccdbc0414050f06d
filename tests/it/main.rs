//! Cross-crate end-to-end tests. One binary; one module per area.
mod catalog;
mod dryrun;
mod optimizer;
mod lifecycle;
mod local_cloud;
mod jobs;
