// Cost comparison: the optimizer's ranked candidates for the task on the New task page, with
// on-demand and spot prices side by side, the chart drawn in Rust, and why nothing is cheaper.
// Any row can be picked, not only the cheapest.
import { backend, errorText, isUiError, type PlanRow } from "../backend";
import { h, svgNode } from "../dom";
import { session } from "../session";

const money = (v: number | null) => (v === null ? "—" : `$${v.toFixed(4)}`);


export async function comparePage(): Promise<HTMLElement> {
  const page = h(
    "section",
    { class: "page" },
    h("h1", {}, "Cost comparison"),
    h("p", { class: "lead" }, "Every cloud's prices for the task on the New task page, cheapest first ($/hour for all nodes)."),
  );
  let plan;
  try {
    plan = await backend.plan(session.taskYaml);
  } catch (e) {
    const where = isUiError(e) && e.task?.line ? ` (line ${e.task.line})` : "";
    page.append(h("div", { class: "card error", id: "compare-error" }, errorText(e) + where));
    return page;
  }
  const picked = h("p", { class: "picked", id: "compare-picked" }, pickText(plan.rows[0]));
  const useSpot = plan.use_spot;
  const pick = (r: PlanRow) => {
    session.pick = { cloud: r.cloud, region: r.region, zone: r.zone, instance_type: r.instance_type, use_spot: useSpot };
    picked.textContent = pickText(r);
  };
  const launchOn = (r: PlanRow) => {
    pick(r);
    session.launchRequested = true;
    location.hash = "#/launch";
  };
  const table = h(
    "table",
    { id: "compare-table" },
    h("thead", {}, h("tr", {}, ...["#", "Cloud", "Region / zone", "Instance", "Accelerators", "vCPUs", "Mem GiB", "On-demand", "Spot", ""].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      ...plan.rows.map((r) =>
        h(
          "tr",
          { "data-rank": String(r.rank) },
          h("td", {}, String(r.rank)),
          h("td", {}, r.cloud.toUpperCase()),
          h("td", {}, r.zone ?? r.region),
          h("td", {}, r.instance_type),
          h("td", {}, r.accelerators ?? "—"),
          h("td", {}, r.vcpus === null ? "—" : String(r.vcpus)),
          h("td", {}, r.memory_gib === null ? "—" : String(r.memory_gib)),
          h("td", {}, money(r.on_demand)),
          h("td", {}, money(r.spot)),
          h(
            "td",
            { class: "actions" },
            h("button", { class: "small", "data-action": "pick", onclick: () => pick(r) }, "Pick"),
            " ",
            h("button", { class: "small primary", "data-action": "launch", onclick: () => launchOn(r) }, "Launch"),
          ),
        ),
      ),
    ),
  );
  page.append(
    h("div", { class: "card chart", id: "compare-chart" }, svgNode(plan.chart_svg)),
    h("div", { class: "card" }, h("h2", {}, "Why not cheaper?"), h("ul", { id: "compare-why" }, ...plan.why_not_cheaper.map((w) => h("li", {}, w)))),
    picked,
    h("div", { class: "card" }, h("p", { class: "hint" }, `${plan.total_candidates} candidates; the best ${plan.rows.length} are listed.`), table),
  );
  return page;
}

function pickText(r: PlanRow | undefined): string {
  if (!r) return "No candidate.";
  return `Picked: ${r.cloud.toUpperCase()} ${r.instance_type} in ${r.zone ?? r.region} at ${money(r.on_demand)}/h on-demand${r.spot === null ? "" : `, ${money(r.spot)}/h spot`}.`;
}
