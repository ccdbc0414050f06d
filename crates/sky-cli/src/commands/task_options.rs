//! The task options `sky launch` and `sky exec` share (SkyPilot's `TASK_OPTIONS_WITH_NAME` plus
//! `--gpus`, `--instance-type`, `--ports`), and loading a task from an entrypoint that is either
//! a YAML file or an inline command.
//!
//! Flatten [`TaskOptions`] into a command's `Args` with `#[command(flatten)]`. What this module
//! does not do: interpret a value. Parsing and validation live in `sky_core::task`, so a bad
//! value is reported against its flag (`--gpus: unknown accelerator 'A1000' ...`).

use std::path::Path;

use anyhow::Context as _;
use sky_core::task::{Secret, Task, TaskOverrides, Vocabulary, parse_chain_with};

/// Task options of `sky launch` / `sky exec`; each overrides the task file's field.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TaskOptions {
    /// Task name (overrides `name` in the task file).
    #[arg(long, short = 'n')]
    pub name: Option<String>,

    /// Local directory synced to the remote working directory (overrides `workdir`).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Where to run: cloud, cloud/region or cloud/region/zone, `*` for any part
    /// (e.g. aws, gcp/us-central1, aws/*/us-east-1a).
    #[arg(long, value_name = "INFRA")]
    pub infra: Option<String>,

    /// Cloud to use; `none` clears the task file's (deprecated: use --infra).
    #[arg(long, hide = true)]
    pub cloud: Option<String>,

    /// Region to use; `none` clears the task file's (deprecated: use --infra).
    #[arg(long, hide = true)]
    pub region: Option<String>,

    /// Zone to use; `none` clears the task file's (deprecated: use --infra).
    #[arg(long, hide = true)]
    pub zone: Option<String>,

    /// Number of nodes to run the task on (overrides `num_nodes`).
    #[arg(long, value_name = "N")]
    pub num_nodes: Option<u32>,

    /// vCPUs per node: `4` (exactly) or `4+` (at least); `none` clears.
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,

    /// Memory per node in GiB: `16`, `16+` (at least), `16GB`, `4x` (per vCPU); `none` clears.
    #[arg(long, value_name = "MEMORY")]
    pub memory: Option<String>,

    /// Accelerators per node: `V100`, `V100:8`, `A10:0.5`; `none` clears.
    #[arg(long, value_name = "NAME[:COUNT]")]
    pub gpus: Option<String>,

    /// Instance type; `none` clears.
    #[arg(long, short = 't', value_name = "TYPE")]
    pub instance_type: Option<String>,

    /// Use spot instances (overrides `use_spot`).
    #[arg(long, overrides_with = "no_use_spot")]
    pub use_spot: bool,

    /// Use on-demand instances (overrides `use_spot`).
    #[arg(long, overrides_with = "use_spot")]
    pub no_use_spot: bool,

    /// OS disk size in GB.
    #[arg(long, value_name = "GB")]
    pub disk_size: Option<u32>,

    /// OS disk tier; `none` clears the task file's.
    #[arg(long, value_name = "TIER", value_parser = ["low", "medium", "high", "ultra", "best", "none"], ignore_case = true)]
    pub disk_tier: Option<String>,

    /// Machine image id; `none` clears.
    #[arg(long, value_name = "ID")]
    pub image_id: Option<String>,

    /// Ports to open: `8080`, `10000-10010`, `80,443`; repeatable; `none` clears.
    #[arg(long, value_name = "PORTS")]
    pub ports: Vec<String>,

    /// Environment variable for the task: `KEY=VALUE`, or `KEY` to pass this shell's value.
    /// Repeatable.
    #[arg(long = "env", value_name = "KEY[=VALUE]", value_parser = parse_env)]
    pub envs: Vec<(String, String)>,

    /// Secret for the task, redacted everywhere: `KEY` passes this shell's value (preferred:
    /// keeps it out of shell history and the process list), `KEY=VALUE` gives it inline (with a
    /// warning: any user of this machine can read it in the process list). Repeatable.
    #[arg(long = "secret", value_name = "KEY[=VALUE]", value_parser = parse_secret)]
    pub secrets: Vec<SecretArg>,
}

/// One `--secret`: the key, the value, and whether the value was given on the command line.
#[derive(Debug, Clone)]
pub struct SecretArg {
    pub key: String,
    pub value: Secret,
    pub inline: bool,
}

fn split_assignment(text: &str, what: &str) -> Result<(String, Option<String>), String> {
    let (key, value) = match text.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (text, None),
    };
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "invalid {what} name '{key}': use KEY=VALUE or KEY, with letters, digits and underscores"
        ));
    }
    Ok((key.to_owned(), value))
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = split_assignment(text, "environment variable")?;
    match value {
        Some(v) => Ok((key, v)),
        None => std::env::var(&key)
            .map(|v| (key.clone(), v))
            .map_err(|_| format!("{key} is not set in the local environment")),
    }
}

fn parse_secret(text: &str) -> Result<SecretArg, String> {
    // clap echoes a rejected value in its message, and `text` may hold the secret: so a
    // `KEY=VALUE` form is never rejected here; its key is checked in `load_tasks`, which names
    // the key only.
    match text.split_once('=') {
        Some((key, value)) => Ok(SecretArg {
            key: key.to_owned(),
            value: Secret::new(value),
            inline: true,
        }),
        None => {
            let (key, _) = split_assignment(text, "secret")?;
            std::env::var(&key)
                .map(|v| SecretArg {
                    key: key.clone(),
                    value: Secret::new(v),
                    inline: false,
                })
                .map_err(|_| format!("{key} is not set in the local environment"))
        }
    }
}

/// The warning for secrets given as `--secret KEY=VALUE`, naming the keys only.
pub fn inline_secret_warning(secrets: &[SecretArg]) -> Option<String> {
    let keys: Vec<&str> = secrets
        .iter()
        .filter(|s| s.inline)
        .map(|s| s.key.as_str())
        .collect();
    if keys.is_empty() {
        return None;
    }
    Some(format!(
        "warning: --secret {}=... puts the value on the command line, where other users of this \
         machine can read it (process list, shell history); export it and pass --secret {} instead",
        keys.join("=... --secret "),
        keys.join(" --secret "),
    ))
}

impl TaskOptions {
    pub fn to_overrides(&self) -> TaskOverrides {
        let use_spot = match (self.use_spot, self.no_use_spot) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        TaskOverrides {
            name: self.name.clone(),
            workdir: self.workdir.clone(),
            num_nodes: self.num_nodes,
            infra: self.infra.clone(),
            cloud: self.cloud.clone(),
            region: self.region.clone(),
            zone: self.zone.clone(),
            gpus: self.gpus.clone(),
            cpus: self.cpus.clone(),
            memory: self.memory.clone(),
            instance_type: self.instance_type.clone(),
            use_spot,
            disk_size: self.disk_size,
            disk_tier: self.disk_tier.clone(),
            image_id: self.image_id.clone(),
            ports: self.ports.clone(),
            envs: self.envs.clone(),
            secrets: self
                .secrets
                .iter()
                .map(|s| (s.key.clone(), s.value.clone()))
                .collect(),
        }
    }
}

/// Loads the tasks of `entrypoint` with `opts` applied: a YAML task file (one task or a chain), or
/// else an inline command run on default resources (`sky launch 'echo hi'`). An empty entrypoint
/// is a task with nothing to run, as in SkyPilot.
pub fn load_tasks(
    entrypoint: &str,
    opts: &TaskOptions,
    vocab: &impl Vocabulary,
) -> anyhow::Result<Vec<Task>> {
    for secret in &opts.secrets {
        split_assignment(&secret.key, "secret").map_err(|m| anyhow::anyhow!("--secret: {m}"))?;
    }
    if let Some(warning) = inline_secret_warning(&opts.secrets) {
        // The CLI's own stderr: a warning the user must see before the run, not a log line.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{warning}");
        }
    }
    let overrides = opts.to_overrides();
    let entrypoint = entrypoint.trim();
    if let Some(text) = read_task_file(entrypoint)? {
        let chain = parse_chain_with(&text, entrypoint, vocab, &overrides)?;
        return Ok(chain.tasks);
    }
    let mut task = Task::from_command(entrypoint);
    if entrypoint.is_empty() {
        task.run = None;
    }
    task.apply_overrides(&overrides, vocab)?;
    Ok(vec![task])
}

/// The file's text when `entrypoint` names a task file: a path ending in `.yaml`/`.yml` (which
/// must exist), or an existing file whose content is a YAML mapping. A script path such as
/// `./run.sh` is a command, as in SkyPilot.
fn read_task_file(entrypoint: &str) -> anyhow::Result<Option<String>> {
    if entrypoint.is_empty() || entrypoint.contains('\n') {
        return Ok(None);
    }
    let path = Path::new(entrypoint);
    let looks_like_yaml = entrypoint.ends_with(".yaml") || entrypoint.ends_with(".yml");
    if !path.is_file() {
        if looks_like_yaml && !entrypoint.contains(char::is_whitespace) {
            anyhow::bail!("task file {entrypoint} does not exist");
        }
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading task file {entrypoint}"))?;
    if looks_like_yaml || sky_core::task::looks_like_task_yaml(&text) {
        Ok(Some(text))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sky_core::task::StaticVocabulary;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        task: TaskOptions,
        entrypoint: Option<String>,
    }

    #[test]
    fn flags_become_overrides() {
        let cli = Cli::try_parse_from([
            "sky",
            "--infra",
            "gcp/us-central1",
            "--gpus",
            "A100:8",
            "--use-spot",
            "--no-use-spot",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--ports",
            "80",
            "--ports",
            "443",
            "-n",
            "job",
            "--disk-tier",
            "HIGH",
        ])
        .expect("valid flags");
        let o = cli.task.to_overrides();
        assert_eq!(o.infra.as_deref(), Some("gcp/us-central1"));
        assert_eq!(o.use_spot, Some(false));
        assert_eq!(
            o.envs,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned())
            ]
        );
        assert_eq!(o.ports, ["80", "443"]);
        assert_eq!(o.disk_tier.as_deref(), Some("HIGH"));
        assert_eq!(o.name.as_deref(), Some("job"));
    }

    #[test]
    fn secret_values_stay_out_of_debug_and_errors() {
        let cli = Cli::try_parse_from(["sky", "--secret", "TOKEN=hunter2"]).expect("valid");
        assert!(!format!("{cli:?}").contains("hunter2"));
        let bad = Cli::try_parse_from(["sky", "--secret", "1BAD=hunter2"]).expect("checked later");
        let err = load_tasks("echo", &bad.task, &StaticVocabulary::default()).expect_err("bad key");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let warning = inline_secret_warning(&cli.task.secrets).expect("inline warns");
        assert!(warning.contains("--secret TOKEN=..."), "{warning}");
        assert!(!warning.contains("hunter2"), "{warning}");
    }

    #[test]
    fn secret_key_alone_reads_the_environment_without_warning() {
        // PATH is set in every test environment; its value stands in for an exported secret.
        let path = std::env::var("PATH").expect("PATH is set");
        let cli = Cli::try_parse_from(["sky", "--secret", "PATH"]).expect("valid");
        let o = cli.task.to_overrides();
        assert_eq!(o.secrets[0].0, "PATH");
        assert_eq!(o.secrets[0].1.expose(), path);
        assert!(inline_secret_warning(&cli.task.secrets).is_none());
    }

    #[test]
    fn inline_command_and_missing_yaml() {
        let vocab = StaticVocabulary::default();
        let tasks = load_tasks(
            "echo hi",
            &TaskOptions {
                num_nodes: Some(2),
                ..TaskOptions::default()
            },
            &vocab,
        )
        .expect("a command is a task");
        assert_eq!(
            (tasks[0].run.as_deref(), tasks[0].num_nodes),
            (Some("echo hi"), 2)
        );
        let err = load_tasks("no/such/task.yaml", &TaskOptions::default(), &vocab)
            .expect_err("missing file");
        assert_eq!(
            err.to_string(),
            "task file no/such/task.yaml does not exist"
        );
    }

    #[test]
    fn yaml_file_is_parsed_with_its_name_in_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("task.yaml");
        std::fs::write(&path, "resources:\n  cpus: many\n").expect("write");
        let entry = path.to_string_lossy().into_owned();
        let err = load_tasks(
            &entry,
            &TaskOptions::default(),
            &StaticVocabulary::default(),
        )
        .expect_err("bad cpus");
        assert_eq!(
            err.to_string(),
            format!(
                "{entry}:2:9: resources.cpus: invalid cpus 'many': expected a number (e.g. 8) or \"<number>+\" for at least (e.g. 8+)"
            )
        );
    }
}
