//! A fake of the AWS IAM Identity Center portal API (`portal.sso.<region>.amazonaws.com`), the
//! one call the SDKs make with a cached SSO token: `GetRoleCredentials`
//! (`GET /federation/credentials?account_id=…&role_name=…` with the token in
//! `x-amz-sso_bearer_token`). Shapes from the SSO API reference: a JSON `roleCredentials` object
//! with the expiration in epoch milliseconds, and `UnauthorizedException` (401, named in
//! `x-amzn-ErrorType`) for a token it does not know.
//!
//! The credentials it hands out are made up; moto accepts any, so a test can follow them into EC2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// The portal: which bearer token it accepts for which account and role.
pub struct FakeSsoPortal {
    pub addr: SocketAddr,
    state: Arc<Mutex<Portal>>,
}

#[derive(Default)]
struct Portal {
    token: String,
    account: String,
    role: String,
    access_key_id: String,
    calls: usize,
}

impl FakeSsoPortal {
    /// Accepts `token` for `account`/`role` and answers with `access_key_id` (and a made-up
    /// secret and session token valid for an hour).
    pub async fn start(token: &str, account: &str, role: &str, access_key_id: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(Portal {
            token: token.to_owned(),
            account: account.to_owned(),
            role: role.to_owned(),
            access_key_id: access_key_id.to_owned(),
            calls: 0,
        }));
        let shared = state.clone();
        crate::serve(listener, Default::default(), move |req| {
            handle(shared.clone(), req)
        });
        FakeSsoPortal { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many GetRoleCredentials calls it answered with credentials.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }
}

fn reply(status: u16, error_type: Option<&str>, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(t) = error_type {
        b = b.header("x-amzn-ErrorType", t);
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn handle(
    state: Arc<Mutex<Portal>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != hyper::Method::GET || req.uri().path() != "/federation/credentials" {
        return Ok(reply(
            404,
            Some("ResourceNotFoundException"),
            serde_json::json!({"message": format!("no route {}", req.uri().path())}),
        ));
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let token = req
        .headers()
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut portal = state.lock().unwrap();
    if token != portal.token {
        return Ok(reply(
            401,
            Some("UnauthorizedException"),
            serde_json::json!({"message": "Session token not found or invalid"}),
        ));
    }
    if q("account_id") != portal.account || q("role_name") != portal.role {
        return Ok(reply(
            403,
            Some("ForbiddenException"),
            serde_json::json!({"message": "No access"}),
        ));
    }
    portal.calls += 1;
    let expiration_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000;
    Ok(reply(
        200,
        None,
        serde_json::json!({
            "roleCredentials": {
                "accessKeyId": portal.access_key_id,
                "secretAccessKey": format!("made-up-sso-secret-{}", std::process::id()),
                "sessionToken": "made-up-sso-session-token",
                "expiration": expiration_ms as u64,
            }
        }),
    ))
}
