//! Reading the task-level fields of each YAML document, in the order SkyPilot 0.14.1's
//! `Task.from_yaml_config` applies them: type checks, `--env`/`--secret` overrides, null env
//! check, `${VAR}` substitution, then the fields themselves.
//!
//! What this module does not do: validate names against the catalog (see `validate`) or apply
//! resource overrides (see `overrides`).

use std::collections::BTreeMap;

use super::error::TaskError;
use super::fields::{Ctx, join};
use super::overrides::TaskOverrides;
use super::resources_spec::parse_resources;
use super::yaml::{self, Kind, Node, Scalar};
use super::{Chain, DataSpec, Secret, Task, Workdir};

const TOP_KEYS: &[&str] = &[
    "name",
    "workdir",
    "event_callback",
    "num_nodes",
    "resources",
    "file_mounts",
    "service",
    "pool",
    "setup",
    "run",
    "envs",
    "secrets",
    "managed_secrets",
    "inputs",
    "outputs",
    "file_mounts_mapping",
    "config",
    "volumes",
    "volume_mounts",
    "api_server_access",
    "_metadata",
];

/// Kept in `Task::extras` as written.
const KEPT_KEYS: &[&str] = &[
    "pool",
    "managed_secrets",
    "file_mounts_mapping",
    "volumes",
    "volume_mounts",
    "api_server_access",
    "_metadata",
];

pub(crate) fn parse_chain(
    yaml: &str,
    source: &str,
    overrides: &TaskOverrides,
) -> Result<Chain, TaskError> {
    let ctx = Ctx { source };
    let docs = yaml::parse_documents(yaml).map_err(|e| ctx.err("", Some(e.pos), e.to_string()))?;
    let mut docs: Vec<Node> = docs
        .into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect();
    let is_empty = |d: &Node| d.as_map().is_some_and(<[_]>::is_empty);
    if docs.iter().all(is_empty) {
        return Err(ctx.err(
            "",
            None,
            "the file is empty or holds no task: add at least a `run:` (or `setup:`) field",
        ));
    }
    let mut name = None;
    let mut docs_header_name_pos = None;
    if let Some(first) = docs.first()
        && let Some(map) = first.as_map()
    {
        let keys: Vec<String> = map.iter().map(|(k, _)| k.key_text()).collect();
        let header = keys == ["name"]
            || (keys.len() == 2
                && keys.contains(&"name".to_owned())
                && keys.contains(&"execution".to_owned()));
        if header {
            for (k, v) in map {
                match k.key_text().as_str() {
                    "name" => {
                        name = ctx.opt_str("name", v)?;
                        docs_header_name_pos = Some(v.pos);
                    }
                    _ => {
                        let mode = ctx.opt_str("execution", v)?;
                        if mode.as_deref().is_some_and(|m| m != "serial") {
                            return Err(ctx.at("execution", v, format!(
                                    "invalid execution mode '{}': a chain runs its tasks in order (use 'serial' or leave it out); job groups are not supported",
                                    v.show()
                                )));
                        }
                    }
                }
            }
            docs.remove(0);
        }
    }
    if docs.is_empty() {
        // Only a header: one empty task carrying the name, as SkyPilot does.
        if let Some(n) = name.as_deref().filter(|n| !is_valid_task_name(n)) {
            let node = docs_header_name_pos;
            return Err(ctx.err("name", node, invalid_name_message(n)));
        }
        let mut task = Task::from_command("");
        task.run = None;
        task.name = name.clone();
        return Ok(Chain {
            name,
            tasks: vec![task],
        });
    }
    if docs.len() == 1
        && name.is_none()
        && let Some(map) = docs[0].as_map()
        && let Some((_, v)) = map.iter().find(|(k, _)| k.key_text() == "name")
    {
        name = v.as_str().map(str::to_owned);
    }
    let tasks = docs
        .iter()
        .map(|doc| parse_task(ctx, doc, overrides))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Chain { name, tasks })
}

fn parse_task(ctx: Ctx<'_>, doc: &Node, overrides: &TaskOverrides) -> Result<Task, TaskError> {
    let map = doc.as_map().ok_or_else(|| {
        ctx.expected(
            "",
            doc,
            "a mapping of task fields (name, run, resources, ...)",
        )
    })?;
    ctx.check_keys("", map, TOP_KEYS)?;
    let get = |key: &str| {
        map.iter()
            .find(|(k, _)| k.key_text() == key)
            .map(|(_, v)| v)
    };

    // envs: values become strings as SkyPilot's str() makes them; null is allowed until overrides.
    let mut envs: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut env_nodes: BTreeMap<String, &Node> = BTreeMap::new();
    if let Some(node) = get("envs") {
        for (k, v) in ctx.opt_map("envs", node)? {
            let key = k.key_text();
            if !is_env_name(&key) {
                return Err(ctx.at(&join("envs", &key), k, format!(
                    "invalid environment variable name '{key}': use letters, digits and underscores, not starting with a digit"
                )));
            }
            if !matches!(v.kind, Kind::Scalar { .. }) {
                return Err(ctx.expected(&join("envs", &key), v, "a string"));
            }
            envs.insert(key.clone(), v.python_str());
            env_nodes.insert(key, v);
        }
    }
    for (k, v) in &overrides.envs {
        envs.insert(k.clone(), Some(v.clone()));
    }
    let mut env_values = BTreeMap::new();
    for (k, v) in envs {
        match v {
            Some(v) => {
                env_values.insert(k, v);
            }
            None => {
                let path = join("envs", &k);
                let pos = env_nodes.get(&k).map(|n| n.pos);
                return Err(ctx.err(&path, pos, format!(
                    "environment variable '{k}' has no value: set one in the task file or with --env {k}=VALUE (use \"\" for an empty value)"
                )));
            }
        }
    }

    let (mut secrets, mut secret_refs) = parse_secrets(ctx, get("secrets"))?;
    for (k, v) in &overrides.secrets {
        secret_refs.retain(|r| r != k);
        secrets.insert(k.clone(), v.clone());
    }

    // ${VAR} substitution, from envs and inline secrets, in the fields SkyPilot substitutes.
    let mut substitutions: BTreeMap<&str, &str> = env_values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in &secrets {
        substitutions.insert(k.as_str(), v.expose());
    }
    let subst = |node: Option<&Node>| node.map(|n| substitute_node(n, &substitutions));

    let mut task = Task::from_command("");
    task.name = None;
    task.run = None;
    task.envs = env_values.clone();
    task.secrets = secrets.clone();
    task.secret_refs = secret_refs;

    for (key_node, value) in map {
        let key = key_node.key_text();
        let path = key.as_str();
        match path {
            "name" => {
                task.name = ctx.opt_str(path, value)?;
                if let Some(name) = &task.name
                    && !is_valid_task_name(name)
                {
                    return Err(ctx.at(path, value, invalid_name_message(name)));
                }
            }
            "setup" => task.setup = ctx.opt_str(path, value)?,
            "run" => task.run = ctx.opt_str(path, value)?,
            "event_callback" => task.event_callback = ctx.opt_str(path, value)?,
            "num_nodes" => {
                task.num_nodes = match value.scalar() {
                    Some(Scalar::Null) => 1,
                    Some(Scalar::Int(n)) if *n > 0 => u32::try_from(*n)
                        .map_err(|_| ctx.at(path, value, format!("num_nodes is too large: {n}")))?,
                    Some(Scalar::Int(_)) => {
                        return Err(ctx.at(
                            path,
                            value,
                            format!("num_nodes must be a positive integer, got {}", value.show()),
                        ));
                    }
                    _ => return Err(ctx.expected(path, value, "a positive integer")),
                };
            }
            "inputs" | "outputs" => {
                let spec = parse_data_spec(ctx, path, value)?;
                if path == "inputs" {
                    task.inputs = spec;
                } else {
                    task.outputs = spec;
                }
            }
            "config" => task.config = super::config_block::parse(&ctx, path, value)?,
            "service" if !value.is_null() => {
                value
                    .as_map()
                    .ok_or_else(|| ctx.expected(path, value, "a mapping"))?;
                task.service = subst(Some(value)).map(|n| n.to_json());
            }
            "workdir" => {
                if let Some(node) = subst(Some(value)) {
                    task.workdir = parse_workdir(ctx, &node).map_err(|e| e.redacted(&secrets))?;
                }
            }
            "file_mounts" => {
                if let Some(node) = subst(Some(value)) {
                    task.file_mounts =
                        super::mounts::parse(ctx, &node).map_err(|e| e.redacted(&secrets))?;
                }
            }
            "volumes" => {
                if let Some(node) = subst(Some(value)) {
                    task.extras.insert(key.clone(), node.to_json());
                }
            }
            "api_server_access" => {
                ctx.opt_bool(path, value)?;
                task.extras.insert(key.clone(), value.to_json());
            }
            k if KEPT_KEYS.contains(&k) => {
                task.extras.insert(key.clone(), value.to_json());
            }
            _ => {}
        }
    }
    if let (Some(_), Some(pool)) = (get("service"), get("pool"))
        && !pool.is_null()
    {
        return Err(ctx.at(
            "pool",
            pool,
            "cannot set both 'service' and 'pool' in the same task",
        ));
    }
    if let Some(resources) = get("resources")
        && let Some(entries) = resources.as_map()
        && let Some((k, _)) = entries.iter().find(|(k, _)| k.key_text() == "hooks")
    {
        return Err(ctx.at(
            "resources.hooks",
            k,
            "lifecycle hooks go under the top-level `config.hooks:`, not `resources.hooks:`",
        ));
    }
    let (kind, requested) = parse_resources(ctx, get("resources"))?;
    task.set_requested(kind, requested);
    Ok(task)
}

fn parse_secrets(
    ctx: Ctx<'_>,
    node: Option<&Node>,
) -> Result<(BTreeMap<String, Secret>, Vec<String>), TaskError> {
    let mut inline = BTreeMap::new();
    let mut refs = Vec::new();
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Ok((inline, refs));
    };
    if let Some(items) = node.as_seq() {
        for item in items {
            let text = item
                .python_str()
                .filter(|_| matches!(item.kind, Kind::Scalar { .. }));
            match text.as_deref().and_then(|t| t.strip_prefix("secrets:")) {
                Some(name) => refs.push(name.to_owned()),
                // Never echo a value that might be a secret: name the position only.
                None => {
                    return Err(ctx.at("secrets", item, "a list of secrets holds references only, written 'secrets:NAME'; give inline values as a mapping (NAME: value)"));
                }
            }
        }
        return Ok((inline, refs));
    }
    let Some(map) = node.as_map() else {
        return Err(ctx.at(
            "secrets",
            node,
            format!(
                "expected a mapping of NAME: value or a list of 'secrets:NAME', got {}",
                node.kind_name()
            ),
        ));
    };
    for (k, v) in map {
        let key = k.key_text();
        let path = join("secrets", &key);
        if !matches!(v.kind, Kind::Scalar { .. }) {
            return Err(ctx.at(
                &path,
                v,
                format!("expected a string, got {}", v.kind_name()),
            ));
        }
        match (key.strip_prefix("secrets:"), v.python_str()) {
            (Some(name), None) => refs.push(name.to_owned()),
            (Some(_), Some(_)) => {
                return Err(ctx.at(&path, k, "a secret reference (secrets: prefix) must have no value; remove the prefix to give an inline value"));
            }
            (None, None) => refs.push(key),
            (None, Some(value)) => {
                inline.insert(key, Secret::new(value));
            }
        }
    }
    Ok((inline, refs))
}

fn parse_workdir(ctx: Ctx<'_>, node: &Node) -> Result<Option<Workdir>, TaskError> {
    if node.is_null() {
        return Ok(None);
    }
    if let Some(path) = node.as_str() {
        return Ok(Some(Workdir::Local(path.to_owned())));
    }
    let Some(map) = node.as_map() else {
        return Err(ctx.expected(
            "workdir",
            node,
            "a local directory or a git repository ({url: ..., ref: ...})",
        ));
    };
    ctx.check_keys("workdir", map, &["url", "ref"])?;
    let mut url = None;
    let mut reference = None;
    for (k, v) in map {
        match k.key_text().as_str() {
            "url" => url = ctx.opt_str("workdir.url", v)?,
            _ => reference = ctx.opt_str("workdir.ref", v)?,
        }
    }
    let url = url.ok_or_else(|| ctx.at("workdir", node, "a git workdir needs a 'url'"))?;
    Ok(Some(Workdir::Git { url, reference }))
}

fn parse_data_spec(ctx: Ctx<'_>, path: &str, node: &Node) -> Result<Option<DataSpec>, TaskError> {
    let entries = ctx.opt_map(path, node)?;
    match entries {
        [] => Ok(None),
        [(k, v)] => {
            let size = v.as_number().ok_or_else(|| {
                ctx.expected(&join(path, &k.key_text()), v, "an estimated size in GB")
            })?;
            Ok(Some(DataSpec {
                location: k.key_text(),
                estimated_size_gb: size,
            }))
        }
        _ => Err(ctx.at(
            path,
            node,
            format!("{path} takes exactly one location: {{s3://bucket/path: <size in GB>}}"),
        )),
    }
}

pub(crate) fn invalid_name_message(name: &str) -> String {
    format!(
        "invalid task name '{name}': use letters, digits, '_', '.' and '-', starting and ending with a letter or digit, with no more than two separators in a row"
    )
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// SkyPilot's `[a-zA-Z0-9]+(?:[._-]{1,2}[a-zA-Z0-9]+)*`.
pub(crate) fn is_valid_task_name(name: &str) -> bool {
    let mut run_len = 0usize;
    let mut prev_alnum = false;
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_alphanumeric() {
            prev_alnum = true;
            run_len = 0;
        } else if matches!(c, '.' | '_' | '-') {
            if i == 0 {
                return false;
            }
            run_len += 1;
            prev_alnum = false;
            if run_len > 2 {
                return false;
            }
        } else {
            return false;
        }
    }
    prev_alnum
}

/// `$VAR` and `${VAR}` replaced from `vars` in every string and key; unknown names stay as written.
fn substitute_node(node: &Node, vars: &BTreeMap<&str, &str>) -> Node {
    let kind = match &node.kind {
        Kind::Scalar {
            value: Scalar::Str(s),
            raw,
        } => Kind::Scalar {
            value: Scalar::Str(substitute(s, vars)),
            raw: substitute(raw, vars),
        },
        Kind::Scalar { .. } => node.kind.clone(),
        Kind::Seq(items) => Kind::Seq(items.iter().map(|n| substitute_node(n, vars)).collect()),
        Kind::Map(entries) => Kind::Map(
            entries
                .iter()
                .map(|(k, v)| (substitute_node(k, vars), substitute_node(v, vars)))
                .collect(),
        ),
    };
    Node {
        kind,
        pos: node.pos,
    }
}

/// The regex SkyPilot uses, `\$\{?\b([a-zA-Z_][a-zA-Z0-9_]*)\b\}?`, by hand.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<&str, &str>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if bytes.get(j) == Some(&b'{') {
            j += 1;
        }
        let start = j;
        if !bytes
            .get(j)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            i += 1;
            continue;
        }
        while bytes
            .get(j)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            j += 1;
        }
        let name = &text[start..j];
        if bytes.get(j) == Some(&b'}') {
            j += 1;
        }
        if let Some(value) = vars.get(name) {
            out.push_str(&text[copied..i]);
            out.push_str(value);
            copied = j;
        }
        i = j;
    }
    out.push_str(&text[copied..]);
    out
}
