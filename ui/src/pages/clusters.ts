// Clusters: every cluster in SKY_HOME (the same ones `sky status` shows), pushed by the app as
// `clusters-changed` events (with a slow poll as fallback), with start, stop, down, autostop and
// exec, one by one or on the selected rows. Stop and down ask first, in the page itself, naming
// the clusters and what will be lost.
import { listen } from "@tauri-apps/api/event";
import { backend, errorText, type ClusterView, type StatusView } from "../backend";
import { h, setAttr, setDisabled, setText } from "../dom";
import { confirmationBox } from "../confirm";
import { actionsFor, autostop, bulkPlan, place, price, uptime, type BulkLabel } from "../clusterfmt";
import { session } from "../session";
import { sshAccessCard } from "../sshaccess";

/// Only a safety net: the app pushes every change as it sees it.
const FALLBACK_POLL_MS = 30000;

interface Row {
  tr: HTMLElement;
  update(c: ClusterView): void;
  tick(nowSeconds: number): void;
}

/// Puts `rows` into `body` in that order without ever moving the row that holds the focus (moving
/// a node blurs it): the others are placed around it, and a row already in place is not touched.
function arrange(body: HTMLElement, rows: HTMLElement[]) {
  if (rows.length === 0) return;
  const anchor = Math.max(0, rows.findIndex((tr) => tr.contains(document.activeElement)));
  if (rows[anchor]!.parentNode !== body) body.append(rows[anchor]!);
  for (let i = anchor - 1; i >= 0; i--) if (rows[i]!.nextSibling !== rows[i + 1]) body.insertBefore(rows[i]!, rows[i + 1]!);
  for (let i = anchor + 1; i < rows.length; i++) if (rows[i - 1]!.nextSibling !== rows[i]) body.insertBefore(rows[i]!, rows[i - 1]!.nextSibling);
}

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
  const rows = new Map<string, Row>();
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
    sshAccessCard(),
  );

  const say = (text: string, error = false) => {
    message.textContent = text;
    message.className = error ? "card error" : "card hint";
    message.hidden = text === "";
  };

  let updates = 0;
  let pushes = 0;
  /// Applies a status view in place: a cluster's row is built once and kept for as long as the
  /// cluster exists, and an update rewrites only the cells whose values changed. Rows, their
  /// inputs (with what the user typed), focus, selection and an open confirmation all survive
  /// updates, so a push can never swap a control out from under a click or a keystroke.
  function show(view: StatusView, how: "read" | "asked the clouds" | "pushed") {
    shown = view.clusters;
    const present = new Set(shown.map((c) => c.name));
    for (const name of [...selected]) if (!present.has(name)) selected.delete(name);
    for (const [name, r] of rows) {
      if (present.has(name)) continue;
      r.tr.remove();
      rows.delete(name);
    }
    const ordered = shown.map((c) => {
      let r = rows.get(c.name);
      if (!r) {
        r = row(c);
        rows.set(c.name, r);
      }
      r.update(c);
      return r.tr;
    });
    arrange(body, ordered);
    confirmation.recheck(present);
    selectAll.checked = shown.length > 0 && selected.size === shown.length;
    empty.hidden = shown.length > 0;
    checked.textContent = `Last checked ${new Date().toLocaleTimeString()} (${how})`;
    if (view.changes.length > 0) say(view.changes.map((c) => `${c.cluster}: ${c.message}`).join("; "));
    // The page's own signals: how many views it has applied, and how many of them were pushed.
    updates++;
    if (how === "pushed") pushes++;
    table.dataset.updates = String(updates);
    table.dataset.pushes = String(pushes);
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
    confirmation.open(plan.question, label, names, async () => {
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

  const confirmation = confirmationBox(confirmBox, (label, names, run) => void act(label, names.join(", "), run));

  /// One cluster's row. Built once with every control it can ever need; `update` then sets only
  /// what changed (text, status, which buttons are enabled), never replacing an element.
  function row(first: ClusterView): Row {
    const name = first.name;
    let c = first;
    const minutes = h("input", { type: "number", min: "1", value: String(first.autostop?.idle_minutes ?? 30), class: "narrow", "aria-label": `idle minutes for ${name}` });
    minutes.addEventListener("input", () => {
      minutes.dataset.edited = "1";
    });
    const downBox = h("input", { type: "checkbox", "aria-label": `down instead of stop for ${name}`, checked: first.autostop?.down ?? false });
    downBox.addEventListener("change", () => {
      downBox.dataset.edited = "1";
    });
    const btn = (id: string, text: string, onclick: () => void, cls = "small") =>
      h("button", { class: cls, "data-action": id, "aria-label": `${text} ${name}`, onclick }, text);
    const pick = h("input", { type: "checkbox", class: "select", "data-cluster": name, "aria-label": `select ${name}`, checked: selected.has(name) });
    pick.addEventListener("change", () => {
      if (pick.checked) selected.add(name);
      else selected.delete(name);
      selectAll.checked = shown.length > 0 && selected.size === shown.length;
    });
    const buttons = {
      exec: btn("exec", "Exec", () => openExec(name)),
      start: btn("start", "Start", () => void act("Start", name, () => backend.clusterStart(name))),
      stop: btn("stop", "Stop", () =>
        confirmation.open(`Stop ${name}? Its processes end; disks are kept and you can start it again.`, "Stop", [name], () => backend.clusterStop(name)),
      ),
      down: btn(
        "down",
        "Down",
        () => confirmation.open(`Tear down ${name}? Its nodes and disks are deleted; this cannot be undone.`, "Down", [name], () => backend.clusterDown(name)),
        "small danger",
      ),
      autostop: btn("autostop", "Set autostop", () => {
        const idle = Number.parseInt(minutes.value, 10);
        if (!Number.isInteger(idle) || idle < 1) {
          say(`autostop for ${name}: idle minutes must be a whole number ≥ 1, got '${minutes.value}'`, true);
          return;
        }
        delete minutes.dataset.edited;
        delete downBox.dataset.edited;
        void act("Autostop", name, () => backend.clusterAutostop(name, idle, downBox.checked));
      }),
      cancelAutostop: btn("autostop-cancel", "Cancel autostop", () => void act("Cancel autostop", name, () => backend.clusterAutostop(name, null, false))),
    };
    const cell = (field: string) => h("td", { "data-field": field });
    const cells = {
      status: h("span", { class: "badge" }),
      place: cell("place"),
      instance: cell("instance"),
      nodes: cell("nodes"),
      price: cell("price"),
      uptime: cell("uptime"),
      autostop: cell("autostop"),
    };
    const tr = h(
      "tr",
      { "data-cluster": name },
      h("td", {}, pick),
      h("td", { "data-field": "name" }, name),
      h("td", { "data-field": "status" }, cells.status),
      cells.place,
      cells.instance,
      cells.nodes,
      cells.price,
      cells.uptime,
      cells.autostop,
      h(
        "td",
        { class: "actions" },
        buttons.exec,
        buttons.start,
        buttons.stop,
        buttons.down,
        h("span", { class: "autostop" }, minutes, h("label", {}, downBox, " down"), buttons.autostop, buttons.cancelAutostop),
      ),
    );
    const tick = (nowSeconds: number) => setText(cells.uptime, uptime(c, nowSeconds));
    return {
      tr,
      tick,
      update(next: ClusterView) {
        const before = c;
        c = next;
        setAttr(tr, "data-status", c.status);
        // A record refresh could not check is kept, and says so: its status is the last known.
        setText(cells.status, c.unchecked ? `${c.status} (unchecked)` : c.status);
        setAttr(cells.status, "class", `badge status-${c.status.toLowerCase()}`);
        setAttr(cells.status, "title", c.unchecked ? `not checked: ${c.unchecked}` : null);
        setAttr(cells.status, "data-unchecked", c.unchecked ? "true" : null);
        setText(cells.place, place(c));
        setText(cells.instance, `${c.instance_type ?? "—"}${c.use_spot ? " (spot)" : ""}`);
        setText(cells.nodes, String(c.num_nodes));
        setText(cells.price, price(c));
        setText(cells.autostop, autostop(c));
        tick(Date.now() / 1000);
        const can = actionsFor(c);
        setDisabled(buttons.exec, c.status !== "UP");
        setDisabled(buttons.start, !can.start);
        setDisabled(buttons.stop, !can.stop);
        setDisabled(buttons.down, !can.down);
        setDisabled(buttons.autostop, !can.autostop);
        setDisabled(buttons.cancelAutostop, !(can.autostop && c.autostop !== null));
        // A setting that changed elsewhere (the CLI, another window) shows in the inputs, unless
        // the user is editing them here: what they typed is theirs until they act on it.
        if (before.autostop?.idle_minutes !== c.autostop?.idle_minutes && !minutes.dataset.edited && document.activeElement !== minutes)
          minutes.value = String(c.autostop?.idle_minutes ?? 30);
        if (before.autostop?.down !== c.autostop?.down && !downBox.dataset.edited) downBox.checked = c.autostop?.down ?? false;
        if (pick.checked !== selected.has(name)) pick.checked = selected.has(name);
      },
    };
  }

  // Uptime advances every second in place; the rest of a row changes only with a new view.
  const ticker = setInterval(() => {
    if (!page.isConnected) {
      clearInterval(ticker);
      return;
    }
    const now = Date.now() / 1000;
    for (const r of rows.values()) r.tick(now);
  }, 1000);

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
