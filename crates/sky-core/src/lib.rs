//! Sky's core: everything between "a person described a workload" and "it ran", with no GUI, no
//! CLI and no cloud SDK.
//!
//! # Layout
//! - [`cloud`]: cloud identities (data only).
//! - [`resources`]: validated resource requirements.
//! - [`catalog`]: instance types and prices, embedded and refreshable.
//! - [`error`]: the stable error codes front ends branch on.
//! - [`task`]: SkyPilot-compatible task files, parsed and validated.
//! - [`config`]: `SKY_HOME` paths and `config.yaml`.
//! - [`optimizer`]: ranks feasible placements for a task or a chain (SkyPilot's decisions).

pub mod catalog;
pub mod cloud;
pub mod config;
pub mod error;
pub mod jobs;
pub mod optimizer;
pub mod resources;
pub mod task;

pub use cloud::CloudId;
pub use error::ErrorCode;
