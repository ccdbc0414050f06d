//! The AWS CLI's credential sources through the real `sky` binary, with no keys in the
//! environment: a `credential_process` profile, a role assumed from another profile (moto's STS),
//! web identity (moto's `AssumeRoleWithWebIdentity`), and an SSO profile whose cached token the
//! SSO portal fake exchanges for role credentials. `sky check` names the source and whom EC2 sees;
//! an expired SSO login says which command to run, and a launch with it fails before anything is
//! created. Each test gets its own `HOME`, so the user's real `~/.aws` is never read.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use sky_testkit::aws_sso::FakeSsoPortal;
use support::*;

/// A user with a home of their own, Sky pointed at moto, and no AWS variables but `vars`.
struct User {
    home: tempfile::TempDir,
    sky_home: tempfile::TempDir,
}

impl User {
    fn new(moto: &Moto) -> User {
        let user = User {
            home: tempfile::tempdir().expect("home"),
            sky_home: sky_home(),
        };
        std::fs::create_dir_all(user.home.path().join(".aws/sso/cache")).expect(".aws");
        std::fs::write(
            user.sky_home.path().join("config.yaml"),
            format!(
                "allowed_clouds: [aws]\naws:\n  endpoint_url: {}\n  regions: [us-east-1]\n  \
                 image_id: ami-0123456789abcdef0\n  disk_size: 20\n",
                moto.url()
            ),
        )
        .expect("config.yaml");
        user
    }

    fn aws_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.home.path().join(".aws").join(name);
        std::fs::write(&path, text).expect("write aws file");
        path
    }

    fn sky(&self, vars: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(sky_binary());
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("SKY_HOME", self.sky_home.path())
            .env("NO_COLOR", "1")
            .env("SKY_MINIMIZE_LOGGING", "1")
            // Never the instance metadata address: these machines are not EC2 instances.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("SKY_DEV");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// `sky check -o json`'s AWS row.
    fn check(&self, vars: &[(&str, &str)]) -> serde_json::Value {
        let out = run(self.sky(vars).args(["check", "-o", "json"]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["clouds"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["cloud"] == "aws"))
            .cloned()
            .expect("aws row")
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run sky");
    assert!(
        out.status.success(),
        "sky failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn reason(row: &serde_json::Value) -> &str {
    row["reason"].as_str().unwrap_or_default()
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_process_profile_signs_in() {
    let moto = start_moto().await;
    let user = User::new(&moto);
    // Made up at test time, like every key here; moto accepts any.
    let (key_id, secret) = made_up_credentials();
    let secret = format!("{secret}-process");
    let script = user.aws_file(
        "creds.sh",
        &format!(
            "#!/bin/sh\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"{key_id}\", \
             \"SecretAccessKey\": \"{secret}\"}}'\n"
        ),
    );
    let chmod = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    user.aws_file(
        "config",
        &format!(
            "[profile proc]\ncredential_process = {}\n",
            script.display()
        ),
    );
    let row = user.check(&[("AWS_PROFILE", "proc")]);
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(
        why.contains("AWS profile \"proc\" (credential_process)"),
        "{why}"
    );
    assert!(why.contains("DescribeRegions"), "{why}");
    assert!(why.contains("signed in as arn:aws:"), "{why}");
    assert!(!why.contains(&secret), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assumed_role_profile_runs_as_the_role() {
    let moto = start_moto().await;
    let user = User::new(&moto);
    let creds = test_credentials();
    user.aws_file(
        "credentials",
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id,
            creds.secret_access_key.expose()
        ),
    );
    user.aws_file(
        "config",
        "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/sky-dev\n\
         source_profile = base\nrole_session_name = sky-test\n",
    );
    // aws-config sends AssumeRole where the CLI would: AWS_ENDPOINT_URL_STS, here moto.
    let row = user.check(&[
        ("AWS_PROFILE", "dev"),
        ("AWS_ENDPOINT_URL_STS", &moto.url()),
    ]);
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(
        why.contains(
            "AWS profile \"dev\" (assumes role arn:aws:iam::123456789012:role/sky-dev from profile \"base\")"
        ),
        "{why}"
    );
    assert!(
        why.contains("signed in as arn:aws:sts::123456789012:assumed-role/sky-dev/sky-test"),
        "EC2 and STS must see the assumed role: {why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_from_the_environment_assumes_its_role() {
    let moto = start_moto().await;
    let user = User::new(&moto);
    // A default profile with only a region, as on many CI runners and pods: the sources after
    // it still apply.
    user.aws_file("config", "[default]\nregion = us-east-1\n");
    let token = user.aws_file("web-identity-token", "made-up.jwt.token");
    let row = user.check(&[
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token.to_str().expect("utf-8"),
        ),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/sky-ci"),
        ("AWS_ROLE_SESSION_NAME", "ci-run"),
        ("AWS_ENDPOINT_URL_STS", &moto.url()),
    ]);
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(
        why.contains("web identity token (role arn:aws:iam::123456789012:role/sky-ci)"),
        "{why}"
    );
    assert!(why.contains("assumed-role/sky-ci/ci-run"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_that_does_not_exist_or_holds_nothing_is_named() {
    let moto = start_moto().await;
    let user = User::new(&moto);
    user.aws_file("config", "[profile other]\nregion = us-east-1\n");
    let row = user.check(&[("AWS_PROFILE", "nope")]);
    assert_eq!(row["enabled"], false, "{row}");
    assert!(
        reason(&row).contains("AWS_PROFILE names profile \"nope\", which is in neither"),
        "{row}"
    );
    let row = user.check(&[("AWS_PROFILE", "other")]);
    assert_eq!(row["enabled"], false, "{row}");
    assert!(
        reason(&row).contains("AWS profile \"other\" holds no credentials"),
        "{row}"
    );
}

const SSO_CONFIG: &str = "[profile work]\nsso_session = corp\nsso_account_id = 111122223333\n\
    sso_role_name = Dev\nregion = us-east-1\n\n[sso-session corp]\n\
    sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n";

/// What `aws sso login --sso-session corp` leaves behind: the token, under the SHA-1 of the
/// session's name (`printf corp | sha1sum`).
fn write_sso_token(user: &User, token: &str, expires: SystemTime) {
    let out = Command::new("sh")
        .args(["-c", "printf corp | sha1sum | cut -d' ' -f1"])
        .output()
        .expect("sha1sum");
    let name = String::from_utf8(out.stdout).expect("utf-8");
    std::fs::write(
        user.home
            .path()
            .join(".aws/sso/cache")
            .join(format!("{}.json", name.trim())),
        serde_json::json!({
            "startUrl": "https://corp.awsapps.com/start",
            "region": "us-east-1",
            "accessToken": token,
            "expiresAt": rfc3339(expires),
        })
        .to_string(),
    )
    .expect("write token cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_profile_signs_in_and_an_expired_login_says_what_to_run() {
    let moto = start_moto().await;
    let portal = FakeSsoPortal::start(
        "made-up-sso-access-token",
        "111122223333",
        "Dev",
        &made_up_credentials().0.replacen("AKIA", "ASIA", 1),
    )
    .await;
    let user = User::new(&moto);
    user.aws_file("config", SSO_CONFIG);
    let vars = [
        ("AWS_PROFILE", "work"),
        ("AWS_ENDPOINT_URL_SSO", &portal.url()),
    ];

    write_sso_token(
        &user,
        "made-up-sso-access-token",
        SystemTime::now() + Duration::from_secs(7200),
    );
    let row = user.check(&vars);
    assert_eq!(row["enabled"], true, "{row}");
    let why = reason(&row);
    assert!(
        why.contains(
            "AWS profile \"work\" (AWS SSO, account 111122223333, role Dev), signed in until"
        ),
        "{why}"
    );
    assert!(why.contains("DescribeRegions"), "{why}");
    assert!(!why.contains("made-up-sso-access-token"), "{why}");
    assert!(
        portal.calls() >= 1,
        "the role credentials come from the portal"
    );

    // The login expires: check says what to run, and a launch stops before creating anything.
    write_sso_token(
        &user,
        "made-up-sso-access-token",
        SystemTime::now() - Duration::from_secs(60),
    );
    let row = user.check(&vars);
    assert_eq!(row["enabled"], false, "{row}");
    assert!(
        reason(&row).contains("run `aws sso login --profile work`"),
        "{row}"
    );
    let task = user.home.path().join("task.yaml");
    std::fs::write(&task, "resources:\n  cloud: aws\nrun: echo hi\n").expect("task");
    let out = user
        .sky(&vars)
        .args(["launch", "-y", "-c", "sso-expired"])
        .arg(&task)
        .output()
        .expect("run sky");
    assert!(!out.status.success(), "a launch without a login must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("aws sso login --profile work"), "{stderr}");
    let p = provider(user.sky_home.path(), &moto.url());
    assert!(
        live_any(&p).await.is_empty(),
        "nothing may be created without credentials"
    );
}
