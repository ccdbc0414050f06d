// Typed wrappers over the Tauri commands. The page talks to Rust only through this module, and
// every failure arrives as a UiError {code, message}.
import { invoke, type Channel } from "@tauri-apps/api/core";

export type CloudId = "aws" | "gcp" | "azure" | "ssh" | "local";

export interface UiError {
  code: string;
  message: string;
  task?: { path: string; line: number | null; column: number | null; message: string };
}

export function isUiError(e: unknown): e is UiError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

export function errorText(e: unknown): string {
  if (isUiError(e)) return e.message;
  return String(e);
}

export interface AppInfo {
  version: string;
  keychain: string | null;
  keychain_error: string | null;
}

export interface CredentialStatus {
  cloud: CloudId;
  name: string;
  state: "stored" | "missing" | "error";
  summary: string | null;
  message: string;
}

export type CloudCredentials =
  | { cloud: "aws"; access_key_id: string; secret_access_key: string; session_token?: string }
  | { cloud: "gcp"; service_account_json: string; project_id: string }
  | { cloud: "azure"; tenant_id: string; client_id: string; client_secret: string; subscription_id: string };

export type ImportRequest =
  | { cloud: "aws" }
  | { cloud: "gcp"; json: string | null; project: string | null }
  | { cloud: "azure"; json: string; subscription: string | null };

export interface PriceBar {
  cloud: CloudId;
  label: string;
  on_demand: number;
  spot: number | null;
}

export interface PlanRow {
  rank: number;
  cloud: CloudId;
  region: string;
  zone: string | null;
  instance_type: string;
  accelerators: string | null;
  vcpus: number | null;
  memory_gib: number | null;
  on_demand: number;
  spot: number | null;
}

export interface PlanView {
  num_nodes: number;
  use_spot: boolean;
  rows: PlanRow[];
  total_candidates: number;
  chart_svg: string;
  why_not_cheaper: string[];
}

export type ClusterStatus = "INIT" | "UP" | "STOPPED";

export interface ClusterView {
  name: string;
  status: ClusterStatus;
  cloud: CloudId | null;
  region: string | null;
  zone: string | null;
  instance_type: string | null;
  num_nodes: number;
  use_spot: boolean;
  hourly_price: number | null;
  launched_at: number;
  last_use_at: number;
  last_use_command: string;
  autostop: { idle_minutes: number; down: boolean } | null;
  head_ip: string | null;
  /** Names the cloud gives the cluster's resources (derived where it refuses `name` as is). */
  cloud_names?: { what: string; name: string }[];
  /** Why the last refresh could not check this cluster's cloud (the record is kept); null when it could. */
  unchecked: string | null;
}

export interface StatusView {
  clusters: ClusterView[];
  changes: { cluster: string; from: ClusterStatus | null; to: ClusterStatus | null; message: string }[];
}

export interface JobView {
  id: number;
  name: string | null;
  status: string;
  exit_code: number | null;
  message: string | null;
  submitted_at: number;
  started_at: number | null;
  ended_at: number | null;
  num_nodes: number;
  run: string;
}

export type LogMessage =
  | { kind: "lines"; lines: string[] }
  | { kind: "end"; job: number; status: string; exit_code: number | null };

export interface CostLineView {
  name: string;
  alive: boolean;
  cloud: CloudId;
  region: string;
  instance_type: string;
  num_nodes: number;
  use_spot: boolean;
  hourly_price: number;
  launched_at: number;
  terminated_at: number | null;
  running_seconds: number;
  cost: number;
}

/// The comparison row to launch on (the local cloud stands in when its cloud is not enabled).
export interface Pick {
  cloud: CloudId;
  region: string;
  zone: string | null;
  instance_type: string;
  use_spot: boolean;
}

export interface LaunchRequest {
  launch_id: string;
  yaml: string;
  cluster: string | null;
  pick: Pick | null;
}

/// sky-core's progress events (crates/sky-core/src/events.rs), tagged by `event`.
export type LaunchEvent =
  | { event: "waiting_for_lock"; cluster: string }
  | { event: "plan"; cluster: string; num_nodes: number; candidates: unknown[] }
  | { event: "stage_started" | "stage_finished"; cluster: string; stage: string }
  | {
      event: "failover_attempt";
      number: number;
      cloud: CloudId;
      region: string;
      zone: string | null;
      instance_type: string;
      use_spot: boolean;
      outcome: { result: "succeeded" } | { result: "failed"; kind: string; message: string; blocked: string; cleaned_up: boolean };
    }
  | { event: "retry_round"; round: number; wait_secs: number }
  | { event: "cluster_status"; cluster: string; status: ClusterStatus | null }
  | { event: "reusing"; cluster: string; status: ClusterStatus }
  | { event: "job_submitted"; cluster: string; job_id: number }
  | { event: "log"; cluster: string; line: string }
  | { event: "note"; message: string };

export interface RunOutcome {
  cluster: string;
  job_id: number | null;
  job_status: string | null;
  exit_code: number | null;
  setup_failed: boolean;
  torn_down: boolean;
}

/// A bucket Sky created for a storage object (`sky storage ls -o json`).
/** `sky check`'s answer for one cloud: usable now or not, and why (the credentials' source). */
export interface CloudCheckView {
  cloud: CloudId;
  enabled: boolean;
  reason: string;
}

/// Whether `ssh CLUSTER` works from a terminal: `~/.ssh/config` includes Sky's cluster configs.
export interface SshIncludeView {
  state: "included" | "absent" | "declined";
  user_config: string;
  cluster_configs: string;
}

export interface StorageView {
  name: string;
  store: "s3" | "gcs" | "azure";
  region: string;
  persistent: boolean;
  sources: string[];
  created_at: number;
  last_used_at: number;
  clusters: string[];
  objects: number | null;
  bytes: number | null;
  problem: string | null;
}

export interface StorageDeleted {
  name: string;
  existed: boolean;
}

export const backend = {
  launch: (request: LaunchRequest, channel: Channel<LaunchEvent>) => invoke<RunOutcome>("launch", { request, channel }),
  spendChart: () => invoke<string | null>("spend_chart"),
  clusterExec: (name: string, command: string) => invoke<number | null>("cluster_exec", { name, command }),
  launchCancel: (launchId: string) => invoke<boolean>("launch_cancel", { launchId }),
  plan: (yaml: string) => invoke<PlanView>("plan", { yaml }),
  appInfo: () => invoke<AppInfo>("app_info"),
  appReady: () => invoke<null>("app_ready"),
  appQuit: () => invoke<null>("app_quit"),
  credentialsList: () => invoke<CredentialStatus[]>("credentials_list"),
  credentialsSave: (credentials: CloudCredentials) =>
    invoke<CredentialStatus>("credentials_save", { credentials }),
  credentialsDelete: (cloud: CloudId) => invoke<boolean>("credentials_delete", { cloud }),
  credentialsImport: (request: ImportRequest) =>
    invoke<CredentialStatus>("credentials_import", { request }),
  priceChart: (bars: PriceBar[]) => invoke<string>("price_chart", { bars }),
  clustersStatus: (refresh: boolean) => invoke<StatusView>("clusters_status", { refresh }),
  clusterQueue: (name: string) => invoke<JobView[]>("cluster_queue", { name }),
  jobLogs: (name: string, job: number | null, channel: Channel<LogMessage>) =>
    invoke<null>("job_logs", { name, job, channel }),
  cloudsCheck: () => invoke<CloudCheckView[]>("clouds_check"),
  sshInclude: () => invoke<SshIncludeView>("ssh_include"),
  sshIncludeSet: (on: boolean) => invoke<SshIncludeView>("ssh_include_set", { on }),
  storageList: () => invoke<StorageView[]>("storage_list"),
  storageDelete: (names: string[]) => invoke<StorageDeleted[]>("storage_delete", { names }),
  costReport: () => invoke<{ clusters: CostLineView[]; total_cost: number }>("cost_report"),
  clusterStop: (name: string) => invoke<null>("cluster_stop", { name }),
  clusterStart: (name: string) => invoke<null>("cluster_start", { name }),
  clusterDown: (name: string) => invoke<null>("cluster_down", { name }),
  clusterAutostop: (name: string, idleMinutes: number | null, down: boolean) =>
    invoke<null>("cluster_autostop", { name, idleMinutes, down }),
};
