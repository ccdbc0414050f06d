//! `resources.autostop` in a task file, and the `autostop` default in `config.yaml`, in
//! SkyPilot's forms:
//!
//! ```yaml
//! autostop: true          # stop after 5 idle minutes (SkyPilot's default)
//! autostop: false         # never (overrides a config default)
//! autostop: 10            # stop after 10 idle minutes
//! autostop: 2h            # also m, d, w
//! autostop: {idle_minutes: 10, down: true}
//! ```
//!
//! What this module does not do: apply the setting (the launch does, `Sky::launch`), or accept
//! SkyPilot's `wait_for: jobs_and_ssh | none` and `hook`: Sky's agent counts queued and running
//! jobs only, and runs no hook; those are refused by name rather than accepted and ignored.

use serde::{Deserialize, Serialize};

use super::error::{TaskError, one_of};
use super::fields::{Ctx, join};
use super::yaml::{Node, Scalar};
use crate::state::Autostop;

/// Idle minutes of `autostop: true` (SkyPilot's default).
pub const DEFAULT_IDLE_MINUTES: u32 = 5;

/// What a task or `config.yaml` asks of autostop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutostopRequest {
    /// `autostop: false`: no autostop, whatever a default says.
    Off,
    After(Autostop),
}

impl AutostopRequest {
    /// The setting to apply; `None` for [`AutostopRequest::Off`].
    pub fn setting(self) -> Option<Autostop> {
        match self {
            AutostopRequest::Off => None,
            AutostopRequest::After(a) => Some(a),
        }
    }
}

const KEYS: &[&str] = &["idle_minutes", "down", "wait_for", "hook", "hook_timeout"];
const FORMS: &str = "true, false, a number of minutes, a duration such as 30m, 2h, 1d or 1w, \
                     or {idle_minutes: N, down: true|false}";

/// Reads an `autostop` value at `path`; `None` for `null`.
pub(crate) fn parse(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
) -> Result<Option<AutostopRequest>, TaskError> {
    let after = |idle_minutes, down| Some(AutostopRequest::After(Autostop { idle_minutes, down }));
    match node.scalar() {
        Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Bool(true)) => return Ok(after(DEFAULT_IDLE_MINUTES, false)),
        Some(Scalar::Bool(false)) => return Ok(Some(AutostopRequest::Off)),
        Some(_) => {
            return Ok(match idle_minutes(ctx, path, node)? {
                Some(minutes) => after(minutes, false),
                None => Some(AutostopRequest::Off),
            });
        }
        None => {}
    }
    let Some(entries) = node.as_map() else {
        return Err(ctx.expected(path, node, FORMS));
    };
    ctx.check_keys(path, entries, KEYS)?;
    let mut minutes = Some(DEFAULT_IDLE_MINUTES);
    let mut down = false;
    for (key, value) in entries {
        let name = key.key_text();
        let at = join(path, &name);
        match name.as_str() {
            "idle_minutes" if !value.is_null() => minutes = idle_minutes(ctx, &at, value)?,
            "down" => down = ctx.opt_bool(&at, value)?.unwrap_or(false),
            "wait_for" => match ctx.opt_str(&at, value)?.as_deref() {
                None | Some("jobs") => {}
                Some(other) => {
                    return Err(ctx.at(
                        &at,
                        value,
                        format!(
                            "wait_for '{other}' is not supported: Sky's agent counts queued and \
                             running jobs, not SSH sessions (allowed: jobs)"
                        ),
                    ));
                }
            },
            "hook" | "hook_timeout" if !value.is_null() => {
                return Err(ctx.at(
                    &at,
                    value,
                    format!(
                        "autostop.{name} is not supported yet: Sky runs no command before an \
                         autostop; run it at the end of the task's `run` instead"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(match minutes {
        Some(m) => after(m, down),
        None => Some(AutostopRequest::Off),
    })
}

/// Idle minutes written as a number or a duration; `None` for `-1` (SkyPilot's "off").
fn idle_minutes(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<Option<u32>, TaskError> {
    let bad = |why: String| ctx.at(path, node, why);
    match node.scalar() {
        Some(Scalar::Int(-1)) => Ok(None),
        Some(Scalar::Int(n)) => u32::try_from(*n).map(Some).map_err(|_| {
            bad(format!(
                "idle minutes must be between 0 and {}, or -1 for none; got {n}",
                u32::MAX
            ))
        }),
        Some(Scalar::Str(text)) => parse_duration(text).map(Some).map_err(bad),
        _ => Err(ctx.expected(path, node, FORMS)),
    }
}

/// `30`, `30m`, `2h`, `1d`, `1w` as minutes.
fn parse_duration(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "autostop '{text}' is not a duration (forms: {FORMS})"
        ));
    }
    let per: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "min" => 1,
        "h" => 60,
        "d" => 60 * 24,
        "w" => 60 * 24 * 7,
        other => {
            return Err(format!(
                "unknown unit '{other}' in autostop '{text}' (allowed: {})",
                one_of(&["m", "h", "d", "w"])
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("autostop '{text}' is not a duration (forms: {FORMS})"))?;
    n.checked_mul(per)
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| format!("autostop '{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::yaml;

    fn read(text: &str) -> Result<Option<AutostopRequest>, String> {
        let docs = yaml::parse_documents(&format!("autostop: {text}\n")).expect("yaml");
        let root = docs.into_iter().flatten().next().expect("doc");
        let (_, value) = &root.as_map().expect("map")[0];
        parse(&Ctx { source: "t.yaml" }, "resources.autostop", value).map_err(|e| e.to_string())
    }

    fn after(idle_minutes: u32, down: bool) -> Option<AutostopRequest> {
        Some(AutostopRequest::After(Autostop { idle_minutes, down }))
    }

    #[test]
    fn skypilots_forms_read_as_skypilot_reads_them() {
        assert_eq!(read("true"), Ok(after(5, false)));
        assert_eq!(read("false"), Ok(Some(AutostopRequest::Off)));
        assert_eq!(read("10"), Ok(after(10, false)));
        assert_eq!(read("-1"), Ok(Some(AutostopRequest::Off)));
        assert_eq!(read("30m"), Ok(after(30, false)));
        assert_eq!(read("2h"), Ok(after(120, false)));
        assert_eq!(read("1d"), Ok(after(1440, false)));
        assert_eq!(read("{idle_minutes: 10, down: true}"), Ok(after(10, true)));
        assert_eq!(read("{down: true}"), Ok(after(5, true)));
        assert_eq!(
            read("{idle_minutes: 1h, wait_for: jobs}"),
            Ok(after(60, false))
        );
        assert_eq!(read("null"), Ok(None));
    }

    #[test]
    fn bad_values_name_the_field_the_value_and_what_is_allowed() {
        let e = read("10x").expect_err("unit");
        assert!(
            e.starts_with("t.yaml:1:11: resources.autostop: unknown unit 'x'"),
            "{e}"
        );
        assert!(e.contains("allowed: 'm', 'h', 'd' or 'w'"), "{e}");
        let e = read("-5").expect_err("negative");
        assert!(e.contains("got -5"), "{e}");
        let e = read("[1]").expect_err("list");
        assert!(
            e.contains("expected true, false, a number of minutes"),
            "{e}"
        );
        let e = read("{idle_minute: 3}").expect_err("typo");
        assert!(e.contains("idle_minutes"), "{e}");
        let e = read("{idle_minutes: 3, wait_for: jobs_and_ssh}").expect_err("ssh");
        assert!(
            e.contains("resources.autostop.wait_for: wait_for 'jobs_and_ssh' is not supported"),
            "{e}"
        );
        let e = read("{hook: 'git push'}").expect_err("hook");
        assert!(e.contains("autostop.hook is not supported yet"), "{e}");
        let e = read("99999999999w").expect_err("long");
        assert!(e.contains("too long"), "{e}");
    }
}
