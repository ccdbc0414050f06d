import { describe, expect, it } from "vitest";
import { cluster } from "./testfixtures";
import { actionsFor, autostop, bulkPlan, duration, place, price, uptime } from "./clusterfmt";

const base = cluster("c1");

describe("cluster formatting", () => {
  it("formats durations by their largest units", () => {
    expect(duration(42)).toBe("42s");
    expect(duration(125)).toBe("2m");
    expect(duration(3 * 3600 + 5 * 60)).toBe("3h 5m");
    expect(duration(2 * 86400 + 3600)).toBe("2d 1h");
  });
  it("counts uptime only while UP", () => {
    expect(uptime(base, 1000 + 90)).toBe("1m");
    expect(uptime({ ...base, status: "STOPPED" }, 5000)).toBe("—");
  });
  it("shows place, price and autostop", () => {
    expect(place(base)).toBe("LOCAL local");
    expect(place({ ...base, cloud: null })).toBe("—");
    expect(price({ ...base, hourly_price: 1.5 })).toBe("$1.5000");
    expect(autostop(base)).toBe("off");
    expect(autostop({ ...base, autostop: { idle_minutes: 10, down: true } })).toBe("10m idle → down");
  });
  it("enables only the actions the status allows", () => {
    expect(actionsFor(base)).toEqual({ start: false, stop: true, down: true, autostop: true });
    expect(actionsFor({ ...base, status: "STOPPED" })).toEqual({ start: true, stop: false, down: true, autostop: false });
  });
});

describe("bulk actions", () => {
  it("asks for a selection first", () => {
    expect(bulkPlan("Stop", [], "30", false)).toEqual({ ok: false, error: "Stop: select clusters first (the boxes in the first column)" });
  });
  it("sets autostop to stop or to down as chosen", () => {
    const stop = bulkPlan("Autostop", ["a", "b"], "15", false);
    expect(stop).toEqual({ ok: true, question: "After 15 idle minutes, stop 2 cluster(s): a, b?", autostop: { idleMinutes: 15, down: false } });
    const down = bulkPlan("Autostop", ["a"], "20", true);
    expect(down.ok && down.autostop).toEqual({ idleMinutes: 20, down: true });
    expect(down.ok && down.question).toContain("tear down");
  });
  it("refuses idle minutes that are not a whole number of at least 1, naming the value", () => {
    for (const bad of ["0", "-3", "2.5", "", "ten"]) {
      const plan = bulkPlan("Autostop", ["a"], bad, true);
      expect(plan.ok).toBe(false);
      expect(!plan.ok && plan.error).toContain(`got '${bad}'`);
    }
  });
  it("confirms destructive actions naming every cluster", () => {
    const plan = bulkPlan("Down", ["a", "b"], "x", false);
    expect(plan.ok && plan.question).toBe("Tear down 2 cluster(s): a, b? Their nodes and disks are deleted; this cannot be undone.");
    expect(plan.ok && plan.autostop).toBeNull();
  });
});
