//! The secret canary sweep: a unique value in every secret input reachable on the local cloud,
//! a full launch / exec / logs / down with the most verbose logging and a timeline, then a search
//! of every file the run could write, the command lines sampled during the run and the
//! environment of every agent process. Zero hits, except in the jobs' own environment, where the
//! task's secrets must be (checked through files the jobs write outside the swept trees).
//!
//! Not covered here: SSH hosts (the sshd harness needs root and per-node Unix users; a sweep of
//! their homes is future work) and the desktop session's keychain round trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::local_cloud::sky;

/// A value that occurs nowhere by chance: generated per run, never a literal in the tree.
fn canary(kind: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("cnry{kind}{:x}x{}", nanos, std::process::id())
}

struct Canaries(BTreeMap<&'static str, String>);

impl Canaries {
    /// Which canaries occur in `bytes`.
    fn found_in(&self, bytes: &[u8]) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|(_, v)| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Every regular file under `root` (symlinks not followed), with its path.
fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files_under(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// What the sampler saw of the processes belonging to this run.
#[derive(Default)]
struct Seen {
    /// Command lines of every process of the run.
    cmdlines: BTreeMap<u32, Vec<u8>>,
    /// Environments of the agent's processes (daemon and relay), by pid.
    agent_environ: BTreeMap<u32, Vec<u8>>,
    /// Environments of the jobs, by pid.
    job_environ: BTreeMap<u32, Vec<u8>>,
}

/// Samples /proc until `stop`: a process belongs to the run when its command line or environment
/// names `marker` (the Sky home, which the agent's `--home` and the relay's SKY_HOME contain) or
/// `job_marker` (an env every job of the task has).
fn sample(marker: String, job_marker: String, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let me = std::process::id();
    while !stop.load(Ordering::Relaxed) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            break;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let dir = entry.path();
            let (Ok(cmdline), Ok(environ)) = (
                std::fs::read(dir.join("cmdline")),
                std::fs::read(dir.join("environ")),
            ) else {
                continue;
            };
            let has = |hay: &[u8], needle: &str| {
                hay.windows(needle.len()).any(|w| w == needle.as_bytes())
            };
            let is_job = has(&environ, &job_marker);
            if !is_job && !has(&cmdline, &marker) && !has(&environ, &marker) {
                continue;
            }
            let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let program = String::from_utf8_lossy(program);
            if is_job {
                seen.job_environ.insert(pid, environ);
            } else if program
                .rsplit('/')
                .next()
                .is_some_and(|p| p.starts_with("sky-agent"))
            {
                seen.agent_environ.insert(pid, environ);
            }
            seen.cmdlines.insert(pid, cmdline);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

#[test]
fn canary_sweep_finds_no_secret_outside_the_jobs() {
    assert!(
        Path::new("/proc/self/environ").exists(),
        "the canary sweep reads /proc; this machine has none"
    );
    let home = tempfile::tempdir().expect("HOME");
    // Its drop takes every cluster down, so a failed assertion leaves no agent running.
    let sky_home = crate::local_cloud::Home::new();
    let tmp = tempfile::tempdir().expect("TMPDIR");
    // Inputs the user wrote and the jobs' own reports: legitimately hold the secrets, not swept.
    let inputs = tempfile::tempdir().expect("inputs");

    let c = Canaries(
        [
            ("task_secret", canary("task")),
            ("env_secret", canary("env")),
            ("subst_secret", canary("subst")),
            ("aws_secret_key", canary("awssk")),
            ("aws_session_token", canary("awsst")),
            ("azure_client_secret", canary("azcs")),
            ("gcp_private_key", canary("gcpk")),
        ]
        .into_iter()
        .collect(),
    );
    let v = |k: &str| c.0[k].clone();

    let gcp_key = inputs.path().join("gcp-key.json");
    std::fs::write(
        &gcp_key,
        serde_json::json!({
            "type": "service_account",
            "project_id": "canary-project",
            "private_key_id": "0",
            "private_key": v("gcp_private_key"),
            "client_email": "canary@canary-project.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string(),
    )
    .expect("gcp key");
    // The workdir's name carries the `${VAR}`-substituted secret, so any echo of the
    // substituted path (an error, a log line, a stored record) shows up in the sweep.
    let workdir = inputs.path().join(format!("wd-{}", v("subst_secret")));
    std::fs::create_dir_all(&workdir).expect("workdir");
    std::fs::write(workdir.join("hello.txt"), "hello\n").expect("workdir file");
    let reports = inputs.path().join("reports");
    std::fs::create_dir_all(&reports).expect("reports");
    let run_marker = format!("CANARY_RUN={}", canary("run"));
    let run = r#"
printenv TASK_SECRET > "$CANARY_REPORTS/task-$SKY_JOB_ID"
printenv ENV_SECRET > "$CANARY_REPORTS/env-$SKY_JOB_ID"
printenv SUBST_SECRET > "$CANARY_REPORTS/subst-$SKY_JOB_ID"
env > "$CANARY_REPORTS/environ-$SKY_JOB_ID"
cat hello.txt
sleep 1
echo job done
"#;
    let task = format!(
        "resources:\n  infra: local\nworkdir: {inputs}/wd-${{SUBST_SECRET}}\n\
         envs:\n  CANARY_REPORTS: {reports}\n  CANARY_RUN: {marker}\n\
         secrets:\n  TASK_SECRET: {task_secret}\n  SUBST_SECRET: {subst}\n  ENV_SECRET: null\n\
         run: |\n{run}",
        inputs = inputs.path().display(),
        reports = reports.display(),
        marker = run_marker.trim_start_matches("CANARY_RUN="),
        task_secret = v("task_secret"),
        subst = v("subst_secret"),
        run = run.lines().map(|l| format!("  {l}\n")).collect::<String>(),
    );
    let task_file = inputs.path().join("task.yaml");
    std::fs::write(&task_file, task).expect("task file");

    // The key id is not a secret (the sweep looks for the secret parts), only shaped like one so
    // the AWS provider's own checks pass: the testkit makes it up per run.
    let (aws_key_id, _) = sky_testkit::moto::made_up_credentials();
    let command = |args: &[&str], timeline: &str| {
        let mut cmd = sky(sky_home.path());
        cmd.env("HOME", home.path())
            .env("TMPDIR", tmp.path())
            .env("SKY_DEV", "1")
            .env("RUST_LOG", "trace")
            .env("SKY_TIMELINE_FILE_PATH", tmp.path().join(timeline))
            .env("ENV_SECRET", v("env_secret"))
            .env("AWS_ACCESS_KEY_ID", &aws_key_id)
            .env("AWS_SECRET_ACCESS_KEY", v("aws_secret_key"))
            .env("AWS_SESSION_TOKEN", v("aws_session_token"))
            .env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
            .env("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002")
            .env(
                "AZURE_SUBSCRIPTION_ID",
                "00000000-0000-0000-0000-000000000003",
            )
            .env("AZURE_CLIENT_SECRET", v("azure_client_secret"))
            .env("GOOGLE_APPLICATION_CREDENTIALS", &gcp_key)
            .current_dir(inputs.path())
            .args(args);
        cmd
    };

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (marker, stop) = (sky_home.path().display().to_string(), stop.clone());
        let job_marker = run_marker.clone();
        std::thread::spawn(move || sample(marker, job_marker, stop))
    };
    let task_path = task_file.display().to_string();
    let steps: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "launch",
                "-y",
                "-c",
                "can",
                &task_path,
                "--secret",
                "ENV_SECRET",
            ],
            "launch.json",
        ),
        (
            vec!["exec", "can", &task_path, "--secret", "ENV_SECRET"],
            "exec.json",
        ),
        (vec!["logs", "can", "1"], "logs.json"),
        (vec!["queue", "can"], "queue.json"),
        (vec!["down", "-y", "can"], "down.json"),
    ];
    let mut outputs = Vec::new();
    for (args, timeline) in &steps {
        let out = command(args, timeline).output().expect("sky runs");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "sky {args:?} failed:\n{text}");
        outputs.push((format!("output of sky {args:?}"), text));
    }
    // A substituted secret in a refused file mount: the error shows `${SUBST_SECRET}`.
    let bad_mount = inputs.path().join("bad-mount.yaml");
    std::fs::write(
        &bad_mount,
        format!(
            "resources:\n  infra: local\nsecrets:\n  SUBST_SECRET: {}\nfile_mounts:\n  /mnt/x: {}/missing-${{SUBST_SECRET}}\nrun: echo\n",
            v("subst_secret"),
            inputs.path().display()
        ),
    )
    .expect("bad mount task");
    let refused = command(
        &[
            "launch",
            "-y",
            "-c",
            "can2",
            &bad_mount.display().to_string(),
        ],
        "refused.json",
    )
    .output()
    .expect("sky runs");
    let refused_text = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "a missing mount is refused");
    assert!(
        refused_text.contains("${SUBST_SECRET}"),
        "the error shows the unsubstituted form:\n{refused_text}"
    );
    outputs.push(("output of the refused launch".into(), refused_text));
    stop.store(true, Ordering::Relaxed);
    let seen = sampler.join().expect("sampler");

    // The jobs saw their secrets, and none of the caller's cloud keys.
    for job in ["1", "2"] {
        for (file, key) in [
            ("task", "task_secret"),
            ("env", "env_secret"),
            ("subst", "subst_secret"),
        ] {
            let got =
                std::fs::read_to_string(reports.join(format!("{file}-{job}"))).unwrap_or_default();
            assert_eq!(got.trim(), v(key), "job {job} sees {key}");
        }
        let environ =
            std::fs::read(reports.join(format!("environ-{job}"))).expect("job environment");
        let cloud: Vec<_> = c
            .found_in(&environ)
            .into_iter()
            .filter(|k| k.starts_with("aws") || k.starts_with("azure") || k.starts_with("gcp"))
            .collect();
        assert!(
            cloud.is_empty(),
            "job {job} inherited cloud keys: {cloud:?}"
        );
    }

    let mut hits = Vec::new();
    let mut swept = 0usize;
    for root in [home.path(), sky_home.path(), tmp.path()] {
        let mut files = Vec::new();
        files_under(root, &mut files);
        for path in files {
            swept += 1;
            let name = path.display().to_string();
            for kind in c.found_in(name.as_bytes()) {
                hits.push(format!("{kind} in the file name {name}"));
            }
            if let Ok(bytes) = std::fs::read(&path) {
                for kind in c.found_in(&bytes) {
                    hits.push(format!("{kind} in {name}"));
                }
            }
        }
    }
    for (what, text) in &outputs {
        for kind in c.found_in(text.as_bytes()) {
            hits.push(format!("{kind} in the {what}"));
        }
    }
    for (pid, cmdline) in &seen.cmdlines {
        for kind in c.found_in(cmdline) {
            hits.push(format!(
                "{kind} in the command line of pid {pid}: {}",
                String::from_utf8_lossy(cmdline).replace('\0', " ")
            ));
        }
    }
    for (pid, environ) in &seen.agent_environ {
        for kind in c.found_in(environ) {
            hits.push(format!("{kind} in the environment of agent pid {pid}"));
        }
    }
    for (pid, environ) in &seen.job_environ {
        for kind in c.found_in(environ) {
            if kind.starts_with("aws") || kind.starts_with("azure") || kind.starts_with("gcp") {
                hits.push(format!("{kind} in the environment of job pid {pid}"));
            }
        }
    }
    // The sweep's own figures, for the CI log (the issue asks for the hit count to be shown).
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "canary sweep: {swept} files, {} command lines, {} agent and {} job environments sampled, {} hits",
            seen.cmdlines.len(),
            seen.agent_environ.len(),
            seen.job_environ.len(),
            hits.len()
        );
    }
    assert!(
        !seen.agent_environ.is_empty(),
        "the sampler never saw the agent; the sweep would prove nothing"
    );
    assert!(
        !seen.job_environ.is_empty(),
        "the sampler never saw a job; the sweep would prove nothing"
    );
    assert!(swept > 0, "no files swept");
    assert!(
        hits.is_empty(),
        "{} secret hits:\n{}",
        hits.len(),
        hits.join("\n")
    );
}
