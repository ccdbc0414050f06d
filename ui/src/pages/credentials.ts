// Credentials: per cloud, enter or import, see what the keychain holds. Secrets go straight from
// the inputs to the `credentials_save` command and the inputs are cleared afterwards.
import {
  backend,
  errorText,
  type CloudCheckView,
  type CloudCredentials,
  type CloudId,
  type CredentialStatus,
  type ImportRequest,
} from "../backend";
import { field, h } from "../dom";

interface CloudForm {
  cloud: Exclude<CloudId, "local" | "ssh">;
  title: string;
  inputs: { id: string; label: string; secret?: boolean; multiline?: boolean; placeholder?: string }[];
  build: (v: Record<string, string>) => CloudCredentials;
  importHint: string;
  importRequest: (v: Record<string, string>) => ImportRequest;
}

const FORMS: CloudForm[] = [
  {
    cloud: "aws",
    title: "AWS",
    inputs: [
      { id: "access_key_id", label: "Access key ID", placeholder: "AKIA…" },
      { id: "secret_access_key", label: "Secret access key", secret: true },
      { id: "session_token", label: "Session token (optional)", secret: true },
    ],
    build: (v) => ({
      cloud: "aws",
      access_key_id: v.access_key_id ?? "",
      secret_access_key: v.secret_access_key ?? "",
      ...(v.session_token ? { session_token: v.session_token } : {}),
    }),
    importHint: "Import reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials (profile AWS_PROFILE or default).",
    importRequest: () => ({ cloud: "aws" }),
  },
  {
    cloud: "gcp",
    title: "GCP",
    inputs: [
      { id: "project_id", label: "Project ID" },
      { id: "service_account_json", label: "Service-account key (JSON)", secret: true, multiline: true },
    ],
    build: (v) => ({ cloud: "gcp", project_id: v.project_id ?? "", service_account_json: v.service_account_json ?? "" }),
    importHint: "Import uses the pasted key if any, else GOOGLE_APPLICATION_CREDENTIALS or gcloud's application-default file.",
    importRequest: (v) => ({ cloud: "gcp", json: v.service_account_json || null, project: v.project_id || null }),
  },
  {
    cloud: "azure",
    title: "Azure",
    inputs: [
      { id: "tenant_id", label: "Tenant ID" },
      { id: "client_id", label: "Client (app) ID" },
      { id: "client_secret", label: "Client secret", secret: true },
      { id: "subscription_id", label: "Subscription ID" },
    ],
    build: (v) => ({
      cloud: "azure",
      tenant_id: v.tenant_id ?? "",
      client_id: v.client_id ?? "",
      client_secret: v.client_secret ?? "",
      subscription_id: v.subscription_id ?? "",
    }),
    importHint: "Import: paste the JSON printed by `az ad sp create-for-rbac` into the client secret box, and give the subscription.",
    importRequest: (v) => ({ cloud: "azure", json: v.client_secret ?? "", subscription: v.subscription_id || null }),
  },
];

function badge(status: CredentialStatus | undefined): HTMLElement {
  const state = status?.state ?? "missing";
  return h(
    "div",
    { class: `status status-${state}`, id: `status-${status?.cloud ?? "unknown"}`, "data-state": state },
    h("span", { class: "badge" }, state === "stored" ? "Stored" : state === "error" ? "Error" : "Not set"),
    status?.summary ? h("span", { class: "summary" }, status.summary) : null,
    h("span", { class: "message" }, status?.message ?? ""),
  );
}

export async function credentialsPage(): Promise<HTMLElement> {
  const page = h("section", { class: "page" }, h("h1", {}, "Credentials"));
  const info = await backend.appInfo().catch(() => null);
  page.append(
    h(
      "p",
      { class: "lead" },
      info?.keychain
        ? `Secrets are kept only in this system's keychain (${info.keychain}); nothing is written to disk or logs.`
        : `No keychain is available: ${info?.keychain_error ?? "unknown reason"}. Launches on this machine still work.`,
    ),
  );
  let statuses: CredentialStatus[] = [];
  try {
    statuses = await backend.credentialsList();
  } catch (e) {
    page.append(h("div", { class: "card error" }, errorText(e)));
  }
  const grid = h("div", { class: "cred-grid" });
  const inUse = new Map<CloudId, HTMLElement>();
  for (const form of FORMS) {
    const slot = h("p", { class: "in-use pending", id: `inuse-${form.cloud}`, "data-state": "pending" }, "In use now: checking…");
    inUse.set(form.cloud, slot);
    grid.append(cloudCard(form, statuses.find((s) => s.cloud === form.cloud), slot));
  }
  page.append(grid);
  // What Sky would sign in with is not only the keychain (the environment, an SSO profile, a
  // gcloud or az login): ask, without holding the page until every cloud has answered.
  void backend
    .cloudsCheck()
    .then((checks) => showInUse(inUse, checks))
    .catch((e) => {
      for (const slot of inUse.values()) setInUse(slot, "error", `In use now: unknown (${errorText(e)})`);
    });
  return page;
}

function setInUse(slot: HTMLElement, state: "ok" | "off" | "error", text: string) {
  slot.className = `in-use ${state}`;
  slot.dataset.state = state;
  slot.textContent = text;
}

/** Fills each card's "In use now" line from `sky check`'s answers. */
export function showInUse(slots: Map<CloudId, HTMLElement>, checks: CloudCheckView[]) {
  for (const [cloud, slot] of slots) {
    const check = checks.find((c) => c.cloud === cloud);
    if (!check) setInUse(slot, "off", "In use now: not checked (not in allowed_clouds)");
    else if (check.enabled) setInUse(slot, "ok", `In use now: ${check.reason}`);
    else setInUse(slot, "off", `Not usable now: ${check.reason}`);
  }
}

function cloudCard(form: CloudForm, status: CredentialStatus | undefined, inUse: HTMLElement): HTMLElement {
  const inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  const statusSlot = h("div", {}, badge(status ?? { cloud: form.cloud, name: form.title, state: "missing", summary: null, message: "" }));
  const errorBox = h("div", { class: "form-error", id: `${form.cloud}-error`, role: "alert" });
  const values = () => Object.fromEntries([...inputs].map(([k, el]) => [k, el.value.trim()]));
  const clearSecrets = () => {
    for (const i of form.inputs) if (i.secret) (inputs.get(i.id) as HTMLInputElement).value = "";
  };
  const act = async (what: () => Promise<CredentialStatus | boolean>) => {
    errorBox.textContent = "";
    try {
      const result = await what();
      clearSecrets();
      const next = typeof result === "boolean" ? (await backend.credentialsList()).find((s) => s.cloud === form.cloud) : result;
      statusSlot.replaceChildren(badge(next));
    } catch (e) {
      errorBox.textContent = errorText(e);
    }
  };
  const body = h("div", { class: "card cred-card", id: `cred-${form.cloud}` }, h("h2", {}, form.title), statusSlot, inUse);
  for (const i of form.inputs) {
    const id = `${form.cloud}-${i.id.replace(/_/g, "-")}`;
    const el = i.multiline
      ? h("textarea", { id, rows: "4", spellcheck: "false", autocomplete: "off" })
      : h("input", { id, type: i.secret ? "password" : "text", spellcheck: "false", autocomplete: "off", placeholder: i.placeholder });
    inputs.set(i.id, el);
    body.append(field(i.label, el));
  }
  body.append(
    errorBox,
    h(
      "div",
      { class: "actions" },
      h("button", { id: `${form.cloud}-save`, class: "primary", onclick: () => act(() => backend.credentialsSave(form.build(values()))) }, "Save to keychain"),
      h("button", { id: `${form.cloud}-import`, onclick: () => act(() => backend.credentialsImport(form.importRequest(values()))) }, "Import"),
      h(
        "button",
        {
          id: `${form.cloud}-remove`,
          class: "danger",
          onclick: () => {
            if (window.confirm(`Remove the ${form.title} credentials from the keychain?`)) void act(() => backend.credentialsDelete(form.cloud));
          },
        },
        "Remove",
      ),
    ),
    h("p", { class: "hint" }, form.importHint),
  );
  return body;
}
