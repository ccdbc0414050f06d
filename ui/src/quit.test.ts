// @vitest-environment happy-dom
// The quit dialog: held-back quits list the clusters that bill, each choice acts on every one of
// them and then quits; a failure is shown and nothing quits.
import { beforeEach, describe, expect, it, vi } from "vitest";

type Handler = (e: { payload: { clusters: string[] } }) => void;
const pushed: { handler: Handler | null } = { handler: null };
vi.mock("@tauri-apps/api/event", () => ({
  listen: (event: string, handler: Handler) => {
    if (event === "quit-requested") pushed.handler = handler;
    return Promise.resolve(() => undefined);
  },
}));

const calls: string[] = [];
let refuse: string | null = null;
vi.mock("./backend", () => ({
  errorText: (e: unknown) => String(e),
  backend: {
    appQuit: () => (calls.push("quit"), Promise.resolve()),
    clusterStop: (n: string) => (calls.push(`stop ${n}`), Promise.resolve()),
    clusterAutostop: (n: string, m: number | null, d: boolean) =>
      n === refuse ? Promise.reject(new Error(`autostop is not set on '${n}'`)) : (calls.push(`autostop ${n} ${m} ${d}`), Promise.resolve()),
  },
}));

const { installQuitDialog } = await import("./quit");

const $ = <T extends HTMLElement>(css: string) => {
  const el = document.querySelector<T>(css);
  if (!el) throw new Error(`no ${css}`);
  return el;
};
const settled = () => new Promise((r) => setTimeout(r, 0));

describe("quit dialog", () => {
  beforeEach(() => {
    document.body.replaceChildren();
    calls.length = 0;
    refuse = null;
    installQuitDialog(document.body);
  });

  it("asks with Cancel focused, and Cancel quits nothing", () => {
    pushed.handler?.({ payload: { clusters: ["a", "b"] } });
    expect($("#quit-dialog").dataset.state).toBe("open");
    expect($("#quit-title").textContent).toBe("2 clusters are still running");
    expect([...document.querySelectorAll("#quit-clusters li")].map((l) => l.textContent)).toEqual(["a", "b"]);
    expect(document.activeElement?.id).toBe("quit-cancel");
    $<HTMLButtonElement>("#quit-cancel").click();
    expect($("#quit-dialog").dataset.state).toBe("closed");
    expect(calls).toEqual([]);
  });

  it("sets autostop on every cluster, then quits", async () => {
    pushed.handler?.({ payload: { clusters: ["a", "b"] } });
    $<HTMLButtonElement>("#quit-autostop").click();
    await settled();
    expect(calls).toEqual(["autostop a 60 false", "autostop b 60 false", "quit"]);
  });

  it("stops every cluster, then quits; or leaves them and quits", async () => {
    pushed.handler?.({ payload: { clusters: ["a"] } });
    $<HTMLButtonElement>("#quit-stop").click();
    await settled();
    expect(calls).toEqual(["stop a", "quit"]);
    calls.length = 0;
    pushed.handler?.({ payload: { clusters: ["a"] } });
    $<HTMLButtonElement>("#quit-leave").click();
    await settled();
    expect(calls).toEqual(["quit"]);
  });

  it("shows a refused autostop and does not quit", async () => {
    refuse = "az";
    pushed.handler?.({ payload: { clusters: ["a", "az"] } });
    $<HTMLButtonElement>("#quit-autostop").click();
    await settled();
    expect($("#quit-dialog").dataset.state).toBe("failed");
    expect($("#quit-error").textContent).toContain("autostop is not set on 'az'");
    expect(calls).toEqual(["autostop a 60 false"]);
    expect($<HTMLButtonElement>("#quit-stop").disabled).toBe(false);
  });
});
