//! The task's `config:` block: SkyPilot's per-task overrides of `config.yaml`.
//!
//! SkyPilot 0.14.1 lets a task override only the keys of its `OVERRIDEABLE_CONFIG_KEYS_IN_TASK`
//! list, plus the task-only `hooks`. So that none is silently dropped, each is one of three things
//! here:
//! - **applied**: `gcp.enable_gvnic` (on GCP placements, over `config.yaml`'s value);
//! - **inert**: keys that only shape clusters on clouds Sky never launches on (Kubernetes, the
//!   Kubernetes-backed SSH pools of SkyPilot, Vast, Slurm) or only a docker container (a docker
//!   `image_id` is refused on its own): the task runs on Sky's clouds exactly as written, so
//!   they are accepted with one warning naming the key and its line;
//! - **refused**, naming the key, its line and what to do: everything Sky would have to act on
//!   and does not yet.
//!
//! Keys outside SkyPilot's list are refused as SkyPilot refuses them, pointing at `config.yaml`.

use serde::{Deserialize, Serialize};

use super::error::{TaskError, did_you_mean};
use super::fields::{Ctx, join};
use super::yaml::Node;

/// What a task's `config:` changes for its own launch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// `config.gcp.enable_gvnic`: GCP nodes get Google's gVNIC network interface instead of
    /// VirtIO (needed for the highest network bandwidth, and by some GPU machine families).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_enable_gvnic: Option<bool>,
}

impl TaskConfig {
    pub fn is_empty(&self) -> bool {
        self == &TaskConfig::default()
    }
}

/// How Sky treats one key SkyPilot lets a task override.
enum Treatment {
    Applied,
    /// Accepted with a warning: why the key changes nothing on the clouds Sky launches on.
    Inert(&'static str),
    /// Refused: what Sky does not do, and what to do instead.
    Refused(&'static str),
}

const KUBERNETES: &str =
    "it shapes Kubernetes pods only, and Sky does not launch on Kubernetes, so it has no effect";
const SKYPILOT_SSH: &str = "SkyPilot's `ssh` node pools run Kubernetes pods; Sky's `ssh` cloud \
                            runs on the hosts themselves, so it has no effect";
const NOT_A_SKY_CLOUD: &str = "Sky does not launch on this cloud, so it has no effect";

/// SkyPilot 0.14.1's task-overridable keys (`section.key`, or a top-level `key`) and Sky's
/// treatment of each.
fn treatment(section: &str, key: Option<&str>) -> Option<Treatment> {
    use Treatment::*;
    Some(match (section, key) {
        ("gcp", Some("enable_gvnic")) => Applied,
        (
            "kubernetes",
            Some(
                "custom_metadata"
                | "pod_config"
                | "provision_timeout"
                | "dws"
                | "kueue"
                | "quota"
                | "remote_identity"
                | "enable_docker"
                | "set_pod_resource_limits",
            ),
        ) => Inert(KUBERNETES),
        ("ssh", Some("custom_metadata" | "pod_config" | "provision_timeout")) => {
            Inert(SKYPILOT_SSH)
        }
        ("vast", Some("datacenter_only" | "create_instance_kwargs"))
        | ("slurm", Some("sbatch_options" | "quota" | "cpu_partition")) => Inert(NOT_A_SKY_CLOUD),
        ("docker", Some("run_options")) => Inert(
            "it applies only to a docker `image_id`, which Sky refuses on its own, so it has no \
             effect",
        ),
        ("nvidia_gpus", Some("disable_ecc")) => Refused(
            "Sky does not change GPU ECC settings; remove it, or run `sudo nvidia-smi -e 0` in \
             `setup` and reboot the nodes yourself",
        ),
        ("azure", Some("remote_identity")) => Refused(
            "Sky does not attach identities to Azure VMs chosen by the task; remove it (nodes get \
             no cloud identity)",
        ),
        ("azure", Some("vpc_name")) | ("gcp", Some("vpc_name" | "subnet_names")) => Refused(
            "Sky launches into the cloud's default network and does not choose another per task \
             yet; remove it to launch there",
        ),
        ("gcp", Some("managed_instance_group")) => Refused(
            "Sky creates GCP instances one by one, not through managed instance groups; remove it",
        ),
        ("gcp", Some("enable_gpu_direct")) => Refused(
            "Sky does not set up GPUDirect networking; remove it (use `network_tier: best` for \
             GCP's GPUDirect images)",
        ),
        ("gcp", Some("placement_policy")) => {
            Refused("Sky does not place GCP instances by policy yet; remove it")
        }
        ("active_workspace", None) => Refused(
            "Sky has no workspaces: every task uses this home's config.yaml and credentials; \
             remove it",
        ),
        ("hooks", None) => Refused(
            "Sky does not run lifecycle hooks on stop, preemption or down yet; remove them (run \
             cleanup at the end of `run` instead)",
        ),
        _ => return None,
    })
}

/// The sections SkyPilot lets a task override, for "did you mean" hints.
const SECTIONS: &[&str] = &[
    "active_workspace",
    "azure",
    "docker",
    "gcp",
    "hooks",
    "kubernetes",
    "nvidia_gpus",
    "slurm",
    "ssh",
    "vast",
];

/// Reads the `config:` block at `path` (`config`): applies what Sky acts on, warns of inert keys,
/// refuses the rest with their position.
pub(crate) fn parse(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<TaskConfig, TaskError> {
    let mut config = TaskConfig::default();
    for (section_key, section) in ctx.opt_map(path, node)? {
        let section_name = section_key.key_text();
        let section_path = join(path, &section_name);
        if let Some(treatment) = treatment(&section_name, None) {
            judge(ctx, &section_path, section_key, treatment)?;
            continue;
        }
        if !SECTIONS.contains(&section_name.as_str()) {
            let hint = did_you_mean(&section_name, SECTIONS.iter().copied());
            return Err(not_overridable(ctx, &section_path, section_key, &hint));
        }
        for (key, value) in ctx.opt_map(&section_path, section)? {
            let key_name = key.key_text();
            let key_path = join(&section_path, &key_name);
            match treatment(&section_name, Some(&key_name)) {
                Some(Treatment::Applied) => {
                    // The only applied key today; a second one gets its own arm.
                    config.gcp_enable_gvnic = ctx.opt_bool(&key_path, value)?;
                }
                Some(treatment) => judge(ctx, &key_path, key, treatment)?,
                None => return Err(not_overridable(ctx, &key_path, key, "")),
            }
        }
    }
    Ok(config)
}

fn judge(ctx: &Ctx<'_>, path: &str, key: &Node, treatment: Treatment) -> Result<(), TaskError> {
    match treatment {
        Treatment::Applied => Ok(()),
        Treatment::Inert(why) => {
            let at = ctx.at(path, key, why);
            tracing::warn!("{at}");
            Ok(())
        }
        Treatment::Refused(why) => Err(ctx.at(path, key, why)),
    }
}

fn not_overridable(ctx: &Ctx<'_>, path: &str, key: &Node, hint: &str) -> TaskError {
    ctx.at(
        path,
        key,
        format!(
            "cannot be overridden in a task{hint}: a task's `config:` takes only the keys SkyPilot \
             lets a task override (docker.run_options, gcp.enable_gvnic, kubernetes.*, ...); set \
             it in config.yaml instead"
        ),
    )
}
