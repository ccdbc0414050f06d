//! Task files: SkyPilot 0.14.1-compatible task YAML parsed into validated [`Task`]s.
//!
//! A file may hold several YAML documents (`---`): that is a chain of tasks, each feeding the
//! next (with an optional first document holding only the chain's `name`). Fields mean what they
//! mean in SkyPilot, including its quirks: YAML 1.1 scalars, `envs` values turned into strings,
//! `${VAR}` substitution from `envs` and `secrets` in `file_mounts`, `workdir`, `service` and
//! `volumes` only, resource alternatives from `any_of`/`ordered` and accelerator lists or sets.
//! Valid SkyPilot fields Sky does not act on yet are kept (see [`Task::extras`],
//! [`Resources::extras`](crate::resources::Resources::extras)) rather than rejected.
//!
//! What this module does not do: touch the filesystem (workdir and file mount sources are
//! checked at launch), or decide feasibility and price (the optimizer does).

mod autostop;
mod config_block;
mod error;
mod fields;
mod mounts;
mod overrides;
mod resources_spec;
mod spec;
mod validate;
mod values;
mod vocab;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use autostop::{AutostopRequest, DEFAULT_IDLE_MINUTES};
pub use config_block::TaskConfig;
pub use error::TaskError;

/// Reads an `autostop` value (`config.yaml`'s default) the way a task's is read.
pub(crate) fn parse_autostop(
    source: &str,
    path: &str,
    node: &yaml::Node,
) -> Result<Option<AutostopRequest>, TaskError> {
    autostop::parse(&fields::Ctx { source }, path, node)
}
pub use overrides::TaskOverrides;
pub use vocab::{CloudWords, StaticVocabulary, Vocabulary};

pub(crate) use error::did_you_mean;
pub(crate) use resources_spec::OTHER_SKYPILOT_CLOUDS;

use crate::resources::{ChoiceKind, ResourceChoice};
use resources_spec::Requested;

/// A validated task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub name: Option<String>,
    pub workdir: Option<Workdir>,
    pub setup: Option<String>,
    pub run: Option<String>,
    /// Environment variables for setup and run (SkyPilot's `envs`, values as strings).
    pub envs: BTreeMap<String, String>,
    /// Inline secret values; redacted in `Debug` and when serialized.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets named but not given a value (`secrets: [secrets:HF_TOKEN]`, `HF_TOKEN:` with no
    /// value), to be resolved at launch from `--secret` or a secret store.
    pub secret_refs: Vec<String>,
    pub num_nodes: u32,
    /// Remote path -> a local path, a bucket path or a storage object.
    pub file_mounts: BTreeMap<String, FileMount>,
    pub resources: ResourceChoice,
    /// Data the task reads, with its estimated size: the optimizer charges egress for it.
    pub inputs: Option<DataSpec>,
    /// Data the task writes, with its estimated size: moved to the next task of a chain.
    pub outputs: Option<DataSpec>,
    pub event_callback: Option<String>,
    /// The `service:` block, kept as written (with `${VAR}` substituted).
    pub service: Option<serde_json::Value>,
    /// What the task's `config:` block changes for its own launch (see [`TaskConfig`]).
    #[serde(skip_serializing_if = "TaskConfig::is_empty")]
    pub config: TaskConfig,
    /// Other valid SkyPilot task fields kept as written (`pool`, `volumes`, `volume_mounts`,
    /// `managed_secrets`, `api_server_access`, `file_mounts_mapping`, `_metadata`).
    pub extras: BTreeMap<String, serde_json::Value>,
    /// The alternatives as requested, before catalog validation; overrides apply to these.
    #[serde(skip)]
    requested: Vec<Requested>,
}

/// `workdir: ./src` or `workdir: {url: https://..., ref: main}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workdir {
    Local(String),
    Git {
        url: String,
        reference: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMount {
    /// A local file or directory, copied to the remote path.
    Local(String),
    /// A bucket, or a path in one, copied to the remote path before setup.
    Bucket(crate::storage::BucketUri),
    /// A storage object (`{name: ..., source: ..., mode: MOUNT}`).
    Storage(crate::storage::StorageSpec),
}

/// `inputs: {s3://bucket/data: 100}`: where the data lives and its estimated size in GB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSpec {
    pub location: String,
    pub estimated_size_gb: f64,
}

/// A secret value. It never shows in `Debug`, `Display`, logs or serialized output; read it with
/// [`Secret::expose`] only where it is handed to the remote process.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// A chain of tasks from one file, with the chain's name when the file gives one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub name: Option<String>,
    pub tasks: Vec<Task>,
}

/// Parses every task of a task file. `source` is the file name used in messages.
pub fn parse_chain(
    yaml: &str,
    source: &str,
    vocab: &impl Vocabulary,
) -> Result<Vec<Task>, TaskError> {
    parse_chain_with(yaml, source, vocab, &TaskOverrides::default()).map(|c| c.tasks)
}

/// Parses a task file and applies command-line overrides, the way `sky launch FILE --flags` does:
/// `--env`/`--secret` apply to every task before `${VAR}` substitution; resource, `--num-nodes`
/// and `--name` overrides apply only to a single-task file (SkyPilot ignores them for a chain,
/// and so does this, logging a warning).
pub fn parse_chain_with(
    yaml: &str,
    source: &str,
    vocab: &impl Vocabulary,
    overrides: &TaskOverrides,
) -> Result<Chain, TaskError> {
    let mut chain = spec::parse_chain(yaml, source, overrides)?;
    let single = chain.tasks.len() == 1;
    if !single && overrides.has_task_level() {
        tracing::warn!(
            "resource, --num-nodes and --name overrides are ignored: the file holds a chain of tasks"
        );
    }
    for task in &mut chain.tasks {
        if single {
            task.apply_overrides(overrides, vocab)?;
        } else {
            task.apply_workdir_override(overrides);
            task.revalidate(vocab)?;
        }
    }
    Ok(chain)
}

/// Whether `text` reads as a task file (its first document is a mapping), as opposed to a script
/// or a command: SkyPilot decides the entrypoint's kind the same way.
pub fn looks_like_task_yaml(text: &str) -> bool {
    match yaml::parse_documents(text) {
        Ok(docs) => docs
            .into_iter()
            .flatten()
            .find(|d| !d.is_null())
            .is_some_and(|d| d.as_map().is_some()),
        Err(_) => false,
    }
}

/// `text` with every non-empty value of `secrets` replaced by `${KEY}`, the form the user wrote.
/// For messages about fields that went through `${VAR}` substitution (`workdir`, `file_mounts`),
/// which would otherwise echo an inline secret. Longer values first, so a value that contains
/// another is replaced whole.
pub fn redact_secrets(text: &str, secrets: &BTreeMap<String, Secret>) -> String {
    let mut by_length: Vec<(&String, &Secret)> =
        secrets.iter().filter(|(_, v)| !v.0.is_empty()).collect();
    by_length.sort_by_key(|(_, v)| std::cmp::Reverse(v.0.len()));
    let mut out = text.to_owned();
    for (key, value) in by_length {
        if out.contains(&value.0) {
            out = out.replace(&value.0, &format!("${{{key}}}"));
        }
    }
    out
}

impl Task {
    /// [`redact_secrets`] with this task's secrets.
    pub fn redact(&self, text: &str) -> String {
        redact_secrets(text, &self.secrets)
    }

    /// `sky launch 'echo hi'`: a task running a command on default resources, named `sky-cmd`
    /// as in SkyPilot.
    pub fn from_command(cmd: &str) -> Task {
        let requested = vec![Requested {
            resources: crate::resources::Resources::default(),
            origins: BTreeMap::new(),
        }];
        Task {
            name: Some("sky-cmd".to_owned()),
            workdir: None,
            setup: None,
            run: Some(cmd.to_owned()),
            envs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secret_refs: Vec::new(),
            num_nodes: 1,
            file_mounts: BTreeMap::new(),
            resources: ResourceChoice::default(),
            inputs: None,
            outputs: None,
            event_callback: None,
            service: None,
            config: TaskConfig::default(),
            extras: BTreeMap::new(),
            requested,
        }
    }

    /// Re-checks the requested alternatives against `vocab` and stores the result in
    /// [`Task::resources`].
    fn revalidate(&mut self, vocab: &impl Vocabulary) -> Result<(), TaskError> {
        let options = self
            .requested
            .iter()
            .map(|r| validate::validate(r, vocab))
            .collect::<Result<Vec<_>, _>>()?;
        let mut unique = Vec::with_capacity(options.len());
        for o in options {
            if !unique.contains(&o) {
                unique.push(o);
            }
        }
        self.resources.options = unique;
        Ok(())
    }

    fn set_requested(&mut self, kind: ChoiceKind, requested: Vec<Requested>) {
        self.resources.kind = kind;
        self.requested = requested;
    }
}
