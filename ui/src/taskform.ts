// The New task page's model: the common fields of a SkyPilot-compatible task and the two-way
// mapping between them and the YAML text. Editing the form rewrites only the keys the form owns,
// so comments and keys the form does not show survive. Deep validation is sky-core's job; here
// only YAML syntax and the shape of the form's own fields are checked, each error at its line.
// `resources.autostop` is shown as minutes (or a duration such as 2h) and a "tear down" box;
// with the box checked it is written as SkyPilot's `{idle_minutes, down: true}`.
import { isMap, isScalar, parseDocument, type Document, type YAMLMap } from "yaml";

export interface TaskForm {
  name: string;
  workdir: string;
  setup: string;
  run: string;
  num_nodes: string;
  accelerators: string;
  cpus: string;
  memory: string;
  use_spot: boolean;
  cloud: string;
  region: string;
  /// `resources.autostop` as written: minutes, a duration (`30m`, `2h`), `true`, `false`; "" unset.
  autostop: string;
  /// `autostop: {down: true}`: tear the cluster down instead of stopping it.
  autostop_down: boolean;
}

export interface FieldError {
  field: keyof TaskForm | null;
  line: number | null;
  message: string;
}

export const emptyForm = (): TaskForm => ({
  name: "",
  workdir: "",
  setup: "",
  run: "",
  num_nodes: "",
  accelerators: "",
  cpus: "",
  memory: "",
  use_spot: false,
  cloud: "",
  region: "",
  autostop: "",
  autostop_down: false,
});

/// What a new task starts with: autostop on, so an idle cluster cannot be forgotten.
export const DEFAULT_AUTOSTOP_MINUTES = 60;

const AUTOSTOP_TEXT = /^(true|false|-1|\d+\s*(m|h|d|w)?)$/i;

const TOP: (keyof TaskForm)[] = ["name", "workdir", "num_nodes", "setup", "run"];
const RESOURCES: (keyof TaskForm)[] = ["cloud", "region", "accelerators", "cpus", "memory", "use_spot"];
export const CLOUDS = ["", "aws", "gcp", "azure", "local"];

function lineOf(doc: Document, offset: number | undefined, text: string): number | null {
  if (offset === undefined) return null;
  void doc;
  return text.slice(0, offset).split("\n").length;
}

function scalarText(v: unknown): string {
  if (v === null || v === undefined) return "";
  return String(v);
}

/// Reads the form's fields out of YAML text. Unknown keys are left alone (sky-core judges them).
export function yamlToForm(text: string): { form: TaskForm; errors: FieldError[] } {
  const form = emptyForm();
  const doc = parseDocument(text, { prettyErrors: false });
  const errors: FieldError[] = doc.errors.map((e) => ({
    field: null,
    line: e.linePos?.[0]?.line ?? lineOf(doc, e.pos?.[0], text),
    message: e.message.split("\n")[0] ?? e.message,
  }));
  if (errors.length > 0) return { form, errors };
  const root = doc.contents;
  if (root === null) return { form, errors };
  if (!isMap(root)) {
    return { form, errors: [{ field: null, line: 1, message: "a task is a mapping of keys (name, run, resources, ...)" }] };
  }
  const take = (map: YAMLMap, key: keyof TaskForm) => {
    const node = map.get(key, true);
    if (node === undefined) return;
    const line = lineOf(doc, isScalar(node) ? node.range?.[0] : undefined, text);
    if (!isScalar(node)) {
      errors.push({ field: key, line, message: `${key} must be a single value` });
      return;
    }
    const value: unknown = node.value;
    if (key === "use_spot") {
      if (typeof value !== "boolean") {
        errors.push({ field: key, line, message: "use_spot must be true or false" });
        return;
      }
      form.use_spot = value;
      return;
    }
    if (key === "num_nodes" && !(Number.isInteger(value) && Number(value) >= 1)) {
      errors.push({ field: key, line, message: `num_nodes must be a whole number of at least 1, got ${scalarText(value)}` });
    }
    if (key === "cloud" && value !== null && !CLOUDS.includes(String(value).toLowerCase())) {
      errors.push({ field: key, line, message: `unknown cloud '${scalarText(value)}' (allowed: aws, gcp, azure, local)` });
    }
    (form[key] as string) = scalarText(value);
  };
  const takeAutostop = (map: YAMLMap) => {
    const node: unknown = map.get("autostop", true);
    if (node === undefined || node === null) return;
    const line = lineOf(doc, (isScalar(node) || isMap(node)) ? node.range?.[0] : undefined, text);
    let minutes: unknown = null;
    if (isScalar(node)) {
      minutes = node.value;
    } else if (isMap(node)) {
      const idle: unknown = node.get("idle_minutes", true);
      minutes = isScalar(idle) ? idle.value : idle === undefined ? String(5) : null;
      const down = node.get("down");
      if (down !== undefined && typeof down !== "boolean") {
        errors.push({ field: "autostop_down", line, message: "autostop.down must be true or false" });
      }
      form.autostop_down = down === true;
    } else {
      errors.push({ field: "autostop", line, message: "autostop must be minutes, a duration or {idle_minutes, down}" });
      return;
    }
    const shown = scalarText(minutes);
    if (minutes !== null && !AUTOSTOP_TEXT.test(shown.trim())) {
      errors.push({ field: "autostop", line, message: `autostop must be minutes (60), a duration (30m, 2h, 1d) or false, got ${shown}` });
    }
    form.autostop = shown;
  };
  for (const key of TOP) take(root, key);
  const res = root.get("resources", true);
  if (res !== undefined && res !== null) {
    if (isMap(res)) {
      for (const key of RESOURCES) take(res, key);
      takeAutostop(res);
    } else if (!(isScalar(res) && res.value === null)) {
      errors.push({ field: null, line: null, message: "resources must be a mapping" });
    }
  }
  return { form, errors };
}

function setOrDelete(doc: Document, path: string[], value: unknown) {
  if (value === "" || value === false || value === undefined) {
    if (doc.hasIn(path)) doc.deleteIn(path);
  } else {
    doc.setIn(path, value);
  }
}

const NUMERIC: (keyof TaskForm)[] = ["num_nodes", "cpus", "memory"];

/// Plain numbers in numeric fields are written as YAML numbers, not quoted strings ("4+" stays text).
function typed(key: keyof TaskForm, value: string | boolean): string | boolean | number {
  if (typeof value === "string" && NUMERIC.includes(key) && /^\d+(\.\d+)?$/.test(value.trim())) {
    return Number(value);
  }
  return typeof value === "string" ? value.replace(/^\s+$/, "") : value;
}

/// Writes the form into the YAML text, keeping comments and keys the form does not own.
export function formToYaml(form: TaskForm, previous: string): string {
  let doc = parseDocument(previous);
  if (doc.errors.length > 0 || (doc.contents !== null && !isMap(doc.contents))) {
    doc = parseDocument("");
  }
  for (const key of TOP) setOrDelete(doc, [key], typed(key, form[key]));
  for (const key of RESOURCES) setOrDelete(doc, ["resources", key], typed(key, form[key]));
  writeAutostop(doc, form);
  const res = doc.get("resources", true);
  if (isMap(res) && res.items.length === 0) doc.delete("resources");
  const out = doc.contents === null ? "" : doc.toString({ lineWidth: 0 });
  return out === "{}\n" ? "" : out;
}

/// `resources.autostop` from the form: a scalar, or `{idle_minutes, down: true}` to tear down.
function writeAutostop(doc: Document, form: TaskForm) {
  const path = ["resources", "autostop"];
  const text = form.autostop.trim();
  if (text === "") {
    if (doc.hasIn(path)) doc.deleteIn(path);
    return;
  }
  const value: string | number | boolean = /^-?\d+$/.test(text)
    ? Number(text)
    : /^(true|false)$/i.test(text)
      ? text.toLowerCase() === "true"
      : text;
  // A mapping keeps its other keys (`wait_for`); only the two the form shows change.
  const existing = doc.getIn(path, true);
  if (isMap(existing) && typeof value !== "boolean") {
    existing.set("idle_minutes", value);
    if (form.autostop_down) existing.set("down", true);
    else existing.delete("down");
    return;
  }
  if (form.autostop_down && typeof value !== "boolean") {
    doc.setIn(path, doc.createNode({ idle_minutes: value, down: true }));
  } else {
    doc.setIn(path, value);
  }
}
