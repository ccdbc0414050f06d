//! Generates the Tauri context and one `allow-<command>` permission per app command, so
//! `capabilities/main.json` can grant the `main` window exactly the commands it uses.

const COMMANDS: &[&str] = &[
    "app_info",
    "app_ready",
    "credentials_list",
    "credentials_save",
    "credentials_delete",
    "credentials_import",
    "price_chart",
    "plan",
    "clusters_status",
    "cluster_stop",
    "cluster_start",
    "cluster_down",
    "cluster_autostop",
    "cluster_queue",
    "job_logs",
    "cost_report",
    "clouds_check",
    "ssh_include",
    "ssh_include_set",
    "storage_list",
    "storage_delete",
    "launch",
    "launch_cancel",
    "cluster_exec",
    "spend_chart",
    "app_quit",
];

/// `tauri::generate_context!` needs `frontendDist` to exist. When the UI has not been built (a
/// fresh clone running `cargo clippy --workspace` without node), a page saying how to build it
/// stands in, so the Rust side still compiles; `npm --prefix ui run build` replaces it.
fn ensure_frontend_dist() {
    let dist = std::path::Path::new("../ui/dist");
    if dist.join("index.html").exists() {
        return;
    }
    let page = "<!doctype html><meta charset=\"utf-8\"><title>Sky</title>\
                <p>The Sky UI was not built. Run <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code> \
                and rebuild the app.</p>\n";
    if let Err(e) =
        std::fs::create_dir_all(dist).and_then(|()| std::fs::write(dist.join("index.html"), page))
    {
        panic!("cannot create {}: {e}", dist.display());
    }
}

fn main() {
    ensure_frontend_dist();
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
