import { describe, expect, it } from "vitest";
import { apply, finish, newProgress } from "./launchview";

describe("launch progress", () => {
  it("walks optimizing -> provisioning -> setup -> running and keeps each attempt's reason", () => {
    const p = newProgress();
    apply(p, { event: "plan", cluster: "c1", num_nodes: 1, candidates: [{}, {}] });
    expect(p.stages).toMatchObject({ optimizing: "done", provisioning: "active" });
    apply(p, {
      event: "failover_attempt",
      number: 1,
      cloud: "aws",
      region: "us-east-1",
      zone: "us-east-1a",
      instance_type: "m6i.large",
      use_spot: true,
      outcome: { result: "failed", kind: "capacity", message: "no capacity", blocked: "zone us-east-1a", cleaned_up: true },
    });
    apply(p, { event: "stage_finished", cluster: "c1", stage: "provision" });
    apply(p, { event: "stage_started", cluster: "c1", stage: "setup" });
    expect(p.stages.setup).toBe("active");
    apply(p, { event: "job_submitted", cluster: "c1", job_id: 3 });
    expect(apply(p, { event: "log", cluster: "c1", line: "hello" })).toBe("hello");
    finish(p, "done");
    expect(p.stages).toEqual({ optimizing: "done", provisioning: "done", setup: "done", running: "done" });
    expect(p.job).toBe(3);
    expect(p.attempts).toEqual([
      "#1 AWS m6i.large (spot) in us-east-1a: failed (capacity): no capacity; avoiding zone us-east-1a; partial nodes cleaned up",
    ]);
  });

  it("skips setup when the task has none and marks the active stage on cancel", () => {
    const p = newProgress();
    apply(p, { event: "plan", cluster: "c1", num_nodes: 1, candidates: [{}] });
    apply(p, { event: "stage_started", cluster: "c1", stage: "submit_job" });
    expect(p.stages).toMatchObject({ provisioning: "done", setup: "skipped", running: "active" });
    finish(p, "cancelled");
    expect(p.stages.running).toBe("cancelled");
  });
});
