//! The HTTP side of the fake ARM: request decoding, routing by path, the client-credentials token
//! endpoint and ARM's error body. Resource semantics live in `resources`, operations in `ops`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::ops::{poll_async, poll_location};
use super::resources::{group, resource};
use super::{CLIENT, SUBSCRIPTION, State, TENANT};
pub(super) type Resp = Response<Full<Bytes>>;

pub(super) fn reply(status: u16, body: &Value, headers: &[(&str, String)]) -> Resp {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json; charset=utf-8");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    b.body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub(super) fn arm_error(status: u16, code: &str, message: &str) -> Resp {
    reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[("x-ms-error-code", code.to_owned())],
    )
}

/// An ARM error naming the request property it is about, as ARM's validation errors do.
pub(super) fn arm_error_at(status: u16, code: &str, message: &str, target: &str) -> Resp {
    reply(
        status,
        &json!({"error": {"code": code, "message": message, "target": target}}),
        &[("x-ms-error-code", code.to_owned())],
    )
}

pub(super) fn fault_message(code: &str) -> String {
    match code {
        "SkuNotAvailable" => "The requested VM size is currently not available in this location. Please try another size or deploy to a different location or zones.".into(),
        "AllocationFailed" => "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.".into(),
        "ZonalAllocationFailed" => "Allocation failed. We do not have sufficient capacity for the requested VM size in this zone.".into(),
        "OverconstrainedAllocationRequest" => "Allocation failed. VM(s) with the following constraints cannot be allocated, because the condition is too restrictive.".into(),
        "QuotaExceeded" | "OperationNotAllowed" => "Operation could not be completed as it results in exceeding approved Total Regional Cores quota.".into(),
        "AuthorizationFailed" => format!("The client '{CLIENT}' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/write'."),
        other => format!("{other} (injected)"),
    }
}

pub(super) async fn handle(
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let metadata = req
        .headers()
        .get("metadata")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let peer = req.extensions().get::<crate::Peer>().map(|p| p.0);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.log.push(format!("{method} {path}"));
    let base = format!("http://{addr}");
    if path.starts_with("/metadata/") && method == Method::GET {
        return Ok(super::identity::imds(&mut s, &path, &query, metadata, peer));
    }
    Ok(route(
        &mut s,
        &base,
        &method,
        &path,
        &query,
        auth.as_deref(),
        &body,
    ))
}

pub(super) fn route(
    s: &mut State,
    base: &str,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    auth: Option<&str>,
    body: &[u8],
) -> Resp {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The identity platform: POST /{tenant}/oauth2/v2.0/token
    if seg.len() == 4 && seg[1] == "oauth2" && seg[3] == "token" && method == Method::POST {
        return token(s, seg[0], body);
    }
    let Some(token) = auth.and_then(|a| a.strip_prefix("Bearer ")) else {
        return arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
    };
    let identity = s.identity_tokens.get(token).cloned();
    if s.reject_tokens || !(identity.is_some() || s.tokens.iter().any(|t| t == token)) {
        return arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    }
    if let Some(left) = s.throttle.get_mut(method.as_str()).filter(|n| **n > 0) {
        *left -= 1;
        s.throttled += 1;
        return reply(
            429,
            &json!({"error": {
                "code": "OperationNotAllowed",
                "message": "The server rejected the request because too many requests have been received for this subscription.",
                "details": [{
                    "code": "TooManyRequests",
                    "target": "PutVM3Min",
                    "message": "{\"operationGroup\":\"PutVM3Min\",\"startTime\":\"2026-12-02T10:00:00+00:00\",\"endTime\":\"2026-12-02T10:03:00+00:00\",\"allowedRequestCount\":740,\"measuredRequestCount\":1510}"
                }]
            }}),
            &[
                ("retry-after", s.throttle_retry_after.to_string()),
                ("x-ms-error-code", "OperationNotAllowed".to_owned()),
            ],
        );
    }
    let Some(api) = query.get("api-version") else {
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    if seg.len() < 2 || !seg[0].eq_ignore_ascii_case("subscriptions") {
        return arm_error(404, "NotFound", "no such route");
    }
    if seg[1] != SUBSCRIPTION {
        return arm_error(
            404,
            "SubscriptionNotFound",
            &format!("The subscription '{}' could not be found.", seg[1]),
        );
    }
    let lower: Vec<String> = seg.iter().map(|x| x.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if let Some(principal) = &identity
        && let Some(refused) = super::identity::authorize(s, principal, method, path, &l)
    {
        return refused;
    }
    match l.as_slice() {
        [_, _, "providers", "microsoft.authorization", "permissions"] if method == Method::GET => {
            super::identity::permissions(s)
        }
        [
            _,
            _,
            "resourcegroups",
            rg,
            "providers",
            "microsoft.authorization",
            "roleassignments",
            _,
        ] => {
            if !s.groups.contains_key(*rg) {
                return arm_error(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{}' could not be found.", seg[3]),
                );
            }
            super::identity::role_assignment(s, method, &seg, api, body)
        }
        [_, _] if method == Method::GET => reply(
            200,
            &json!({
            "id": format!("/subscriptions/{SUBSCRIPTION}"), "subscriptionId": SUBSCRIPTION,
            "displayName": "Fake subscription", "state": "Enabled"}),
            &[],
        ),
        [_, _, "resourcegroups"] if method == Method::GET => reply(
            200,
            &json!({"value": s.groups.values().cloned().collect::<Vec<_>>()}),
            &[],
        ),
        [_, _, "resourcegroups", rg] => group(s, base, method, seg[3], rg, api, body),
        [_, _, "operationresults", id] => poll_location(s, id),
        [_, _, "providers", _, "locations", _, "operations", id] => poll_async(s, base, id),
        [_, _, "resourcegroups", rg, "providers", ..] => {
            if !s.groups.contains_key(*rg) {
                return arm_error(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{}' could not be found.", seg[3]),
                );
            }
            resource(s, base, method, &seg, &l, api, body)
        }
        _ => arm_error(404, "NotFound", &format!("no route for {method} {path}")),
    }
}

pub(super) fn token(s: &mut State, tenant: &str, body: &[u8]) -> Resp {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if tenant != TENANT {
        return reply(
            400,
            &json!({"error": "invalid_request", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found.\r\nTrace ID: 0")}),
            &[],
        );
    }
    if get("grant_type") != "client_credentials"
        || get("scope") != "https://management.azure.com/.default"
    {
        return reply(
            400,
            &json!({"error": "invalid_request", "error_description": "AADSTS900144: bad grant or scope"}),
            &[],
        );
    }
    if get("client_id") != CLIENT || get("client_secret") != s.secret {
        return reply(
            401,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0"}),
            &[],
        );
    }
    s.next_id += 1;
    let t = format!("fake-token-{}", s.next_id);
    s.tokens.push(t.clone());
    reply(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": t}),
        &[],
    )
}
