// Cost report: what every launch so far has cost (gone clusters included), as `sky cost-report`,
// next to a chart of spend over time drawn in Rust.
import { backend, errorText } from "../backend";
import { h, svgNode } from "../dom";
import { duration } from "../clusterfmt";

export async function reportPage(): Promise<HTMLElement> {
  const page = h("section", { class: "page" }, h("h1", {}, "Cost report"), h("p", { class: "lead" }, "Spend per cluster since launch, gone clusters included."));
  try {
    const [report, chart] = await Promise.all([backend.costReport(), backend.spendChart()]);
    const chartCard = h(
      "div",
      { class: "card chart", id: "report-chart" },
      chart === null ? h("p", { class: "hint" }, "No spend yet: nothing has been launched.") : svgNode(chart),
    );
    page.append(
      h("p", { class: "picked", id: "report-total" }, `Total: $${report.total_cost.toFixed(4)}`),
      h(
        "div",
        { class: "report-grid" },
        chartCard,
        h(
        "div",
        { class: "card" },
        h(
          "table",
          { id: "report-table" },
          h("thead", {}, h("tr", {}, ...["Cluster", "State", "Cloud / region", "Instance", "Nodes", "$/h", "Running", "Cost"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...report.clusters.map((c) =>
              h(
                "tr",
                { "data-cluster": c.name },
                h("td", {}, c.name),
                h("td", {}, c.alive ? "alive" : "terminated"),
                h("td", {}, `${c.cloud.toUpperCase()} ${c.region}`),
                h("td", {}, `${c.instance_type}${c.use_spot ? " (spot)" : ""}`),
                h("td", {}, String(c.num_nodes)),
                h("td", {}, `$${c.hourly_price.toFixed(4)}`),
                h("td", {}, duration(c.running_seconds)),
                h("td", {}, `$${c.cost.toFixed(4)}`),
              ),
            ),
          ),
        ),
      ),
      ),
    );
  } catch (e) {
    page.append(h("div", { class: "card error", id: "report-error" }, errorText(e)));
  }
  return page;
}
