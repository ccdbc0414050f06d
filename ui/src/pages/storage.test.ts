// @vitest-environment happy-dom
// The Storage page: the table shows what the facade lists, a bucket in use cannot be deleted, and
// a delete happens only after the user confirms, then the table is listed again.
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { StorageView } from "../backend";

const calls: string[] = [];
let listed: StorageView[] = [];
vi.mock("../backend", () => ({
  errorText: (e: unknown) => String(e),
  backend: {
    storageList: () => (calls.push("list"), Promise.resolve(listed)),
    storageDelete: (names: string[]) => {
      calls.push(`delete ${names.join(",")}`);
      listed = listed.filter((b) => !names.includes(b.name));
      return Promise.resolve(names.map((name) => ({ name, existed: true })));
    },
  },
}));

const bucket = (name: string, over: Partial<StorageView> = {}): StorageView => ({
  name,
  store: "s3",
  region: "eu-west-1",
  persistent: true,
  sources: ["./data"],
  created_at: Math.floor(Date.now() / 1000) - 7200,
  last_used_at: 0,
  clusters: [],
  objects: 3,
  bytes: 3 * 1024 * 1024,
  problem: null,
  ...over,
});

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("Storage page", () => {
  beforeEach(() => {
    calls.length = 0;
    document.body.replaceChildren();
  });

  it("says so when Sky created no bucket", async () => {
    listed = [];
    const { storagePage } = await import("./storage");
    document.body.append(await storagePage());
    expect(document.querySelector("#storage-empty")?.textContent).toContain("No buckets created by Sky");
  });

  it("lists buckets, refuses to delete one in use, and deletes only after confirming", async () => {
    listed = [bucket("sky-inputs"), bucket("sky-ckpt", { clusters: ["train"], bytes: null, objects: null, problem: "s3 is not reachable" })];
    const { storagePage } = await import("./storage");
    document.body.append(await storagePage());
    const row = (name: string) => document.querySelector<HTMLTableRowElement>(`#storage-table tr[data-bucket='${name}']`)!;
    const cells = [...row("sky-inputs").cells].map((c) => c.textContent);
    expect(cells.slice(0, 6)).toEqual(["sky-inputs", "S3", "eu-west-1", "3.0 MiB", "3", "2h 0m ago"]);
    expect(row("sky-ckpt").cells[3]!.textContent).toBe("? (s3 is not reachable)");
    const busy = row("sky-ckpt").querySelector<HTMLButtonElement>("[data-action=delete]")!;
    expect(busy.disabled).toBe(true);
    expect(busy.title).toContain("Used by train");

    row("sky-inputs").querySelector<HTMLButtonElement>("[data-action=delete]")!.click();
    const box = document.querySelector<HTMLElement>("#storage-confirm")!;
    expect(box.hidden).toBe(false);
    expect(box.textContent).toContain("Delete bucket sky-inputs (s3, eu-west-1) and everything in it?");
    document.querySelector<HTMLButtonElement>("#storage-confirm-no")!.click();
    expect(box.hidden).toBe(true);
    expect(calls).toEqual(["list"]);

    row("sky-inputs").querySelector<HTMLButtonElement>("[data-action=delete]")!.click();
    document.querySelector<HTMLButtonElement>("#storage-confirm-yes")!.click();
    await flush();
    await flush();
    expect(calls).toEqual(["list", "delete sky-inputs", "list"]);
    expect(document.querySelector("#storage-status")?.textContent).toBe("Deleted bucket sky-inputs.");
    expect(document.querySelector("#storage-table tr[data-bucket='sky-inputs']")).toBeNull();
    expect(document.querySelector("#storage-table tr[data-bucket='sky-ckpt']")).not.toBeNull();
  });
});
