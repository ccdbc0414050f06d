//! Boots the app on Tauri's mock runtime with the real config and capabilities, and drives a few
//! commands through IPC, so serde shapes and permissions are checked without a display.

use sky_core::credentials::{CredentialStore, ImportEnv};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{WebviewWindow, WebviewWindowBuilder};

use crate::run_app;
use crate::state::AppState;

fn boot(
    home: &std::path::Path,
) -> (
    tauri::App<tauri::test::MockRuntime>,
    WebviewWindow<tauri::test::MockRuntime>,
) {
    let store = CredentialStore::with_store(sky_core_mock_store(), "mock");
    let env = ImportEnv {
        home: home.to_owned(),
        vars: Default::default(),
    };
    let app = run_app(mock_builder(), AppState::new(Ok(store), env))
        .build(tauri::generate_context!())
        .expect("app builds on the mock runtime");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");
    (app, window)
}

fn sky_core_mock_store() -> std::sync::Arc<keyring_core::CredentialStore> {
    keyring_core::mock::Store::new().expect("mock keyring store")
}

fn invoke(
    window: &WebviewWindow<tauri::test::MockRuntime>,
    cmd: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|b| b.deserialize::<serde_json::Value>().expect("json"))
}

#[test]
fn credentials_round_trip_through_ipc() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_app, w) = boot(home.path());

    let list = invoke(&w, "credentials_list", serde_json::json!({})).expect("list");
    let states: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["missing", "missing", "missing"]);

    let saved = invoke(
        &w,
        "credentials_save",
        serde_json::json!({"credentials": {"cloud": "aws", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}}),
    )
    .expect("save");
    assert_eq!(saved["state"], "stored");
    assert_eq!(saved["summary"], "access key …MPLE");
    assert!(!saved.to_string().contains("wJalrXUtnFEMI"), "{saved}");

    let list = invoke(&w, "credentials_list", serde_json::json!({})).expect("list");
    assert_eq!(list[0]["cloud"], "aws");
    assert_eq!(list[0]["state"], "stored");

    assert_eq!(
        invoke(
            &w,
            "credentials_delete",
            serde_json::json!({"cloud": "aws"})
        )
        .expect("delete"),
        true
    );
}

#[test]
fn errors_arrive_as_code_and_message() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_app, w) = boot(home.path());
    let err = invoke(
        &w,
        "credentials_save",
        serde_json::json!({"credentials": {"cloud": "aws", "access_key_id": "short", "secret_access_key": "x"}}),
    )
    .expect_err("invalid key id");
    assert_eq!(err["code"], "invalid_config");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("invalid aws.access_key_id"),
        "{err}"
    );

    let err = invoke(
        &w,
        "credentials_import",
        serde_json::json!({"request": {"cloud": "aws"}}),
    )
    .expect_err("no ~/.aws");
    assert_eq!(err["code"], "invalid_config");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains(".aws/credentials"),
        "{err}"
    );
}

#[test]
fn commands_not_granted_are_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_app, w) = boot(home.path());
    // A plugin command the capability does not grant must be refused by the ACL, not run.
    let err = invoke(&w, "plugin:app|version", serde_json::json!({})).expect_err("not granted");
    assert!(
        err.to_string().contains("not allowed") || err.to_string().contains("not found"),
        "{err}"
    );
}

#[test]
fn clusters_status_and_stop_go_through_the_facade() {
    let home = tempfile::tempdir().expect("tempdir");
    let sky_home = home.path().join("sky");
    let store = CredentialStore::with_store(sky_core_mock_store(), "mock");
    let env = ImportEnv {
        home: home.path().to_owned(),
        vars: Default::default(),
    };
    let state = AppState::new(Ok(store), env).with_sky_home(&sky_home);
    let app = run_app(mock_builder(), state)
        .build(tauri::generate_context!())
        .expect("app builds on the mock runtime");
    let w = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");

    let status = invoke(&w, "clusters_status", serde_json::json!({"refresh": false}))
        .expect("status of an empty SKY_HOME");
    assert_eq!(status["clusters"], serde_json::json!([]));
    assert_eq!(status["changes"], serde_json::json!([]));

    let err = invoke(&w, "cluster_stop", serde_json::json!({"name": "nope"}))
        .expect_err("stopping an unknown cluster fails");
    assert_eq!(err["code"], "cluster_not_found", "{err}");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("nope")),
        "{err}"
    );
}

fn boot_with_sky_home(
    home: &std::path::Path,
) -> (
    tauri::App<tauri::test::MockRuntime>,
    WebviewWindow<tauri::test::MockRuntime>,
) {
    let store = CredentialStore::with_store(sky_core_mock_store(), "mock");
    let env = ImportEnv {
        home: home.to_owned(),
        vars: Default::default(),
    };
    let state = AppState::new(Ok(store), env).with_sky_home(home.join("sky"));
    let app = run_app(mock_builder(), state)
        .build(tauri::generate_context!())
        .expect("app builds on the mock runtime");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");
    (app, window)
}

#[test]
fn launch_refuses_a_bad_task_at_its_line_and_cancel_of_an_ended_launch_is_false() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_app, w) = boot_with_sky_home(home.path());
    let err = invoke(
        &w,
        "launch",
        serde_json::json!({
            "request": {"launch_id": "l1", "yaml": "run: echo hi\nnum_nodes: 0\n", "cluster": null, "pick": null},
            "channel": "__CHANNEL__:7",
        }),
    )
    .expect_err("invalid task");
    assert_eq!(err["code"], "invalid_task", "{err}");
    assert_eq!(err["task"]["line"], 2, "{err}");

    let cancelled = invoke(&w, "launch_cancel", serde_json::json!({"launchId": "l1"}))
        .expect("cancel of a launch that is not running");
    assert_eq!(cancelled, serde_json::json!(false));
}

#[test]
fn exec_and_spend_chart_go_through_the_facade() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_app, w) = boot_with_sky_home(home.path());
    let err = invoke(
        &w,
        "cluster_exec",
        serde_json::json!({"name": "nope", "command": "  "}),
    )
    .expect_err("empty command");
    assert_eq!(err["code"], "invalid_task", "{err}");
    let err = invoke(
        &w,
        "cluster_exec",
        serde_json::json!({"name": "nope", "command": "echo 'a: b' # not yaml"}),
    )
    .expect_err("unknown cluster");
    assert_eq!(err["code"], "cluster_not_found", "{err}");

    let chart = invoke(&w, "spend_chart", serde_json::json!({})).expect("chart");
    assert_eq!(chart, serde_json::Value::Null, "nothing launched yet");
}

/// A close or quit with a cluster UP and no autostop is held back and the page is asked, naming
/// it; once it has autostop (or is gone) the quit goes through.
#[test]
fn quitting_with_an_unattended_cluster_asks_the_page_first() {
    use tauri::Listener;
    let home = tempfile::tempdir().expect("tempdir");
    let (app, _w) = boot_with_sky_home(home.path());
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = asked.clone();
    app.listen(crate::quit::EVENT, move |e| {
        seen.lock().expect("seen").push(e.payload().to_owned());
    });
    assert!(!crate::quit::hold(app.handle()), "no cluster: quits");
    {
        let mut db = sky_core::state::StateStore::open(
            &home.path().join("sky").join(sky_core::state::STATE_DB_FILE),
        )
        .expect("state");
        db.create("forgotten", 1, None, "sky launch", 1)
            .expect("record");
        db.set_status("forgotten", sky_core::state::ClusterStatus::Up, 2, "up")
            .expect("up");
    }
    assert!(crate::quit::hold(app.handle()), "held back");
    assert_eq!(
        asked.lock().expect("asked").as_slice(),
        [r#"{"clusters":["forgotten"]}"#]
    );
    {
        let mut db = sky_core::state::StateStore::open(
            &home.path().join("sky").join(sky_core::state::STATE_DB_FILE),
        )
        .expect("state");
        db.set_autostop(
            "forgotten",
            Some(sky_core::state::Autostop {
                idle_minutes: 60,
                down: false,
            }),
            3,
        )
        .expect("autostop");
    }
    assert!(!crate::quit::hold(app.handle()), "autostop set: quits");
}

/// The page's hand-written `CloudId` union lists every cloud the views can carry (it once lacked
/// `ssh`); generated bindings would make this unnecessary, they are not there yet.
#[test]
fn the_pages_cloud_type_knows_every_cloud() {
    let backend = include_str!("../../ui/src/backend.ts");
    let line = backend
        .lines()
        .find(|l| l.starts_with("export type CloudId ="))
        .expect("CloudId in backend.ts");
    for cloud in sky_core::cloud::CloudId::ALL {
        let quoted = format!("\"{}\"", cloud.as_str());
        assert!(line.contains(&quoted), "{line} lacks {quoted}");
    }
}

/// The Credentials page's check looks afresh: a config.yaml (or a login) changed while the app
/// runs is seen without a restart, as the CLI sees it on its next command.
#[test]
fn the_clouds_check_sees_what_changed_while_the_app_runs() {
    let home = tempfile::tempdir().expect("tempdir");
    let sky_home = home.path().join("sky");
    std::fs::create_dir_all(&sky_home).expect("sky home");
    std::fs::write(sky_home.join("config.yaml"), "allowed_clouds: [local]\n").expect("config");
    let (_app, w) = boot_with_sky_home(home.path());
    let ssh_reason = |w: &WebviewWindow<tauri::test::MockRuntime>| {
        let checks = invoke(w, "clouds_check", serde_json::json!({})).expect("check");
        checks
            .as_array()
            .and_then(|a| a.iter().find(|c| c["cloud"] == "ssh"))
            .map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
            .expect("an ssh row")
    };
    assert!(
        ssh_reason(&w).contains("allowed_clouds"),
        "disallowed at first"
    );
    std::fs::write(
        sky_home.join("config.yaml"),
        "allowed_clouds: [local, ssh]\n",
    )
    .expect("config");
    let now = ssh_reason(&w);
    assert!(
        !now.contains("allowed_clouds"),
        "seen without a restart: {now}"
    );
}

/// Every command is named in five places (the Rust function, the handler list, `build.rs`'s
/// permission list, the capability file and the page's `backend.ts`); a command missing from one
/// of them fails only at run time, with "not allowed" or "not found". This compares them.
#[test]
fn the_handler_list_permissions_capability_and_page_name_the_same_commands() {
    use std::collections::BTreeSet;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).expect(rel);
    let between = |text: &str, start: &str, end: &str| -> String {
        let from = text.find(start).map(|i| i + start.len()).expect(start);
        let to = text[from..].find(end).expect(end) + from;
        text[from..to].to_owned()
    };
    let quoted = |text: &str| -> BTreeSet<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let build = quoted(&between(
        &read("build.rs"),
        "const COMMANDS: &[&str] = &[",
        "];",
    ));
    let handlers: BTreeSet<String> = between(&read("src/lib.rs"), "tauri::generate_handler![", "]")
        .split(',')
        .filter_map(|p| p.trim().rsplit("::").next().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .collect();
    let capability: BTreeSet<String> = quoted(&read("capabilities/main.json"))
        .into_iter()
        .filter_map(|p| p.strip_prefix("allow-").map(|c| c.replace('-', "_")))
        .collect();
    let page: BTreeSet<String> = read("../ui/src/backend.ts")
        .split("invoke<")
        .skip(1)
        .filter_map(|call| call.split('"').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(handlers, build, "lib.rs's handlers vs build.rs's COMMANDS");
    assert_eq!(
        capability, build,
        "capabilities/main.json vs build.rs's COMMANDS"
    );
    assert_eq!(
        page, build,
        "ui/src/backend.ts's invoke calls vs build.rs's COMMANDS"
    );
    for command in &build {
        let toml = dir
            .join("permissions/autogenerated")
            .join(format!("{command}.toml"));
        assert!(toml.is_file(), "{} was not generated", toml.display());
    }
}
