// Cost comparison: the optimizer's ranked candidates for the task on the New task page, with
// on-demand and spot prices side by side, the chart drawn in Rust, and why nothing is cheaper.
// Any row can be picked, not only the cheapest.
import { backend, errorText, isUiError, type PlanRow } from "../backend";
import { h } from "../dom";
import { session } from "../session";

const money = (v: number | null) => (v === null ? "—" : `$${v.toFixed(4)}`);

/// The chart is SVG text made by the app itself (plotters), parsed as an SVG document rather than
/// injected as HTML, so nothing in it can run.
function svgNode(text: string): Node {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

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
          h("td", {}, h("button", { class: "small", onclick: () => (picked.textContent = pickText(r)) }, "Pick")),
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
