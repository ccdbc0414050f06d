//! Test harness: a `moto_server` per test on a free port, and a fault-injecting HTTP proxy in front
//! of it that answers chosen RunInstances calls with EC2's real error XML and status.
//!
//! moto cannot produce capacity, quota or throttling errors; the proxy can. It parses each EC2
//! Query request's form body and, when a [`Fault`] matches (action, zone, instance type), answers
//! itself; otherwise it relays the request to moto unchanged. What this harness does not do:
//! fake EC2 behaviour beyond errors (moto is the EC2 here).
//!
//! With [`FaultProxy::with_hosts`], instances become real SSH hosts: the key of every
//! `ImportKeyPair` is installed on all of them (what cloud-init does with the launch's key pair),
//! `DescribeInstances` answers carry a running instance's host address instead of moto's made-up
//! private and public IPs (a new host after each stop/start), and stop/terminate power hosts off.
//! A guest OS shutdown on a host does what EC2 does: the instance stops, or terminates when its
//! `InstanceInitiatedShutdownBehavior` says so (moto keeps that attribute; the proxy acts on it).

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::hosts::Hosts;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A moto server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> String {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("moto_server");
        if p.exists() {
            return p.display().to_string();
        }
    }
    for p in [
        "/root/.pyenv/shims/moto_server",
        "/usr/local/bin/moto_server",
    ] {
        if Path::new(p).exists() {
            return p.to_owned();
        }
    }
    panic!("moto_server not found: `pip install 'moto[server]'` or set MOTO_SERVER");
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Made-up AWS credentials, `(access key id, secret)`, for moto (which checks nothing): shaped like
/// real ones so the provider's own checks pass, made up per run so nothing key-like is committed.
pub fn made_up_credentials() -> (String, String) {
    (
        format!("AKIA{}", "TEST".repeat(4)),
        format!("made-up-{}", std::process::id()),
    )
}

pub async fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new(moto_binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto { child, port };
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto_server did not listen on {port} within 10s");
}

/// One injected failure: answers matching requests with `code` and `status`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub action: &'static str,
    /// `None` matches any zone.
    pub zone: Option<&'static str>,
    pub instance_type: Option<&'static str>,
    /// Region, from the request's credential scope; `None` matches any.
    pub region: Option<&'static str>,
    pub code: &'static str,
    pub status: u16,
    /// How many times it fires; `None`: always.
    pub times: Option<u32>,
}

impl Fault {
    pub fn run_instances(code: &'static str, status: u16) -> Fault {
        Fault {
            action: "RunInstances",
            zone: None,
            instance_type: None,
            region: None,
            code,
            status,
            times: None,
        }
    }
    /// An S3 request (path-style, as with a custom endpoint) named by its method and path
    /// without the query, e.g. `"S3 GET /bucket/key"`.
    pub fn s3(request: &'static str, code: &'static str, status: u16) -> Fault {
        Fault {
            action: request,
            ..Fault::run_instances(code, status)
        }
    }
    pub fn zone(mut self, z: &'static str) -> Fault {
        self.zone = Some(z);
        self
    }
    pub fn region(mut self, r: &'static str) -> Fault {
        self.region = Some(r);
        self
    }
    pub fn instance_type(mut self, t: &'static str) -> Fault {
        self.instance_type = Some(t);
        self
    }
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }
}

/// What the proxy saw: every action, and the faults it answered.
#[derive(Debug, Default)]
pub struct ProxyLog {
    pub actions: Vec<String>,
    pub faults_sent: Vec<String>,
}

/// Once `trigger` has been seen, requests for `held` are not answered until the hold is lifted
/// (to freeze a client mid-operation, e.g. to `kill -9` it while it waits for its nodes).
#[derive(Debug, Clone, Default)]
pub struct Hold {
    pub trigger: &'static str,
    pub held: &'static str,
    pub armed: bool,
    pub triggered: bool,
    /// A `held` request is waiting now.
    pub blocked: bool,
}

pub struct FaultProxy {
    pub port: u16,
    pub hold: Arc<Mutex<Option<Hold>>>,
    pub faults: Arc<Mutex<Vec<Fault>>>,
    pub log: Arc<Mutex<ProxyLog>>,
    hosts: Arc<Mutex<Option<Hosts>>>,
    /// The region of every instance a RunInstances answer named, for acting on it later.
    regions: Arc<Mutex<std::collections::HashMap<String, String>>>,
    upstream: u16,
    task: tokio::task::JoinHandle<()>,
    /// Kills a client after its Nth request reached moto (see [`crate::crash`]).
    pub crash: crate::crash::CrashAfter,
}

impl FaultProxy {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn hold_after(&self, trigger: &'static str, held: &'static str) {
        *self.hold.lock().expect("hold lock") = Some(Hold {
            trigger,
            held,
            armed: true,
            triggered: false,
            blocked: false,
        });
    }
    pub fn is_blocking(&self) -> bool {
        self.hold
            .lock()
            .expect("hold lock")
            .as_ref()
            .is_some_and(|h| h.blocked)
    }
    pub fn release(&self) {
        *self.hold.lock().expect("hold lock") = None;
    }
    /// Places running instances on `hosts` from now on; their guests' shutdowns stop or
    /// terminate them on moto.
    pub fn with_hosts(&self, hosts: Hosts) {
        let (regions, upstream) = (self.regions.clone(), self.upstream);
        hosts.on_guest_shutdown(move |hosts, id| {
            let Some(region) = regions.lock().expect("regions lock").get(id).cloned() else {
                return false;
            };
            guest_shutdown(hosts, upstream, &region, id);
            true
        });
        *self.hosts.lock().expect("hosts lock") = Some(hosts);
    }
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *self.faults.lock().expect("faults lock") = faults;
    }
    pub fn count(&self, action: &str) -> usize {
        let log = self.log.lock().expect("log lock");
        log.actions.iter().filter(|a| a.as_str() == action).count()
    }
    pub fn faults_sent(&self) -> Vec<String> {
        self.log.lock().expect("log lock").faults_sent.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_proxy(upstream: u16) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
    let log: Arc<Mutex<ProxyLog>> = Arc::default();
    let hold: Arc<Mutex<Option<Hold>>> = Arc::default();
    let hosts: Arc<Mutex<Option<Hosts>>> = Arc::default();
    let regions: Arc<Mutex<std::collections::HashMap<String, String>>> = Arc::default();
    let crash = crate::crash::CrashAfter::default();
    let (f, l, h, vms, r, c) = (
        faults.clone(),
        log.clone(),
        hold.clone(),
        hosts.clone(),
        regions.clone(),
        crash.clone(),
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (f, l, h, r, c) = (f.clone(), l.clone(), h.clone(), r.clone(), c.clone());
            let vms = vms.lock().expect("hosts lock").clone();
            tokio::spawn(async move {
                let _ = serve(sock, upstream, f, l, h, vms, r, c).await;
            });
        }
    });
    FaultProxy {
        port,
        hold,
        faults,
        log,
        hosts,
        regions,
        upstream,
        task,
        crash,
    }
}

/// Reads one HTTP/1.1 request: head and a Content-Length body.
async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, buf[head_end..].to_vec())))
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/").replace('+', " "))
    })
}

fn region_of(head: &str) -> Option<String> {
    // Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, ...
    let cred = head.split("Credential=").nth(1)?;
    cred.split('/').nth(2).map(str::to_owned)
}

// One proxy connection's share of the proxy's state: bundling it would only rename the fields.
#[allow(clippy::too_many_arguments)]
async fn serve(
    mut sock: TcpStream,
    upstream: u16,
    faults: Arc<Mutex<Vec<Fault>>>,
    log: Arc<Mutex<ProxyLog>>,
    hold: Arc<Mutex<Option<Hold>>>,
    hosts: Option<Hosts>,
    regions: Arc<Mutex<std::collections::HashMap<String, String>>>,
    crash: crate::crash::CrashAfter,
) -> std::io::Result<()> {
    // Each answer closes the connection: the SDK then opens a fresh one, which keeps this proxy
    // free of keep-alive bookkeeping. So one request per connection.
    let Some((head, body)) = read_request(&mut sock).await? else {
        return Ok(());
    };
    {
        let text = String::from_utf8_lossy(&body).to_string();
        // EC2 and STS name the action in their form body; S3 is REST: its method and path.
        let action = form_value(&text, "Action").unwrap_or_else(|| s3_request(&head));
        let zone = form_value(&text, "Placement.AvailabilityZone");
        let itype = form_value(&text, "InstanceType");
        let region = region_of(&head);
        loop {
            let held = {
                let mut h = hold.lock().expect("hold lock");
                match h.as_mut() {
                    Some(h) if h.armed && h.trigger == action => {
                        h.triggered = true;
                        false
                    }
                    Some(h) if h.triggered && h.held == action => {
                        h.blocked = true;
                        true
                    }
                    Some(_) => false,
                    None => false,
                }
            };
            if !held {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let fault = {
            let mut faults = faults.lock().expect("faults lock");
            let hit = faults.iter_mut().find(|f| {
                f.action == action
                    && f.zone.is_none_or(|z| zone.as_deref() == Some(z))
                    && f.instance_type.is_none_or(|t| itype.as_deref() == Some(t))
                    && f.region.is_none_or(|r| region.as_deref() == Some(r))
                    && f.times.is_none_or(|n| n > 0)
            });
            hit.map(|f| {
                if let Some(n) = f.times.as_mut() {
                    *n -= 1;
                }
                f.clone()
            })
        };
        {
            let mut l = log.lock().expect("log lock");
            l.actions.push(action.clone());
            if let Some(f) = &fault {
                l.faults_sent
                    .push(format!("{} {}", f.code, zone.clone().unwrap_or_default()));
            }
        }
        let response = match fault {
            Some(f) if action.starts_with("S3 ") => s3_error(f.status, f.code),
            Some(f) => ec2_error(f.status, f.code, zone.as_deref(), itype.as_deref()),
            None => {
                let response = relay(&head, &body, upstream).await?;
                if action == "RunInstances"
                    && let Some(region) = &region
                {
                    let text = String::from_utf8_lossy(&response);
                    let mut map = regions.lock().expect("regions lock");
                    let mut at = 0;
                    while let Some((pos, id)) = element(&text, "instanceId", at) {
                        at = pos;
                        map.insert(id.to_owned(), region.clone());
                    }
                }
                match hosts {
                    // Starting sshds blocks; keep it off the runtime's workers.
                    Some(hosts) => tokio::task::spawn_blocking({
                        let action = action.clone();
                        move || place_on_hosts(&hosts, &action, &text, response)
                    })
                    .await
                    .map_err(std::io::Error::other)?,
                    None => response,
                }
            }
        };
        crash.after_request(&action).await;
        sock.write_all(&response).await?;
    }
    Ok(())
}

/// `"S3 GET /bucket/key"` from the request line `GET /bucket/key?x-id=GetObject HTTP/1.1`.
fn s3_request(head: &str) -> String {
    let mut line = head.lines().next().unwrap_or_default().split(' ');
    let method = line.next().unwrap_or_default();
    let target = line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    format!("S3 {method} {path}")
}

/// S3's error document (`<Error>` at the root, unlike EC2's), as S3 sends it.
fn s3_error(status: u16, code: &str) -> Vec<u8> {
    let message = match code {
        "SlowDown" => "Please reduce your request rate.",
        "InternalError" => "We encountered an internal error. Please try again.",
        "AccessDenied" => "Access Denied",
        _ => "injected by the test proxy",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
    );
    let reason = match status {
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Slow Down",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// EC2's error document, as EC2 sends it.
fn ec2_error(status: u16, code: &str, zone: Option<&str>, itype: Option<&str>) -> Vec<u8> {
    let message = match code {
        "InsufficientInstanceCapacity" => format!(
            "We currently do not have sufficient {} capacity in the Availability Zone you requested ({}). Our system will be working on provisioning additional capacity.",
            itype.unwrap_or("instance"),
            zone.unwrap_or("unknown")
        ),
        "RequestLimitExceeded" => "Request limit exceeded.".to_owned(),
        "AuthFailure" => "AWS was not able to validate the provided access credentials".to_owned(),
        "VcpuLimitExceeded" => {
            "You have requested more vCPU capacity than your current vCPU limit allows".to_owned()
        }
        "InternalError" => "An internal error has occurred".to_owned(),
        other => format!("{other} (injected by the test proxy)"),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>5d4ad6ab-0f26-4e0f-a8e2-0123456789ab</RequestID></Response>"
    );
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn relay(head: &str, body: &[u8], upstream: u16) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    let mut new_head = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if line.is_empty() {
            continue;
        }
        new_head.push_str(line);
        new_head.push_str("\r\n");
    }
    new_head.push_str("Connection: close\r\n\r\n");
    up.write_all(new_head.as_bytes()).await?;
    up.write_all(body).await?;
    let mut out = Vec::new();
    up.read_to_end(&mut out).await?;
    Ok(out)
}

fn form_values<'a>(body: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    form_urlencoded::parse(body.as_bytes())
        .filter(move |(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.into_owned())
}

/// What a real instance's side effects would be: keys installed, hosts powered on or off, and
/// the answer's addresses those of the hosts.
fn place_on_hosts(hosts: &Hosts, action: &str, form: &str, response: Vec<u8>) -> Vec<u8> {
    match action {
        "ImportKeyPair" => {
            // The SDK sends the key base64-encoded; cloud-init installs it on every instance.
            for material in form_values(form, "PublicKeyMaterial") {
                if let Ok(key) = base64::engine::general_purpose::STANDARD.decode(material.trim()) {
                    hosts.authorize_all(&String::from_utf8_lossy(&key));
                }
            }
            response
        }
        "StopInstances" => {
            form_values(form, "InstanceId.").for_each(|id| hosts.detach(&id));
            response
        }
        "TerminateInstances" => {
            form_values(form, "InstanceId.").for_each(|id| hosts.delete(&id));
            response
        }
        "DescribeInstances" => rewrite_addresses(hosts, response),
        _ => response,
    }
}

/// Text between `<tag>` and `</tag>` at or after `from`, and where it starts.
fn element<'a>(text: &'a str, tag: &str, from: usize) -> Option<(usize, &'a str)> {
    let open = format!("<{tag}>");
    let start = text[from..].find(&open)? + from + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some((start, &text[start..end]))
}

fn rewrite_addresses(hosts: &Hosts, response: Vec<u8>) -> Vec<u8> {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut body = String::from_utf8_lossy(&response[split + 4..]).into_owned();
    let mut swaps: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    // Each instance: its id, then its state, then its own (top-level) private and public IPs,
    // which come before the next instance's network interfaces.
    while let Some((pos, id)) = element(&body, "instanceId", at) {
        at = pos;
        let Some((state_at, state)) = element(&body, "instanceState", pos) else {
            break;
        };
        let running = element(state, "name", 0).is_some_and(|(_, n)| n == "running");
        if !running {
            if !state.contains("<name>pending</name>") {
                hosts.detach(id);
            }
            continue;
        }
        let addr = match hosts.attach(id) {
            Ok(addr) => addr,
            Err(e) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("fault proxy: no host for {id}: {e}");
                }
                continue;
            }
        };
        let next = body[state_at..]
            .find("<instanceId>")
            .map_or(body.len(), |n| n + state_at);
        for tag in ["privateIpAddress", "ipAddress"] {
            if let Some((_, ip)) = element(&body[..next], tag, state_at) {
                swaps.push((format!(">{ip}<"), format!(">{addr}<")));
            }
        }
    }
    for (from, to) in swaps {
        body = body.replace(&from, &to);
    }
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// What EC2 does after the guest of instance `id` shut down: stop it, or terminate it when its
/// `InstanceInitiatedShutdownBehavior` is `terminate`; the host is powered off (and its disk
/// deleted with the instance). Called from the hosts' thread, so plain blocking sockets.
fn guest_shutdown(hosts: &Hosts, moto_port: u16, region: &str, id: &str) {
    let behaviour = moto_call(
        moto_port,
        region,
        &format!(
            "Action=DescribeInstanceAttribute&Version=2016-11-15&InstanceId={id}\
             &Attribute=instanceInitiatedShutdownBehavior"
        ),
    );
    let terminate = behaviour
        .as_deref()
        .is_ok_and(|b| b.contains("<value>terminate</value>"));
    let action = if terminate {
        "TerminateInstances"
    } else {
        "StopInstances"
    };
    let done = moto_call(
        moto_port,
        region,
        &format!("Action={action}&Version=2016-11-15&InstanceId.1={id}"),
    );
    if let Err(e) = behaviour.and(done) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("fault proxy: guest shutdown of {id}: {e}");
        }
        return;
    }
    if terminate {
        hosts.delete(id);
    } else {
        hosts.detach(id);
    }
}

/// The head of an EC2 Query POST to moto for `region` (without the blank line that ends it):
/// moto routes by the credential scope's service and region, and checks no signature.
fn moto_head(moto_port: u16, region: &str, body_len: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{moto_port}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=AKIATEST/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n"
    )
}

/// One EC2 Query call straight to moto (which routes by the credential scope and checks no
/// signature); the answer's body, or why there was none.
fn moto_call(moto_port: u16, region: &str, body: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", moto_port))
        .map_err(|e| format!("connect to moto: {e}"))?;
    let request = format!(
        "{}Connection: close\r\n\r\n{body}",
        moto_head(moto_port, region, body.len())
    );
    sock.write_all(request.as_bytes())
        .map_err(|e| format!("write to moto: {e}"))?;
    let mut answer = String::new();
    sock.read_to_string(&mut answer)
        .map_err(|e| format!("read from moto: {e}"))?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("moto answered {answer}"));
    }
    Ok(answer)
}

/// Ids of the instances in `region` that carry the tag key `tag_key` and are not terminated,
/// asked of moto directly (not through any provider's bookkeeping): what "nothing left behind"
/// is checked against where the AWS SDK is not at hand.
pub async fn live_instances(moto_port: u16, region: &str, tag_key: &str) -> Vec<String> {
    instance_states(moto_port, region, tag_key)
        .await
        .into_iter()
        .filter(|(_, state)| state != "terminated")
        .map(|(id, _)| id)
        .collect()
}

/// Every instance in `region` carrying the tag key `tag_key`, with its state name
/// (`running`, `stopped`, `terminated`, ...), asked of moto directly.
pub async fn instance_states(moto_port: u16, region: &str, tag_key: &str) -> Vec<(String, String)> {
    let body = format!(
        "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag-key&Filter.1.Value.1={tag_key}"
    );
    let head = moto_head(moto_port, region, body.len());
    let answer = relay(&head, body.as_bytes(), moto_port)
        .await
        .expect("DescribeInstances on moto");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((pos, id)) = element(&text, "instanceId", at) {
        at = pos;
        let state = element(&text, "instanceState", pos)
            .and_then(|(_, s)| element(s, "name", 0).map(|(_, n)| n.to_owned()))
            .unwrap_or_default();
        out.push((id.to_owned(), state));
    }
    out
}

/// The live (not terminated) instances in `region` carrying the tag key `tag_key`, each with the
/// value of its tag `value_key` if it has one, asked of moto directly (DescribeTags gives the
/// values by resource id).
pub async fn live_instances_with(
    moto_port: u16,
    region: &str,
    tag_key: &str,
    value_key: &str,
) -> Vec<(String, Option<String>)> {
    let body = format!(
        "Action=DescribeTags&Version=2016-11-15&Filter.1.Name=key&Filter.1.Value.1={value_key}\
         &Filter.2.Name=resource-type&Filter.2.Value.1=instance"
    );
    let head = moto_head(moto_port, region, body.len());
    let answer = relay(&head, body.as_bytes(), moto_port)
        .await
        .expect("DescribeTags on moto");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let mut values = std::collections::HashMap::new();
    let mut at = 0;
    while let Some((pos, id)) = element(&text, "resourceId", at) {
        at = pos;
        if let Some((_, value)) = element(&text, "value", pos) {
            values.insert(id.to_owned(), value.to_owned());
        }
    }
    live_instances(moto_port, region, tag_key)
        .await
        .into_iter()
        .map(|id| {
            let value = values.get(&id).cloned();
            (id, value)
        })
        .collect()
}

/// The names of the security groups in `region` other than the VPCs' `default`, asked of moto
/// directly: what a clean `down` must leave behind (nothing of its own).
pub async fn security_groups(moto_port: u16, region: &str) -> Vec<String> {
    let body = "Action=DescribeSecurityGroups&Version=2016-11-15";
    let head = moto_head(moto_port, region, body.len());
    let answer = relay(&head, body.as_bytes(), moto_port)
        .await
        .expect("DescribeSecurityGroups on moto");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((pos, name)) = element(&text, "groupName", at) {
        at = pos;
        if name != "default" && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// Starts one instance straight on moto, tagged with `tags`: what SkyPilot or another Sky home
/// leaves in a shared account. It is never placed on a test host (nothing of Sky's may reach it),
/// so it keeps moto's made-up address, which no test dials. Its id.
pub async fn run_foreign_instance(moto_port: u16, region: &str, tags: &[(&str, &str)]) -> String {
    let mut body = "Action=RunInstances&Version=2016-11-15&ImageId=ami-0123456789abcdef0\
                    &MinCount=1&MaxCount=1&InstanceType=m5.large\
                    &TagSpecification.1.ResourceType=instance"
        .to_owned();
    for (i, (key, value)) in tags.iter().enumerate() {
        let n = i + 1;
        let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        body.push_str(&format!(
            "&TagSpecification.1.Tag.{n}.Key={}&TagSpecification.1.Tag.{n}.Value={}",
            enc(key),
            enc(value)
        ));
    }
    let head = moto_head(moto_port, region, body.len());
    let answer = relay(&head, body.as_bytes(), moto_port)
        .await
        .expect("RunInstances on moto");
    let text = String::from_utf8_lossy(&answer).into_owned();
    element(&text, "instanceId", 0)
        .map(|(_, id)| id.to_owned())
        .unwrap_or_else(|| panic!("moto started no instance: {text}"))
}
