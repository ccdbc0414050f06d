//! Sky's core: everything between "a person described a workload" and "it ran", with no GUI, no
//! CLI and no cloud SDK.
//!
//! # Layout
//! - [`cloud`]: cloud identities (data only).
//! - [`resources`]: validated resource requirements.
//! - [`catalog`]: instance types and prices, embedded and refreshable.
//! - [`credentials`]: per-cloud credentials in the OS keychain, and importers.
//! - [`error`]: the stable error codes front ends branch on.
//! - [`task`]: SkyPilot-compatible task files, parsed and validated.
//! - [`names`]: the cluster-name rule and the per-cloud names derived from it.
//! - [`config`]: `SKY_HOME` paths and `config.yaml`.
//! - [`optimizer`]: ranks feasible placements for a task or a chain (SkyPilot's decisions).
//! - [`state`]: the cluster database (status, history, UP intervals).
//! - [`provision`]: the provider trait, the registry and failover.
//! - [`api`]: the `Sky` facade every front end calls.
//! - [`lock`], [`clock`]: per-cluster locks and the injectable clock.
//! - [`events`]: progress events and the sink front ends implement.
//! - [`ssh`]: SSH to remote nodes: keys, host keys, sessions, the head agent, node pools.

pub mod api;
pub mod catalog;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod cost;
pub mod credentials;
pub mod error;
pub mod events;
pub mod home;
pub mod jobs;
pub mod lock;
pub mod names;
pub mod optimizer;
pub mod provision;
pub mod resources;
pub mod ssh;
pub mod state;
pub mod storage;
pub mod task;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use cloud::CloudId;
pub use error::ErrorCode;
