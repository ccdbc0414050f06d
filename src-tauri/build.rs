//! Generates the Tauri context and one `allow-<command>` permission per app command, so
//! `capabilities/main.json` can grant the `main` window exactly the commands it uses.

const COMMANDS: &[&str] = &[
    "app_info",
    "credentials_list",
    "credentials_save",
    "credentials_delete",
    "credentials_import",
    "price_chart",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
