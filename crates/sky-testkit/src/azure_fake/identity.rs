//! Managed identities of the fake ARM, as a VM's own code meets them:
//! - a VM created with `identity.type: SystemAssigned` gets a principal (`identity.principalId`);
//! - the instance metadata service on the same listener: `GET /metadata/identity/oauth2/token`
//!   (header `Metadata: true`) gives the VM placed on the calling host a token for its own
//!   principal, found by the caller's address, and `GET /metadata/instance/compute/{field}`
//!   (`format=text`) its subscription, resource group and name;
//! - role assignments (`Microsoft.Authorization/roleAssignments`, PUT/GET/DELETE at a resource
//!   group's scope, deleted with the group as ARM deletes extension resources) say what a
//!   principal may do; every ARM call made with a managed identity's token is checked against
//!   them and refused with ARM's 403 `AuthorizationFailed` otherwise;
//! - `GET /subscriptions/{id}/providers/Microsoft.Authorization/permissions`: what the service
//!   principal may do (Owner, or Contributor after [`FakeArm::forbid_role_assignments`]).
//!
//! Roles modeled: Contributor and Virtual Machine Contributor (by their built-in ids).
//!
//! [`FakeArm::forbid_role_assignments`]: super::FakeArm::forbid_role_assignments

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::Method;
use serde_json::{Value, json};

use super::http::{Resp, arm_error, reply};
use super::{CLIENT, State, TENANT};

pub const ROLE_CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const ROLE_VM_CONTRIBUTOR: &str = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c";
const API_AUTHORIZATION: &str = "2022-04-01";
const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";

/// Gives a VM body asking for a system-assigned identity its principal, as ARM does: a new one
/// for a new VM, the one it has for an update of VM `key`.
pub(super) fn give_identity(s: &mut State, key: &str, vm: &mut Value) {
    let wants = vm["identity"]["type"]
        .as_str()
        .is_some_and(|t| t.split(',').any(|p| p.trim() == "SystemAssigned"));
    if !wants {
        return;
    }
    let kept = s
        .resources
        .get(key)
        .and_then(|old| old["identity"]["principalId"].as_str().map(str::to_owned));
    let principal = kept.unwrap_or_else(|| {
        s.next_id += 1;
        format!("{:08x}-5a1e-4d00-8000-{:012x}", s.next_id, s.next_id * 7919)
    });
    vm["identity"]["principalId"] = json!(principal);
    vm["identity"]["tenantId"] = json!(TENANT);
}

fn imds_error(status: u16, error: &str, description: &str) -> Resp {
    reply(
        status,
        &json!({"error": error, "error_description": description}),
        &[],
    )
}

/// The VM placed on the host at `peer`'s address (its lower-cased id and body).
fn caller(s: &State, peer: Option<SocketAddr>) -> Option<(String, Value)> {
    let ip = peer?.ip().to_string();
    let hosts = s.hosts.as_ref()?;
    let (key, _) = hosts.placed().into_iter().find(|(_, addr)| *addr == ip)?;
    s.resources.get(&key).map(|vm| (key, vm.clone()))
}

/// `GET /metadata/...`: the instance metadata service, for the VM on the calling host.
pub(super) fn imds(
    s: &mut State,
    path: &str,
    query: &HashMap<String, String>,
    metadata_header: bool,
    peer: Option<SocketAddr>,
) -> Resp {
    if !metadata_header {
        return imds_error(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if !query.contains_key("api-version") {
        return imds_error(
            400,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some((key, vm)) = caller(s, peer) else {
        return imds_error(404, "not_found", "No VM runs at the calling address");
    };
    if let Some(field) = path.strip_prefix("/metadata/instance/compute/") {
        // `/subscriptions/{sub}/resourcegroups/{rg}/providers/...`, as IMDS reports them.
        let id = vm["id"].as_str().unwrap_or_default();
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        let value = match field {
            "subscriptionId" => parts.get(1).copied(),
            "resourceGroupName" => parts.get(3).copied(),
            "name" => vm["name"].as_str(),
            _ => None,
        };
        return match value {
            Some(v) => hyper::Response::builder()
                .status(200)
                .header("content-type", "text/plain; charset=utf-8")
                .body(http_body_util::Full::new(hyper::body::Bytes::from(
                    v.to_owned(),
                )))
                .unwrap_or_else(|_| reply(500, &Value::Null, &[])),
            None => imds_error(404, "not_found", &format!("no field {field}")),
        };
    }
    if path != "/metadata/identity/oauth2/token" {
        return imds_error(404, "not_found", "no such metadata path");
    }
    let Some(resource) = query.get("resource") else {
        return imds_error(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let Some(principal) = vm["identity"]["principalId"].as_str().map(str::to_owned) else {
        return imds_error(400, "invalid_request", "Identity not found");
    };
    s.next_id += 1;
    let token = format!("fake-mi-token-{}", s.next_id);
    s.identity_tokens.insert(token.clone(), principal.clone());
    s.log.push(format!("IMDS token for {key}"));
    reply(
        200,
        &json!({
            "access_token": token, "client_id": principal, "expires_in": "86399",
            "expires_on": "1796500000", "ext_expires_in": "86399", "not_before": "1796413300",
            "resource": resource, "token_type": "Bearer",
        }),
        &[],
    )
}

/// The role assignments there are, as stored resources.
fn assignments(s: &State) -> impl Iterator<Item = &Value> {
    s.resources
        .values()
        .filter(|r| r["type"].as_str() == Some(ASSIGNMENT_TYPE))
}

/// `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}` at a resource group.
pub(super) fn role_assignment(
    s: &mut State,
    method: &Method,
    seg: &[&str],
    api: &str,
    body: &[u8],
) -> Resp {
    if api != API_AUTHORIZATION {
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{api}' is invalid."),
        );
    }
    let id = format!("/{}", seg.join("/"));
    let key = id.to_lowercase();
    let scope = format!("/{}", seg[..4].join("/"));
    let name = seg[7];
    match *method {
        Method::GET => match s.resources.get(&key) {
            Some(a) => reply(200, a, &[]),
            None => arm_error(
                404,
                "RoleAssignmentNotFound",
                &format!("The role assignment '{name}' is not found."),
            ),
        },
        Method::DELETE => match s.resources.remove(&key) {
            Some(a) => reply(200, &a, &[]),
            None => reply(204, &Value::Null, &[]),
        },
        Method::PUT => {
            if s.forbid_role_assignments {
                return arm_error(
                    403,
                    "AuthorizationFailed",
                    &format!(
                        "The client '{CLIENT}' with object id '{CLIENT}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '{id}' or the scope is invalid. If access was recently granted, please refresh your credentials."
                    ),
                );
            }
            let is_guid = name.len() == 36
                && name.chars().enumerate().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            if !is_guid {
                return arm_error(
                    400,
                    "InvalidRoleAssignmentId",
                    &format!(
                        "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
                    ),
                );
            }
            let Ok(b) = serde_json::from_slice::<Value>(body) else {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                );
            };
            let (Some(role), Some(principal)) = (
                b["properties"]["roleDefinitionId"].as_str(),
                b["properties"]["principalId"].as_str(),
            ) else {
                return arm_error(
                    400,
                    "InvalidRoleAssignmentRequest",
                    "roleDefinitionId and principalId are required.",
                );
            };
            let known = s
                .resources
                .values()
                .any(|r| r["identity"]["principalId"].as_str() == Some(principal));
            if !known {
                return arm_error(
                    400,
                    "PrincipalNotFound",
                    &format!("Principal {principal} does not exist in the directory {TENANT}."),
                );
            }
            let duplicate = assignments(s).any(|a| {
                a["properties"]["principalId"].as_str() == Some(principal)
                    && a["properties"]["roleDefinitionId"].as_str() == Some(role)
                    && a["properties"]["scope"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&scope))
            });
            if s.resources.contains_key(&key) || duplicate {
                return arm_error(
                    409,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                );
            }
            let a = json!({
                "id": id, "name": name, "type": ASSIGNMENT_TYPE,
                "properties": {
                    "roleDefinitionId": role, "principalId": principal,
                    "principalType": b["properties"]["principalType"], "scope": scope,
                },
            });
            s.resources.insert(key, a.clone());
            reply(201, &a, &[])
        }
        _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
    }
}

/// `GET /subscriptions/{id}/providers/Microsoft.Authorization/permissions`.
pub(super) fn permissions(s: &State) -> Resp {
    let not_actions: Vec<&str> = if s.forbid_role_assignments {
        // The built-in Contributor role's exclusions.
        vec![
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
        ]
    } else {
        Vec::new()
    };
    reply(
        200,
        &json!({"value": [{"actions": ["*"], "notActions": not_actions,
            "dataActions": [], "notDataActions": []}]}),
        &[],
    )
}

/// The ARM action a request performs, as role definitions name it.
fn action_of(method: &Method, l: &[&str]) -> String {
    let verb = match *method {
        Method::GET => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    match l {
        [_, _, "resourcegroups", _] => {
            format!("Microsoft.Resources/subscriptions/resourceGroups/{verb}")
        }
        [_, _, "resourcegroups", _, "providers", ns, ty, _, action] if *method == Method::POST => {
            format!("{ns}/{ty}/{action}/action")
        }
        [_, _, "resourcegroups", _, "providers", ns, ty, ..] => format!("{ns}/{ty}/{verb}"),
        _ => format!("Microsoft.Resources/subscriptions/{verb}"),
    }
}

fn role_allows(role: &str, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    if role == ROLE_CONTRIBUTOR {
        return !(action.starts_with("microsoft.authorization/")
            && (action.ends_with("/write") || action.ends_with("/delete")));
    }
    if role == ROLE_VM_CONTRIBUTOR {
        return action.starts_with("microsoft.compute/virtualmachines/")
            || (action.starts_with("microsoft.network/") && action.ends_with("/read"))
            || action == "microsoft.resources/subscriptions/resourcegroups/read";
    }
    false
}

/// `None` when `principal` may make this call; ARM's 403 otherwise. Polling an operation is
/// always allowed (ARM lets a caller follow what it started).
pub(super) fn authorize(
    s: &State,
    principal: &str,
    method: &Method,
    path: &str,
    l: &[&str],
) -> Option<Resp> {
    if matches!(
        l,
        [_, _, "operationresults", _] | [_, _, "providers", _, "locations", _, "operations", _]
    ) {
        return None;
    }
    let action = action_of(method, l);
    let target = path.to_lowercase();
    let allowed = assignments(s).any(|a| {
        let scope = a["properties"]["scope"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let role = a["properties"]["roleDefinitionId"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default();
        a["properties"]["principalId"].as_str() == Some(principal)
            && (target == scope || target.starts_with(&format!("{scope}/")))
            && role_allows(role, &action)
    });
    (!allowed).then(|| {
        arm_error(
            403,
            "AuthorizationFailed",
            &format!(
                "The client '{principal}' with object id '{principal}' does not have authorization to perform action '{action}' over scope '{path}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
        )
    })
}
