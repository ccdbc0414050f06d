use std::collections::HashMap;

use super::*;

const SA_JSON: &str = r#"{"type":"service_account","project_id":"proj-1","client_email":"sky@proj-1.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nTOPSECRETKEY\n-----END PRIVATE KEY-----\n"}"#;

fn aws() -> CloudCredentials {
    CloudCredentials::Aws(AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
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
    let broken = SA_JSON.replace("\"type\"", "type");
    let msg = gcp_from_json(&broken, None)
        .expect_err("broken json")
        .to_string();
    assert!(
        !msg.contains("TOPSECRETKEY") && !msg.contains("service_account\""),
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
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
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
    for creds in [aws(), azure(), gcp_from_json(SA_JSON, None).expect("sa")] {
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
    std::fs::write(
        dir.path().join(".aws/credentials"),
        "# comment\n[default]\naws_access_key_id = AKIADEFAULT000000000\naws_secret_access_key = d\n\n\
         [work]\nAWS_ACCESS_KEY_ID=AKIAWORK0000000000000\naws_secret_access_key=w\n",
    )
    .expect("write");
    let CloudCredentials::Aws(c) = import_aws(&env(dir.path(), &[])).expect("default") else {
        panic!("not aws")
    };
    assert_eq!(c.access_key_id, "AKIADEFAULT000000000");
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
    std::fs::write(gcloud.join("application_default_credentials.json"), SA_JSON).expect("write");
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
    assert_eq!(aws().summary(), "access key …MPLE");
    assert!(!azure().summary().contains("TOPSECRET"));
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
