//! A local fake of the parts of Azure Resource Manager and the identity platform Sky uses, on
//! `127.0.0.1:<free port>`, speaking the REST shapes of the API reference: the client-credentials
//! token endpoint; subscriptions; resource groups (PUT/GET/list/DELETE with a `Location`
//! operation); network security groups, virtual networks, public IPs and NICs (PUT with an
//! `Azure-AsyncOperation`); virtual machines (PUT with `Azure-AsyncOperation`, GET and list with
//! `$expand=instanceView`, deallocate/start with both `Azure-AsyncOperation` and `Location` on
//! one operation, DELETE with `Location`); `api-version` required on
//! every call; bearer tokens checked; errors as `{"error":{"code":..,"message":..}}`.
//!
//! Faults are injected per VM creation (by region and zone), either as the synchronous 4xx ARM
//! answers or as a Failed asynchronous operation; per power action as a Failed operation
//! ([`FakeArm::fail_power`]); and as rejected or revoked tokens. What it does
//! not do: validate every property, bill, or model anything Sky does not call.
//!
//! With [`FakeArm::with_hosts`], VMs are real SSH hosts: a running VM is placed on a host of the
//! pool (its address as the public IP resource's `ipAddress` and the NIC's private address, a new
//! one after deallocate/start) and its OS profile's SSH keys for `adminUsername` are installed.

mod hosts;
mod http;
mod identity;
mod ops;
mod resources;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::net::TcpListener;

use http::handle;
pub use identity::{ROLE_CONTRIBUTOR, ROLE_VM_CONTRIBUTOR};

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
    hosts: Option<crate::hosts::Hosts>,
    /// Requests still to throttle, by HTTP method (`GET`, `PUT`, `POST`, `DELETE`).
    throttle: HashMap<String, u32>,
    throttle_retry_after: u64,
    throttled: u32,
    /// Power actions (`start`, `deallocate`) whose next operations end Failed with this code.
    power_faults: Vec<PowerFault>,
    /// Tokens the metadata service gave managed identities, with their principal ids.
    identity_tokens: HashMap<String, String>,
    /// The service principal may not create role assignments (a Contributor, not an Owner).
    forbid_role_assignments: bool,
}

struct PowerFault {
    action: String,
    code: String,
    times: u32,
}

#[derive(Clone)]
pub struct FakeArm {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Kills a client after its Nth request (see [`crate::crash`]).
    pub crash: crate::crash::CrashAfter,
}

impl FakeArm {
    /// Starts the fake; `secret` is the one client secret the token endpoint accepts.
    pub async fn start(secret: &str) -> FakeArm {
        Self::start_on("127.0.0.1", secret).await
    }

    /// Starts the fake on `ip` (a free port): the hosts' [gateway](crate::hosts::Hosts::gateway)
    /// when VMs on them must reach ARM and the metadata service, as a head calling its cloud does.
    pub async fn start_on(ip: &str, secret: &str) -> FakeArm {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind fake ARM");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_owned(),
            op_polls: 1,
            ..State::default()
        }));
        let st = state.clone();
        let crash = crate::crash::CrashAfter::default();
        crate::serve(listener, crash.clone(), move |req| {
            handle(st.clone(), addr, req)
        });
        FakeArm { addr, state, crash }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends every long-running operation, as ARM does whether or not anyone polls it (a client
    /// killed mid-launch): its effect is applied, and a later poll reads the outcome.
    pub fn settle(&self) {
        let mut st = self.lock();
        let ids: Vec<String> = st.ops.keys().cloned().collect();
        for id in ids {
            while let Some(None) = ops::step(&mut st, &id) {}
        }
    }

    /// Makes the service principal a Contributor rather than an Owner: it may not create role
    /// assignments, as in many companies' subscriptions.
    pub fn forbid_role_assignments(&self) {
        self.lock().forbid_role_assignments = true;
    }

    /// Every role assignment there is (ARM's JSON).
    pub fn role_assignments(&self) -> Vec<Value> {
        self.lock()
            .resources
            .values()
            .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
            .cloned()
            .collect()
    }

    /// Places running VMs on `hosts` from now on.
    pub fn with_hosts(&self, hosts: crate::hosts::Hosts) {
        self.lock().hosts = Some(hosts);
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.faults.clear();
        s.power_faults.clear();
    }

    /// The next `times` power actions `action` (`start` or `deallocate`) are accepted (202) and
    /// their operation ends Failed with `code`, the VM left as it was: how Compute reports a
    /// start it cannot place (`AllocationFailed`, `ZonalAllocationFailed`) or a deallocate that
    /// conflicts with another operation.
    pub fn fail_power(&self, action: &str, code: &str, times: u32) {
        self.lock().power_faults.push(PowerFault {
            action: action.to_ascii_lowercase(),
            code: code.into(),
            times,
        });
    }

    /// Operations stay InProgress for `polls` polls, each answer asking for `retry_after` s.
    pub fn set_operation_pace(&self, polls: u32, retry_after: u64) {
        let mut s = self.lock();
        s.op_polls = polls;
        s.retry_after = retry_after;
    }

    /// Throttles the next `n` ARM requests made with `method`, as Compute does: HTTP 429 with
    /// `Retry-After: retry_after` and an `OperationNotAllowed` error whose detail is
    /// `TooManyRequests` (the shape the request-limits reference shows).
    pub fn throttle(&self, method: &str, n: u32, retry_after: u64) {
        let mut s = self.lock();
        s.throttle.insert(method.to_ascii_uppercase(), n);
        s.throttle_retry_after = retry_after;
    }

    /// How many requests were answered with 429 so far.
    pub fn throttled_count(&self) -> u32 {
        self.lock().throttled
    }

    /// A token ARM accepts from now on, as Entra ID issues one to the Azure CLI (which a test's
    /// stand-in `az` then prints).
    pub fn issue_token(&self) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let t = format!("fake-cli-token-{}", s.next_id);
        s.tokens.push(t.clone());
        t
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

    /// Every stored resource of an ARM type (`Microsoft.Network/networkSecurityGroups`), as
    /// its PUT body plus id, name and type.
    pub fn resources_of_type(&self, full_type: &str) -> Vec<Value> {
        self.lock()
            .resources
            .values()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(full_type))
            })
            .cloned()
            .collect()
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
