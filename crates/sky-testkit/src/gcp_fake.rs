//! A local fake of the Compute Engine REST API (v1), enough for Sky's provider: zonal instances
//! (insert with `requestId` deduplication, get, list, aggregated list with label filters, stop,
//! start, delete), zonal and global operations that finish after a number of polls (GET) or at
//! once (`wait`), and firewalls. Shapes follow the API reference: camelCase fields, operations
//! with `status`/`error.errors[].code`/`httpErrorStatusCode`, errors as
//! `{"error":{"code":..,"message":..,"errors":[{"reason":..}]}}`.
//!
//! Faults are injected per zone: an insert can end in an operation error (capacity, quota) or be
//! refused outright over HTTP (quota 403, auth 403, 500). Every request must carry a bearer token
//! (any token: the real SDK signs its own JWT offline). Networks and subnetworks are modelled as
//! far as inserts check them (`networks.rs`); disks, images, IAM and regions beyond the zone name
//! are not.
//!
//! With [`FakeGce::with_hosts`], instances are real SSH hosts: a running instance is placed on a
//! host of the pool (its address as both `networkIP` and `natIP`, a new one after each start) and
//! the keys of its `ssh-keys` metadata for the pool's login are installed there.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::hosts::Hosts;

mod names;
mod networks;
use names::{check_labels, check_name, check_nics};

/// What an insert in a zone does instead of succeeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Operation ends with `ZONE_RESOURCE_POOL_EXHAUSTED` (HTTP 503 inside the operation).
    Capacity,
    /// Operation ends with `ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS`.
    CapacityDetails,
    /// Operation ends with `QUOTA_EXCEEDED` (HTTP 403 inside the operation).
    Quota,
    /// The insert call itself answers 403 `quotaExceeded`.
    QuotaHttp,
    /// The insert call itself answers 403 `forbidden` (permission missing).
    Auth,
    /// The insert call answers 503 `backendError`.
    Unavailable,
    /// The insert is carried out but its answer is lost (503); fires once.
    LostAnswer,
}

#[derive(Debug, Clone)]
struct Fault {
    zone: String,
    kind: FaultKind,
    /// Inserts in the zone that still succeed before the fault applies (partial launches).
    skip: u32,
}

#[derive(Debug, Clone)]
enum Effect {
    None,
    Create { zone: String, name: String },
    Stop { zone: String, name: String },
    Start { zone: String, name: String },
    Delete { zone: String, name: String },
}

#[derive(Debug)]
struct Op {
    json: Value,
    polls_left: u32,
    effect: Effect,
}

#[derive(Default)]
pub struct State {
    /// Real hosts the running instances are placed on, when the test asked for them.
    hosts: Option<Hosts>,
    /// (zone, name) → instance JSON.
    instances: BTreeMap<(String, String), Value>,
    firewalls: BTreeMap<String, Value>,
    networks: networks::Networks,
    ops: HashMap<String, Op>,
    request_ids: HashMap<String, String>,
    faults: Vec<Fault>,
    inserts_by_zone: HashMap<String, u32>,
    next_id: u64,
    /// Polls an operation stays RUNNING before it reports DONE.
    op_polls: u32,
    /// Every request as `METHOD path`, for assertions on what the client called.
    pub calls: Vec<String>,
    /// Insert calls that carried a `requestId` already seen.
    pub duplicate_inserts: u32,
    /// Requests still to rate-limit, by HTTP method.
    throttle: HashMap<String, u32>,
    /// How many requests were rate-limited so far.
    pub throttled: u32,
    /// Instance actions (`start`, `stop`, `delete`) whose next call in a zone fails in its
    /// operation, leaving the instance as it was.
    action_faults: Vec<ActionFault>,
    /// Refresh tokens the OAuth token endpoint (`POST /token`) exchanges for access tokens.
    refresh_tokens: Vec<String>,
    /// Access tokens it issued, and how many.
    pub issued_tokens: Vec<String>,
    /// The bearer token of the latest Compute call.
    pub last_bearer: Option<String>,
}

struct ActionFault {
    verb: String,
    zone: String,
    code: &'static str,
    /// GCE's message, from the project and zone of the call.
    message: fn(&str, &str) -> String,
    http: (u16, &'static str),
}

#[derive(Clone)]
pub struct FakeGce {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Kills a client after its Nth request (see [`crate::crash`]).
    pub crash: crate::crash::CrashAfter,
}

impl FakeGce {
    /// Starts the fake on a free local port, on the current tokio runtime.
    pub async fn start() -> FakeGce {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            op_polls: 1,
            ..State::default()
        }));
        let shared = state.clone();
        let crash = crate::crash::CrashAfter::default();
        crate::serve(listener, crash.clone(), move |req| {
            handle(shared.clone(), req)
        });
        FakeGce { addr, state, crash }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets the token endpoint (`{url}/token`) exchange `refresh_token`, as Google does for a
    /// live gcloud login.
    pub fn accept_refresh_token(&self, refresh_token: &str) {
        self.state
            .lock()
            .expect("fake state")
            .refresh_tokens
            .push(refresh_token.to_owned());
    }

    /// Forgets every refresh token, as a revoked login or a changed password does.
    pub fn revoke_refresh_tokens(&self) {
        self.state
            .lock()
            .expect("fake state")
            .refresh_tokens
            .clear();
    }

    /// Access tokens the token endpoint issued, and the one the latest Compute call carried.
    pub fn tokens(&self) -> (Vec<String>, Option<String>) {
        let st = self.state.lock().expect("fake state");
        (st.issued_tokens.clone(), st.last_bearer.clone())
    }

    /// Places running instances on `hosts` from now on. A guest OS shutdown on one moves the
    /// instance to TERMINATED, as GCE does (a stop: the disk is kept).
    pub fn with_hosts(&self, hosts: Hosts) {
        // Weak: the pool holds this handler, and the fake's state holds the pool.
        let state = Arc::downgrade(&self.state);
        hosts.on_guest_shutdown(move |_, key| {
            let Some(state) = state.upgrade() else {
                return false;
            };
            let mut st = state.lock().expect("fake state");
            let Some((zone, name)) = st
                .instances
                .keys()
                .find(|(zone, name)| format!("gce-{zone}-{name}") == key)
                .cloned()
            else {
                return false;
            };
            apply(&mut st, Effect::Stop { zone, name });
            true
        });
        self.state().hosts = Some(hosts);
    }

    /// Ends every operation still running, as GCE does whether or not anyone polls it (a client
    /// killed mid-launch): its effect is applied, and a later poll reads it DONE.
    pub fn settle(&self) {
        let mut st = self.state();
        let names: Vec<String> = st.ops.keys().cloned().collect();
        for name in names {
            let _ = poll(&mut st, &name, true);
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    pub fn fail_zone(&self, zone: &str, kind: FaultKind) {
        self.fail_zone_after(zone, kind, 0);
    }

    pub fn fail_zone_after(&self, zone: &str, kind: FaultKind, skip: u32) {
        self.state().faults.push(Fault {
            zone: zone.to_owned(),
            kind,
            skip,
        });
    }

    /// Rate-limits the next `n` requests made with `method` as Compute Engine does in Google's
    /// current error model: 403 with `details[]` holding an `ErrorInfo` of reason
    /// `RATE_LIMIT_EXCEEDED` and a `RetryInfo` of 0 s, beside the legacy `errors[]`.
    pub fn throttle(&self, method: &str, n: u32) {
        self.state().throttle.insert(method.to_ascii_uppercase(), n);
    }

    /// The next `instances.start` in `zone` fails once in its operation, out of capacity: the
    /// instance stays TERMINATED, as GCE leaves it.
    pub fn fail_start_in(&self, zone: &str) {
        self.state().action_faults.push(ActionFault {
            verb: "start".into(),
            zone: zone.to_owned(),
            code: "ZONE_RESOURCE_POOL_EXHAUSTED",
            message: pool_exhausted,
            http: (503, "SERVICE UNAVAILABLE"),
        });
    }

    /// The next `instances.stop` or `instances.delete` (`verb`) in `zone` is accepted and its
    /// operation ends with GCE's internal error (HTTP 500 inside the operation, the instance left
    /// as it was), as Compute Engine reports a transient backend failure.
    pub fn fail_action_in(&self, verb: &str, zone: &str) {
        self.state().action_faults.push(ActionFault {
            verb: verb.to_owned(),
            zone: zone.to_owned(),
            code: "INTERNAL_ERROR",
            message: |_, _| {
                "Internal error. Please try again or contact Google Support. (Code: \
                 '-2146327000')"
                    .into()
            },
            http: (500, "INTERNAL SERVER ERROR"),
        });
    }

    pub fn set_op_polls(&self, polls: u32) {
        self.state().op_polls = polls;
    }

    /// Each instance that exists, as `zone/name`, with its status (`RUNNING`, `TERMINATED`, ...).
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.state()
            .instances
            .iter()
            .map(|((zone, name), i)| {
                let status = i["status"].as_str().unwrap_or_default().to_owned();
                (format!("{zone}/{name}"), status)
            })
            .collect()
    }

    /// Names of the instances that exist, as `zone/name`.
    pub fn instances(&self) -> Vec<String> {
        self.state()
            .instances
            .keys()
            .map(|(z, n)| format!("{z}/{n}"))
            .collect()
    }

    pub fn instance(&self, zone: &str, name: &str) -> Option<Value> {
        self.state()
            .instances
            .get(&(zone.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The stored body of firewall rule `name`.
    pub fn firewall(&self, name: &str) -> Option<Value> {
        self.state().firewalls.get(name).cloned()
    }

    pub fn firewalls(&self) -> Vec<String> {
        self.state().firewalls.keys().cloned().collect()
    }

    /// Creates a RUNNING instance directly, as another tool (SkyPilot, a colleague's Sky home, a
    /// person in the console) would, with these labels.
    /// A VPC network of `project` (auto mode: a subnetwork in every region, none named).
    pub fn add_network(&self, project: &str, name: &str, auto: bool) {
        self.state().networks.networks.insert(
            format!("{project}/{name}"),
            Some(networks::FakeNetwork { auto }),
        );
    }

    /// A subnetwork of `network` in `region`.
    pub fn add_subnetwork(&self, project: &str, region: &str, name: &str, network: &str) {
        self.state().networks.subnets.push(networks::FakeSubnet {
            project: project.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
            network: network.to_owned(),
        });
    }

    /// The stored body of the instance `name`, in whichever zone it is.
    pub fn instance_named(&self, name: &str) -> Option<Value> {
        self.state()
            .instances
            .iter()
            .find(|((_, n), _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn add_instance(&self, zone: &str, name: &str, labels: Value) {
        let mut st = self.state();
        st.next_id += 1;
        let id = st.next_id.to_string();
        st.instances.insert(
            (zone.to_owned(), name.to_owned()),
            json!({
                "kind": "compute#instance",
                "id": id,
                "name": name,
                "status": "RUNNING",
                "labels": labels,
                "machineType": format!("zones/{zone}/machineTypes/n2-standard-2"),
                "zone": format!("https://www.googleapis.com/compute/v1/projects/sky-test/zones/{zone}"),
                "networkInterfaces": [{"networkIP": "10.128.0.99"}],
            }),
        );
    }

    /// Sets an instance's status directly (spot preemption, an outside stop).
    pub fn set_status(&self, zone: &str, name: &str, status: &str) {
        if let Some(i) = self
            .state()
            .instances
            .get_mut(&(zone.to_owned(), name.to_owned()))
        {
            i["status"] = json!(status);
        }
    }

    /// Requests exactly `METHOD path`.
    pub fn count_exact(&self, call: &str) -> usize {
        self.state().calls.iter().filter(|c| *c == call).count()
    }

    pub fn count_calls(&self, prefix: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, body: Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// An API error in Compute Engine's JSON shape.
fn api_error(code: u16, reason: &str, message: &str) -> Reply {
    reply(
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A conjunction of `labels.KEY = "VALUE"` and `labels.KEY:*` expressions, each optionally in
/// parentheses, joined by `AND` (or, as Compute Engine also accepts, by spaces between
/// parenthesised expressions). An expression of another form matches nothing, so a test never
/// passes on a filter the fake silently ignored.
fn matches_filter(instance: &Value, filter: Option<&String>) -> bool {
    let Some(f) = filter.map(|f| f.trim()).filter(|f| !f.is_empty()) else {
        return true;
    };
    let mut all = true;
    for clause in f.split(" AND ").flat_map(|c| c.split(") (")) {
        let clause = clause
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let Some(rest) = clause.strip_prefix("labels.") else {
            return false;
        };
        let ok = if let Some(key) = rest.strip_suffix(":*") {
            instance["labels"].get(key.trim()).is_some()
        } else {
            let Some((k, v)) = rest.split_once('=') else {
                return false;
            };
            let v = v.trim().trim_matches('"');
            instance["labels"][k.trim()].as_str() == Some(v)
        };
        all &= ok;
    }
    all
}

/// Google's OAuth 2.0 token endpoint for `grant_type=refresh_token`, as a gcloud user login
/// (`authorized_user`) uses it: a known refresh token gets a fresh access token; any other is
/// refused as Google refuses a revoked or expired one (400 `invalid_grant`).
fn token_exchange(st: &mut State, body: &[u8]) -> Reply {
    // Google's endpoint takes the grant as a form or as JSON (google-cloud-auth sends JSON).
    let form: HashMap<String, String> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
            .collect(),
        _ => form_urlencoded::parse(body).into_owned().collect(),
    };
    let known = form
        .get("refresh_token")
        .is_some_and(|t| st.refresh_tokens.contains(t));
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") || !known {
        return reply(
            400,
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        );
    }
    let token = format!("ya29.made-up-{}", st.issued_tokens.len() + 1);
    st.issued_tokens.push(token.clone());
    reply(
        200,
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer",
               "scope": "https://www.googleapis.com/auth/cloud-platform"}),
    )
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Reply, hyper::Error> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let q = query(&req);
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let authorized = bearer.is_some();
    let body = req.into_body().collect().await?.to_bytes();
    let mut st = state.lock().expect("fake state");
    st.calls.push(format!("{method} {path}"));
    if method == Method::POST && path == "/token" {
        return Ok(token_exchange(&mut st, &body));
    }
    st.last_bearer = bearer;
    if !authorized {
        return Ok(api_error(
            401,
            "required",
            "Request is missing required authentication credential.",
        ));
    }
    if let Some(left) = st.throttle.get_mut(method.as_str()).filter(|n| **n > 0) {
        *left -= 1;
        st.throttled += 1;
        let message = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'.";
        return Ok(reply(
            403,
            json!({"error": {
                "code": 403,
                "message": message,
                "errors": [{"message": message, "domain": "usageLimits", "reason": "rateLimitExceeded"}],
                "status": "PERMISSION_DENIED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                     "domain": "googleapis.com",
                     "metadata": {"service": "compute.googleapis.com", "quota_metric": "compute.googleapis.com/default"}},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}
                ]
            }}),
        ));
    }
    let Some(rest) = path.strip_prefix("/compute/v1/projects/") else {
        return Ok(api_error(404, "notFound", &format!("no such path {path}")));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let project = parts[0].to_owned();
    let out = match (method, &parts[1..]) {
        (Method::GET, ["aggregated", "instances"]) => aggregated(&st, &project, &q),
        (Method::POST, ["zones", zone, "instances"]) => insert(&mut st, &project, zone, &q, &body),
        (Method::GET, ["zones", zone, "instances"]) => {
            let items: Vec<Value> = st
                .instances
                .iter()
                .filter(|((z, _), i)| z == zone && matches_filter(i, q.get("filter")))
                .map(|(_, i)| i.clone())
                .collect();
            reply(200, json!({"kind": "compute#instanceList", "items": items}))
        }
        (Method::GET, ["zones", zone, "instances", name]) => {
            match st.instances.get(&(zone.to_string(), name.to_string())) {
                Some(i) => reply(200, i.clone()),
                None => not_found(&project, zone, name),
            }
        }
        (Method::DELETE, ["zones", zone, "instances", name]) => {
            instance_action(&mut st, &project, zone, name, "delete")
        }
        (Method::POST, ["zones", zone, "instances", name, verb @ ("stop" | "start")]) => {
            instance_action(&mut st, &project, zone, name, verb)
        }
        (Method::GET, ["zones", _zone, "operations", op]) => poll(&mut st, op, false),
        (Method::POST, ["zones", _zone, "operations", op, "wait"]) => poll(&mut st, op, true),
        (Method::GET, ["global", "operations", op]) => poll(&mut st, op, false),
        (Method::POST, ["global", "firewalls"]) => firewall_insert(&mut st, &project, &body),
        (Method::GET, ["global", "networks", name]) => st.networks.get(&project, name),
        (Method::GET, ["regions", region, "subnetworks"]) => {
            st.networks.list_subnets(&project, region)
        }
        (Method::PATCH, ["global", "firewalls", name]) => {
            firewall_patch(&mut st, &project, name, &body)
        }
        (Method::DELETE, ["global", "firewalls", name]) => {
            if st.firewalls.remove(*name).is_none() {
                api_error(
                    404,
                    "notFound",
                    &format!(
                        "The resource 'projects/{project}/global/firewalls/{name}' was not found"
                    ),
                )
            } else {
                let op = new_op(&mut st, &project, None, "delete", name, Effect::None);
                reply(200, op)
            }
        }
        (m, _) => api_error(404, "notFound", &format!("fake has no {m} {path}")),
    };
    Ok(out)
}

fn not_found(project: &str, zone: &str, name: &str) -> Reply {
    api_error(
        404,
        "notFound",
        &format!("The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"),
    )
}

fn aggregated(st: &State, project: &str, q: &HashMap<String, String>) -> Reply {
    let mut items: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let max: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    for ((zone, _), i) in &st.instances {
        if matches_filter(i, q.get("filter")) {
            let list = items.entry(format!("zones/{zone}")).or_default();
            if list.len() < max {
                list.push(i.clone());
            }
        }
    }
    let items: serde_json::Map<String, Value> = items
        .into_iter()
        .map(|(k, v)| (k, json!({"instances": v})))
        .collect();
    reply(
        200,
        json!({"kind": "compute#instanceAggregatedList",
            "id": format!("projects/{project}/aggregated/instances"), "items": items}),
    )
}

fn new_op(
    st: &mut State,
    project: &str,
    zone: Option<&str>,
    kind: &str,
    target: &str,
    effect: Effect,
) -> Value {
    st.next_id += 1;
    let name = format!("operation-{}-{:x}", st.next_id, st.next_id * 7919);
    let scope = match zone {
        Some(z) => format!("projects/{project}/zones/{z}"),
        None => format!("projects/{project}/global"),
    };
    let base = format!("https://www.googleapis.com/compute/v1/{scope}");
    let mut json = json!({
        "kind": "compute#operation",
        "id": st.next_id.to_string(),
        "name": name,
        "operationType": kind,
        "targetLink": format!("{base}/{target}"),
        "status": "RUNNING",
        "progress": 0,
        "insertTime": "2026-11-29T12:00:00.000-08:00",
        "selfLink": format!("{base}/operations/{name}"),
    });
    if let Some(z) = zone {
        json["zone"] = json!(format!(
            "https://www.googleapis.com/compute/v1/projects/{project}/zones/{z}"
        ));
    }
    let polls = st.op_polls;
    st.ops.insert(
        name,
        Op {
            json: json.clone(),
            polls_left: polls,
            effect,
        },
    );
    json
}

fn fail_op(op: &mut Value, code: &str, message: &str, http: u16, http_msg: &str) {
    op["error"] = json!({"errors": [{"code": code, "message": message}]});
    op["httpErrorStatusCode"] = json!(http);
    op["httpErrorMessage"] = json!(http_msg);
}

/// Stores `op`, already failed by [`fail_op`], as what its polls answer once DONE, and answers
/// the call with it still running (the failure shows only once the operation is polled to DONE).
fn answer_failing(st: &mut State, op: Value) -> Reply {
    let name = op["name"].as_str().unwrap_or_default().to_owned();
    let running = running_view(&op);
    if let Some(stored) = st.ops.get_mut(&name) {
        stored.json = op;
    }
    reply(200, running)
}

/// GCE's message when a zone has no room for what was asked.
fn pool_exhausted(project: &str, zone: &str) -> String {
    format!(
        "The zone 'projects/{project}/zones/{zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later."
    )
}

fn insert(
    st: &mut State,
    project: &str,
    zone: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Reply {
    if let Some(op) = q
        .get("requestId")
        .and_then(|rid| st.request_ids.get(rid))
        .and_then(|n| st.ops.get(n))
    {
        let json = op.json.clone();
        st.duplicate_inserts += 1;
        return reply(200, json);
    }

    let Ok(mut inst) = serde_json::from_slice::<Value>(body) else {
        return api_error(
            400,
            "parseError",
            "This API does not support parsing form-encoded input.",
        );
    };
    let Some(name) = inst["name"].as_str().map(str::to_owned) else {
        return api_error(
            400,
            "required",
            "Required field 'resource.name' not specified",
        );
    };
    if let Some(refused) = check_name(&name)
        .or_else(|| check_labels(&inst))
        .or_else(|| check_nics(&inst))
        .or_else(|| st.networks.check_instance(project, zone, &inst))
    {
        return refused;
    }
    if st.instances.contains_key(&(zone.to_owned(), name.clone())) {
        return api_error(
            409,
            "alreadyExists",
            &format!(
                "The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists"
            ),
        );
    }
    let done = *st.inserts_by_zone.get(zone).unwrap_or(&0);
    let fault = st
        .faults
        .iter()
        .find(|f| f.zone == zone && done >= f.skip)
        .map(|f| f.kind);
    *st.inserts_by_zone.entry(zone.to_owned()).or_default() += 1;
    let target = format!("instances/{name}");
    match fault {
        Some(FaultKind::QuotaHttp) => {
            return api_error(
                403,
                "quotaExceeded",
                "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.",
            );
        }
        Some(FaultKind::Auth) => {
            return api_error(
                403,
                "forbidden",
                &format!(
                    "Required 'compute.instances.create' permission for 'projects/{project}/zones/{zone}/instances/{name}'"
                ),
            );
        }
        Some(FaultKind::Unavailable) => {
            return api_error(503, "backendError", "Backend Error");
        }
        Some(kind @ (FaultKind::Capacity | FaultKind::CapacityDetails | FaultKind::Quota)) => {
            let mut op = new_op(st, project, Some(zone), "insert", &target, Effect::None);
            let op_name = op["name"].as_str().unwrap_or_default().to_owned();
            match kind {
                FaultKind::Quota => fail_op(
                    &mut op,
                    "QUOTA_EXCEEDED",
                    "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.",
                    403,
                    "FORBIDDEN",
                ),
                FaultKind::CapacityDetails => fail_op(
                    &mut op,
                    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                    &format!(
                        "The zone 'projects/{project}/zones/{zone}' does not have enough resources available to fulfill the request.  '(resource type:compute)'."
                    ),
                    503,
                    "SERVICE UNAVAILABLE",
                ),
                _ => fail_op(
                    &mut op,
                    "ZONE_RESOURCE_POOL_EXHAUSTED",
                    &pool_exhausted(project, zone),
                    503,
                    "SERVICE UNAVAILABLE",
                ),
            }
            record_request(st, q, &op_name);
            return answer_failing(st, op);
        }
        Some(FaultKind::LostAnswer) | None => {}
    }
    let lost = fault == Some(FaultKind::LostAnswer);
    if lost {
        st.faults.retain(|f| f.kind != FaultKind::LostAnswer);
    }
    st.next_id += 1;
    inst["id"] = json!(st.next_id.to_string());
    inst["kind"] = json!("compute#instance");
    inst["status"] = json!("PROVISIONING");
    inst["zone"] = json!(format!(
        "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"
    ));
    inst["selfLink"] = json!(format!(
        "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instances/{name}"
    ));
    st.instances.insert((zone.to_owned(), name.clone()), inst);
    let op = new_op(
        st,
        project,
        Some(zone),
        "insert",
        &target,
        Effect::Create {
            zone: zone.to_owned(),
            name,
        },
    );
    let op_name = op["name"].as_str().unwrap_or_default().to_owned();
    record_request(st, q, &op_name);
    if lost {
        return api_error(503, "backendError", "Backend Error");
    }
    reply(200, op)
}

/// A running operation never shows its error yet.
fn running_view(op: &Value) -> Value {
    let mut v = op.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("error");
        o.remove("httpErrorStatusCode");
        o.remove("httpErrorMessage");
    }
    v
}

fn record_request(st: &mut State, q: &HashMap<String, String>, op_name: &str) {
    if let Some(rid) = q.get("requestId") {
        st.request_ids.insert(rid.clone(), op_name.to_owned());
    }
}

fn instance_action(st: &mut State, project: &str, zone: &str, name: &str, verb: &str) -> Reply {
    let key = (zone.to_owned(), name.to_owned());
    if !st.instances.contains_key(&key) {
        return not_found(project, zone, name);
    }
    if let Some(i) = st
        .action_faults
        .iter()
        .position(|f| f.verb == verb && f.zone == zone)
    {
        let fault = st.action_faults.remove(i);
        let mut op = new_op(
            st,
            project,
            Some(zone),
            verb,
            &format!("instances/{name}"),
            Effect::None,
        );
        let message = (fault.message)(project, zone);
        fail_op(&mut op, fault.code, &message, fault.http.0, fault.http.1);
        return answer_failing(st, op);
    }
    let Some(inst) = st.instances.get_mut(&key) else {
        return not_found(project, zone, name);
    };
    let (effect, status) = match verb {
        "stop" => (
            Effect::Stop {
                zone: zone.into(),
                name: name.into(),
            },
            "STOPPING",
        ),
        "start" => (
            Effect::Start {
                zone: zone.into(),
                name: name.into(),
            },
            "STAGING",
        ),
        _ => (
            Effect::Delete {
                zone: zone.into(),
                name: name.into(),
            },
            "STOPPING",
        ),
    };
    inst["status"] = json!(status);
    let op = new_op(
        st,
        project,
        Some(zone),
        verb,
        &format!("instances/{name}"),
        effect,
    );
    reply(200, op)
}

/// `firewalls.patch`: the fields sent replace the stored ones (lists whole, as the API does).
fn firewall_patch(st: &mut State, project: &str, name: &str, body: &[u8]) -> Reply {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return api_error(400, "parseError", "bad firewall body");
    };
    let Some(fw) = st.firewalls.get_mut(name) else {
        return api_error(
            404,
            "notFound",
            &format!("The resource 'projects/{project}/global/firewalls/{name}' was not found"),
        );
    };
    for (k, v) in patch {
        fw[k.as_str()] = v;
    }
    let op = new_op(
        st,
        project,
        None,
        "patch",
        &format!("firewalls/{name}"),
        Effect::None,
    );
    reply(200, op)
}

fn firewall_insert(st: &mut State, project: &str, body: &[u8]) -> Reply {
    let Ok(fw) = serde_json::from_slice::<Value>(body) else {
        return api_error(400, "parseError", "bad firewall body");
    };
    let Some(name) = fw["name"].as_str().map(str::to_owned) else {
        return api_error(
            400,
            "required",
            "Required field 'resource.name' not specified",
        );
    };
    if let Some(refused) = check_name(&name).or_else(|| {
        st.networks.check_network(
            project,
            fw["network"].as_str().unwrap_or("global/networks/default"),
        )
    }) {
        return refused;
    }
    if st.firewalls.contains_key(&name) {
        return api_error(
            409,
            "alreadyExists",
            &format!("The resource 'projects/{project}/global/firewalls/{name}' already exists"),
        );
    }
    st.firewalls.insert(name.clone(), fw);
    let op = new_op(
        st,
        project,
        None,
        "insert",
        &format!("firewalls/{name}"),
        Effect::None,
    );
    reply(200, op)
}

fn poll(st: &mut State, name: &str, wait: bool) -> Reply {
    let Some(op) = st.ops.get_mut(name) else {
        return api_error(
            404,
            "notFound",
            &format!("The resource 'operations/{name}' was not found"),
        );
    };
    if op.json["status"] == "DONE" {
        return reply(200, op.json.clone());
    }
    if !wait && op.polls_left > 0 {
        op.polls_left -= 1;
        return reply(200, running_view(&op.json));
    }
    op.json["status"] = json!("DONE");
    op.json["progress"] = json!(100);
    let effect = std::mem::replace(&mut op.effect, Effect::None);
    let json = op.json.clone();
    apply(st, effect);
    reply(200, json)
}

fn apply(st: &mut State, effect: Effect) {
    match effect {
        Effect::None => {}
        Effect::Create { zone, name } | Effect::Start { zone, name } => {
            st.next_id += 1;
            let n = st.next_id;
            let host_key = format!("gce-{zone}-{name}");
            let hosts = st.hosts.clone();
            if let Some(i) = st.instances.get_mut(&(zone, name)) {
                i["status"] = json!("RUNNING");
                // A new external address on every start, as GCP gives ephemeral IPs.
                let mut internal = format!("10.128.{}.{}", n / 250, n % 250 + 2);
                let mut external = format!("34.1.{}.{}", n / 250, n % 250 + 2);
                if let Some(hosts) = hosts {
                    match power_on(&hosts, &host_key, i) {
                        // The test network has one address per host: it is both.
                        Ok(addr) => (internal, external) = (addr.clone(), addr),
                        // The instance keeps its made-up address, so the launch fails on SSH
                        // and says where; the reason is on stderr.
                        #[allow(clippy::print_stderr)]
                        Err(e) => eprintln!("fake GCE: no host for {host_key}: {e}"),
                    }
                }
                i["networkInterfaces"][0]["networkIP"] = json!(internal);
                // Only an interface with an access config gets an external address.
                if let Some(ac) = i
                    .pointer_mut("/networkInterfaces/0/accessConfigs/0")
                    .and_then(Value::as_object_mut)
                {
                    ac.insert("natIP".into(), json!(external));
                }
            }
        }
        Effect::Stop { zone, name } => {
            if let Some(hosts) = &st.hosts {
                hosts.detach(&format!("gce-{zone}-{name}"));
            }
            if let Some(i) = st.instances.get_mut(&(zone, name)) {
                i["status"] = json!("TERMINATED");
                if let Some(ac) = i
                    .pointer_mut("/networkInterfaces/0/accessConfigs/0")
                    .and_then(Value::as_object_mut)
                {
                    ac.remove("natIP");
                }
            }
        }
        Effect::Delete { zone, name } => {
            if let Some(hosts) = &st.hosts {
                hosts.delete(&format!("gce-{zone}-{name}"));
            }
            st.instances.remove(&(zone, name));
        }
    }
}

/// Installs the instance's `ssh-keys` metadata for the pool's login (as the guest agent does) and
/// places it on a host; its address.
fn power_on(hosts: &Hosts, key: &str, instance: &Value) -> Result<String, String> {
    let user = hosts.user();
    let items = instance["metadata"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for item in items.iter().filter(|i| i["key"] == "ssh-keys") {
        for line in item["value"].as_str().unwrap_or_default().lines() {
            if let Some((login, public_key)) = line.split_once(':')
                && login == user
            {
                hosts.authorize(key, public_key);
            }
        }
    }
    hosts.attach(key)
}

/// A service-account key file's JSON made up for this run (never committed): a fresh RSA key, so
/// the real auth crate signs real JWTs offline, for the project `project`.
pub fn service_account_json(project: &str) -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use base64::Engine as _;

    let key = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
    let der = key.as_der().expect("PKCS#8 DER");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.join("\n")
    );
    json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": format!("sky@{project}.iam.gserviceaccount.com"),
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}
