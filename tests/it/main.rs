//! Cross-crate end-to-end tests. One binary; one module per area.
mod canary;
mod catalog;
mod cloud_logins;
mod clouds;
mod crash_points;
mod dryrun;
mod jobs;
mod lifecycle;
mod local_cloud;
mod names;
mod optimizer;
mod shared_home;
mod ssh;
mod ssh_pools;
mod ssh_support;
mod storage;
mod storage_objects;
