// Clusters: every cluster in SKY_HOME (the same ones `sky status` shows), pushed by the app as
// `clusters-changed` events (with a slow poll as fallback), with start, stop, down, autostop and
// exec, one by one or on the selected rows. Stop and down ask first, in the page itself, naming
// the clusters and what will be lost.
import { listen } from "@tauri-apps/api/event";
import { backend, errorText, type ClusterView, type StatusView } from "../backend";
import { h } from "../dom";
import { actionsFor, autostop, bulkPlan, place, price, uptime, type BulkLabel } from "../clusterfmt";
import { session } from "../session";

/// Only a safety net: the app pushes every change as it sees it.
const FALLBACK_POLL_MS = 30000;

export async function clustersPage(): Promise<HTMLElement> {
  const message = h("div", { class: "card hint", id: "clusters-message", hidden: true });
  const selected = new Set<string>();
  let shown: ClusterView[] = [];
  const selectAll = h("input", { type: "checkbox", id: "clusters-select-all", "aria-label": "select all" });
  const bulkMinutes = h("input", { type: "number", min: "1", value: "30", class: "narrow", id: "clusters-bulk-minutes", "aria-label": "idle minutes" });
  const bulkDown = h("input", { type: "checkbox", id: "clusters-bulk-autostop-down", "aria-label": "down instead of stop" });
  const execBox = h("div", { class: "card", id: "clusters-exec", hidden: true });
  const confirmBox = h("div", { class: "card confirm", id: "clusters-confirm", hidden: true });
  const checked = h("span", { class: "hint", id: "clusters-checked" });
  const body = h("tbody", {});
  const table = h(
    "table",
    { id: "clusters-table" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, selectAll), ...["Name", "Status", "Cloud / region", "Instance", "Nodes", "$/h", "Uptime", "Autostop", "Actions"].map((t) => h("th", {}, t))),
    ),
    body,
  );
  const empty = h("p", { class: "hint", id: "clusters-empty", hidden: true }, "No clusters. Launch one from the Cost comparison page or with `sky launch`.");
  const page = h(
    "section",
    { class: "page" },
    h("h1", {}, "Clusters"),
    h("p", { class: "lead" }, "Your clusters, the same ones `sky status` lists. Prices are $/hour for all nodes."),
    h(
      "div",
      { class: "toolbar" },
      h("button", { id: "clusters-refresh", onclick: () => void load(true) }, "Refresh from clouds"),
      " ",
      checked,
    ),
    h(
      "div",
      { class: "toolbar", id: "clusters-bulk" },
      "Selected: ",
      h("button", { class: "small", id: "clusters-bulk-stop", onclick: () => bulk("Stop") }, "Stop"),
      " ",
      h("button", { class: "small danger", id: "clusters-bulk-down", onclick: () => bulk("Down") }, "Down"),
      " ",
      h("span", { class: "autostop" },
        "Autostop after ", bulkMinutes, " idle min, then ",
        h("label", { title: "tear the clusters down instead of stopping them" }, bulkDown, " down"),
        " ",
        h("button", { class: "small", id: "clusters-bulk-autostop", onclick: () => bulk("Autostop") }, "Set autostop")),
    ),
    message,
    confirmBox,
    execBox,
    h("div", { class: "card" }, table, empty),
  );

  const say = (text: string, error = false) => {
    message.textContent = text;
    message.className = error ? "card error" : "card hint";
    message.hidden = text === "";
  };

  function show(view: StatusView, how: string) {
    shown = view.clusters;
    for (const name of [...selected]) if (!shown.some((c) => c.name === name)) selected.delete(name);
    // Pushed updates arrive while the user may be typing in a row: a row whose content is
    // unchanged is kept as it is (same elements, focus and typed text), and a row that did change
    // keeps the idle minutes the user was editing.
    const now = Date.now() / 1000;
    const old = new Map<string, HTMLElement>();
    for (const tr of body.querySelectorAll<HTMLElement>("tr[data-cluster]")) old.set(tr.dataset.cluster ?? "", tr);
    body.replaceChildren(
      ...view.clusters.map((c) => {
        const key = JSON.stringify(c) + uptime(c, now);
        const before = old.get(c.name);
        if (before?.dataset.key === key) return before;
        const fresh = row(c);
        fresh.dataset.key = key;
        const typed = before?.querySelector<HTMLInputElement>("input[type=number][data-edited]");
        const target = fresh.querySelector<HTMLInputElement>("input[type=number]");
        if (typed && target) {
          target.value = typed.value;
          target.dataset.edited = "1";
        }
        return fresh;
      }),
    );
    selectAll.checked = shown.length > 0 && selected.size === shown.length;
    empty.hidden = view.clusters.length > 0;
    checked.textContent = `Last checked ${new Date().toLocaleTimeString()} (${how})`;
    if (view.changes.length > 0) say(view.changes.map((c) => `${c.cluster}: ${c.message}`).join("; "));
  }

  async function load(refresh: boolean) {
    try {
      show(await backend.clustersStatus(refresh), refresh ? "asked the clouds" : "read");
    } catch (e) {
      say(errorText(e), true);
    }
  }

  selectAll.addEventListener("change", () => {
    for (const c of shown) {
      if (selectAll.checked) selected.add(c.name);
      else selected.delete(c.name);
    }
    for (const box of body.querySelectorAll<HTMLInputElement>("input.select")) box.checked = selectAll.checked;
  });

  /// One confirmation for every selected cluster, then each in turn; failures are listed, not fatal.
  function bulk(label: BulkLabel) {
    const names = shown.filter((c) => selected.has(c.name)).map((c) => c.name);
    const plan = bulkPlan(label, names, bulkMinutes.value, bulkDown.checked);
    if (!plan.ok) {
      say(plan.error, true);
      return;
    }
    const setting = plan.autostop;
    const one = (n: string) =>
      setting !== null
        ? backend.clusterAutostop(n, setting.idleMinutes, setting.down)
        : label === "Stop"
          ? backend.clusterStop(n)
          : backend.clusterDown(n);
    confirm(plan.question, label, names.join(", "), async () => {
      const failures: string[] = [];
      for (const n of names) {
        try {
          await one(n);
        } catch (e) {
          failures.push(`${n}: ${errorText(e)}`);
        }
      }
      if (failures.length > 0) throw new Error(failures.join("; "));
    });
  }

  /// A command box for one cluster: runs it as a new job and opens its log on the Jobs page.
  function openExec(name: string) {
    const command = h("input", { type: "text", id: "clusters-exec-command", placeholder: "e.g. nvidia-smi", "aria-label": "command" });
    const error = h("p", { class: "form-error", id: "clusters-exec-error" });
    const run = async () => {
      error.textContent = "";
      try {
        const job = await backend.clusterExec(name, command.value);
        session.follow = { cluster: name, job };
        location.hash = "#/jobs";
      } catch (e) {
        error.textContent = errorText(e);
      }
    };
    command.addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Enter") void run();
    });
    execBox.replaceChildren(
      h("h2", {}, `Run a command on ${name}`),
      h("div", { class: "toolbar" }, command, " ", h("button", { class: "primary", id: "clusters-exec-run", onclick: () => void run() }, "Run"), " ",
        h("button", { id: "clusters-exec-close", onclick: () => (execBox.hidden = true) }, "Close")),
      error,
    );
    execBox.hidden = false;
    command.focus();
  }

  async function act(label: string, name: string, run: () => Promise<unknown>) {
    say(`${label} ${name}…`);
    try {
      await run();
      say(`${label} ${name}: done.`);
    } catch (e) {
      say(`${label} ${name}: ${errorText(e)}`, true);
    }
    await load(false);
  }

  /// Destructive actions wait for an explicit yes in the page.
  function confirm(question: string, label: string, name: string, run: () => Promise<unknown>) {
    confirmBox.replaceChildren(
      h("p", { id: "clusters-confirm-text" }, question),
      h(
        "button",
        {
          class: "danger",
          id: "clusters-confirm-yes",
          onclick: () => {
            confirmBox.hidden = true;
            void act(label, name, run);
          },
        },
        `Yes, ${label.toLowerCase()}`,
      ),
      " ",
      h("button", { id: "clusters-confirm-no", onclick: () => (confirmBox.hidden = true) }, "Cancel"),
    );
    confirmBox.hidden = false;
  }

  function row(c: ClusterView): HTMLElement {
    const can = actionsFor(c);
    const minutes = h("input", { type: "number", min: "1", value: String(c.autostop?.idle_minutes ?? 30), class: "narrow", "aria-label": "idle minutes" });
    minutes.addEventListener("input", () => {
      minutes.dataset.edited = "1";
    });
    const downBox = h("input", { type: "checkbox", "aria-label": "down instead of stop", checked: c.autostop?.down ?? false });
    const btn = (id: string, text: string, enabled: boolean, onclick: () => void, cls = "small") =>
      h("button", { class: cls, "data-action": id, disabled: !enabled, onclick }, text);
    const pick = h("input", { type: "checkbox", class: "select", "data-cluster": c.name, "aria-label": `select ${c.name}`, checked: selected.has(c.name) });
    pick.addEventListener("change", () => {
      if (pick.checked) selected.add(c.name);
      else selected.delete(c.name);
    });
    return h(
      "tr",
      { "data-cluster": c.name, "data-status": c.status },
      h("td", {}, pick),
      h("td", {}, c.name),
      h("td", {}, h("span", { class: `badge status-${c.status.toLowerCase()}` }, c.status)),
      h("td", {}, place(c)),
      h("td", {}, `${c.instance_type ?? "—"}${c.use_spot ? " (spot)" : ""}`),
      h("td", {}, String(c.num_nodes)),
      h("td", {}, price(c)),
      h("td", {}, uptime(c, Date.now() / 1000)),
      h("td", { "data-field": "autostop" }, autostop(c)),
      h(
        "td",
        { class: "actions" },
        btn("exec", "Exec", c.status === "UP", () => openExec(c.name)),
        btn("start", "Start", can.start, () => void act("Start", c.name, () => backend.clusterStart(c.name))),
        btn("stop", "Stop", can.stop, () =>
          confirm(`Stop ${c.name}? Its processes end; disks are kept and you can start it again.`, "Stop", c.name, () => backend.clusterStop(c.name)),
        ),
        btn(
          "down",
          "Down",
          can.down,
          () => confirm(`Tear down ${c.name}? Its nodes and disks are deleted; this cannot be undone.`, "Down", c.name, () => backend.clusterDown(c.name)),
          "small danger",
        ),
        h(
          "span",
          { class: "autostop" },
          minutes,
          h("label", {}, downBox, " down"),
          btn("autostop", "Set autostop", can.autostop, () => {
            const idle = Number.parseInt(minutes.value, 10);
            if (!Number.isInteger(idle) || idle < 1) {
              say(`autostop for ${c.name}: idle minutes must be a whole number ≥ 1, got '${minutes.value}'`, true);
              return;
            }
            void act("Autostop", c.name, () => backend.clusterAutostop(c.name, idle, downBox.checked));
          }),
          btn("autostop-cancel", "Cancel autostop", can.autostop && c.autostop !== null, () =>
            void act("Cancel autostop", c.name, () => backend.clusterAutostop(c.name, null, false)),
          ),
        ),
      ),
    );
  }

  await load(false);
  // Live while shown: both stop by themselves once the router replaces this page.
  let unlisten: (() => void) | null = null;
  const stop = () => {
    clearInterval(timer);
    unlisten?.();
  };
  const timer = setInterval(() => {
    if (!page.isConnected) stop();
    else void load(false);
  }, FALLBACK_POLL_MS);
  listen<StatusView>("clusters-changed", (e) => {
    if (!page.isConnected) stop();
    else show(e.payload, "pushed");
  })
    .then((u) => {
      unlisten = u;
    })
    .catch((e) => say(`live updates unavailable (${errorText(e)}); the page polls every ${FALLBACK_POLL_MS / 1000}s`, true));
  return page;
}
