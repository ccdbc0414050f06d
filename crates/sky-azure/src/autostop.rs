//! Autostop on Azure: the head deallocates its own cluster, or deletes its resource group, through
//! its own system-assigned managed identity.
//!
//! A guest shutdown is not enough here: a VM that powers itself off is `stopped`, not
//! `deallocated`, and still bills for compute. So the head VM is created with a system-assigned
//! identity (it can do nothing until a role is assigned to it), and `sky autostop` grants that
//! identity, with the user's credentials, exactly what the setting needs, scoped to the
//! cluster's resource group: Virtual Machine Contributor to deallocate (`-i N`), Contributor to
//! delete the group (`-i N --down`). Cancelling autostop takes the role back; `down` deletes the
//! group, and the assignment with it (ARM deletes a scope's extension resources with it). No
//! user credential ever reaches the cluster.
//!
//! When autostop fires, the head's hook (a POSIX shell script run by the agent, with `curl`, so
//! the agent carries no Azure SDK) asks the instance metadata service for its subscription,
//! resource group and a token for its identity, then deallocates every worker and itself, or
//! deletes the group. The token reaches `curl` on stdin, never on a command line.
//!
//! An account where the user may not create role assignments (a Contributor, not an Owner, as
//! in many companies) cannot have autostop: `sky autostop` says why, and a launch with `-i`
//! runs without it and says so.

use serde_json::{Value, json};
use sky_core::jobs::wire::AutostopHook;
use sky_core::provision::{ProvisionError, ProvisionErrorKind};
use sky_core::ssh::session::quote;

use crate::arm::Arm;

/// Built-in role ids (the same in every tenant).
pub const ROLE_CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const ROLE_VM_CONTRIBUTOR: &str = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c";
pub const API_AUTHORIZATION: &str = "2022-04-01";
const API_COMPUTE: &str = "2024-07-01";

/// The role the head needs for an autostop that deletes (`down`) or deallocates, and its name.
pub fn role_for(down: bool) -> (&'static str, &'static str) {
    if down {
        (ROLE_CONTRIBUTOR, "Contributor")
    } else {
        (ROLE_VM_CONTRIBUTOR, "Virtual Machine Contributor")
    }
}

/// A role assignment's name: ARM wants a GUID; this one is fixed by the group, the principal and
/// the role, so setting the same autostop again finds the assignment it made.
pub fn assignment_name(rg: &str, principal: &str, role: &str) -> String {
    let text = format!("{}|{principal}|{role}", rg.to_ascii_lowercase());
    let h = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (h(0xcbf2_9ce4_8422_2325), h(0x8422_2325_cbf2_9ce4));
    // Version 4 and variant bits, so it reads as the random GUIDs ARM's examples use.
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// What the head's agent runs when idle: deallocate the workers, then itself (`stop`), or
/// delete the resource group (`down`). `endpoint` is ARM's; `head` and `workers` are VM names.
pub fn hook(endpoint: &str, head: &str, workers: &[String]) -> AutostopHook {
    let prelude = format!(
        r#"set -u
imds="${{SKY_AGENT_IMDS_ENDPOINT:-http://169.254.169.254}}"
imds="${{imds%/}}"
arm={arm}
meta() {{ curl -sS --fail --max-time 10 -H 'Metadata: true' "$imds/metadata/instance/compute/$1?api-version=2021-02-01&format=text"; }}
sub=$(meta subscriptionId) && rg=$(meta resourceGroupName) || {{ echo 'autostop: the instance metadata service did not answer' >&2; exit 1; }}
answer=$(curl -sS --fail --max-time 10 -H 'Metadata: true' "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F") || {{ echo 'autostop: no token for the head identity' >&2; exit 1; }}
token=$(printf '%s' "$answer" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || {{ echo 'autostop: the metadata service gave no access token' >&2; exit 1; }}
arm_call() {{ printf 'header = "Authorization: Bearer %s"\n' "$token" | curl -sS --fail-with-body --max-time 60 -K - -X "$1" -H 'Content-Type: application/json' --data '' "$arm/subscriptions/$sub/resourceGroups/$rg$2"; }}
"#,
        arm = quote(endpoint.trim_end_matches('/')),
    );
    let deallocate = |vm: &str| {
        let path = format!(
            "/providers/Microsoft.Compute/virtualMachines/{vm}/deallocate?api-version={API_COMPUTE}"
        );
        format!("arm_call POST {} >/dev/null", quote(&path))
    };
    let mut stop = prelude.clone();
    stop.push_str("failed=0\n");
    for w in workers {
        stop.push_str(&format!(
            "{} || {{ echo 'autostop: deallocating '{} failed >&2; failed=1; }}\n",
            deallocate(w),
            quote(w)
        ));
    }
    stop.push_str(&format!("{} || exit 1\nexit $failed\n", deallocate(head)));
    let mut down = prelude;
    down.push_str(&format!(
        "arm_call DELETE '?api-version={}' >/dev/null\n",
        crate::arm::API_RESOURCES
    ));
    let argv = |script: String| vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
    AutostopHook {
        stop: argv(stop),
        down: argv(down),
    }
}

/// Whether an Azure permission pattern (`*` matches anything, case-insensitively) covers
/// `action`.
fn covers(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = action.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether the permissions ARM lists for the caller (`Permissions - List`'s `value`) allow
/// `action`: some entry's `actions` covers it and none of that entry's `notActions` does.
pub fn permits(permissions: &Value, action: &str) -> bool {
    let list = |p: &Value, key: &str| -> Vec<String> {
        p[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    permissions["value"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            list(p, "actions").iter().any(|a| covers(a, action))
                && !list(p, "notActions").iter().any(|a| covers(a, action))
        })
}

/// Before a launch: why the caller could not grant a head its autostop role, when ARM's list of
/// the caller's permissions in the subscription says so. `None` when it allows it, or when the
/// list could not be read (granting later says why if it fails).
pub async fn preflight(arm: &Arm) -> Option<String> {
    let path = arm.sub_path("/providers/Microsoft.Authorization/permissions");
    let listed = arm
        .get(&path, API_AUTHORIZATION, "list your permissions")
        .await
        .ok()??;
    (!permits(&listed, "Microsoft.Authorization/roleAssignments/write")).then(|| {
        "your Azure login may not create role assignments \
         (Microsoft.Authorization/roleAssignments/write: Owner or User Access Administrator), so \
         the head cannot be given the right to deallocate its own cluster"
            .to_owned()
    })
}

/// The head VM's managed identity (its principal id), as ARM reports it.
async fn head_principal(arm: &Arm, rg: &str, head: &str) -> Result<String, ProvisionError> {
    let path = arm.sub_path(&format!(
        "/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{head}"
    ));
    let vm = arm
        .get(&path, API_COMPUTE, "read the head VM")
        .await?
        .ok_or_else(|| {
            ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!("Azure: the head VM {head} is not in resource group {rg}"),
            )
        })?;
    vm["identity"]["principalId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            ProvisionError::new(
                ProvisionErrorKind::InvalidRequest,
                format!(
                    "Azure: the head VM {head} has no managed identity (it was launched before Sky \
                     gave Azure heads one), so it cannot deallocate its cluster; relaunch the \
                     cluster (`sky down`, then `sky launch`) to use autostop"
                ),
            )
        })
}

/// Gives the head's identity the role `down` needs on the group (`Some`), and takes back the
/// other one (or both, `None`: autostop cancelled). The wanted role is granted before the other
/// is removed, so a change never leaves the head without the right it is about to use.
pub async fn grant(
    arm: &Arm,
    cluster: &str,
    rg: &str,
    head: &str,
    down: Option<bool>,
) -> Result<(), ProvisionError> {
    let principal = head_principal(arm, rg, head).await?;
    let wanted = down.map(role_for);
    let path = |role: &str| {
        arm.sub_path(&format!(
            "/resourceGroups/{rg}/providers/Microsoft.Authorization/roleAssignments/{}",
            assignment_name(rg, &principal, role)
        ))
    };
    if let Some((role, role_name)) = wanted {
        let body: Value = json!({"properties": {
            "roleDefinitionId": arm.sub_path(&format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{role}"
            )),
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }});
        let created = arm
            .call(
                reqwest::Method::PUT,
                &path(role),
                Some(API_AUTHORIZATION),
                Some(&body),
                "grant the head its autostop role",
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.message.contains(": RoleAssignmentExists:") => {}
            Err(e) if e.message.contains(": AuthorizationFailed:") => {
                return Err(ProvisionError::new(
                    ProvisionErrorKind::Auth,
                    format!(
                        "Azure would not let Sky grant the head of '{cluster}' the role \
                         {role_name} on its resource group {rg} (creating role assignments needs \
                         Microsoft.Authorization/roleAssignments/write: Owner or User Access \
                         Administrator). Without it the head cannot deallocate its own cluster, \
                         so autostop stays off: stop it with `sky stop {cluster}` or `sky down \
                         {cluster}`, or ask an administrator for that right"
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    for (role, _) in [role_for(false), role_for(true)] {
        if wanted.is_some_and(|(w, _)| w == role) {
            continue;
        }
        let removed = arm
            .call(
                reqwest::Method::DELETE,
                &path(role),
                Some(API_AUTHORIZATION),
                None,
                "take back an autostop role",
            )
            .await;
        match removed {
            Ok(_) => {}
            Err(e) if crate::arm::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_read_as_azure_matches_them() {
        let owner = json!({"value": [{"actions": ["*"], "notActions": []}]});
        let contributor = json!({"value": [{"actions": ["*"], "notActions": [
            "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action"]}]});
        let uaa = json!({"value": [
            {"actions": ["*/read"], "notActions": []},
            {"actions": ["Microsoft.Authorization/*"], "notActions": []}]});
        let write = "Microsoft.Authorization/roleAssignments/write";
        assert!(permits(&owner, write));
        assert!(!permits(&contributor, write));
        assert!(permits(
            &contributor,
            "Microsoft.Compute/virtualMachines/deallocate/action"
        ));
        assert!(permits(&uaa, write));
        assert!(!permits(&uaa, "Microsoft.Compute/virtualMachines/write"));
        assert!(!permits(&json!({"value": []}), write));
    }

    #[test]
    fn assignment_names_are_guids_fixed_by_group_principal_and_role() {
        let a = assignment_name("sky-dev-0a1b", "p1", ROLE_CONTRIBUTOR);
        assert_eq!(a.len(), 36);
        assert!(
            a.chars()
                .enumerate()
                .all(|(i, c)| if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }),
            "{a}"
        );
        assert_eq!(a, assignment_name("SKY-DEV-0A1B", "p1", ROLE_CONTRIBUTOR));
        assert_ne!(
            a,
            assignment_name("sky-dev-0a1b", "p1", ROLE_VM_CONTRIBUTOR)
        );
        assert_ne!(a, assignment_name("sky-dev-0a1b", "p2", ROLE_CONTRIBUTOR));
    }

    #[test]
    fn the_hook_deallocates_workers_before_the_head_and_keeps_the_token_off_command_lines() {
        let hook = hook(
            "https://management.azure.com/",
            "dev-0",
            &["dev-1".into(), "dev-2".into()],
        );
        let stop = &hook.stop[2];
        let at = |s: &str| stop.find(s).unwrap_or_else(|| panic!("{s} in {stop}"));
        assert!(at("virtualMachines/dev-1/deallocate") < at("virtualMachines/dev-0/deallocate"));
        assert!(at("virtualMachines/dev-2/deallocate") < at("virtualMachines/dev-0/deallocate"));
        // printf is the shell's own; curl reads the header from its config on stdin.
        assert!(stop.contains("-K -") && !stop.contains("-H \"Authorization"));
        assert!(hook.down[2].contains("arm_call DELETE '?api-version=2021-04-01'"));
        assert!(!hook.down[2].contains("deallocate?"));
    }
}
