//! The desktop app's entry point; everything else is in the library so tests can boot it.
//!
//! The same binary is also the `sky` CLI (started as `sky`, or with a subcommand), so the package
//! carries the CLI, and the command autostop runs, without a second copy of the cloud SDKs.

// Without this a console window would open next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if sky_cli::invoked_as_cli(&args) {
        return sky_cli::main();
    }
    sky_desktop_lib::run();
    std::process::ExitCode::SUCCESS
}
