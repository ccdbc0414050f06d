// @vitest-environment happy-dom
// The Clusters page under a storm of pushed updates: rows, what the user typed, focus and an open
// confirmation must all survive every update that does not remove their cluster.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StatusView } from "../backend";
import { cluster } from "../testfixtures";

type Handler = (e: { payload: StatusView }) => void;
const pushed: { handler: Handler | null } = { handler: null };

vi.mock("@tauri-apps/api/event", () => ({
  listen: (event: string, handler: Handler) => {
    if (event === "clusters-changed") pushed.handler = handler;
    return Promise.resolve(() => {
      pushed.handler = null;
    });
  },
}));

const calls: string[] = [];
let firstView: StatusView = { clusters: [], changes: [] };
vi.mock("../backend", () => ({
  errorText: (e: unknown) => String(e),
  backend: {
    clustersStatus: () => Promise.resolve(firstView),
    clusterStop: (n: string) => (calls.push(`stop ${n}`), Promise.resolve()),
    clusterStart: (n: string) => (calls.push(`start ${n}`), Promise.resolve()),
    clusterDown: (n: string) => (calls.push(`down ${n}`), Promise.resolve()),
    clusterAutostop: (n: string, m: number | null, d: boolean) => (calls.push(`autostop ${n} ${m} ${d}`), Promise.resolve()),
    clusterExec: () => Promise.resolve(1),
    sshInclude: () => Promise.resolve({ state: "absent", user_config: "~/.ssh/config", cluster_configs: "config.d" }),
    sshIncludeSet: () => Promise.reject(new Error("not in this test")),
  },
}));


const $ = <T extends HTMLElement>(css: string) => {
  const el = document.querySelector<T>(css);
  if (!el) throw new Error(`no ${css}`);
  return el;
};

/// Types one character the way a keyboard does: the value grows and an input event fires.
function typeChar(input: HTMLInputElement, ch: string) {
  input.value += ch;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

describe("Clusters page under pushed updates", () => {
  let tick = 0;
  /// A new view every 100 ms, each different from the last (uptime, last use, c2's autostop and
  /// the order of the rows), as the app's watcher pushes them.
  const push = () => {
    tick++;
    const clusters = [
      cluster("c1", { last_use_at: 1_700_000_000 + tick }),
      cluster("c2", { autostop: { idle_minutes: 10 + (tick % 5), down: tick % 2 === 0 } }),
    ];
    if (tick % 3 === 0) clusters.reverse();
    pushed.handler?.({ payload: { clusters, changes: [] } });
    vi.advanceTimersByTime(100);
  };

  beforeEach(async () => {
    vi.useFakeTimers({ now: 1_700_000_100_000 });
    calls.length = 0;
    tick = 0;
    firstView = { clusters: [cluster("c1"), cluster("c2")], changes: [] };
    const { clustersPage } = await import("./clusters");
    document.body.replaceChildren(await clustersPage());
    await vi.waitFor(() => expect(pushed.handler).not.toBeNull());
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("keeps the row, the typed minutes and the focus through every push", () => {
    const row = $("tr[data-cluster='c1']");
    const minutes = $<HTMLInputElement>("tr[data-cluster='c1'] input[type=number]");
    minutes.focus();
    minutes.value = "";
    for (const ch of "45") {
      push();
      typeChar(minutes, ch);
      push();
    }
    for (let i = 0; i < 20; i++) push();
    expect($("tr[data-cluster='c1']")).toBe(row);
    expect($<HTMLInputElement>("tr[data-cluster='c1'] input[type=number]")).toBe(minutes);
    expect(minutes.value).toBe("45");
    expect(document.activeElement).toBe(minutes);
    expect($("#clusters-table").dataset.pushes).toBe(String(tick));
    // The rows still follow the order of the last view, placed around the focused one.
    const order = [...document.querySelectorAll<HTMLElement>("tr[data-cluster]")].map((tr) => tr.dataset.cluster);
    expect(order).toEqual(tick % 3 === 0 ? ["c2", "c1"] : ["c1", "c2"]);

    $<HTMLButtonElement>("tr[data-cluster='c1'] button[data-action=autostop]").click();
    expect(calls).toContain("autostop c1 45 false");
  });

  it("updates changed cells in place and leaves unchanged ones alone", () => {
    const c1Autostop = $("tr[data-cluster='c1'] [data-field=autostop]");
    const c1Text = c1Autostop.firstChild;
    push();
    push();
    expect($("tr[data-cluster='c2'] [data-field=autostop]").textContent).toBe(`${10 + (tick % 5)}m idle → ${tick % 2 === 0 ? "down" : "stop"}`);
    // c2's minutes input follows the pushed setting while nobody edits it.
    expect($<HTMLInputElement>("tr[data-cluster='c2'] input[type=number]").value).toBe(String(10 + (tick % 5)));
    expect(c1Autostop.firstChild).toBe(c1Text);
  });

  it("keeps an open confirmation, and its button, through every push", () => {
    $<HTMLButtonElement>("tr[data-cluster='c1'] button[data-action=stop]").click();
    const yes = $<HTMLButtonElement>("#clusters-confirm-yes");
    for (let i = 0; i < 30; i++) push();
    expect($("#clusters-confirm").hidden).toBe(false);
    expect($("#clusters-confirm").dataset.state).toBe("open");
    expect($<HTMLButtonElement>("#clusters-confirm-yes")).toBe(yes);
    expect($("#clusters-confirm-text").textContent).toContain("Stop c1?");
    yes.click();
    expect(calls).toEqual(["stop c1"]);
    expect($("#clusters-confirm").hidden).toBe(true);
  });

  it("says so when the cluster of an open confirmation disappears, and cannot confirm it", () => {
    $<HTMLButtonElement>("tr[data-cluster='c2'] button[data-action=down]").click();
    push();
    pushed.handler?.({ payload: { clusters: [cluster("c1")], changes: [] } });
    expect(document.querySelector("tr[data-cluster='c2']")).toBeNull();
    expect($("#clusters-confirm").hidden).toBe(false);
    expect($("#clusters-confirm").dataset.state).toBe("stale");
    expect($("#clusters-confirm-text").textContent).toContain("c2 no longer exists");
    expect($<HTMLButtonElement>("#clusters-confirm-yes").disabled).toBe(true);
    $<HTMLButtonElement>("#clusters-confirm-yes").click();
    expect(calls).toEqual([]);
  });

  it("keeps the selection through pushes and drops it with the cluster", () => {
    $<HTMLInputElement>("tr[data-cluster='c2'] input.select").click();
    for (let i = 0; i < 5; i++) push();
    expect($<HTMLInputElement>("tr[data-cluster='c2'] input.select").checked).toBe(true);
    $<HTMLButtonElement>("#clusters-bulk-stop").click();
    expect($("#clusters-confirm-text").textContent).toContain("c2");
    expect($("#clusters-confirm-text").textContent).not.toContain("c1");
  });
});
