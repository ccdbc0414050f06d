//! Long-running operations of the fake ARM: `Azure-AsyncOperation` and `Location` URLs that stay
//! InProgress for a set number of polls, then apply their effect and report the outcome.

use serde_json::{Value, json};

use super::http::{Resp, arm_error, reply};
use super::{Done, Op, SUBSCRIPTION, State};
pub(super) fn new_op(s: &mut State, error: Option<(String, String)>, done: Done) -> String {
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

pub(super) fn async_header(
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

pub(super) fn location_header(
    s: &mut State,
    base: &str,
    done: Done,
) -> Vec<(&'static str, String)> {
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
pub(super) fn step(s: &mut State, id: &str) -> Option<Option<Result<(), (String, String)>>> {
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

pub(super) fn apply(s: &mut State, done: Done) {
    match done {
        Done::Nothing => {}
        Done::VmProvisioned(id) => {
            if let Some(vm) = s.resources.get_mut(&id) {
                vm["properties"]["provisioningState"] = json!("Succeeded");
                vm["fake:power"] = json!("running");
            }
            super::hosts::power_on(s, &id);
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
            if power == "running" {
                super::hosts::power_on(s, &id);
            } else {
                super::hosts::power_off(s, &id);
            }
        }
        Done::DeleteRg(rg) => {
            let prefix =
                format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/{rg}/").to_lowercase();
            let gone: Vec<String> = s
                .resources
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for id in &gone {
                super::hosts::delete(s, id);
            }
            s.resources.retain(|k, _| !k.starts_with(&prefix));
            s.groups.remove(&rg);
        }
        Done::DeleteResource(id) => {
            super::hosts::delete(s, &id);
            s.resources.remove(&id);
        }
    }
}

pub(super) fn poll_async(s: &mut State, base: &str, id: &str) -> Resp {
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

pub(super) fn poll_location(s: &mut State, id: &str) -> Resp {
    let retry = s.retry_after.to_string();
    match step(s, id) {
        None => arm_error(404, "NotFound", "no such operation"),
        Some(None) => reply(202, &Value::Null, &[("retry-after", retry)]),
        Some(Some(Ok(()))) => reply(200, &Value::Null, &[]),
        Some(Some(Err((code, message)))) => arm_error(409, &code, &message),
    }
}
