//! A small YAML document tree with source positions, built from `saphyr-parser` events.
//!
//! Task files are read the way SkyPilot reads them: PyYAML's `safe_load`, i.e. YAML 1.1 scalar
//! resolution (`yes`/`on` are booleans, `1e3` is a string, `010` is octal), merge keys (`<<`),
//! anchors and aliases, and duplicate keys rejected. Every node keeps its line and column so a
//! validation error can point at the exact field.
//!
//! Input is untrusted (task files, `config.yaml`, SSH pool files, the desktop form), so the tree
//! is built within [`LIMITS`], each checked as the events arrive and reported with the limit, the
//! value and the position: the whole file's size before parsing; nesting depth before a
//! collection is opened (the tree is built iteratively from the parser's event iterator, never
//! saphyr's recursive `load`, and every recursive walk over a [`Node`] — `Clone`, `Drop`, `show`,
//! `to_json` — is therefore bounded by [`Limits::depth`]); entries per collection; one scalar's
//! length; and the number of nodes including those copied by aliases ("billion laughs").
//! Duplicate keys are found with a hash index per mapping, so a big mapping costs linear time.
//!
//! What this module does not do: know anything about tasks. It only turns text into [`Node`]s.

mod scalar;

use std::collections::{HashMap, HashSet};
use std::fmt;

use saphyr_parser::{Event, Parser, Span};

use scalar::{python_float, resolve_scalar};

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

/// How big a document may be. Real task files (SkyPilot's examples and docs) are a few KiB, nest
/// at most about 8 levels (`config:` blocks of Kubernetes pod specs), and hold tens of keys; each
/// limit is orders of magnitude above that, and low enough that the worst document within all of
/// them parses in well under a second and a few hundred MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one file (all its documents).
    pub document_bytes: usize,
    /// Collections open at once; a top-level mapping is depth 1.
    pub depth: usize,
    /// Keys in one mapping (merged keys included), items in one sequence.
    pub entries: usize,
    /// Bytes in one scalar (a key or a value, e.g. a `run:` script).
    pub scalar_bytes: usize,
    /// Nodes in one file, counting every copy an alias makes and each document.
    pub nodes: usize,
}

/// The limits every YAML file Sky reads is held to (documented in ARCHITECTURE.md, "Input limits").
pub const LIMITS: Limits = Limits {
    document_bytes: 4 * 1024 * 1024,
    depth: 64,
    entries: 10_000,
    scalar_bytes: 1024 * 1024,
    nodes: 250_000,
};

/// A YAML syntax error, or a document over one of the [`LIMITS`].
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    /// Which limit the document crossed, when that is the error (the YAML itself may be valid).
    pub limit: Option<&'static str>,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Some(_) => f.write_str(&self.message),
            None => write!(f, "invalid YAML: {}", self.message),
        }
    }
}

/// Parses every document of `source`. An empty document is `None` or a null node.
pub fn parse_documents(source: &str) -> Result<Vec<Option<Node>>, SyntaxError> {
    check_size(source)?;
    let mut builder = Builder::default();
    // The event iterator is saphyr's state machine, which keeps its nesting on the heap; its
    // `load` recurses once per level and would overflow the stack on `[[[[...`.
    for next in Parser::new_from_str(source) {
        let (event, span) = next.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_owned(),
            limit: None,
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.handle(event, span)?;
    }
    Ok(builder.docs)
}

/// Refuses a file over [`Limits::document_bytes`] before the parser sees it, pointing at where the
/// limit falls.
fn check_size(source: &str) -> Result<(), SyntaxError> {
    let max = LIMITS.document_bytes;
    if source.len() <= max {
        return Ok(());
    }
    let mut cut = max;
    while !source.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &source[..cut];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Err(limit_error(
        Pos { line, column },
        "document size",
        format!(
            "the file is {} bytes, over the limit of {max} bytes (4 MiB) per YAML file; the limit is reached here",
            source.len()
        ),
    ))
}

fn limit_error(pos: Pos, limit: &'static str, what: String) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!("{limit} limit exceeded: {what}"),
        limit: Some(limit),
    }
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

    pub fn as_bool(&self) -> Option<bool> {
        match self.scalar() {
            Some(Scalar::Bool(b)) => Some(*b),
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

/// A node with what the limits need to know about it, so that nothing walks a subtree to find out.
struct Built {
    node: Node,
    /// Collections inside this node along its deepest path: 0 for a scalar, 1 for `[1]`.
    height: usize,
    /// Nodes in this subtree, itself included.
    count: usize,
}

#[derive(Default)]
struct Builder {
    docs: Vec<Option<Node>>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Built>,
    /// Nodes made so far, alias copies included.
    nodes: usize,
    current_doc: Option<Node>,
}

struct Frame {
    pos: Pos,
    anchor: usize,
    /// Largest height among the children so far.
    height: usize,
    count: usize,
    body: Body,
}

enum Body {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        /// Key text -> index in `entries`: the duplicate check in constant time per key.
        index: HashMap<String, usize>,
        key: Option<Node>,
        /// Keys that came from a merge (`<<`): an explicit key replaces them instead of clashing.
        merged: HashSet<String>,
    },
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl Builder {
    fn handle(&mut self, ev: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span);
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => {
                self.current_doc = None;
                // Anchors are per document, as saphyr's own loader (and PyYAML) scope them.
                self.anchors.clear();
                // Empty documents cost a slot each, so they count as nodes too.
                self.count_nodes(1, pos)?;
            }
            Event::DocumentEnd => {
                let doc = self.current_doc.take();
                self.docs.push(doc);
            }
            Event::SequenceStart(anchor, _tag) => self.open(pos, anchor, Body::Seq(Vec::new()))?,
            Event::MappingStart(anchor, _tag) => self.open(
                pos,
                anchor,
                Body::Map {
                    entries: Vec::new(),
                    index: HashMap::new(),
                    key: None,
                    merged: HashSet::new(),
                },
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let kind = match frame.body {
                        Body::Seq(items) => Kind::Seq(items),
                        Body::Map { entries, .. } => Kind::Map(entries),
                    };
                    let built = Built {
                        node: Node {
                            kind,
                            pos: frame.pos,
                        },
                        height: frame.height + 1,
                        count: frame.count,
                    };
                    self.insert(built, frame.anchor)?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if text.len() > LIMITS.scalar_bytes {
                    return Err(limit_error(
                        pos,
                        "scalar size",
                        format!(
                            "a value of {} bytes, over the limit of {} bytes (1 MiB) per value",
                            text.len(),
                            LIMITS.scalar_bytes
                        ),
                    ));
                }
                self.count_nodes(1, pos)?;
                let value =
                    resolve_scalar(&text, style, tag.as_ref()).map_err(|message| SyntaxError {
                        pos,
                        message,
                        limit: None,
                    })?;
                let node = Node {
                    kind: Kind::Scalar {
                        value,
                        raw: text.into_owned(),
                    },
                    pos,
                };
                self.insert(
                    Built {
                        node,
                        height: 0,
                        count: 1,
                    },
                    anchor,
                )?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        pos,
                        message: "unknown alias".to_owned(),
                        limit: None,
                    });
                };
                let (height, count) = (target.height, target.count);
                // The copy lands at the current depth: its own nesting adds to it.
                let depth = self.stack.len() + height;
                if depth > LIMITS.depth {
                    return Err(depth_error(pos, depth));
                }
                // Checked before cloning, so an expansion over the limit is never built.
                let nodes = self.nodes.saturating_add(count);
                if nodes > LIMITS.nodes {
                    return Err(node_error(pos));
                }
                let mut node = target.node.clone();
                self.nodes = nodes;
                node.pos = pos;
                self.insert(
                    Built {
                        node,
                        height,
                        count,
                    },
                    0,
                )?;
            }
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, anchor: usize, body: Body) -> Result<(), SyntaxError> {
        let depth = self.stack.len() + 1;
        if depth > LIMITS.depth {
            return Err(depth_error(pos, depth));
        }
        self.count_nodes(1, pos)?;
        self.stack.push(Frame {
            pos,
            anchor,
            height: 0,
            count: 1,
            body,
        });
        Ok(())
    }

    fn count_nodes(&mut self, more: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(more);
        if self.nodes > LIMITS.nodes {
            return Err(node_error(pos));
        }
        Ok(())
    }

    fn insert(&mut self, built: Built, anchor: usize) -> Result<(), SyntaxError> {
        let Built {
            node,
            height,
            count,
        } = built;
        if anchor > 0 {
            self.anchors.insert(
                anchor,
                Built {
                    node: node.clone(),
                    height,
                    count,
                },
            );
        }
        let Some(frame) = self.stack.last_mut() else {
            self.current_doc = Some(node);
            return Ok(());
        };
        frame.height = frame.height.max(height);
        frame.count = frame.count.saturating_add(count);
        match &mut frame.body {
            Body::Seq(items) => {
                check_entries(items.len(), node.pos, "items in a sequence")?;
                items.push(node);
            }
            Body::Map {
                entries,
                index,
                key,
                merged,
            } => match key.take() {
                None => *key = Some(node),
                Some(k) if is_merge_key(&k) => merge_into(entries, index, merged, node)?,
                Some(k) => {
                    let text = k.key_text();
                    match index.get(&text) {
                        Some(&i) if merged.remove(&text) => entries[i] = (k, node),
                        Some(_) => {
                            return Err(SyntaxError {
                                pos: k.pos,
                                message: format!("duplicate key '{text}' in mapping"),
                                limit: None,
                            });
                        }
                        None => {
                            check_entries(entries.len(), k.pos, "keys in a mapping")?;
                            index.insert(text, entries.len());
                            entries.push((k, node));
                        }
                    }
                }
            },
        }
        Ok(())
    }
}

fn node_error(pos: Pos) -> SyntaxError {
    limit_error(
        pos,
        "node count",
        format!(
            "the file has more than {} nodes (values, keys and collections, counting every copy an alias makes); the limit is reached here",
            LIMITS.nodes
        ),
    )
}

fn depth_error(pos: Pos, depth: usize) -> SyntaxError {
    limit_error(
        pos,
        "nesting depth",
        format!(
            "this value opens level {depth}, over the limit of {} nested lists and mappings",
            LIMITS.depth
        ),
    )
}

/// Called before adding one more entry to a collection holding `len`.
fn check_entries(len: usize, pos: Pos, what: &str) -> Result<(), SyntaxError> {
    if len < LIMITS.entries {
        return Ok(());
    }
    Err(limit_error(
        pos,
        "collection size",
        format!(
            "this is entry {} and the limit is {} {what}",
            len + 1,
            LIMITS.entries
        ),
    ))
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { raw, value: Scalar::Str(_) } if raw == "<<")
}

/// YAML merge keys: entries already present win over merged ones, as in PyYAML.
fn merge_into(
    entries: &mut Vec<(Node, Node)>,
    index: &mut HashMap<String, usize>,
    merged: &mut HashSet<String>,
    value: Node,
) -> Result<(), SyntaxError> {
    let needs = |pos| SyntaxError {
        pos,
        message: "merge key '<<' needs a mapping or a list of mappings".to_owned(),
        limit: None,
    };
    let sources: Vec<Node> = match value.kind {
        Kind::Map(_) => vec![value],
        Kind::Seq(items) => items,
        _ => return Err(needs(value.pos)),
    };
    for source in sources {
        let Kind::Map(more) = source.kind else {
            return Err(needs(source.pos));
        };
        for (k, v) in more {
            let text = k.key_text();
            if !index.contains_key(&text) {
                check_entries(entries.len(), k.pos, "keys in a mapping")?;
                index.insert(text.clone(), entries.len());
                merged.insert(text);
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn limit_of(source: &str) -> SyntaxError {
        let err = parse_documents(source).expect_err("over a limit");
        assert!(err.limit.is_some(), "not a limit error: {err:?}");
        err
    }

    #[test]
    fn nesting_is_refused_at_the_limit_without_recursion() {
        let ok = format!("{}1{}", "[".repeat(LIMITS.depth), "]".repeat(LIMITS.depth));
        parse_documents(&ok).expect("exactly at the depth limit");
        // Far past the limit, flow and block style alike: saphyr's recursive loader would have
        // overflowed the stack on the first.
        let flow = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let err = limit_of(&flow);
        assert_eq!(err.limit, Some("nesting depth"));
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                column: LIMITS.depth + 1
            }
        );
        assert!(
            err.to_string().contains("level 65, over the limit of 64"),
            "{err}"
        );
        // saphyr's scanner looks ahead through flow collections and stops by itself at 255
        // levels, so a million brackets end there, positioned, before any event reaches us.
        let err = parse_documents(&"[".repeat(1_000_000)).expect_err("too deep");
        assert!(err.pos.line == 1 && err.pos.column <= 256, "{err:?}");
        let block: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(limit_of(&block).limit, Some("nesting depth"));
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let half = LIMITS.depth / 2 + 1;
        let nested = |inner: &str| format!("{}{inner}{}", "[".repeat(half), "]".repeat(half));
        let doc = format!("a: &x {}\nb: {}\n", nested("1"), nested("*x"));
        assert_eq!(limit_of(&doc).limit, Some("nesting depth"));
    }

    #[test]
    fn billion_laughs_stop_at_the_node_limit() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = limit_of(&doc);
        assert_eq!(err.limit, Some("node count"));
        assert!(err.to_string().contains("250000 nodes"), "{err}");
    }

    #[test]
    fn big_mappings_are_linear_and_bounded() {
        let keys = |n: usize| -> String { (0..n).map(|i| format!("k{i}: {i}\n")).collect() };
        let started = std::time::Instant::now();
        let docs = parse_documents(&keys(LIMITS.entries)).expect("at the limit");
        let map = docs[0].as_ref().and_then(Node::as_map).expect("a mapping");
        assert_eq!(map.len(), LIMITS.entries);
        // A quadratic duplicate check took seconds here; the index takes milliseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let err = limit_of(&keys(100_000));
        assert_eq!(err.limit, Some("collection size"));
        assert_eq!(err.pos.line, LIMITS.entries + 1);
        let items: String = (0..=LIMITS.entries).map(|i| format!("- {i}\n")).collect();
        assert!(limit_of(&items).to_string().contains("items in a sequence"));
        // Duplicates are still found, after any number of keys, and merged keys still yield.
        let dup = format!("{}k7: again\n", keys(5_000));
        let err = parse_documents(&dup).expect_err("duplicate");
        assert_eq!(err.message, "duplicate key 'k7' in mapping");
        assert_eq!(err.pos.line, 5_001);
    }

    #[test]
    fn size_limits_name_the_size_and_the_place() {
        let big = format!("run: |\n  {}\n", "x".repeat(LIMITS.scalar_bytes + 1));
        let err = limit_of(&big);
        assert_eq!(err.limit, Some("scalar size"));
        assert_eq!(err.pos.line, 2);
        assert!(
            err.to_string()
                .contains("1048578 bytes, over the limit of 1048576"),
            "{err}"
        );
        let huge = format!("a: 1\nb: {}\n", "y".repeat(LIMITS.document_bytes));
        let err = limit_of(&huge);
        assert_eq!(err.limit, Some("document size"));
        assert_eq!(err.pos.line, 2);
        assert!(
            err.to_string().contains("over the limit of 4194304 bytes"),
            "{err}"
        );
        let many_docs = "---\n".repeat(LIMITS.nodes + 1);
        assert_eq!(limit_of(&many_docs).limit, Some("node count"));
    }
}
