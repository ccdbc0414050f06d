// Jobs & logs: pick a cluster, see its job queue, and follow a job's log as it is written.
// Lines arrive through a Tauri channel and are appended as text, never as HTML.
import { Channel } from "@tauri-apps/api/core";
import { backend, errorText, type LogMessage } from "../backend";
import { h } from "../dom";
import { session } from "../session";

export async function jobsPage(): Promise<HTMLElement> {
  const select = h("select", { id: "jobs-cluster", "aria-label": "cluster" });
  const message = h("div", { class: "card error", id: "jobs-message", hidden: true });
  const body = h("tbody", {});
  const log = h("pre", { class: "log", id: "jobs-log" });
  const logTitle = h("h2", { id: "jobs-log-title" }, "Log");
  const page = h(
    "section",
    { class: "page" },
    h("h1", {}, "Jobs & logs"),
    h("p", { class: "lead" }, "A cluster's job queue (UP clusters only) and a live log stream."),
    h("div", { class: "toolbar" }, select, " ", h("button", { id: "jobs-load", onclick: () => void loadQueue() }, "Show jobs")),
    message,
    h(
      "div",
      { class: "card" },
      h("table", { id: "jobs-table" }, h("thead", {}, h("tr", {}, ...["ID", "Name", "Status", "Run", ""].map((t) => h("th", {}, t)))), body),
    ),
    h("div", { class: "card" }, logTitle, log),
  );
  const fail = (e: unknown) => {
    message.textContent = errorText(e);
    message.hidden = false;
  };

  async function loadQueue() {
    message.hidden = true;
    const cluster = select.value;
    if (!cluster) return;
    try {
      const jobs = await backend.clusterQueue(cluster);
      body.replaceChildren(
        ...jobs.map((j) =>
          h(
            "tr",
            { "data-job": String(j.id) },
            h("td", {}, String(j.id)),
            h("td", {}, j.name ?? "—"),
            h("td", {}, j.status),
            h("td", {}, j.run.split("\n")[0] ?? ""),
            h("td", {}, h("button", { class: "small", "data-action": "logs", onclick: () => void follow(cluster, j.id) }, "Logs")),
          ),
        ),
      );
    } catch (e) {
      fail(e);
    }
  }

  async function follow(cluster: string, job: number) {
    log.textContent = "";
    logTitle.textContent = `Log of job ${job} on ${cluster}`;
    log.dataset.state = "following";
    const channel = new Channel<LogMessage>();
    channel.onmessage = (m) => {
      if (m.kind === "lines") log.append(m.lines.map((l) => l + "\n").join(""));
      else {
        log.dataset.state = "ended";
        logTitle.textContent = `Log of job ${m.job} on ${cluster}: ${m.status}`;
      }
    };
    try {
      await backend.jobLogs(cluster, job, channel);
    } catch (e) {
      log.dataset.state = "error";
      fail(e);
    }
  }

  try {
    const status = await backend.clustersStatus(false);
    const up = status.clusters.filter((c) => c.status === "UP");
    select.replaceChildren(...up.map((c) => h("option", { value: c.name }, c.name)));
    const wanted = session.follow;
    session.follow = null;
    if (wanted && up.some((c) => c.name === wanted.cluster)) select.value = wanted.cluster;
    if (up.length === 0) select.append(h("option", { value: "" }, "no UP cluster"));
    else await loadQueue();
    if (wanted && wanted.job !== null && select.value === wanted.cluster) void follow(wanted.cluster, wanted.job);
  } catch (e) {
    fail(e);
  }
  return page;
}
