// New task: the common fields as a form and the whole task as YAML, kept in sync both ways.
// Errors show at the field they concern and, for YAML, at their line.
import { field, h } from "../dom";
import { CLOUDS, emptyForm, formToYaml, yamlToForm, type FieldError, type TaskForm } from "../taskform";
import { session } from "../session";

type Key = keyof TaskForm;

const TEXT_FIELDS: { key: Key; label: string; placeholder?: string; multiline?: boolean }[] = [
  { key: "name", label: "Name", placeholder: "my-task" },
  { key: "workdir", label: "Workdir", placeholder: "." },
  { key: "num_nodes", label: "Nodes", placeholder: "1" },
  { key: "accelerators", label: "Accelerators", placeholder: "A100:1" },
  { key: "cpus", label: "vCPUs", placeholder: "4+" },
  { key: "memory", label: "Memory (GB)", placeholder: "16+" },
  { key: "region", label: "Region", placeholder: "any" },
  { key: "setup", label: "Setup commands", multiline: true },
  { key: "run", label: "Run commands", multiline: true },
];

export function taskPage(): HTMLElement {
  const controls = new Map<Key, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>();
  const fieldErrors = new Map<Key, HTMLElement>();
  const yaml = h("textarea", { id: "task-yaml", class: "yaml", spellcheck: "false", rows: "24" });
  const yamlErrors = h("ul", { class: "yaml-errors", id: "task-yaml-errors" });
  yaml.value = session.taskYaml;

  const showErrors = (errors: FieldError[]) => {
    for (const el of fieldErrors.values()) el.textContent = "";
    yamlErrors.replaceChildren(
      ...errors.map((e) => h("li", {}, e.line !== null ? h("span", { class: "line" }, `line ${e.line}`) : null, " ", e.message)),
    );
    for (const e of errors) if (e.field) fieldErrors.get(e.field)?.append(e.message);
  };

  const readForm = (): TaskForm => {
    const form = emptyForm();
    for (const [key, el] of controls) {
      if (key === "use_spot") form.use_spot = (el as HTMLInputElement).checked;
      else if (key === "autostop_down") form.autostop_down = (el as HTMLInputElement).checked;
      else (form[key] as string) = el.value;
    }
    return form;
  };

  const writeForm = (form: TaskForm) => {
    for (const [key, el] of controls) {
      if (key === "use_spot") (el as HTMLInputElement).checked = form.use_spot;
      else if (key === "autostop_down") (el as HTMLInputElement).checked = form.autostop_down;
      else el.value = form[key] as string;
    }
  };

  const fromForm = () => {
    yaml.value = formToYaml(readForm(), yaml.value);
    session.taskYaml = yaml.value;
    showErrors(yamlToForm(yaml.value).errors);
  };

  const fromYaml = () => {
    session.taskYaml = yaml.value;
    const { form, errors } = yamlToForm(yaml.value);
    // On a syntax error keep what the user typed in the form rather than blanking it.
    if (!errors.some((e) => e.field === null)) writeForm(form);
    showErrors(errors);
  };

  const formBox = h("div", { class: "card task-form" });
  for (const f of TEXT_FIELDS) {
    const id = `task-${f.key.replace(/_/g, "-")}`;
    const el = f.multiline
      ? h("textarea", { id, rows: "3", spellcheck: "false", oninput: fromForm })
      : h("input", { id, type: "text", placeholder: f.placeholder, spellcheck: "false", oninput: fromForm });
    controls.set(f.key, el);
    const err = h("span", { class: "field-error", id: `${id}-error` });
    fieldErrors.set(f.key, err);
    formBox.append(field(f.label, el, err));
  }
  const cloud = h("select", { id: "task-cloud", onchange: fromForm }, ...CLOUDS.map((c) => h("option", { value: c }, c === "" ? "cheapest of all" : c)));
  controls.set("cloud", cloud);
  const cloudErr = h("span", { class: "field-error", id: "task-cloud-error" });
  fieldErrors.set("cloud", cloudErr);
  formBox.insertBefore(field("Cloud", cloud, cloudErr), formBox.children[6] ?? null);
  const spot = h("input", { id: "task-use-spot", type: "checkbox", onchange: fromForm });
  controls.set("use_spot", spot);
  const spotErr = h("span", { class: "field-error", id: "task-use-spot-error" });
  fieldErrors.set("use_spot", spotErr);
  formBox.append(h("label", { class: "field check" }, spot, h("span", {}, "Use spot instances"), spotErr));
  // On by default for a new task (see session.ts): an idle cluster stops itself, laptop closed.
  const autostop = h("input", { id: "task-autostop", type: "text", class: "narrow", placeholder: "off", spellcheck: "false", oninput: fromForm });
  controls.set("autostop", autostop);
  const autostopErr = h("span", { class: "field-error", id: "task-autostop-error" });
  fieldErrors.set("autostop", autostopErr);
  formBox.append(field("Autostop after idle minutes (or 30m, 2h; empty: off)", autostop, autostopErr));
  const autostopDown = h("input", { id: "task-autostop-down", type: "checkbox", onchange: fromForm });
  controls.set("autostop_down", autostopDown);
  const downErr = h("span", { class: "field-error", id: "task-autostop-down-error" });
  fieldErrors.set("autostop_down", downErr);
  formBox.append(h("label", { class: "field check" }, autostopDown, h("span", {}, "Tear down instead of stopping"), downErr));

  yaml.addEventListener("input", fromYaml);
  fromYaml();

  return h(
    "section",
    { class: "page" },
    h("h1", {}, "New task"),
    h("p", { class: "lead" }, "Fill the common fields or edit the YAML; each follows the other. The YAML is SkyPilot-compatible."),
    h(
      "div",
      { class: "task-grid" },
      formBox,
      h("div", { class: "card" }, h("h2", {}, "task.yaml"), yaml, yamlErrors),
    ),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button primary", id: "task-compare", href: "#/compare" }, "Compare costs →"),
      h(
        "button",
        {
          id: "task-launch",
          onclick: () => {
            // From here the launch picks its own placement; the comparison page pins one.
            session.pick = null;
            session.launchRequested = true;
            location.hash = "#/launch";
          },
        },
        "Launch",
      ),
    ),
  );
}
