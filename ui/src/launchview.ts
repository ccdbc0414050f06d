// The launch progress model: folds sky-core's events into four stages, the failover attempts and
// notes. Pure (no DOM), so it is unit-tested; pages/launch.ts renders it.
import type { LaunchEvent } from "./backend";

export type StageName = "optimizing" | "provisioning" | "setup" | "running";
export type StageState = "pending" | "active" | "done" | "skipped" | "failed" | "cancelled";

export const STAGES: { name: StageName; title: string }[] = [
  { name: "optimizing", title: "Optimizing" },
  { name: "provisioning", title: "Provisioning" },
  { name: "setup", title: "Setup" },
  { name: "running", title: "Running" },
];

export interface Progress {
  cluster: string | null;
  stages: Record<StageName, StageState>;
  attempts: string[];
  notes: string[];
  job: number | null;
}

export function newProgress(): Progress {
  return {
    cluster: null,
    stages: { optimizing: "active", provisioning: "pending", setup: "pending", running: "pending" },
    attempts: [],
    notes: [],
    job: null,
  };
}

/// Marks every stage before `stage` done (or skipped if never started) and `stage` active.
function reach(p: Progress, stage: StageName) {
  for (const s of STAGES) {
    if (s.name === stage) break;
    const st = p.stages[s.name];
    if (st === "active") p.stages[s.name] = "done";
    else if (st === "pending") p.stages[s.name] = "skipped";
  }
  if (p.stages[stage] === "pending") p.stages[stage] = "active";
}

const STAGE_OF: Record<string, StageName> = {
  provision: "provisioning",
  start: "provisioning",
  sync_workdir: "setup",
  sync_file_mounts: "setup",
  setup: "setup",
  submit_job: "running",
};

/// Applies one event; returns the log line it carries, if any.
export function apply(p: Progress, e: LaunchEvent): string | null {
  switch (e.event) {
    case "plan":
      p.cluster = e.cluster;
      p.notes.push(`${e.candidates.length} candidate(s) for ${e.num_nodes} node(s) on cluster '${e.cluster}'`);
      reach(p, "provisioning");
      break;
    case "reusing":
      p.cluster = e.cluster;
      p.notes.push(`reusing cluster '${e.cluster}' (${e.status})`);
      reach(p, "provisioning");
      break;
    case "waiting_for_lock":
      p.notes.push(`waiting for another command on cluster '${e.cluster}'`);
      break;
    case "stage_started": {
      const stage = STAGE_OF[e.stage];
      if (stage) reach(p, stage);
      else if (e.stage === "terminate") p.notes.push(`terminating cluster '${e.cluster}'`);
      break;
    }
    case "stage_finished":
      if (e.stage === "setup" || e.stage === "provision" || e.stage === "start") p.stages[STAGE_OF[e.stage]!] = "done";
      break;
    case "failover_attempt": {
      const where = `${e.cloud.toUpperCase()} ${e.instance_type}${e.use_spot ? " (spot)" : ""} in ${e.zone ?? e.region}`;
      const o = e.outcome;
      p.attempts.push(
        o.result === "succeeded"
          ? `#${e.number} ${where}: succeeded`
          : `#${e.number} ${where}: failed (${o.kind}): ${o.message}; avoiding ${o.blocked}${o.cleaned_up ? "; partial nodes cleaned up" : ""}`,
      );
      break;
    }
    case "retry_round":
      p.notes.push(`every candidate failed; round ${e.round} starts in ${e.wait_secs}s`);
      break;
    case "cluster_status":
      // UP only means the nodes run; setup shows as its own stage when the task has one.
      p.cluster = e.cluster;
      break;
    case "job_submitted":
      p.job = e.job_id;
      reach(p, "running");
      break;
    case "log":
      return e.line;
    case "note":
      p.notes.push(e.message);
      break;
  }
  return null;
}

/// The launch ended: the active stage takes the outcome.
export function finish(p: Progress, outcome: "done" | "failed" | "cancelled") {
  for (const s of STAGES) {
    if (p.stages[s.name] === "active") p.stages[s.name] = outcome;
  }
  if (outcome === "done") {
    for (const s of STAGES) if (p.stages[s.name] === "pending") p.stages[s.name] = "skipped";
  }
}
