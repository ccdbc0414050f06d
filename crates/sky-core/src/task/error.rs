//! `TaskError`: what went wrong in a task file or a task option, and exactly where.
//!
//! The message names the field path (`resources.accelerators`), the bad value and what is
//! allowed; the structured fields let the desktop UI point at the field. Secret values never
//! appear in a message: errors about `secrets` name the key only.

use serde::Serialize;

use super::yaml::Pos;
use crate::error::ErrorCode;

/// An invalid task file, task field or task option.
///
/// Displays as `task.yaml:7:17: resources.accelerators: unknown accelerator 'A1000' (did you mean
/// 'A100'?)`. Parts that do not apply (no position for a command-line flag, no path for a YAML
/// syntax error) are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct TaskError {
    /// The file name (or `<command line>`) the error is about.
    pub source_name: String,
    /// Dotted path of the field (`resources.any_of[1].cpus`, `envs.MY_VAR`), or a flag (`--gpus`).
    pub path: String,
    /// 1-based line, when the error comes from a file.
    pub line: Option<usize>,
    /// 1-based column, when the error comes from a file.
    pub column: Option<usize>,
    /// What is wrong and what is allowed; lowercase, no trailing period.
    pub message: String,
}

impl TaskError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidTask
    }

    /// This error with secret values in its path and message shown as `${KEY}`.
    pub(crate) fn redacted(
        mut self,
        secrets: &std::collections::BTreeMap<String, super::Secret>,
    ) -> Self {
        self.path = super::redact_secrets(&self.path, secrets);
        self.message = super::redact_secrets(&self.message, secrets);
        self
    }

    pub(crate) fn at(source_name: &str, path: &str, pos: Option<Pos>, message: String) -> Self {
        TaskError {
            source_name: source_name.to_owned(),
            path: path.to_owned(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message,
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.source_name.is_empty() {
            f.write_str(&self.source_name)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(column) = self.column {
                    write!(f, ":{column}")?;
                }
            }
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// " (did you mean 'x'?)" when a candidate is close to `input`, else "".
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match closest(input, candidates) {
        Some(best) => format!(" (did you mean '{best}'?)"),
        None => String::new(),
    }
}

/// The candidate closest to `input` (case-insensitive edit distance), if it is close enough to be
/// a plausible typo: at most a third of the input's length, and never more than 3 edits.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let needle = input.to_lowercase();
    let limit = (needle.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = strsim::damerau_levenshtein(&needle, &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// "a, b or c" for lists of allowed values.
pub(crate) fn one_of(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => format!("'{one}'"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|v| format!("'{v}'")).collect();
            format!("{} or '{last}'", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = TaskError::at(
            "task.yaml",
            "resources.accelerators",
            Some(Pos {
                line: 7,
                column: 17,
            }),
            "unknown accelerator 'A1000' (did you mean 'A100'?)".to_owned(),
        );
        assert_eq!(
            e.to_string(),
            "task.yaml:7:17: resources.accelerators: unknown accelerator 'A1000' (did you mean 'A100'?)"
        );
        let flag = TaskError::at("<command line>", "--gpus", None, "bad".to_owned());
        assert_eq!(flag.to_string(), "<command line>: --gpus: bad");
    }

    #[test]
    fn suggestions_are_close_and_case_insensitive() {
        assert_eq!(closest("A1000", ["A100", "H100", "V100"]), Some("A100"));
        assert_eq!(
            closest("acelerators", ["accelerators", "cpus"]),
            Some("accelerators")
        );
        assert_eq!(closest("gpc", ["aws", "gcp", "azure"]), Some("gcp"));
        assert_eq!(closest("zzzzzz", ["aws", "gcp"]), None);
    }
}
