//! A small Azure Resource Manager client: JSON calls with an `api-version`, bearer tokens from
//! [`TokenSource`], ARM error bodies mapped to [`ProvisionError`]s, and our own long-running
//! operation polling.
//!
//! The polling is ours because `azure_mgmt_compute`'s is wrong (it re-sends the PUT, reads
//! `provisioning_state` so a Failed VM counts as a success, and sleeps 30 s). We follow
//! `Azure-AsyncOperation` (a status document whose `error.code` we keep) and else `Location`
//! (202 while running, then the final status), honouring `Retry-After`. What this module does not
//! do: know which resources a cluster has (see `launch`), or build the VM model (the SDK's).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sky_core::provision::throttle::{Throttle, Verdict};
use sky_core::provision::{ProvisionError, ProvisionErrorKind};

use crate::auth::TokenSource;
use crate::errors::{self, ArmError};

/// A failed call, and whether it was throttled (with the wait ARM asked for, if any).
struct CallError {
    error: ProvisionError,
    throttled: Option<Option<Duration>>,
}

impl From<ProvisionError> for CallError {
    fn from(error: ProvisionError) -> Self {
        CallError {
            error,
            throttled: None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Poll no slower than this, whatever `Retry-After` says, so a launch notices completion quickly.
const MAX_POLL_GAP: Duration = Duration::from_secs(10);
/// When the service gives no `Retry-After`.
const DEFAULT_POLL_GAP: Duration = Duration::from_secs(2);
/// Give up on one operation after this long (VM creation takes minutes; deletion of a resource
/// group with disks can take ten).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub const API_RESOURCES: &str = "2021-04-01";
pub const API_NETWORK: &str = "2023-09-01";
pub const API_SUBSCRIPTIONS: &str = "2022-12-01";

/// What an ARM call answered (success statuses only; failures are errors).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub poll: Option<Poll>,
    /// `Retry-After`, which operation status answers carry without another `Poll` header.
    pub retry_after: Option<Duration>,
}

/// How to follow a long-running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    AsyncOperation {
        url: String,
        retry_after: Option<Duration>,
    },
    Location {
        url: String,
        retry_after: Option<Duration>,
    },
}

impl Poll {
    /// From a response's headers (`Azure-AsyncOperation` wins over `Location`, as ARM documents).
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> Option<Poll> {
        let retry_after = get("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if let Some(url) = get("azure-asyncoperation") {
            return Some(Poll::AsyncOperation { url, retry_after });
        }
        get("location").map(|url| Poll::Location { url, retry_after })
    }
}

#[derive(Debug, Clone)]
pub struct Arm {
    http: reqwest::Client,
    endpoint: String,
    tokens: Arc<TokenSource>,
}

impl Arm {
    pub fn new(http: reqwest::Client, endpoint: &str, tokens: Arc<TokenSource>) -> Self {
        Arm {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            tokens,
        }
    }

    pub fn subscription_id(&self) -> &str {
        self.tokens.subscription_id()
    }

    /// `/subscriptions/{id}` followed by `rest`.
    pub fn sub_path(&self, rest: &str) -> String {
        format!("/subscriptions/{}{rest}", self.subscription_id())
    }

    /// One call to `path` (relative to the ARM endpoint) or to an absolute URL ARM handed us.
    /// A throttled answer (429) is retried in place, honouring its `Retry-After` within the
    /// bounds of [`Throttle`], for every method but PUT: reads, polls, power actions and deletes
    /// repeat safely, while a throttled create goes to failover at once.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, ProvisionError> {
        let once = || self.call_once(method.clone(), path_or_url, api_version, body, what);
        if method == reqwest::Method::PUT {
            return once().await.map_err(|e| e.error);
        }
        Throttle::default()
            .run(what, once, |e: &CallError| match e.throttled {
                Some(hint) => Verdict::Throttled(hint),
                None => Verdict::Fail,
            })
            .await
            .map_err(|e| e.error)
    }

    async fn call_once(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, CallError> {
        let mut url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.endpoint)
        };
        if let Some(v) = api_version {
            // Our paths never carry a query of their own; ARM's absolute URLs carry theirs.
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("api-version=");
            url.push_str(v);
        }
        let token = self.tokens.token().await.map_err(CallError::from)?;
        let mut req = self.http.request(method, &url).bearer_auth(token.expose());
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::from(errors::transport(what, &e.without_url())))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let poll = Poll::from_headers(header);
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::from(errors::transport(what, &e.without_url())))?;
        if !(200..300).contains(&status) {
            if status == 401 {
                // The next call fetches a fresh token instead of reusing a revoked one.
                self.tokens.forget().await;
            }
            return Err(CallError {
                throttled: errors::is_throttled(Some(status)).then_some(retry_after),
                error: ArmError::from_body(Some(status), &bytes).into_provision(what),
            });
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Answer {
            status,
            body,
            poll,
            retry_after,
        })
    }

    pub async fn get(
        &self,
        path: &str,
        api: &str,
        what: &str,
    ) -> Result<Option<Value>, ProvisionError> {
        match self
            .call(reqwest::Method::GET, path, Some(api), None, what)
            .await
        {
            Ok(a) => Ok(Some(a.body)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT and wait for the resource to be provisioned.
    pub async fn put(
        &self,
        path: &str,
        api: &str,
        body: &Value,
        what: &str,
    ) -> Result<Value, ProvisionError> {
        let answer = self
            .call(reqwest::Method::PUT, path, Some(api), Some(body), what)
            .await?;
        self.finish(answer, what).await
    }

    /// Waits for `answer`'s operation, if it has one; returns the final body.
    pub async fn finish(&self, answer: Answer, what: &str) -> Result<Value, ProvisionError> {
        let Some(poll) = answer.poll else {
            return Ok(answer.body);
        };
        // A 200 with a terminal provisioning state needs no polling even if a header came along.
        if answer.status == 200
            && answer
                .body
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                == Some("Succeeded")
        {
            return Ok(answer.body);
        }
        self.wait(&poll, what).await?;
        Ok(answer.body)
    }

    /// Polls one long-running operation to its end, keeping a failure's error code.
    pub async fn wait(&self, poll: &Poll, what: &str) -> Result<(), ProvisionError> {
        let started = tokio::time::Instant::now();
        let (url, mut gap) = match poll {
            Poll::AsyncOperation { url, retry_after } | Poll::Location { url, retry_after } => {
                (url.clone(), *retry_after)
            }
        };
        loop {
            tokio::time::sleep(gap.unwrap_or(DEFAULT_POLL_GAP).min(MAX_POLL_GAP)).await;
            if started.elapsed() > OPERATION_TIMEOUT {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Transient,
                    format!(
                        "Azure: {what}: still running after {} minutes",
                        OPERATION_TIMEOUT.as_secs() / 60
                    ),
                ));
            }
            // The operation URL already carries its api-version.
            let answer = self
                .call(reqwest::Method::GET, &url, None, None, what)
                .await?;
            match poll {
                Poll::AsyncOperation { .. } => {
                    let status = answer
                        .body
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    match status {
                        "Succeeded" => return Ok(()),
                        "Failed" | "Canceled" => {
                            let err =
                                ArmError::from_value(None, &answer.body).unwrap_or(ArmError {
                                    status: None,
                                    code: status.to_owned(),
                                    message: "the operation ended without an error".into(),
                                });
                            return Err(err.into_provision(what));
                        }
                        _ => {}
                    }
                }
                Poll::Location { .. } => {
                    if answer.status != 202 {
                        return Ok(());
                    }
                }
            }
            gap = answer.retry_after;
        }
    }
}

/// ARM's "no such resource" (the resource, or its resource group).
pub fn is_not_found(e: &ProvisionError) -> bool {
    e.kind == ProvisionErrorKind::InvalidRequest
        && (e.message.contains(": ResourceNotFound:")
            || e.message.contains(": ResourceGroupNotFound:")
            || e.message.contains(": NotFound:")
            || e.message.contains(": Http404:"))
}

/// Whether an `azure_mgmt_compute` failure is throttling (429). The SDK does not expose the
/// answer's headers, so its `Retry-After` is not known and [`Throttle`] backs off on its own.
pub fn sdk_throttle_verdict(e: &azure_core::Error) -> Verdict {
    match e.as_http_error() {
        Some(http) if errors::is_throttled(Some(u16::from(http.status()))) => {
            Verdict::Throttled(None)
        }
        _ => Verdict::Fail,
    }
}

/// Maps an `azure_mgmt_compute` failure: an HTTP error keeps its ARM code and message.
pub fn from_sdk(e: &azure_core::Error, what: &str) -> ProvisionError {
    if let Some(http) = e.as_http_error() {
        let status: u16 = http.status().into();
        return ArmError {
            status: Some(status),
            code: http.error_code().unwrap_or("Unknown").to_owned(),
            message: http.error_message().unwrap_or_default().to_owned(),
        }
        .into_provision(what);
    }
    match e.kind() {
        azure_core::error::ErrorKind::Credential => {
            ProvisionError::new(ProvisionErrorKind::Auth, format!("Azure: {what}: {e}"))
        }
        azure_core::error::ErrorKind::Io => errors::transport(what, e),
        _ => ProvisionError::new(ProvisionErrorKind::Transient, format!("Azure: {what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_operation_header_wins_over_location() {
        let poll = Poll::from_headers(|n| match n {
            "azure-asyncoperation" => Some("https://a/op".into()),
            "location" => Some("https://a/loc".into()),
            "retry-after" => Some("3".into()),
            _ => None,
        });
        assert_eq!(
            poll,
            Some(Poll::AsyncOperation {
                url: "https://a/op".into(),
                retry_after: Some(Duration::from_secs(3))
            })
        );
        let poll = Poll::from_headers(|n| (n == "location").then(|| "https://a/loc".into()));
        assert_eq!(
            poll,
            Some(Poll::Location {
                url: "https://a/loc".into(),
                retry_after: None
            })
        );
        assert_eq!(Poll::from_headers(|_| None), None);
    }
}
