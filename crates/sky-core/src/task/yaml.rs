//! A small YAML document tree with source positions, built from `saphyr-parser` events.
//!
//! Task files are read the way SkyPilot reads them: PyYAML's `safe_load`, i.e. YAML 1.1 scalar
//! resolution (`yes`/`on` are booleans, `1e3` is a string, `010` is octal), merge keys (`<<`),
//! anchors and aliases, and duplicate keys rejected. Every node keeps its line and column so a
//! validation error can point at the exact field.
//!
//! What this module does not do: know anything about tasks. It only turns text into [`Node`]s.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};

/// A position in the source: line and column, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A scalar after YAML 1.1 resolution. `raw` keeps the text as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar { value: Scalar, raw: String },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of `source`. An empty document is `None` or a null node.
pub fn parse_documents(source: &str) -> Result<Vec<Option<Node>>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_owned(),
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

impl Node {
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.scalar() {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// A number as YAML typed it (ints and floats; booleans are not numbers here, unlike Python).
    pub fn as_number(&self) -> Option<f64> {
        match self.scalar() {
            Some(Scalar::Int(i)) => Some(*i as f64),
            Some(Scalar::Float(f)) => Some(*f),
            _ => None,
        }
    }

    /// A mapping key as text: keys are always compared by how they are written.
    pub fn key_text(&self) -> String {
        match &self.kind {
            Kind::Scalar { raw, .. } => raw.clone(),
            _ => self.show(),
        }
    }

    /// The value converted the way Python's `str()` converts what PyYAML loaded, which is how
    /// SkyPilot turns `envs` values such as `1`, `1.5` or `yes` into strings.
    pub fn python_str(&self) -> Option<String> {
        match self.scalar()? {
            Scalar::Null => None,
            Scalar::Bool(true) => Some("True".to_owned()),
            Scalar::Bool(false) => Some("False".to_owned()),
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Float(f) => Some(python_float(*f)),
            Scalar::Str(s) => Some(s.clone()),
        }
    }

    /// What kind of value this is, for messages ("a string", "a list", ...).
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { value, .. } => match value {
                Scalar::Null => "null",
                Scalar::Bool(_) => "a boolean",
                Scalar::Int(_) => "an integer",
                Scalar::Float(_) => "a number",
                Scalar::Str(_) => "a string",
            },
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// A short rendering of the value for error messages.
    pub fn show(&self) -> String {
        let text = match &self.kind {
            Kind::Scalar { raw, value } => match value {
                Scalar::Null => "null".to_owned(),
                _ => raw.clone(),
            },
            Kind::Seq(items) => {
                let parts: Vec<String> = items.iter().map(Node::show).collect();
                format!("[{}]", parts.join(", "))
            }
            Kind::Map(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.show(), v.show()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        };
        const MAX: usize = 60;
        if text.chars().count() > MAX {
            let cut: String = text.chars().take(MAX).collect();
            format!("{cut}...")
        } else {
            text
        }
    }

    /// Converts to JSON for fields Sky keeps but does not interpret (e.g. `service`, `config`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar { value, .. } => match value {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(*b),
                Scalar::Int(i) => Value::from(*i),
                Scalar::Float(f) => {
                    serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
                }
                Scalar::Str(s) => Value::String(s.clone()),
            },
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Python's `repr` of a float, for the values users actually write (`1.0`, `0.5`, `1e+20`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e20`; Python writes `1e+20`.
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

#[derive(Default)]
struct Builder {
    docs: Vec<Option<Node>>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    /// Nodes produced by alias expansion so far; bounded against "billion laughs" documents.
    alias_budget_used: usize,
    error: Option<SyntaxError>,
    current_doc: Option<Node>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Keys that came from a merge (`<<`): an explicit key replaces them instead of clashing.
        merged: Vec<String>,
    },
}

const ALIAS_BUDGET: usize = 100_000;

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.handle(ev, span) {
            self.error = Some(e);
        }
    }
}

impl Builder {
    fn handle(&mut self, ev: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span);
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => self.current_doc = None,
            Event::DocumentEnd => {
                let doc = self.current_doc.take();
                self.docs.push(doc);
            }
            Event::SequenceStart(anchor, _tag) => {
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _tag) => {
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    merged: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { pos, anchor, items }) = self.stack.pop() {
                    self.insert(
                        Node {
                            kind: Kind::Seq(items),
                            pos,
                        },
                        anchor,
                    )?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) = self.stack.pop()
                {
                    self.insert(
                        Node {
                            kind: Kind::Map(entries),
                            pos,
                        },
                        anchor,
                    )?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_ref());
                let value = value.ok_or_else(|| SyntaxError {
                    pos,
                    message: format!("value '{text}' does not match its tag"),
                })?;
                let node = Node {
                    kind: Kind::Scalar {
                        value,
                        raw: text.into_owned(),
                    },
                    pos,
                };
                self.insert(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        pos,
                        message: "unknown alias".to_owned(),
                    });
                };
                self.alias_budget_used += count_nodes(target);
                if self.alias_budget_used > ALIAS_BUDGET {
                    return Err(SyntaxError {
                        pos,
                        message: "alias expansion is too large".to_owned(),
                    });
                }
                let mut node = target.clone();
                node.pos = pos;
                self.insert(node, 0)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.current_doc = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merged,
                ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if is_merge_key(&k) {
                        merge_into(entries, merged, node)?;
                    } else {
                        let text = k.key_text();
                        match entries
                            .iter()
                            .position(|(existing, _)| existing.key_text() == text)
                        {
                            Some(i) if merged.contains(&text) => {
                                merged.retain(|m| *m != text);
                                entries[i] = (k, node);
                            }
                            Some(_) => {
                                return Err(SyntaxError {
                                    pos: k.pos,
                                    message: format!("duplicate key '{text}' in mapping"),
                                });
                            }
                            None => entries.push((k, node)),
                        }
                    }
                }
            },
        }
        Ok(())
    }
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { raw, value: Scalar::Str(_) } if raw == "<<")
}

/// YAML merge keys: entries already present win over merged ones, as in PyYAML.
fn merge_into(
    entries: &mut Vec<(Node, Node)>,
    merged: &mut Vec<String>,
    value: Node,
) -> Result<(), SyntaxError> {
    let sources: Vec<Node> = match value.kind {
        Kind::Map(_) => vec![value],
        Kind::Seq(items) => items,
        _ => {
            return Err(SyntaxError {
                pos: value.pos,
                message: "merge key '<<' needs a mapping or a list of mappings".to_owned(),
            });
        }
    };
    for source in sources {
        let Kind::Map(more) = source.kind else {
            return Err(SyntaxError {
                pos: source.pos,
                message: "merge key '<<' needs a mapping or a list of mappings".to_owned(),
            });
        };
        for (k, v) in more {
            let text = k.key_text();
            if !entries
                .iter()
                .any(|(existing, _)| existing.key_text() == text)
            {
                merged.push(text);
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

/// YAML 1.1 resolution as PyYAML's SafeLoader does it. `None` when an explicit core tag
/// (`!!int`) does not fit the text.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Cow<'_, Tag>>) -> Option<Scalar> {
    if let Some(tag) = tag
        && tag.is_yaml_core_schema()
    {
        return match tag.suffix.as_str() {
            "str" => Some(Scalar::Str(text.to_owned())),
            "int" => parse_int(text).map(Scalar::Int),
            "float" => parse_float(text)
                .or_else(|| parse_int(text).map(|i| i as f64))
                .map(Scalar::Float),
            "bool" => parse_bool(text).map(Scalar::Bool),
            "null" => is_null(text).then_some(Scalar::Null),
            _ => Some(Scalar::Str(text.to_owned())),
        };
    }
    if style != ScalarStyle::Plain {
        return Some(Scalar::Str(text.to_owned()));
    }
    Some(if is_null(text) {
        Scalar::Null
    } else if let Some(b) = parse_bool(text) {
        Scalar::Bool(b)
    } else if let Some(i) = parse_int(text) {
        Scalar::Int(i)
    } else if let Some(f) = parse_float(text) {
        Scalar::Float(f)
    } else {
        Scalar::Str(text.to_owned())
    })
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(text: &str) -> (i64, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (-1, rest)
    } else {
        (1, text.strip_prefix('+').unwrap_or(text))
    }
}

/// YAML 1.1 integers: decimal, `0b`, `0x`, leading-zero octal, `_` separators.
fn parse_int(text: &str) -> Option<i64> {
    let (sign, body) = split_sign(text);
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let digits = |s: &str, radix: u32| -> Option<i64> {
        let cleaned: String = s.chars().filter(|c| *c != '_').collect();
        if cleaned.is_empty() {
            return None;
        }
        i64::from_str_radix(&cleaned, radix).ok()
    };
    let value = if let Some(b) = body.strip_prefix("0b") {
        digits(b, 2)?
    } else if let Some(h) = body.strip_prefix("0x") {
        digits(h, 16)?
    } else if body.len() > 1 && body.starts_with('0') {
        digits(&body[1..], 8)?
    } else if body.chars().all(|c| c.is_ascii_digit() || c == '_') {
        digits(body, 10)?
    } else {
        return None;
    };
    Some(sign * value)
}

/// YAML 1.1 floats: a dot is required (`1.5`, `1.`, `.5`, `1.0e+3`), plus `.inf` and `.nan`.
fn parse_float(text: &str) -> Option<f64> {
    let (sign, body) = split_sign(text);
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign as f64 * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if sign == 1 && !text.starts_with('+') => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let int_ok = int_part.is_empty()
        || (int_part.starts_with(|c: char| c.is_ascii_digit())
            && int_part.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let frac_ok = frac_part.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !int_ok || !frac_ok || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    if int_part.is_empty() && (text.starts_with('-') || text.starts_with('+')) {
        // PyYAML's `\.[0-9_]+` alternative takes no sign.
        return None;
    }
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['+', '-'])?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let cleaned: String = body.chars().filter(|c| *c != '_').collect();
    let cleaned = if cleaned.ends_with('.') {
        format!("{cleaned}0")
    } else {
        cleaned
    };
    cleaned.parse::<f64>().ok().map(|f| sign as f64 * f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        resolve_scalar(text, ScalarStyle::Plain, None).expect("plain scalars always resolve")
    }

    #[test]
    fn yaml_1_1_scalars_resolve_like_pyyaml() {
        assert_eq!(scalar("yes"), Scalar::Bool(true));
        assert_eq!(scalar("Off"), Scalar::Bool(false));
        assert_eq!(scalar("~"), Scalar::Null);
        assert_eq!(scalar("010"), Scalar::Int(8));
        assert_eq!(scalar("1_000"), Scalar::Int(1000));
        assert_eq!(scalar("0x1F"), Scalar::Int(31));
        assert_eq!(scalar("1.5"), Scalar::Float(1.5));
        assert_eq!(scalar(".5"), Scalar::Float(0.5));
        assert_eq!(scalar("1.0e+3"), Scalar::Float(1000.0));
        assert_eq!(scalar("1e3"), Scalar::Str("1e3".to_owned()));
        assert_eq!(scalar("8+"), Scalar::Str("8+".to_owned()));
        assert_eq!(scalar("V100:4"), Scalar::Str("V100:4".to_owned()));
        assert_eq!(
            resolve_scalar("yes", ScalarStyle::DoubleQuoted, None),
            Some(Scalar::Str("yes".to_owned()))
        );
    }

    #[test]
    fn python_str_matches_python() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(1e20), "1e+20");
    }

    #[test]
    fn documents_positions_merge_keys_and_duplicates() {
        let docs =
            parse_documents("a: 1\n---\nbase: &b {x: 1, y: 1}\nmore:\n  <<: *b\n  y: 2\n---\n")
                .expect("valid yaml");
        assert_eq!(docs.len(), 3);
        assert!(docs[2].as_ref().is_none_or(Node::is_null));
        let second = docs[1].as_ref().expect("second document");
        let more = &second.as_map().expect("map")[1].1;
        let keys: Vec<String> = more
            .as_map()
            .expect("map")
            .iter()
            .map(|(k, _)| k.key_text())
            .collect();
        assert_eq!(keys, ["x", "y"]);
        assert_eq!(more.pos, Pos { line: 5, column: 3 });

        let err = parse_documents("a: 1\na: 2\n").expect_err("duplicate keys are rejected");
        assert_eq!(err.pos.line, 2);
        assert_eq!(err.message, "duplicate key 'a' in mapping");
    }
}
