use std::collections::HashMap;

use super::*;

/// Credential-shaped values made up at test time, so no key-like string is committed.
fn made_up(prefix: &str, len: usize) -> String {
    use std::hash::{BuildHasher, RandomState};
    let mut out = prefix.to_owned();
    let state = RandomState::new();
    let mut n = 0u64;
    while out.len() < len {
        let digit = state.hash_one(n) % 36;
        out.push(
            char::from_digit(digit as u32, 36)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        n += 1;
    }
    out
}

fn key_id() -> String {
    made_up("AKIA", 20)
}

/// The access key id of [`aws`], the same for the whole test run.
fn aws_key_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(key_id)
}

/// The secret of [`aws`], the same for the whole test run.
fn aws_secret() -> &'static str {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| made_up("secret/", 40))
}

/// The private key's body, which no error message may echo.
fn sa_key_body() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| made_up("KEYBODY", 40))
}

fn sa_json() -> String {
    let begin = concat!("-----BEGIN ", "PRIVATE KEY-----");
    let end = concat!("-----END ", "PRIVATE KEY-----");
    format!(
        r#"{{"type":"service_account","project_id":"proj-1","client_email":"sky@proj-1.iam.gserviceaccount.com","private_key":"{begin}\n{}\n{end}\n"}}"#,
        sa_key_body()
    )
}

fn aws() -> CloudCredentials {
    CloudCredentials::Aws(AwsCredentials {
        access_key_id: aws_key_id().into(),
        secret_access_key: Secret::new(aws_secret()),
        session_token: None,
    })
}

fn azure() -> CloudCredentials {
    CloudCredentials::Azure(AzureCredentials {
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        client_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        client_secret: Secret::new("azure-TOPSECRET"),
        subscription_id: "99999999-8888-7777-6666-555555555555".into(),
    })
}

fn mock_store() -> CredentialStore {
    CredentialStore::with_store(
        keyring_core::mock::Store::new().expect("mock store"),
        "mock",
    )
}

fn env(home: &std::path::Path, vars: &[(&str, &str)]) -> ImportEnv {
    ImportEnv {
        home: home.to_owned(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    }
}

#[test]
fn secrets_are_redacted_in_debug_and_errors() {
    let creds = aws();
    let debug = format!("{creds:?}");
    assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
    assert!(debug.contains("<redacted>"));

    let bad = CloudCredentials::Aws(AwsCredentials {
        access_key_id: "short".into(),
        secret_access_key: Secret::new("has a space SECRET"),
        session_token: None,
    });
    let msg = bad.validate().expect_err("short id is invalid").to_string();
    assert!(msg.contains("aws.access_key_id"), "{msg}");
    assert!(!msg.contains("short") && !msg.contains("SECRET"), "{msg}");
}

#[test]
fn validation_names_the_field() {
    let mut az = azure();
    if let CloudCredentials::Azure(a) = &mut az {
        a.subscription_id = "not-a-guid".into();
    }
    let err = az.validate().expect_err("bad guid");
    assert_eq!(err.code(), ErrorCode::InvalidConfig);
    assert!(
        err.to_string()
            .starts_with("invalid azure.subscription_id: must be a GUID"),
        "{err}"
    );

    let gcp = gcp_from_json(
        r#"{"type":"authorized_user","client_email":"x"}"#,
        Some("p"),
    );
    let msg = gcp.expect_err("user ADC is refused").to_string();
    assert!(
        msg.contains("type 'authorized_user', allowed: service_account"),
        "{msg}"
    );
}

#[test]
fn gcp_parse_error_does_not_echo_the_key() {
    let broken = sa_json().replace("\"type\"", "type");
    let msg = gcp_from_json(&broken, None)
        .expect_err("broken json")
        .to_string();
    assert!(
        !msg.contains(sa_key_body()) && !msg.contains("service_account\""),
        "{msg}"
    );
    assert!(msg.contains("line 1 column"), "{msg}");
}

#[test]
fn store_round_trip_and_delete() {
    let store = mock_store();
    assert_eq!(store.load(CloudId::Aws).expect("load"), None);
    assert!(!store.delete(CloudId::Aws).expect("delete absent"));
    store.save(&aws()).expect("save");
    assert_eq!(store.load(CloudId::Aws).expect("load"), Some(aws()));
    assert_eq!(store.load(CloudId::Gcp).expect("other cloud"), None);
    assert!(store.delete(CloudId::Aws).expect("delete"));
    assert_eq!(store.load(CloudId::Aws).expect("load after delete"), None);
    let err = store
        .entry(CloudId::Local)
        .expect_err("local has no credentials");
    assert_eq!(err.to_string(), "Local needs no credentials");
}

#[test]
fn invalid_credentials_are_not_stored() {
    let store = mock_store();
    let bad = CloudCredentials::Aws(AwsCredentials {
        access_key_id: aws_key_id().into(),
        secret_access_key: Secret::new(" "),
        session_token: None,
    });
    let err = store.save(&bad).expect_err("empty secret");
    assert_eq!(
        err.to_string(),
        "invalid aws.secret_access_key: is required"
    );
    assert_eq!(store.load(CloudId::Aws).expect("load"), None);
}

#[test]
fn stored_document_round_trips_through_json() {
    for creds in [aws(), azure(), gcp_from_json(&sa_json(), None).expect("sa")] {
        let doc = serde_json::to_string(&creds).expect("encode");
        let back: CloudCredentials = serde_json::from_str(&doc).expect("decode");
        assert_eq!(back, creds);
    }
}

#[test]
fn aws_import_prefers_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = env(
        dir.path(),
        &[
            ("AWS_ACCESS_KEY_ID", "ASIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "tok"),
        ],
    );
    let CloudCredentials::Aws(c) = import_aws(&e).expect("env import") else {
        panic!("not aws")
    };
    assert_eq!(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
    assert_eq!(c.secret_access_key.expose(), "envsecret");
    assert_eq!(c.session_token.as_ref().map(Secret::expose), Some("tok"));
}

#[test]
fn aws_import_reads_profile_from_credentials_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".aws")).expect("mkdir");
    let (default_id, work_id) = (key_id(), key_id());
    std::fs::write(
        dir.path().join(".aws/credentials"),
        format!(
            "# comment\n[default]\naws_access_key_id = {default_id}\naws_secret_access_key = d\n\n\
             [work]\nAWS_ACCESS_KEY_ID={work_id}\naws_secret_access_key=w\n"
        ),
    )
    .expect("write");
    let CloudCredentials::Aws(c) = import_aws(&env(dir.path(), &[])).expect("default") else {
        panic!("not aws")
    };
    assert_eq!(c.access_key_id, default_id);
    let CloudCredentials::Aws(c) =
        import_aws(&env(dir.path(), &[("AWS_PROFILE", "work")])).expect("work")
    else {
        panic!("not aws")
    };
    assert_eq!(c.secret_access_key.expose(), "w");

    let err = import_aws(&env(dir.path(), &[("AWS_PROFILE", "nope")])).expect_err("absent");
    assert_eq!(err.code(), ErrorCode::CredentialsMissing);
    assert!(err.to_string().contains("profile [nope]"), "{err}");
}

#[test]
fn aws_import_without_file_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = import_aws(&env(dir.path(), &[])).expect_err("no file");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot read ") && msg.contains(".aws/credentials"),
        "{msg}"
    );
}

#[test]
fn gcp_import_from_adc_file_and_project_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gcloud = dir.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).expect("mkdir");
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        sa_json(),
    )
    .expect("write");
    let CloudCredentials::Gcp(c) = import_gcp(&env(dir.path(), &[]), None).expect("adc") else {
        panic!("not gcp")
    };
    assert_eq!(c.project_id, "proj-1");
    let CloudCredentials::Gcp(c) =
        import_gcp(&env(dir.path(), &[]), Some("other")).expect("override")
    else {
        panic!("not gcp")
    };
    assert_eq!(c.project_id, "other");
    let creds = CloudCredentials::Gcp(c);
    assert_eq!(
        creds.summary(),
        "sky@proj-1.iam.gserviceaccount.com in project other"
    );
}

#[test]
fn azure_import_accepts_both_sp_formats() {
    let rbac = r#"{"appId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","displayName":"sky",
        "password":"azure-TOPSECRET","tenant":"11111111-2222-3333-4444-555555555555"}"#;
    let err = azure_from_sp_json(rbac, None).expect_err("needs subscription");
    assert!(
        err.to_string()
            .starts_with("invalid azure.subscription_id: is missing"),
        "{err}"
    );
    let c = azure_from_sp_json(rbac, Some("99999999-8888-7777-6666-555555555555")).expect("rbac");
    assert_eq!(c, azure());

    let sdk = r#"{"clientId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","clientSecret":"azure-TOPSECRET",
        "subscriptionId":"99999999-8888-7777-6666-555555555555","tenantId":"11111111-2222-3333-4444-555555555555"}"#;
    assert_eq!(azure_from_sp_json(sdk, None).expect("sdk-auth"), azure());
}

#[test]
fn summary_shows_no_secret() {
    assert_eq!(
        aws().summary(),
        format!("access key …{}", &aws_key_id()[16..])
    );
    assert!(!azure().summary().contains("TOPSECRET"));
}

/// Key ids come from the environment and files as typed: a non-ASCII character near the end used
/// to land inside a byte slice and panic.
#[test]
fn key_id_tail_counts_characters_not_bytes() {
    assert_eq!(key_id_tail(" AKIAÉXAMPLEÜÖÄ€ "), "ÜÖÄ€");
    assert_eq!(key_id_tail("ÄÖ"), "ÄÖ");
    assert_eq!(key_id_tail(""), "");
    assert_eq!(key_id_tail("AKIA1234"), "1234");
    let mut c = aws();
    if let CloudCredentials::Aws(a) = &mut c {
        a.access_key_id = "AKIA€€€€€".to_owned();
    }
    assert_eq!(c.summary(), "access key …€€€€");
}

/// Round trip through a real Secret Service. Run by `tests/e2e/run.sh` inside `dbus-run-session`
/// with an unlocked gnome-keyring; skipped (and says so) when `SKY_TEST_SECRET_SERVICE` is unset,
/// because a developer's own keyring must not be written by `cargo test`.
#[cfg(target_os = "linux")]
#[test]
#[expect(
    clippy::print_stderr,
    reason = "a skipped test says why it did nothing"
)]
fn secret_service_round_trip() {
    if std::env::var_os("SKY_TEST_SECRET_SERVICE").is_none() {
        eprintln!("skipped: set SKY_TEST_SECRET_SERVICE=1 inside a throwaway dbus session");
        return;
    }
    let store = CredentialStore::open_platform().expect("open keychain");
    assert_eq!(store.backend(), "secret-service");
    let _ = store.delete(CloudId::Azure);
    store.save(&azure()).expect("save");
    assert_eq!(store.load(CloudId::Azure).expect("load"), Some(azure()));
    assert!(store.delete(CloudId::Azure).expect("delete"));
    assert_eq!(store.load(CloudId::Azure).expect("load after delete"), None);
}
