//! Application-default credentials as `gcloud` and Google's libraries find them, for users with
//! no service-account key in the keychain: the file `GOOGLE_APPLICATION_CREDENTIALS` names, else
//! the one `gcloud auth application-default login` writes
//! (`$CLOUDSDK_CONFIG/application_default_credentials.json`, by default under
//! `~/.config/gcloud`). Every kind such a file holds is accepted: `service_account` keys,
//! `authorized_user` logins (a refresh token), `impersonated_service_account` and
//! `external_account` (workload identity federation); `google-cloud-auth` exchanges and refreshes
//! the tokens. The project comes from `CLOUDSDK_CORE_PROJECT`, `GOOGLE_CLOUD_PROJECT`, the key's
//! own `project_id`, gcloud's active configuration, or the login's `quota_project_id`, in that
//! order.
//!
//! What this module does not do: ask the metadata server (Sky running on a GCE VM is not
//! supported yet), or write anything: the files stay gcloud's.

use std::path::PathBuf;

use sky_core::credentials::Secret;

/// The `type` of an application-default credentials file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdcKind {
    ServiceAccount,
    AuthorizedUser,
    Impersonated,
    ExternalAccount,
}

impl AdcKind {
    fn of(kind: &str) -> Option<AdcKind> {
        Some(match kind {
            "service_account" => AdcKind::ServiceAccount,
            "authorized_user" => AdcKind::AuthorizedUser,
            "impersonated_service_account" => AdcKind::Impersonated,
            "external_account" => AdcKind::ExternalAccount,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            AdcKind::ServiceAccount => "service-account key",
            AdcKind::AuthorizedUser => "gcloud user login",
            AdcKind::Impersonated => "impersonated service account",
            AdcKind::ExternalAccount => "workload identity federation",
        }
    }

    /// What to run when these credentials stop working.
    pub fn renew_hint(self) -> &'static str {
        match self {
            AdcKind::ServiceAccount => {
                "check that the service-account key is still enabled in IAM, or make a new one"
            }
            AdcKind::AuthorizedUser | AdcKind::Impersonated => {
                "run `gcloud auth application-default login` again"
            }
            AdcKind::ExternalAccount => "check the identity provider's subject token",
        }
    }
}

/// An application-default credentials file that applies.
#[derive(Debug, Clone)]
pub struct Adc {
    pub json: Secret,
    pub kind: AdcKind,
    pub project: String,
    /// `GOOGLE_APPLICATION_CREDENTIALS (path)`, `gcloud application-default login (path)`.
    pub from: String,
}

/// The file to read and how to name it, or `None` when there is none.
pub fn locate() -> Option<(PathBuf, &'static str)> {
    if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some((PathBuf::from(path), "GOOGLE_APPLICATION_CREDENTIALS"));
    }
    let well_known = gcloud_dir().join("application_default_credentials.json");
    well_known
        .is_file()
        .then_some((well_known, "gcloud application-default login"))
}

/// Reads and classifies `path`; errors name the file and the field, never a value.
pub fn read(path: &std::path::Path, named_by: &str) -> Result<Adc, String> {
    let where_ = format!("{named_by} ({})", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{where_} cannot be read ({})", e.kind()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{where_} is not JSON (problem at line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    let kind_name = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let kind = AdcKind::of(kind_name).ok_or_else(|| {
        format!(
            "{where_}: type '{kind_name}' is not one Sky can use (allowed: service_account, \
             authorized_user, impersonated_service_account, external_account)"
        )
    })?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|s| s.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let project = project(field("project_id"), field("quota_project_id")).ok_or_else(|| {
        format!(
            "{where_} names no project, and neither CLOUDSDK_CORE_PROJECT, GOOGLE_CLOUD_PROJECT \
             nor gcloud's configuration does: run `gcloud config set project PROJECT_ID`"
        )
    })?;
    Ok(Adc {
        json: Secret::new(text),
        kind,
        project,
        from: format!("{where_}, {}", kind.describe()),
    })
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn gcloud_dir() -> PathBuf {
    var("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_default()).join(".config/gcloud"))
}

fn project(key_project: Option<String>, quota_project: Option<String>) -> Option<String> {
    var("CLOUDSDK_CORE_PROJECT")
        .or_else(|| var("GOOGLE_CLOUD_PROJECT"))
        .or(key_project)
        .or_else(gcloud_project)
        .or(quota_project)
}

/// `[core] project` of gcloud's active configuration (`active_config`, else `default`).
fn gcloud_project() -> Option<String> {
    let dir = gcloud_dir();
    let active = var("CLOUDSDK_ACTIVE_CONFIG_NAME")
        .or_else(|| {
            std::fs::read_to_string(dir.join("active_config"))
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let text = std::fs::read_to_string(dir.join("configurations").join(format!("config_{active}")))
        .ok()?;
    ini_value(&text, "core", "project")
}

/// One value of a gcloud properties file (INI: `[section]`, `key = value`).
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcloud_properties_are_read_by_section() {
        let text =
            "[compute]\nproject = wrong\n[core]\naccount = me@example.com\nproject = my-proj\n";
        assert_eq!(
            ini_value(text, "core", "project").as_deref(),
            Some("my-proj")
        );
        assert_eq!(ini_value(text, "core", "zone"), None);
        assert_eq!(ini_value("[core]\nproject =\n", "core", "project"), None);
    }

    #[test]
    fn every_kind_gcloud_writes_is_classified_and_others_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("adc.json");
        std::fs::write(
            &path,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r","quota_project_id":"q-proj"}"#,
        )
        .expect("write");
        // The project may also come from the environment of whoever runs the test.
        if var("CLOUDSDK_CORE_PROJECT").is_none() && var("GOOGLE_CLOUD_PROJECT").is_none() {
            let adc = read(&path, "GOOGLE_APPLICATION_CREDENTIALS").expect("read");
            assert_eq!(adc.kind, AdcKind::AuthorizedUser);
            assert!(adc.from.ends_with("gcloud user login"), "{}", adc.from);
            assert!(
                !format!("{adc:?}").contains("\"r\""),
                "the refresh token is a secret"
            );
        }
        std::fs::write(&path, r#"{"type":"gdch_service_account"}"#).expect("write");
        let err = read(&path, "GOOGLE_APPLICATION_CREDENTIALS").expect_err("unsupported");
        assert!(err.contains("type 'gdch_service_account'"), "{err}");
        assert!(err.contains("authorized_user"), "{err}");
        std::fs::write(&path, "{\n  nope").expect("write");
        let err = read(&path, "X").expect_err("not json");
        assert!(err.contains("line 2"), "{err}");
    }
}
