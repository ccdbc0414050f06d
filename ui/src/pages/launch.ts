// Launch progress: launches the task from the New task page on the candidate picked on the
// comparison page (the local cloud when that cloud is not enabled), shows optimizing ->
// provisioning (each failover attempt and its reason) -> setup -> running, then the job's log.
// Cancel stops the launch at its next safe point; the core never leaves a node behind.
import { Channel } from "@tauri-apps/api/core";
import { backend, errorText, isUiError, type LaunchEvent } from "../backend";
import { h } from "../dom";
import { session } from "../session";
import { apply, finish, newProgress, STAGES, type Progress } from "../launchview";

/// The page outlives navigation while a launch runs, so coming back shows its progress.
let view: HTMLElement | null = null;
let seq = 0;

export function launchPage(): HTMLElement {
  if (!view) view = build();
  if (session.launchRequested) {
    session.launchRequested = false;
    view.dispatchEvent(new Event("sky-launch"));
  }
  return view;
}

function build(): HTMLElement {
  const cluster = h("input", { type: "text", id: "launch-cluster", class: "name", placeholder: "cluster name (generated when empty)", "aria-label": "cluster name" });
  const target = h("p", { class: "hint", id: "launch-target" });
  const start = h("button", { class: "primary", id: "launch-start" }, "Launch");
  const cancel = h("button", { class: "danger", id: "launch-cancel", disabled: true }, "Cancel");
  const stages = h("ol", { class: "stages", id: "launch-stages" });
  const attempts = h("ul", { id: "launch-attempts" });
  const notes = h("ul", { id: "launch-notes" });
  const result = h("div", { class: "card", id: "launch-result", hidden: true });
  const log = h("pre", { class: "log", id: "launch-log" });
  const page = h(
    "section",
    { class: "page" },
    h("h1", {}, "Launch"),
    h("p", { class: "lead" }, "Launches the task from the New task page on the candidate picked in the cost comparison."),
    h("div", { class: "card" }, h("div", { class: "toolbar" }, cluster, " ", start, " ", cancel), target),
    h("div", { class: "card" }, h("h2", {}, "Progress"), stages, h("h2", {}, "Failover attempts"), attempts, h("h2", {}, "Notes"), notes),
    result,
    h("div", { class: "card" }, h("h2", {}, "Log"), log),
  );
  let running: string | null = null;

  const describeTarget = () => {
    const p = session.pick;
    target.textContent = p
      ? `Candidate: ${p.cloud.toUpperCase()} ${p.instance_type}${p.use_spot ? " (spot)" : ""} in ${p.zone ?? p.region}. Without an account on that cloud, the local cloud runs it.`
      : "No candidate picked: the launch chooses (the local cloud without any cloud account).";
  };

  const render = (p: Progress) => {
    stages.replaceChildren(
      ...STAGES.map((s) => h("li", { "data-stage": s.name, "data-state": p.stages[s.name], class: `stage ${p.stages[s.name]}` }, `${s.title}: ${p.stages[s.name]}`)),
    );
    attempts.replaceChildren(...p.attempts.map((a) => h("li", {}, a)));
    notes.replaceChildren(...p.notes.map((n) => h("li", {}, n)));
  };
  describeTarget();
  render(newProgress());

  async function launch() {
    if (running) return;
    describeTarget();
    const id = `launch-${Date.now()}-${++seq}`;
    running = id;
    const progress = newProgress();
    log.textContent = "";
    result.hidden = true;
    result.className = "card";
    page.dataset.state = "running";
    start.disabled = true;
    cancel.disabled = false;
    render(progress);
    const channel = new Channel<LaunchEvent>();
    channel.onmessage = (e) => {
      const line = apply(progress, e);
      if (line !== null) log.append(line + "\n");
      else render(progress);
    };
    try {
      const out = await backend.launch(
        { launch_id: id, yaml: session.taskYaml, cluster: cluster.value.trim() || null, pick: session.pick },
        channel,
      );
      const ok = !out.setup_failed && (out.job_status === null || out.job_status === "SUCCEEDED");
      const cancelled = out.job_status === "CANCELLED";
      finish(progress, cancelled ? "cancelled" : ok ? "done" : "failed");
      page.dataset.state = cancelled ? "cancelled" : ok ? "succeeded" : "failed";
      result.textContent = out.setup_failed
        ? `Setup failed on cluster '${out.cluster}' (exit code ${out.exit_code}).`
        : `Cluster '${out.cluster}': job ${out.job_id ?? "—"} ${out.job_status ?? "not run"}${out.exit_code === null ? "" : `, exit code ${out.exit_code}`}.`;
      if (!ok) result.classList.add("error");
    } catch (e) {
      const cancelled = isUiError(e) && e.code === "cancelled";
      finish(progress, cancelled ? "cancelled" : "failed");
      page.dataset.state = cancelled ? "cancelled" : "failed";
      result.textContent = errorText(e);
      result.classList.toggle("error", !cancelled);
    } finally {
      running = null;
      start.disabled = false;
      cancel.disabled = true;
      result.hidden = false;
      render(progress);
    }
  }

  start.addEventListener("click", () => void launch());
  cancel.addEventListener("click", () => {
    if (!running) return;
    cancel.disabled = true;
    page.dataset.cancelRequested = "true";
    backend.launchCancel(running).catch((e) => {
      result.textContent = errorText(e);
      result.hidden = false;
    });
  });
  page.addEventListener("sky-launch", () => void launch());
  return page;
}
