//! The environment each rank of a job sees: the task's envs and secrets, then Sky's and
//! SkyPilot's predefined variables (which win, as in SkyPilot). Also SkyPilot's task id format.
//!
//! Pure functions; nothing here reads the process environment or the clock.

use sky_core::jobs::wire::ClusterConfig;
use sky_core::jobs::{JobDemand, JobId, Secrets};
use std::collections::BTreeMap;

/// Everything about a job that its environment depends on.
#[derive(Debug)]
pub struct JobEnv<'a> {
    pub config: &'a ClusterConfig,
    pub job_id: JobId,
    pub task_id: &'a str,
    pub demand: &'a JobDemand,
    pub envs: &'a BTreeMap<String, String>,
    pub secrets: Option<&'a Secrets>,
    /// Cluster node ranks the job runs on, by job rank.
    pub nodes: &'a [u32],
}

impl JobEnv<'_> {
    /// The variables for job rank `rank`, in the order they must be applied.
    pub fn for_rank(&self, rank: u32) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(secrets) = self.secrets {
            env.extend(secrets.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let ips: Vec<&str> = self
            .nodes
            .iter()
            .filter_map(|n| self.config.nodes.get(*n as usize))
            .map(|n| n.ip.as_str())
            .collect();
        let ips = ips.join("\n");
        let num_nodes = self.nodes.len().to_string();
        let rank_index = rank as usize;
        let rank = rank.to_string();
        let gpus: f64 = self.demand.accelerators.values().sum();
        let cluster_info = serde_json::json!({
            "cluster_name": self.config.cluster_name,
            "cloud": self.config.cloud,
            "region": self.config.region,
            "zone": self.config.zone,
        })
        .to_string();
        let predefined = [
            ("SKY_NODE_RANK", rank.clone()),
            ("SKY_NODE_IPS", ips.clone()),
            ("SKY_NUM_NODES", num_nodes.clone()),
            ("SKY_CLUSTER_NAME", self.config.cluster_name.clone()),
            ("SKY_JOB_ID", self.job_id.to_string()),
            ("SKYPILOT_NODE_RANK", rank),
            ("SKYPILOT_NODE_IPS", ips),
            ("SKYPILOT_NUM_NODES", num_nodes),
            ("SKYPILOT_TASK_ID", self.task_id.to_string()),
            ("SKYPILOT_CLUSTER_INFO", cluster_info),
            (
                "SKYPILOT_NUM_GPUS_PER_NODE",
                (gpus.ceil() as u64).to_string(),
            ),
        ];
        env.extend(predefined.into_iter().map(|(k, v)| (k.to_string(), v)));
        // A local-cloud node is a directory on this machine, and `~` in a task (workdir,
        // file_mounts, `cd ~/data`) means that node's directory, as it means the VM's home on a
        // cloud. So its jobs get it as HOME, not the home of the user who started the agent
        // (whose `~/.aws` and the like a job should not see). On SSH and cloud heads the node
        // directory is the login home already.
        if self.config.cloud == "local" {
            let node = self
                .nodes
                .get(rank_index)
                .and_then(|n| self.config.nodes.get(*n as usize));
            if let Some(node) = node {
                env.push(("HOME".to_string(), node.dir.display().to_string()));
            }
        }
        env
    }
}

/// SkyPilot's `SKYPILOT_TASK_ID`: `sky-YYYY-MM-DD-HH-MM-SS-ffffff_<cluster>_<job id>` (UTC).
pub fn task_id(submitted_at: f64, cluster: &str, job: JobId) -> String {
    let secs = submitted_at.floor() as i64;
    let micros = ((submitted_at - secs as f64) * 1e6)
        .round()
        .clamp(0.0, 999_999.0) as i64;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "sky-{y:04}-{m:02}-{d:02}-{:02}-{:02}-{:02}-{micros:06}_{cluster}_{job}",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sky_core::jobs::NodeCapacity;
    use sky_core::jobs::wire::NodeSpec;

    #[test]
    fn task_id_matches_skypilot_format() {
        // 2024-02-29 13:05:09.25 UTC
        assert_eq!(
            task_id(1_709_211_909.25, "dev", JobId(3)),
            "sky-2024-02-29-13-05-09-250000_dev_3"
        );
        assert_eq!(
            task_id(0.0, "c", JobId(1)),
            "sky-1970-01-01-00-00-00-000000_c_1"
        );
    }

    #[test]
    fn ranks_see_their_cluster() {
        let config = ClusterConfig {
            cluster_name: "mn".into(),
            cloud: "local".into(),
            region: None,
            zone: None,
            nodes: (0..3)
                .map(|i| NodeSpec {
                    ip: format!("10.0.0.{i}"),
                    dir: format!("/n{i}").into(),
                    ssh: None,
                })
                .collect(),
            capacity: NodeCapacity {
                cpus: 4.0,
                accelerators: BTreeMap::new(),
            },
            autostop_hook: None,
        };
        let mut envs = BTreeMap::new();
        envs.insert("SKYPILOT_NODE_RANK".to_string(), "user-tried".to_string());
        envs.insert("MODEL".to_string(), "llama".to_string());
        let demand = JobDemand {
            cpus: 1.0,
            accelerators: [("A100".to_string(), 0.5)].into_iter().collect(),
        };
        let job = JobEnv {
            config: &config,
            job_id: JobId(7),
            task_id: "sky-x_mn_7",
            demand: &demand,
            envs: &envs,
            secrets: None,
            nodes: &[1, 2],
        };
        let env: BTreeMap<String, String> = job.for_rank(1).into_iter().collect();
        assert_eq!(env["SKYPILOT_NODE_RANK"], "1");
        assert_eq!(env["SKY_NODE_IPS"], "10.0.0.1\n10.0.0.2");
        assert_eq!(env["SKYPILOT_NUM_NODES"], "2");
        assert_eq!(env["SKY_JOB_ID"], "7");
        assert_eq!(env["MODEL"], "llama");
        assert_eq!(env["SKYPILOT_NUM_GPUS_PER_NODE"], "1");
        let info: serde_json::Value =
            serde_json::from_str(&env["SKYPILOT_CLUSTER_INFO"]).expect("json");
        assert_eq!(info["cluster_name"], "mn");
        assert_eq!(info["cloud"], "local");
        // Job rank 1 runs on cluster node 2: its HOME is that node's directory.
        assert_eq!(env["HOME"], "/n2");
        let ssh = ClusterConfig {
            cloud: "ssh".into(),
            ..config.clone()
        };
        let on_ssh = JobEnv {
            config: &ssh,
            ..job
        };
        assert!(
            !on_ssh.for_rank(0).iter().any(|(k, _)| k == "HOME"),
            "a login home is left as it is"
        );
    }
}
