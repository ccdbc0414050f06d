//! Signing in the way people do at work, through the real `sky` binary with no key files in the
//! environment: GCP application-default credentials as `gcloud auth application-default login`
//! writes them (an `authorized_user` refresh token, exchanged at the token endpoint of the GCP
//! fake, with the project from gcloud's configuration), and the Azure CLI's login (its profile,
//! and a stand-in `az` on `PATH` that hands out a token the ARM fake accepts). `sky check` names
//! the source and the project or subscription, and the cloud's API sees the token; a revoked or
//! expired login says what to run. Each test has its own `HOME`, so the user's real gcloud and
//! Azure files are never read. (The AWS sources are tested in sky-aws's `credentials` tests.)

use std::path::Path;

use serde_json::Value;
use sky_testkit::gcp_fake::FakeGce;

use crate::local_cloud::sky;

/// A user's home with gcloud's files, and a Sky home whose config points GCP at the fake.
struct Login {
    home: tempfile::TempDir,
    sky_home: tempfile::TempDir,
}

impl Login {
    fn new(gce: &FakeGce) -> Login {
        let login = Login {
            home: tempfile::tempdir().expect("home"),
            sky_home: tempfile::tempdir().expect("sky home"),
        };
        std::fs::write(
            login.sky_home.path().join("config.yaml"),
            format!(
                "allowed_clouds: [gcp]\ngcp:\n  endpoint_url: {}\n  poll_interval_ms: 20\n",
                gce.url()
            ),
        )
        .expect("config.yaml");
        login
    }

    fn gcloud(&self) -> std::path::PathBuf {
        self.home.path().join(".config/gcloud")
    }

    /// What `gcloud auth application-default login` and `gcloud config set project` leave.
    fn gcloud_login(&self, token_uri: &str, refresh_token: &str, project: &str) {
        let dir = self.gcloud();
        std::fs::create_dir_all(dir.join("configurations")).expect("gcloud dir");
        std::fs::write(dir.join("active_config"), "work\n").expect("active_config");
        std::fs::write(
            dir.join("configurations/config_work"),
            format!("[core]\naccount = dev@example.com\nproject = {project}\n"),
        )
        .expect("config_work");
        std::fs::write(
            dir.join("application_default_credentials.json"),
            serde_json::json!({
                "type": "authorized_user",
                "client_id": "made-up-client.apps.googleusercontent.com",
                "client_secret": "made-up-client-secret",
                "refresh_token": refresh_token,
                "token_uri": token_uri,
            })
            .to_string(),
        )
        .expect("adc file");
    }

    fn check(&self) -> Value {
        let mut cmd = sky(self.sky_home.path());
        cmd.env("HOME", self.home.path())
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("CLOUDSDK_CONFIG")
            .env_remove("CLOUDSDK_CORE_PROJECT")
            .env_remove("CLOUDSDK_ACTIVE_CONFIG_NAME")
            .env_remove("GOOGLE_CLOUD_PROJECT");
        check_row(&mut cmd, "gcp")
    }
}

/// `sky check -o json` run as `cmd`, and its row for `cloud`.
fn check_row(cmd: &mut assert_cmd::Command, cloud: &str) -> Value {
    let out = cmd.args(["check", "-o", "json"]).output().expect("run sky");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["clouds"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["cloud"] == cloud))
        .cloned()
        .unwrap_or_else(|| panic!("no {cloud} row in {v}"))
}

fn reason(row: &Value) -> &str {
    row["reason"].as_str().unwrap_or_default()
}

fn assert_no_secret(text: &str, path: &Path) {
    for secret in ["made-up-client-secret", "made-up-refresh", "ya29."] {
        assert!(
            !text.contains(secret),
            "a secret from {} reached the output: {text}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcloud_user_login_signs_in_and_a_revoked_one_says_what_to_run() {
    let gce = FakeGce::start().await;
    gce.accept_refresh_token("made-up-refresh-token");
    let login = Login::new(&gce);
    login.gcloud_login(
        &format!("{}/token", gce.url()),
        "made-up-refresh-token",
        "corp-project",
    );

    let row = login.check();
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(why.contains("project corp-project"), "{why}");
    assert!(
        why.contains("gcloud application-default login") && why.contains("gcloud user login"),
        "{why}"
    );
    assert!(why.contains("Compute Engine answered"), "{why}");
    assert_no_secret(why, &login.gcloud());
    // The auth library may refresh ahead of time, so the count is not pinned; what Compute
    // sees must be a token the endpoint issued for this refresh token.
    let (issued, used) = gce.tokens();
    assert!(!issued.is_empty(), "the refresh token was exchanged");
    assert!(
        used.as_ref().is_some_and(|t| issued.contains(t)),
        "Compute calls carry an exchanged token: {used:?} not in {issued:?}"
    );

    // The login is revoked (a password change, `gcloud auth revoke`): check says what to run.
    gce.revoke_refresh_tokens();
    let row = login.check();
    assert_eq!(row["enabled"], false, "{row}");
    let why = reason(&row);
    assert!(
        why.contains("gcloud auth application-default login"),
        "{why}"
    );
    assert_no_secret(why, &login.gcloud());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_a_project_names_the_command_that_sets_one() {
    let gce = FakeGce::start().await;
    let login = Login::new(&gce);
    login.gcloud_login(&format!("{}/token", gce.url()), "r", "");
    let row = login.check();
    assert_eq!(row["enabled"], false, "{row}");
    assert!(reason(&row).contains("gcloud config set project"), "{row}");
}

/// A stand-in for the Azure CLI: `az account get-access-token` prints what the real one prints
/// (a token the ARM fake accepts) and logs its arguments, or fails as an expired login does.
fn fake_az(bin: &Path, script_body: &str) {
    std::fs::create_dir_all(bin).expect("bin dir");
    let az = bin.join("az");
    std::fs::write(&az, format!("#!/bin/sh\n{script_body}")).expect("write az");
    let ok = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&az)
        .status()
        .expect("chmod");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_cli_login_signs_in_and_an_expired_one_says_what_to_run() {
    use sky_testkit::azure_fake::{self, FakeArm};
    let arm = FakeArm::start("made-up-unused-secret").await;
    let token = arm.issue_token();
    let home = tempfile::tempdir().expect("home");
    let sky_home = tempfile::tempdir().expect("sky home");
    std::fs::write(
        sky_home.path().join("config.yaml"),
        format!(
            "allowed_clouds: [azure]\nazure:\n  endpoint_url: {0}\n  authority_host: {0}/\n",
            arm.url()
        ),
    )
    .expect("config.yaml");
    // What `az login` leaves: the profile, written with a byte-order mark as the CLI does.
    let azure_dir = home.path().join(".azure");
    std::fs::create_dir_all(&azure_dir).expect(".azure");
    let profile = serde_json::json!({"installationId": "x", "subscriptions": [
        {"id": "00000000-0000-0000-0000-000000000000", "name": "Other", "isDefault": false,
         "tenantId": azure_fake::TENANT, "state": "Enabled",
         "user": {"name": "dev@example.com", "type": "user"}},
        {"id": azure_fake::SUBSCRIPTION, "name": "Corp", "isDefault": true,
         "tenantId": azure_fake::TENANT, "state": "Enabled",
         "user": {"name": "dev@example.com", "type": "user"}}
    ]});
    std::fs::write(
        azure_dir.join("azureProfile.json"),
        format!("\u{feff}{profile}"),
    )
    .expect("azureProfile.json");
    let bin = home.path().join("bin");
    let args_log = home.path().join("az-args");
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    fake_az(
        &bin,
        &format!(
            "echo \"$@\" >> {log}\nprintf '{{\"accessToken\": \"{token}\", \"expires_on\": {expires}, \
             \"subscription\": \"{sub}\", \"tenant\": \"{tenant}\", \"tokenType\": \"Bearer\"}}'\n",
            log = args_log.display(),
            sub = azure_fake::SUBSCRIPTION,
            tenant = azure_fake::TENANT,
        ),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let check = || {
        let mut cmd = sky(sky_home.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("AZURE_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", home.path()).env("PATH", &path);
        check_row(&mut cmd, "azure")
    };

    let row = check();
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(
        why.contains(&format!(
            "Azure CLI login (dev@example.com) in subscription {}",
            azure_fake::SUBSCRIPTION
        )),
        "{why}"
    );
    assert!(
        why.contains("subscription 'Fake subscription' is Enabled"),
        "ARM answered with the CLI's token: {why}"
    );
    assert!(!why.contains(&token), "{why}");
    let args = std::fs::read_to_string(&args_log).expect("az was called");
    assert!(
        args.contains("account get-access-token")
            && args.contains("--resource https://management.azure.com/")
            && args.contains(&format!("--tenant {}", azure_fake::TENANT)),
        "{args}"
    );

    // The CLI's session expires: check says what to run, with the CLI's own reason.
    fake_az(
        &bin,
        "echo 'ERROR: AADSTS700082: The refresh token has expired due to inactivity.' >&2\nexit 1\n",
    );
    let row = check();
    assert_eq!(row["enabled"], false, "{row}");
    let why = reason(&row);
    assert!(
        why.contains("AADSTS700082") && why.contains("run `az login`"),
        "{why}"
    );
}

/// TPUs are priced in the catalog, but Sky's GCP provider cannot create TPU VMs (they need the
/// Cloud TPU API): a TPU task on GCP is refused with that reason before anything is created,
/// and the dry run says a real launch would skip the TPU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tpu_task_is_refused_with_the_reason_before_anything_is_created() {
    let gce = FakeGce::start().await;
    let login = Login::new(&gce);
    let key = login.home.path().join("sa.json");
    std::fs::write(
        &key,
        sky_testkit::gcp_fake::service_account_json("sky-test"),
    )
    .expect("key");
    let command = |args: &[&str]| {
        let mut cmd = sky(login.sky_home.path());
        cmd.env("HOME", login.home.path())
            .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
            .env_remove("CLOUDSDK_CORE_PROJECT")
            .env_remove("GOOGLE_CLOUD_PROJECT")
            .args(args);
        cmd
    };
    let dry = command(&["launch", "--dryrun", "-y", "--gpus", "tpu-v4-8", "echo hi"])
        .output()
        .expect("run sky");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        text.contains("a real launch skips the chosen GCP TPU-VM") && text.contains("Cloud TPU"),
        "{text}"
    );
    // Off the runtime: the fake serves on it meanwhile.
    let mut launch = command(&["launch", "-y", "-c", "tpu", "--gpus", "tpu-v4-8", "echo hi"]);
    let launched = tokio::task::spawn_blocking(move || launch.output())
        .await
        .expect("join")
        .expect("run sky");
    let stderr = String::from_utf8_lossy(&launched.stderr);
    assert!(
        !launched.status.success(),
        "a TPU launch went ahead: {stderr}"
    );
    assert!(
        stderr.contains("TPU VMs are created through Cloud TPU's own API"),
        "{stderr}"
    );
    assert_eq!(gce.instances(), Vec::<String>::new());
    assert_eq!(
        gce.count_calls("POST"),
        0,
        "nothing was asked of Compute Engine"
    );
}
