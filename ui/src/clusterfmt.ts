// Pure formatting for the Clusters table, kept apart from the DOM so it is unit-tested.
import type { ClusterView } from "./backend";

export function duration(seconds: number): string {
  if (seconds < 0) return "—";
  const m = Math.floor(seconds / 60);
  if (m < 1) return `${Math.floor(seconds)}s`;
  if (m < 60) return `${m}m`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function place(c: ClusterView): string {
  if (!c.cloud) return "—";
  return `${c.cloud.toUpperCase()} ${c.zone ?? c.region ?? ""}`.trim();
}

export function price(c: ClusterView): string {
  return c.hourly_price === null ? "—" : `$${c.hourly_price.toFixed(4)}`;
}

/// Uptime counts only while UP: a stopped cluster is not running up a compute bill.
export function uptime(c: ClusterView, nowSeconds: number): string {
  return c.status === "UP" ? duration(nowSeconds - c.launched_at) : "—";
}

export function autostop(c: ClusterView): string {
  if (!c.autostop) return "off";
  return `${c.autostop.idle_minutes}m idle → ${c.autostop.down ? "down" : "stop"}`;
}

/// Which actions make sense in a status; the others are disabled rather than failing.
export function actionsFor(c: ClusterView): { start: boolean; stop: boolean; down: boolean; autostop: boolean } {
  return {
    start: c.status !== "UP",
    stop: c.status === "UP",
    down: true,
    autostop: c.status === "UP",
  };
}

/// What a bulk action on the selected clusters will do, or why it cannot: the confirmation text
/// and the autostop setting each cluster gets (`down` tears the cluster down instead of stopping it).
export type BulkLabel = "Stop" | "Down" | "Autostop";
export type BulkPlan =
  | { ok: false; error: string }
  | { ok: true; question: string; autostop: { idleMinutes: number; down: boolean } | null };

export function bulkPlan(label: BulkLabel, names: string[], idleText: string, down: boolean): BulkPlan {
  if (names.length === 0) return { ok: false, error: `${label}: select clusters first (the boxes in the first column)` };
  const list = `${names.length} cluster(s): ${names.join(", ")}`;
  if (label === "Down")
    return { ok: true, question: `Tear down ${list}? Their nodes and disks are deleted; this cannot be undone.`, autostop: null };
  if (label === "Stop") return { ok: true, question: `Stop ${list}? Their processes end; disks are kept.`, autostop: null };
  const idle = Number(idleText.trim());
  if (idleText.trim() === "" || !Number.isInteger(idle) || idle < 1)
    return { ok: false, error: `autostop: idle minutes must be a whole number ≥ 1, got '${idleText}'` };
  const then = down ? "tear down (delete nodes and disks)" : "stop";
  return { ok: true, question: `After ${idle} idle minutes, ${then} ${list}?`, autostop: { idleMinutes: idle, down } };
}

/// Bytes as `sky storage ls` shows them: IEC units, one decimal past bytes.
export function size(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
