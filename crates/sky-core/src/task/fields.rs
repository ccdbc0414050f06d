//! Small typed readers over YAML [`Node`]s that fail with a positioned [`TaskError`].
//!
//! Shared by the task, resources and config readers so that every "expected X, got Y" message
//! reads the same. Nothing here knows which field means what.

use super::error::{TaskError, did_you_mean, one_of};
use super::yaml::{Node, Pos, Scalar};

/// Where errors are reported: the file name shown in messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub source: &'a str,
}

impl Ctx<'_> {
    pub fn err(&self, path: &str, pos: Option<Pos>, message: impl Into<String>) -> TaskError {
        TaskError::at(self.source, path, pos, message.into())
    }

    pub fn at(&self, path: &str, node: &Node, message: impl Into<String>) -> TaskError {
        self.err(path, Some(node.pos), message)
    }

    pub fn expected(&self, path: &str, node: &Node, what: &str) -> TaskError {
        self.at(
            path,
            node,
            format!("expected {what}, got {}: {}", node.kind_name(), node.show()),
        )
    }

    /// A string; `null` is `None`.
    pub fn opt_str(&self, path: &str, node: &Node) -> Result<Option<String>, TaskError> {
        match node.scalar() {
            Some(Scalar::Null) => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s.clone())),
            _ => Err(self.expected(path, node, "a string")),
        }
    }

    /// A mapping's entries; `null` is empty.
    pub fn opt_map<'n>(&self, path: &str, node: &'n Node) -> Result<&'n [(Node, Node)], TaskError> {
        if node.is_null() {
            return Ok(&[]);
        }
        node.as_map()
            .ok_or_else(|| self.expected(path, node, "a mapping"))
    }

    pub fn opt_bool(&self, path: &str, node: &Node) -> Result<Option<bool>, TaskError> {
        match node.scalar() {
            Some(Scalar::Null) => Ok(None),
            Some(Scalar::Bool(b)) => Ok(Some(*b)),
            _ => Err(self.expected(path, node, "true or false")),
        }
    }

    /// Rejects keys outside `allowed`, suggesting the nearest allowed one.
    pub fn check_keys(
        &self,
        path: &str,
        entries: &[(Node, Node)],
        allowed: &[&str],
    ) -> Result<(), TaskError> {
        for (key, _) in entries {
            let name = key.key_text();
            if !allowed.contains(&name.as_str()) {
                let hint = did_you_mean(
                    &name,
                    allowed.iter().copied().filter(|k| !k.starts_with('_')),
                );
                let hint = if hint.is_empty() {
                    let public: Vec<&str> = allowed
                        .iter()
                        .copied()
                        .filter(|k| !k.starts_with('_'))
                        .collect();
                    format!(" (allowed: {})", one_of(&public))
                } else {
                    hint
                };
                return Err(self.at(
                    &join(path, &name),
                    key,
                    format!("unknown field '{name}'{hint}"),
                ));
            }
        }
        Ok(())
    }
}

/// `a.b` (or `b` at the top level).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `a[3]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
