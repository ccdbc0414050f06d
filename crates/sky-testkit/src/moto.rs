//! Test harness: a `moto_server` per test on a free port, and a fault-injecting HTTP proxy in front
//! of it that answers chosen RunInstances calls with EC2's real error XML and status.
//!
//! moto cannot produce capacity, quota or throttling errors; the proxy can. It parses each EC2
//! Query request's form body and, when a [`Fault`] matches (action, zone, instance type), answers
//! itself; otherwise it relays the request to moto unchanged. What this harness does not do:
//! fake EC2 behaviour beyond errors (moto is the EC2 here).

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sky_aws::{AwsOptions, AwsProvider, CredentialSource, Throttle};
use sky_core::cloud::CloudId;
use sky_core::credentials::{AwsCredentials, Secret};
use sky_core::provision::Launchable;
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
    task: tokio::task::JoinHandle<()>,
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
    let (f, l, h) = (faults.clone(), log.clone(), hold.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (f, l, h) = (f.clone(), l.clone(), h.clone());
            tokio::spawn(async move {
                let _ = serve(sock, upstream, f, l, h).await;
            });
        }
    });
    FaultProxy {
        port,
        hold,
        faults,
        log,
        task,
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

async fn serve(
    mut sock: TcpStream,
    upstream: u16,
    faults: Arc<Mutex<Vec<Fault>>>,
    log: Arc<Mutex<ProxyLog>>,
    hold: Arc<Mutex<Option<Hold>>>,
) -> std::io::Result<()> {
    // Each answer closes the connection: the SDK then opens a fresh one, which keeps this proxy
    // free of keep-alive bookkeeping. So one request per connection.
    let Some((head, body)) = read_request(&mut sock).await? else {
        return Ok(());
    };
    {
        let text = String::from_utf8_lossy(&body).to_string();
        let action = form_value(&text, "Action").unwrap_or_default();
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
            Some(f) => ec2_error(f.status, f.code, zone.as_deref(), itype.as_deref()),
            None => relay(&head, &body, upstream).await?,
        };
        sock.write_all(&response).await?;
    }
    Ok(())
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

/// Made-up credentials moto accepts (it checks nothing).
pub fn test_credentials() -> AwsCredentials {
    AwsCredentials {
        access_key_id: format!("AKIA{}", "TESTTESTTESTTEST"),
        secret_access_key: Secret::new(format!("made-up-{}", std::process::id())),
        session_token: None,
    }
}

pub const TEST_REGIONS: [&str; 3] = ["us-east-1", "us-east-2", "us-west-2"];

/// A Sky home with the SSH public key the launch imports.
pub fn sky_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let ssh = dir.path().join("ssh");
    std::fs::create_dir_all(&ssh).expect("ssh dir");
    std::fs::write(
        ssh.join("sky-key.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr8H8G1mBuTRjDEOk8a+qW2jY4cNNtWmWd0Uq7q5Zrg sky@test\n",
    )
    .expect("write key");
    dir
}

pub fn options(home: &Path, endpoint: &str) -> AwsOptions {
    let mut o = AwsOptions::new(home);
    o.endpoint_url = Some(endpoint.to_owned());
    o.credentials = CredentialSource::Fixed(test_credentials());
    o.regions = Some(TEST_REGIONS.iter().map(|s| (*s).to_owned()).collect());
    o.image_id = Some("ami-0123456789abcdef0".into());
    o.disk_gib = 20;
    o.poll_interval = Duration::from_millis(50);
    o.wait_timeout = Duration::from_secs(30);
    o.throttle = Throttle {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        retries: 4,
    };
    o
}

pub fn provider(home: &Path, endpoint: &str) -> AwsProvider {
    AwsProvider::new(options(home, endpoint))
}

pub fn launchable(region: &str, zone: Option<&str>, itype: &str, spot: bool) -> Launchable {
    Launchable {
        cloud: CloudId::Aws,
        region: region.into(),
        zone: zone.map(str::to_owned),
        instance_type: itype.into(),
        use_spot: spot,
        vcpus: 2.0,
        memory_gib: 8.0,
        accelerators: None,
        hourly_price: 0.1,
    }
}

/// Every live Sky-tagged instance in the test regions, straight from EC2 (not through the
/// provider's own bookkeeping): what "nothing left behind" is checked against.
pub async fn live_tagged(p: &AwsProvider) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for region in TEST_REGIONS {
        let client = p.client(region).expect("client");
        for n in sky_aws::ec2::describe(&client, None)
            .await
            .expect("describe")
        {
            if n.alive() {
                out.push((region.to_owned(), n.instance_id));
            }
        }
    }
    out
}
