//! Resources of the fake ARM: resource groups, network resources and virtual machines (creation
//! with injected faults, power actions, deletion), and the `instanceView` Sky reads.

use hyper::Method;
use serde_json::{Value, json};

use super::http::{Resp, arm_error, arm_error_at, fault_message, reply};
use super::ops::{async_header, location_header};
use super::{Done, Mode, SUBSCRIPTION, State};
pub(super) fn group(
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

pub(super) fn vm_view(vm: &Value, expand: bool) -> Value {
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

pub(super) fn resource(
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
        // Compute answers a power action with both an `Azure-AsyncOperation` status URL and a
        // `Location` URL (the REST reference's examples); a failure shows in the former.
        let action = l[8].to_owned();
        let failure = s
            .power_faults
            .iter_mut()
            .find(|f| f.action == action && f.times > 0)
            .map(|f| {
                f.times -= 1;
                let message = match f.code.as_str() {
                    "AllocationFailed" | "ZonalAllocationFailed" => format!(
                        "Allocation failed. We do not have sufficient capacity for the requested \
                         VM size in this region. Read more about improving likelihood of \
                         allocation success at http://aka.ms/allocation-guidance (VM '{name}')"
                    ),
                    _ => format!("Operation '{action}' is not allowed on VM '{name}' now."),
                };
                (f.code.clone(), message)
            });
        let location = s.resources[&key]["location"]
            .as_str()
            .unwrap_or("eastus")
            .to_owned();
        let done = if failure.is_some() {
            Done::Nothing
        } else {
            Done::VmPower(key, power)
        };
        // One operation behind both URLs, so polling either advances it.
        let mut h = async_header(s, base, &location, failure, done);
        let id = h[0]
            .1
            .rsplit('/')
            .next()
            .and_then(|t| t.split('?').next())
            .unwrap_or_default()
            .to_owned();
        h.push((
            "location",
            format!(
                "{base}/subscriptions/{SUBSCRIPTION}/operationresults/{id}?api-version=2024-07-01"
            ),
        ));
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

pub(super) fn put_vm(
    s: &mut State,
    base: &str,
    key: String,
    mut b: Value,
    location: &str,
    rg_key: &str,
) -> Resp {
    super::identity::give_identity(s, &key, &mut b);
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
    if let Some(refused) = check_computer_name(&b) {
        return refused;
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

/// Characters Azure refuses in a Linux host name, as its error message lists them.
const LINUX_HOST_FORBIDDEN: &str = "`~!@#$%^&*()=+_[]{}\\|;:'\",<>/?";

/// ARM's check of a Linux VM's `computerName`: at most 64 characters, none of
/// [`LINUX_HOST_FORBIDDEN`], not ending in `.` or `-`; refused with its 400 `InvalidParameter`.
pub(super) fn check_computer_name(vm: &Value) -> Option<Resp> {
    let name = vm.pointer("/properties/osProfile/computerName")?.as_str()?;
    let linux = vm
        .pointer("/properties/osProfile/linuxConfiguration")
        .is_some();
    if !linux {
        return None;
    }
    let bad = name.is_empty()
        || name.chars().count() > 64
        || name.ends_with(['.', '-'])
        || name.contains(|c: char| LINUX_HOST_FORBIDDEN.contains(c) || c.is_whitespace());
    bad.then(|| {
        arm_error_at(
            400,
            "InvalidParameter",
            "Linux host name cannot exceed 64 characters in length or contain the following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.",
            "computerName",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(host: &str) -> Value {
        json!({"properties": {"osProfile": {"computerName": host, "linuxConfiguration": {}}}})
    }

    #[test]
    fn linux_host_names_are_checked_as_arm_does() {
        for ok in ["c1-0", "Dev-0", "a.b-1", &"x".repeat(64)] {
            assert!(check_computer_name(&vm(ok)).is_none(), "{ok}");
        }
        for bad in ["my_cluster-0", &"x".repeat(65), "a-", "a.", "a b", ""] {
            let refused = check_computer_name(&vm(bad)).expect(bad);
            assert_eq!(refused.status(), 400, "{bad}");
            assert_eq!(refused.headers()["x-ms-error-code"], "InvalidParameter");
        }
        // Windows names are not Linux host names; this fake only models Linux.
        let windows = json!({"properties": {"osProfile": {"computerName": "a_b"}}});
        assert!(check_computer_name(&windows).is_none());
    }
}
