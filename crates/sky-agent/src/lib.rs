//! `sky-agent`, the program on a cluster's head node: owns the cluster's job queue (SQLite in its
//! home directory), runs jobs as process groups on the cluster's nodes, writes their logs,
//! enforces autostop, and answers the versioned JSON-lines protocol of
//! [`sky_core::jobs::wire`].
//!
//! Two modes of one binary: `daemon` (long-lived, one per home, does the work) and `rpc`
//! (short-lived, relays a client's stdio to the daemon and starts it on demand). The client side
//! lives in [`sky_core::jobs::client`]. Provisioning, syncing files and reaching remote hosts are
//! not done here.

pub mod db;
pub mod env;
pub mod paths;
pub mod private;
pub mod procid;
pub mod remote;
pub mod rpc;
pub mod runtime;
pub mod server;
pub mod state;
pub mod tail;
