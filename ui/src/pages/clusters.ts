// Clusters: every cluster in SKY_HOME (the same ones `sky status` shows), refreshed every few
// seconds while the page is open, with start, stop, down and autostop. Stop and down ask first,
// in the page itself, naming the cluster and what will be lost.
import { backend, errorText, type ClusterView } from "../backend";
import { h } from "../dom";
import { actionsFor, autostop, place, price, uptime } from "../clusterfmt";

const POLL_MS = 5000;

export async function clustersPage(): Promise<HTMLElement> {
  const message = h("div", { class: "card hint", id: "clusters-message", hidden: true });
  const confirmBox = h("div", { class: "card confirm", id: "clusters-confirm", hidden: true });
  const checked = h("span", { class: "hint", id: "clusters-checked" });
  const body = h("tbody", {});
  const table = h(
    "table",
    { id: "clusters-table" },
    h(
      "thead",
      {},
      h("tr", {}, ...["Name", "Status", "Cloud / region", "Instance", "Nodes", "$/h", "Uptime", "Autostop", "Actions"].map((t) => h("th", {}, t))),
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
    message,
    confirmBox,
    h("div", { class: "card" }, table, empty),
  );

  const say = (text: string, error = false) => {
    message.textContent = text;
    message.className = error ? "card error" : "card hint";
    message.hidden = text === "";
  };

  async function load(refresh: boolean) {
    try {
      const view = await backend.clustersStatus(refresh);
      body.replaceChildren(...view.clusters.map(row));
      empty.hidden = view.clusters.length > 0;
      checked.textContent = `Last checked ${new Date().toLocaleTimeString()}${refresh ? " (asked the clouds)" : ""}`;
      if (refresh && view.changes.length > 0) say(view.changes.map((c) => `${c.cluster}: ${c.message}`).join("; "));
    } catch (e) {
      say(errorText(e), true);
    }
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
    const downBox = h("input", { type: "checkbox", "aria-label": "down instead of stop", checked: c.autostop?.down ?? false });
    const btn = (id: string, text: string, enabled: boolean, onclick: () => void, cls = "small") =>
      h("button", { class: cls, "data-action": id, disabled: !enabled, onclick }, text);
    return h(
      "tr",
      { "data-cluster": c.name, "data-status": c.status },
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
  // Live while shown: the poll stops by itself once the router replaces this page.
  const timer = setInterval(() => {
    if (!page.isConnected) clearInterval(timer);
    else void load(false);
  }, POLL_MS);
  return page;
}
