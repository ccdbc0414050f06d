//! The desktop app's entry point; everything else is in the library so tests can boot it.

// Without this a console window would open next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    sky_desktop_lib::run();
}
