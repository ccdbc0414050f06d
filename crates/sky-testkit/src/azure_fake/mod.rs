//! A local fake of the parts of Azure Resource Manager and the identity platform Sky uses, on
//! `127.0.0.1:<free port>`, speaking the REST shapes of the API reference: the client-credentials
//! token endpoint; subscriptions; resource groups (PUT/GET/list/DELETE with a `Location`
//! operation); network security groups, virtual networks, public IPs and NICs (PUT with an
//! `Azure-AsyncOperation`); virtual machines (PUT with `Azure-AsyncOperation`, GET and list with
//! `$expand=instanceView`, deallocate/start/DELETE with `Location`); `api-version` required on
//! every call; bearer tokens checked; errors as `{"error":{"code":..,"message":..}}`.
//!
//! Faults are injected per VM creation (by region and zone), either as the synchronous 4xx ARM
//! answers or as a Failed asynchronous operation, and as rejected or revoked tokens. What it does
//! not do: validate every property, bill, or model anything Sky does not call.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub const SUBSCRIPTION: &str = "9b2c4d6e-1f3a-4b5c-8d7e-0a1b2c3d4e5f";

/// How an injected fault shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The PUT itself is refused with this HTTP status.
    Sync(u16),
    /// The PUT is accepted and its operation ends Failed.
    Async,
}

/// A fault on VM creation, where `region`/`zone` match (None: everywhere).
#[derive(Debug, Clone)]
pub struct Fault {
    pub code: String,
    pub mode: Mode,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// How many creations it hits; `None` for all.
    pub times: Option<u32>,
}

impl Fault {
    pub fn new(code: &str, mode: Mode) -> Fault {
        Fault {
            code: code.into(),
            mode,
            region: None,
            zone: None,
            times: None,
        }
    }
    pub fn in_region(mut self, region: &str) -> Fault {
        self.region = Some(region.into());
        self
    }
    pub fn in_zone(mut self, zone: &str) -> Fault {
        self.zone = Some(zone.into());
        self
    }
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }
}

enum Done {
    Nothing,
    VmProvisioned(String),
    VmFailed(String, String, String),
    VmPower(String, &'static str),
    DeleteRg(String),
    DeleteResource(String),
}

struct Op {
    polls_left: u32,
    error: Option<(String, String)>,
    done: Option<Done>,
}

#[derive(Default)]
struct State {
    secret: String,
    tokens: Vec<String>,
    /// Lower-cased resource group name -> the group.
    groups: BTreeMap<String, Value>,
    /// Lower-cased resource id -> the resource.
    resources: BTreeMap<String, Value>,
    ops: HashMap<String, Op>,
    next_id: u64,
    faults: Vec<Fault>,
    /// Polls an operation stays InProgress before it ends.
    op_polls: u32,
    retry_after: u64,
    log: Vec<String>,
    reject_tokens: bool,
}

#[derive(Clone)]
pub struct FakeArm {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeArm {
    /// Starts the fake; `secret` is the one client secret the token endpoint accepts.
    pub async fn start(secret: &str) -> FakeArm {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake ARM");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_owned(),
            op_polls: 1,
            ..State::default()
        }));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), addr, req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeArm { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Operations stay InProgress for `polls` polls, each answer asking for `retry_after` s.
    pub fn set_operation_pace(&self, polls: u32, retry_after: u64) {
        let mut s = self.lock();
        s.op_polls = polls;
        s.retry_after = retry_after;
    }

    /// Makes ARM refuse every token issued so far (as after a revoked secret).
    pub fn revoke_tokens(&self) {
        self.lock().reject_tokens = true;
    }

    pub fn groups(&self) -> Vec<String> {
        self.lock()
            .groups
            .values()
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every resource left (resource groups included): zero means nothing leaks.
    pub fn resource_count(&self) -> usize {
        let s = self.lock();
        s.groups.len() + s.resources.len()
    }

    pub fn vms(&self) -> Vec<Value> {
        self.lock()
            .resources
            .values()
            .filter(|r| r["type"] == "Microsoft.Compute/virtualMachines")
            .cloned()
            .collect()
    }

    /// Sets a VM's power state behind Sky's back (a spot eviction, a stop in the portal).
    pub fn set_power(&self, vm_name: &str, power: &str) {
        let mut s = self.lock();
        for r in s.resources.values_mut() {
            if r["type"] == "Microsoft.Compute/virtualMachines" && r["name"] == vm_name {
                r["fake:power"] = json!(power);
            }
        }
    }

    /// Adds a resource group as another tool (or another Sky user) would.
    pub fn add_group(&self, name: &str, location: &str, tags: Value) {
        let id = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}");
        self.lock().groups.insert(
            name.to_lowercase(),
            json!({"id": id, "name": name, "location": location, "tags": tags,
                   "properties": {"provisioningState": "Succeeded"}}),
        );
    }

    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }
}

type Resp = Response<Full<Bytes>>;

fn reply(status: u16, body: &Value, headers: &[(&str, String)]) -> Resp {
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

fn arm_error(status: u16, code: &str, message: &str) -> Resp {
    reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[("x-ms-error-code", code.to_owned())],
    )
}

fn fault_message(code: &str) -> String {
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

async fn handle(
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect()
        })
        .unwrap_or_default();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.log.push(format!("{method} {path}"));
    let base = format!("http://{addr}");
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

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(
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
    if s.reject_tokens || !s.tokens.iter().any(|t| t == token) {
        return arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
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
    match l.as_slice() {
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

fn token(s: &mut State, tenant: &str, body: &[u8]) -> Resp {
    let form: HashMap<String, String> = String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
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

fn new_op(s: &mut State, error: Option<(String, String)>, done: Done) -> String {
    s.next_id += 1;
    let id = format!("op-{:08}", s.next_id);
    let polls_left = s.op_polls;
    s.ops.insert(
        id.clone(),
        Op {
            polls_left,
            error,
            done: Some(done),
        },
    );
    id
}

fn async_header(
    s: &mut State,
    base: &str,
    location: &str,
    error: Option<(String, String)>,
    done: Done,
) -> Vec<(&'static str, String)> {
    let id = new_op(s, error, done);
    vec![
        (
            "azure-asyncoperation",
            format!(
                "{base}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/{location}/operations/{id}?api-version=2024-07-01"
            ),
        ),
        ("retry-after", s.retry_after.to_string()),
    ]
}

fn location_header(s: &mut State, base: &str, done: Done) -> Vec<(&'static str, String)> {
    let id = new_op(s, None, done);
    vec![
        (
            "location",
            format!(
                "{base}/subscriptions/{SUBSCRIPTION}/operationresults/{id}?api-version=2021-04-01"
            ),
        ),
        ("retry-after", s.retry_after.to_string()),
    ]
}

/// Advances an operation; `Some(result)` once it has ended.
fn step(s: &mut State, id: &str) -> Option<Option<Result<(), (String, String)>>> {
    let op = s.ops.get_mut(id)?;
    if op.polls_left > 0 {
        op.polls_left -= 1;
        return Some(None);
    }
    let error = op.error.clone();
    if let Some(done) = op.done.take() {
        apply(s, done);
    }
    Some(Some(error.map_or(Ok(()), Err)))
}

fn apply(s: &mut State, done: Done) {
    match done {
        Done::Nothing => {}
        Done::VmProvisioned(id) => {
            if let Some(vm) = s.resources.get_mut(&id) {
                vm["properties"]["provisioningState"] = json!("Succeeded");
                vm["fake:power"] = json!("running");
            }
        }
        Done::VmFailed(id, code, message) => {
            if let Some(vm) = s.resources.get_mut(&id) {
                vm["properties"]["provisioningState"] = json!("Failed");
                vm["fake:failure"] = json!([code, message]);
            }
        }
        Done::VmPower(id, power) => {
            if let Some(vm) = s.resources.get_mut(&id) {
                vm["fake:power"] = json!(power);
            }
        }
        Done::DeleteRg(rg) => {
            let prefix =
                format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/{rg}/").to_lowercase();
            s.resources.retain(|k, _| !k.starts_with(&prefix));
            s.groups.remove(&rg);
        }
        Done::DeleteResource(id) => {
            s.resources.remove(&id);
        }
    }
}

fn poll_async(s: &mut State, base: &str, id: &str) -> Resp {
    let _ = base;
    let retry = s.retry_after.to_string();
    match step(s, id) {
        None => arm_error(404, "NotFound", "no such operation"),
        Some(None) => reply(
            200,
            &json!({"name": id, "status": "InProgress"}),
            &[("retry-after", retry)],
        ),
        Some(Some(Ok(()))) => reply(200, &json!({"name": id, "status": "Succeeded"}), &[]),
        Some(Some(Err((code, message)))) => reply(
            200,
            &json!({"name": id, "status": "Failed", "error": {"code": code, "message": message}}),
            &[],
        ),
    }
}

fn poll_location(s: &mut State, id: &str) -> Resp {
    let retry = s.retry_after.to_string();
    match step(s, id) {
        None => arm_error(404, "NotFound", "no such operation"),
        Some(None) => reply(202, &Value::Null, &[("retry-after", retry)]),
        Some(Some(Ok(()))) => reply(200, &Value::Null, &[]),
        Some(Some(Err((code, message)))) => arm_error(409, &code, &message),
    }
}

fn group(
    s: &mut State,
    base: &str,
    method: &Method,
    name: &str,
    key: &str,
    _api: &str,
    body: &[u8],
) -> Resp {
    match *method {
        Method::GET => match s.groups.get(key) {
            Some(g) => reply(200, g, &[]),
            None => arm_error(
                404,
                "ResourceGroupNotFound",
                &format!("Resource group '{name}' could not be found."),
            ),
        },
        Method::PUT => {
            let Ok(b) = serde_json::from_slice::<Value>(body) else {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                );
            };
            let Some(location) = b["location"].as_str() else {
                return arm_error(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let existed = s.groups.contains_key(key);
            let g = json!({"id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}"), "name": name,
                "type": "Microsoft.Resources/resourceGroups", "location": location, "tags": b["tags"],
                "properties": {"provisioningState": "Succeeded"}});
            s.groups.insert(key.to_owned(), g.clone());
            reply(if existed { 200 } else { 201 }, &g, &[])
        }
        Method::DELETE => {
            if !s.groups.contains_key(key) {
                return arm_error(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{name}' could not be found."),
                );
            }
            let h = location_header(s, base, Done::DeleteRg(key.to_owned()));
            reply(202, &Value::Null, &h)
        }
        _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
    }
}

fn vm_view(vm: &Value, expand: bool) -> Value {
    let mut out = vm.clone();
    if let Some(o) = out.as_object_mut() {
        o.retain(|k, _| !k.starts_with("fake:"));
    }
    if expand {
        let mut statuses = vec![];
        let state = vm["properties"]["provisioningState"]
            .as_str()
            .unwrap_or("Creating");
        if let Some([code, message]) = vm["fake:failure"].as_array().map(Vec::as_slice) {
            statuses.push(json!({"code": format!("ProvisioningState/failed/{}", code.as_str().unwrap_or("")), "level": "Error",
                "displayStatus": "Provisioning failed", "message": message}));
        } else {
            statuses.push(json!({"code": format!("ProvisioningState/{}", state.to_lowercase()), "level": "Info"}));
        }
        if let Some(p) = vm["fake:power"].as_str() {
            statuses.push(json!({"code": format!("PowerState/{p}"), "level": "Info"}));
        }
        out["properties"]["instanceView"] = json!({"statuses": statuses});
    }
    out
}

fn resource(
    s: &mut State,
    base: &str,
    method: &Method,
    seg: &[&str],
    l: &[&str],
    api: &str,
    body: &[u8],
) -> Resp {
    let rg_key = l[3];
    // .../providers/{namespace}/{type}[/{name}[/{action}]]
    let (ns, ty) = (seg[5], seg[6]);
    let full_type = format!("{ns}/{ty}");
    let is_vm = l[5] == "microsoft.compute" && l[6] == "virtualmachines";
    if is_vm && api != "2024-07-01" {
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{api}' is invalid."),
        );
    }
    if seg.len() == 7 {
        if method != Method::GET {
            return arm_error(405, "MethodNotAllowed", "method not allowed");
        }
        let prefix = format!("{}/", l[..7].join("/")).to_lowercase();
        let prefix = format!("/{prefix}");
        let value: Vec<Value> = s
            .resources
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k[prefix.len()..].find('/').is_none())
            .map(|(_, v)| vm_view(v, is_vm))
            .collect();
        return reply(200, &json!({"value": value}), &[]);
    }
    let name = seg[7];
    let id = format!("/{}", seg[..8].join("/"));
    let key = id.to_lowercase();
    if seg.len() == 9 && is_vm && method == Method::POST {
        if !s.resources.contains_key(&key) {
            return arm_error(
                404,
                "ResourceNotFound",
                &format!(
                    "The Resource '{full_type}/{name}' under resource group '{}' was not found.",
                    seg[3]
                ),
            );
        }
        let power = match l[8] {
            "deallocate" => "deallocated",
            "start" => "running",
            "poweroff" => "stopped",
            _ => return arm_error(404, "NotFound", "no such action"),
        };
        let h = location_header(s, base, Done::VmPower(key, power));
        return reply(202, &Value::Null, &h);
    }
    if seg.len() != 8 {
        return arm_error(404, "NotFound", "no such route");
    }
    match *method {
        Method::GET => match s.resources.get(&key) {
            Some(r) => reply(200, &vm_view(r, is_vm), &[]),
            None => arm_error(
                404,
                "ResourceNotFound",
                &format!(
                    "The Resource '{full_type}/{name}' under resource group '{}' was not found.",
                    seg[3]
                ),
            ),
        },
        Method::DELETE => {
            if !s.resources.contains_key(&key) {
                return reply(204, &Value::Null, &[]);
            }
            let h = location_header(s, base, Done::DeleteResource(key));
            reply(202, &Value::Null, &h)
        }
        Method::PUT => {
            let Ok(mut b) = serde_json::from_slice::<Value>(body) else {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                );
            };
            let location = b["location"].as_str().unwrap_or("").to_owned();
            if location.is_empty() {
                return arm_error(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            }
            b["id"] = json!(id);
            b["name"] = json!(name);
            b["type"] = json!(full_type);
            if is_vm {
                return put_vm(s, base, key, b, &location, rg_key);
            }
            match l[6] {
                "networkinterfaces" => {
                    let n = s
                        .resources
                        .keys()
                        .filter(|k| k.contains("/networkinterfaces/"))
                        .count();
                    let Some(ip_id) = b
                        .pointer("/properties/ipConfigurations/0/properties/publicIPAddress/id")
                        .and_then(Value::as_str)
                    else {
                        return arm_error(400, "InvalidRequestFormat", "ipConfigurations missing");
                    };
                    if !s.resources.contains_key(&ip_id.to_lowercase()) {
                        return arm_error(
                            400,
                            "InvalidResourceReference",
                            &format!("Resource {ip_id} referenced by resource {id} was not found."),
                        );
                    }
                    b["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] =
                        json!(format!("10.0.0.{}", 4 + n));
                }
                "publicipaddresses" => {
                    let n = s
                        .resources
                        .keys()
                        .filter(|k| k.contains("/publicipaddresses/"))
                        .count();
                    b["properties"]["ipAddress"] =
                        json!(format!("20.1.{}.{}", n / 250, 1 + n % 250));
                }
                _ => {}
            }
            b["properties"]["provisioningState"] = json!("Succeeded");
            let existed = s.resources.insert(key, b.clone()).is_some();
            let h = async_header(s, base, &location, None, Done::Nothing);
            reply(if existed { 200 } else { 201 }, &b, &h)
        }
        _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
    }
}

fn put_vm(
    s: &mut State,
    base: &str,
    key: String,
    mut b: Value,
    location: &str,
    rg_key: &str,
) -> Resp {
    let zone = b["zones"][0].as_str().map(str::to_owned);
    if b.pointer("/properties/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .is_none()
    {
        return arm_error(
            400,
            "InvalidParameter",
            "Required parameter 'hardwareProfile.vmSize' is missing (null).",
        );
    }
    let Some(nic) = b
        .pointer("/properties/networkProfile/networkInterfaces/0/id")
        .and_then(Value::as_str)
    else {
        return arm_error(
            400,
            "InvalidParameter",
            "Required parameter 'networkProfile' is missing (null).",
        );
    };
    if !s.resources.contains_key(&nic.to_lowercase()) {
        return arm_error(400, "NotFound", &format!("Resource {nic} not found."));
    }
    if s.groups.get(rg_key).and_then(|g| g["location"].as_str()) != Some(location) {
        return arm_error(
            400,
            "InvalidParameter",
            "The VM must be in its resource group's location in this fake.",
        );
    }
    let hit = s.faults.iter_mut().find(|f| {
        f.times != Some(0)
            && f.region.as_deref().is_none_or(|r| r == location)
            && f.zone.as_ref().is_none_or(|z| Some(z) == zone.as_ref())
    });
    let fault = hit.map(|f| {
        if let Some(n) = f.times.as_mut() {
            *n -= 1;
        }
        (f.code.clone(), f.mode)
    });
    match fault {
        Some((code, Mode::Sync(status))) => arm_error(status, &code, &fault_message(&code)),
        Some((code, Mode::Async)) => {
            b["properties"]["provisioningState"] = json!("Creating");
            s.resources.insert(key.clone(), b.clone());
            let message = fault_message(&code);
            let h = async_header(
                s,
                base,
                location,
                Some((code.clone(), message.clone())),
                Done::VmFailed(key, code, message),
            );
            reply(201, &vm_view(&b, false), &h)
        }
        None => {
            let existed = s.resources.contains_key(&key);
            b["properties"]["provisioningState"] =
                json!(if existed { "Updating" } else { "Creating" });
            b["properties"]["vmId"] =
                json!(format!("{:08x}-0000-4000-8000-000000000000", s.next_id));
            s.resources.insert(key.clone(), b.clone());
            let h = async_header(s, base, location, None, Done::VmProvisioned(key));
            reply(if existed { 200 } else { 201 }, &vm_view(&b, false), &h)
        }
    }
}
