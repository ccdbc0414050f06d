//! Credentials the way the AWS CLI finds them, for users with no keys in the keychain or the
//! environment: the shared config files' profile (SSO, `role_arn` with `source_profile` or
//! `credential_source`, `credential_process`, `web_identity_token_file`, or static keys), web
//! identity from the environment (EKS, CI systems), and the container and instance metadata
//! endpoints when Sky itself runs on AWS.
//!
//! `aws-config` resolves and refreshes every one of these; this module only decides which one
//! applies and describes it without touching the network, so that `sky check`, `sky status` and
//! the optimizer stay instant, and an expired SSO login is reported as "run `aws sso login`"
//! before anything is spent rather than as an auth failure in the middle of a launch.
//!
//! What this module does not do: store anything (the CLI's own files stay the CLI's), or consult
//! the instance metadata service on a machine that is not an EC2 instance (on a laptop that would
//! cost a timeout on every command, and in tests it would dial an address that is not ours).

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::SystemTime;

use aws_config::profile::{Profile, ProfileFileCredentialsProvider, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
use aws_types::os_shim_internal::{Env, Fs};
use sha1::{Digest, Sha1};

/// A source found by [`find`]: the provider that resolves (and refreshes) its credentials, and
/// what to tell the user about it.
#[derive(Debug)]
pub struct Chained {
    pub provider: SharedCredentialsProvider,
    /// `profile "work" (AWS SSO)`, `web identity (role arn:…)`, …
    pub from: String,
    /// Set for SSO profiles: the login whose cached token decides whether calls can succeed.
    pub sso: Option<SsoLogin>,
}

/// An AWS SSO (IAM Identity Center) login as the AWS CLI caches it.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoLogin {
    pub profile: String,
    /// The token cache file: `~/.aws/sso/cache/<sha1 of the session name or start URL>.json`.
    pub cache: PathBuf,
}

/// What the cached SSO token allows right now.
#[derive(Debug, Clone, PartialEq)]
pub enum SsoState {
    /// Valid until then; refreshed by `aws-config` itself when it holds a refresh token.
    Valid {
        until: SystemTime,
        refreshable: bool,
    },
    /// Expired (or never logged in) and not refreshable: the user must log in again.
    LoggedOut(String),
}

impl SsoLogin {
    pub fn login_command(&self) -> String {
        format!("aws sso login --profile {}", self.profile)
    }

    /// Reads the cached token (a local file; no network).
    pub fn state(&self, now: SystemTime) -> SsoState {
        let text = match std::fs::read(&self.cache) {
            Ok(t) => t,
            Err(_) => {
                return SsoState::LoggedOut(format!(
                    "the AWS SSO login of profile \"{}\" is not cached here (no {}): run `{}`",
                    self.profile,
                    self.cache.display(),
                    self.login_command()
                ));
            }
        };
        let token: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        let time = |key: &str| {
            token
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::from_str(s, DateTimeFormat::DateTime).ok())
                .and_then(|t| SystemTime::try_from(t).ok())
        };
        let Some(until) = time("expiresAt") else {
            return SsoState::LoggedOut(format!(
                "the cached AWS SSO token of profile \"{}\" ({}) has no expiresAt: run `{}`",
                self.profile,
                self.cache.display(),
                self.login_command()
            ));
        };
        // aws-config refreshes a token that carries a refresh token and a client registration
        // that has not expired itself; anything else needs a new login once it expires.
        let refreshable = token.get("refreshToken").is_some()
            && token.get("clientId").is_some()
            && time("registrationExpiresAt").is_some_and(|r| r > now);
        if until <= now && !refreshable {
            return SsoState::LoggedOut(format!(
                "the AWS SSO session of profile \"{}\" expired at {}: run `{}`",
                self.profile,
                DateTime::from(until)
                    .fmt(DateTimeFormat::DateTime)
                    .unwrap_or_default(),
                self.login_command()
            ));
        }
        SsoState::Valid { until, refreshable }
    }
}

/// Where to look: the profile `aws.profile` names, else `AWS_PROFILE`, else `default`.
pub fn find(profile_override: Option<&str>) -> Result<Option<Chained>, String> {
    let env = Env::real();
    let named = profile_override
        .map(str::to_owned)
        .or_else(|| var("AWS_PROFILE"));
    let profile_name = named.clone().unwrap_or_else(|| "default".to_owned());
    let profiles = load_profiles(&env, &profile_name)?;
    // STS needs a region to sign with: the profile's, else the environment's, else the one
    // Sky asks first, as the AWS CLI falls back to the global endpoint's region.
    let region = profiles
        .get_profile(&profile_name)
        .and_then(|p| p.get("region"))
        .map(str::to_owned)
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| crate::HOME_REGION.to_owned());
    let base = ProviderConfig::default().with_region(Some(aws_types::region::Region::new(region)));
    if let Some(profile) = profiles.get_profile(&profile_name) {
        match describe(&profiles, profile)? {
            Some((kind, sso)) => {
                let provider = ProfileFileCredentialsProvider::builder()
                    .configure(&base)
                    .profile_name(&profile_name)
                    .build();
                return Ok(Some(Chained {
                    provider: SharedCredentialsProvider::new(provider),
                    from: format!("AWS profile \"{profile_name}\" ({kind})"),
                    sso,
                }));
            }
            None if named.is_some() => {
                return Err(format!(
                    "AWS profile \"{profile_name}\" holds no credentials (no sso_session, \
                     role_arn, credential_process or aws_access_key_id)"
                ));
            }
            // The implicit `default` profile often holds only a region (on EC2, in a pod):
            // the sources after it apply, as for the AWS CLI.
            None => {}
        }
    } else if let Some(name) = named {
        let how = if profile_override.is_some() {
            "aws.profile in config.yaml"
        } else {
            "AWS_PROFILE"
        };
        return Err(format!(
            "{how} names profile \"{name}\", which is in neither {} nor {}",
            config_file().display(),
            credentials_file().display()
        ));
    }
    if let (Some(_), Some(role)) = (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN")) {
        let provider =
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(&base)
                .build();
        return Ok(Some(Chained {
            provider: SharedCredentialsProvider::new(provider),
            from: format!("web identity token (role {role})"),
            sso: None,
        }));
    }
    if var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        let provider = aws_config::ecs::EcsCredentialsProvider::builder()
            .configure(&base)
            .build();
        return Ok(Some(Chained {
            provider: SharedCredentialsProvider::new(provider),
            from: "the container's credentials endpoint (ECS or EKS Pod Identity)".to_owned(),
            sso: None,
        }));
    }
    if instance_metadata_applies() {
        let provider = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .configure(&base)
            .build();
        return Ok(Some(Chained {
            provider: SharedCredentialsProvider::new(provider),
            from: "this EC2 instance's role (instance metadata)".to_owned(),
            sso: None,
        }));
    }
    Ok(None)
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> PathBuf {
    var("HOME").map(PathBuf::from).unwrap_or_default()
}

fn config_file() -> PathBuf {
    var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".aws/config"))
}

fn credentials_file() -> PathBuf {
    var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".aws/credentials"))
}

/// Parses `~/.aws/config` and `~/.aws/credentials` (or the files the environment names) with the
/// SDK's own parser. Missing files are an empty set; a malformed one is an error naming it.
fn load_profiles(env: &Env, selected: &str) -> Result<ProfileSet, String> {
    // `load` is async in signature only: the real file system is read synchronously.
    futures::executor::block_on(aws_config::profile::load(
        &Fs::real(),
        env,
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        Some(Cow::Owned(selected.to_owned())),
    ))
    .map_err(|e| format!("the AWS config files cannot be read: {e}"))
}

/// What kind of source a profile is, checked as far as can be without the network; `None`
/// when it holds no credentials at all (only settings such as `region`).
fn describe(
    profiles: &ProfileSet,
    profile: &Profile,
) -> Result<Option<(String, Option<SsoLogin>)>, String> {
    let name = profile.name().to_owned();
    if let Some(role) = profile.get("role_arn") {
        let via = if let Some(source) = profile.get("source_profile") {
            format!("from profile \"{source}\"")
        } else if let Some(source) = profile.get("credential_source") {
            format!("with credential_source {source}")
        } else if profile.get("web_identity_token_file").is_some() {
            "with a web identity token".to_owned()
        } else {
            return Err(format!(
                "AWS profile \"{name}\" sets role_arn but none of source_profile, \
                 credential_source or web_identity_token_file, so there is nothing to assume \
                 the role with"
            ));
        };
        // The SSO login the role is assumed from is what expires first.
        let sso = match profile.get("source_profile") {
            Some(source) if source != name => profiles
                .get_profile(source)
                .and_then(|p| sso_login(profiles, p, &name)),
            _ => None,
        };
        return Ok(Some((format!("assumes role {role} {via}"), sso)));
    }
    if let Some(sso) = sso_login(profiles, profile, &name) {
        let account = profile.get("sso_account_id").unwrap_or("?");
        let role = profile.get("sso_role_name").unwrap_or("?");
        return Ok(Some((
            format!("AWS SSO, account {account}, role {role}"),
            Some(sso),
        )));
    }
    if profile.get("credential_process").is_some() {
        return Ok(Some(("credential_process".to_owned(), None)));
    }
    if profile.get("aws_access_key_id").is_some() {
        let tail = profile
            .get("aws_access_key_id")
            .map(sky_core::credentials::key_id_tail)
            .unwrap_or_default();
        return Ok(Some((format!("access key …{tail}"), None)));
    }
    Ok(None)
}

/// The SSO login a profile signs in with, if it is an SSO profile. `login_profile` is the profile
/// the user names in `aws sso login --profile` (the role profile, for a chained one).
fn sso_login(profiles: &ProfileSet, profile: &Profile, login_profile: &str) -> Option<SsoLogin> {
    // With an `sso-session` section the token is cached under the session's name; the legacy
    // form caches it under the start URL (as `aws-config` and the CLI both do).
    let key = match profile.get("sso_session") {
        Some(session) if profiles.sso_session(session).is_some() => session.to_owned(),
        Some(session) => session.to_owned(),
        None => profile.get("sso_start_url")?.to_owned(),
    };
    let digest = Sha1::digest(key.as_bytes());
    Some(SsoLogin {
        profile: login_profile.to_owned(),
        cache: home()
            .join(".aws/sso/cache")
            .join(format!("{}.json", hex::encode(digest))),
    })
}

/// Whether the instance metadata service is worth asking: an endpoint is named explicitly, or
/// this machine says it is an EC2 instance. `AWS_EC2_METADATA_DISABLED=true` turns it off, as
/// for every AWS SDK.
fn instance_metadata_applies() -> bool {
    if var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    if var("AWS_EC2_METADATA_SERVICE_ENDPOINT").is_some() {
        return true;
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    // Nitro instances name their vendor in DMI; Xen ones carry an `ec2` hypervisor UUID.
    read("/sys/devices/virtual/dmi/id/sys_vendor").trim() == "Amazon EC2"
        || read("/sys/devices/virtual/dmi/id/board_asset_tag")
            .trim()
            .starts_with("i-")
        || read("/sys/hypervisor/uuid").starts_with("ec2")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn login(dir: &std::path::Path, token: &str) -> SsoLogin {
        let cache = dir.join("token.json");
        std::fs::write(&cache, token).expect("write token");
        SsoLogin {
            profile: "work".into(),
            cache,
        }
    }

    #[test]
    fn an_expired_token_without_refresh_says_what_to_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = login(
            dir.path(),
            r#"{"accessToken":"t","expiresAt":"2020-01-01T00:00:00Z"}"#,
        );
        match l.state(SystemTime::now()) {
            SsoState::LoggedOut(why) => {
                assert!(why.contains("expired at 2020-01-01T00:00:00Z"), "{why}");
                assert!(why.contains("aws sso login --profile work"), "{why}");
                assert!(
                    !why.contains("\"t\""),
                    "the token must never be shown: {why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refreshable_token_stays_usable_after_it_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = login(
            dir.path(),
            r#"{"accessToken":"t","expiresAt":"2020-01-01T00:00:00Z","refreshToken":"r",
               "clientId":"c","clientSecret":"s","registrationExpiresAt":"2999-01-01T00:00:00Z"}"#,
        );
        assert!(matches!(
            l.state(SystemTime::now()),
            SsoState::Valid {
                refreshable: true,
                ..
            }
        ));
        let valid = login(
            dir.path(),
            r#"{"accessToken":"t","expiresAt":"2999-01-01T00:00:00Z"}"#,
        );
        match valid.state(SystemTime::now()) {
            SsoState::Valid { until, refreshable } => {
                assert!(!refreshable);
                assert!(until > SystemTime::now() + Duration::from_secs(3600));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_cached_login_is_logged_out() {
        let l = SsoLogin {
            profile: "work".into(),
            cache: PathBuf::from("/nonexistent/sky-test/token.json"),
        };
        assert!(matches!(l.state(SystemTime::now()), SsoState::LoggedOut(_)));
    }

    #[test]
    fn the_cache_file_is_named_as_the_cli_names_it() {
        // The CLI caches `sso-session my-sso`'s token under the SHA-1 of the session name.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[profile work]\nsso_session = my-sso\nsso_account_id = 111122223333\n\
             sso_role_name = Dev\n[sso-session my-sso]\nsso_start_url = https://x.awsapps.com/start\n\
             sso_region = us-east-1\n",
        )
        .expect("write config");
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", config.to_str().expect("utf-8")),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ]);
        let profiles = load_profiles(&env, "work").expect("parse");
        let profile = profiles.get_profile("work").expect("profile");
        let (kind, sso) = describe(&profiles, profile)
            .expect("describe")
            .expect("credentials");
        assert_eq!(kind, "AWS SSO, account 111122223333, role Dev");
        let sso = sso.expect("an SSO login");
        // `printf my-sso | sha1sum`
        assert!(
            sso.cache
                .ends_with(".aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json"),
            "{}",
            sso.cache.display()
        );
    }

    #[test]
    fn a_role_without_a_source_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::write(&config, "[profile r]\nrole_arn = arn:aws:iam::1:role/x\n").expect("write");
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", config.to_str().expect("utf-8")),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ]);
        let profiles = load_profiles(&env, "r").expect("parse");
        let err = describe(&profiles, profiles.get_profile("r").expect("profile"))
            .expect_err("no source");
        assert!(err.contains("source_profile"), "{err}");
    }
}
