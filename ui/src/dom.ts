// A tiny element builder: the pages are small enough that a framework would cost more than it
// saves. Text always goes in as text nodes, never as HTML.
type Attrs = Record<string, string | boolean | undefined | ((e: Event) => void)>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(key.replace(/^on/, "").toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

export function field(label: string, input: HTMLElement, error?: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), input, error);
}

/// A page whose backend this build does not have: says so instead of showing invented data.
export function unavailable(title: string, what: string, needs: string): HTMLElement {
  return h(
    "section",
    { class: "page" },
    h("h1", {}, title),
    h("p", { class: "lead" }, what),
    h(
      "div",
      { class: "card unavailable", "data-testid": "unavailable" },
      h("strong", {}, "Not available in this build."),
      h("p", {}, needs),
    ),
  );
}

/// Charts are SVG text made by the app itself (plotters), parsed as an SVG document rather than
/// injected as HTML, so nothing in them can run.
export function svgNode(text: string): Node {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

// In-place updates: each writes only when the value differs, so an unchanged cell keeps its text
// node (and a selection in it) and an update costs no layout when nothing changed.
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets (or with `null` removes) an attribute, touching the element only when it changes. */
export function setAttr(el: HTMLElement, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

export function setDisabled(el: HTMLButtonElement | HTMLInputElement, disabled: boolean): void {
  if (el.disabled !== disabled) el.disabled = disabled;
}
