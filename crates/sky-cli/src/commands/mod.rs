//! One module per command (or family of commands). Each holds its clap `Args` and a `run`.

pub mod catalog;
pub mod check;
pub mod config;
pub mod cost_report;
pub mod exec;
pub mod jobs;
pub mod launch;
pub mod launch_run;
pub mod lifecycle;
pub mod show_gpus;
pub mod status;
pub mod storage;
pub mod task_options;
