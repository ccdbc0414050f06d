//! Harnesses for Sky's tests, shared by the provider crates and the end-to-end tests: `moto` (a
//! moto server and a fault-injecting EC2 proxy in front of it), `aws_sso` (the SSO portal's
//! GetRoleCredentials), `gcp_fake` (Compute Engine REST)
//! and `azure_fake` (ARM + the identity platform's token endpoint); `require` fails a test that
//! cannot run here when in CI, instead of letting it skip.
//!
//! Test code only: it panics on setup failures (a harness that cannot start has nothing useful to
//! return) and knows nothing about Sky's providers, so it never pulls in a cloud SDK.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod aws_sso;
pub mod azure_fake;
pub mod gcp_fake;
pub mod hosts;
pub mod moto;
pub mod require;
