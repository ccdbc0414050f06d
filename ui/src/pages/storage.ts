// Storage: the buckets Sky created for storage objects, as `sky storage ls`, with a delete that
// asks first. Only buckets this Sky home created are listed (the facade's records), and one a
// cluster still uses cannot be deleted: its button says which cluster to take down.
import { backend, errorText, type StorageView } from "../backend";
import { h } from "../dom";
import { duration, size } from "../clusterfmt";

export async function storagePage(): Promise<HTMLElement> {
  const page = h(
    "section",
    { class: "page" },
    h("h1", {}, "Storage"),
    h("p", { class: "lead" }, "Buckets Sky created for storage objects with a local source, and the clusters that use them."),
  );
  const status = h("div", { id: "storage-status", role: "status" });
  const body = h("div", { id: "storage-body" });
  page.append(status, body);
  const load = async () => {
    try {
      render(body, status, await backend.storageList(), load);
    } catch (e) {
      body.replaceChildren(h("div", { class: "card error", id: "storage-error" }, errorText(e)));
    }
  };
  await load();
  return page;
}

function render(body: HTMLElement, status: HTMLElement, list: StorageView[], reload: () => Promise<void>) {
  if (list.length === 0) {
    body.replaceChildren(
      h(
        "p",
        { class: "hint", id: "storage-empty" },
        "No buckets created by Sky. A storage object with a local source (name, source: ./dir, mode: COPY) gets one at launch.",
      ),
    );
    return;
  }
  const now = Math.floor(Date.now() / 1000);
  const confirm = h("div", { class: "card confirm", id: "storage-confirm", hidden: true });
  const ask = (b: StorageView) => {
    const yes = h(
      "button",
      {
        class: "danger",
        id: "storage-confirm-yes",
        onclick: async () => {
          yes.setAttribute("disabled", "");
          try {
            const [done] = await backend.storageDelete([b.name]);
            status.textContent = done?.existed ? `Deleted bucket ${b.name}.` : `Bucket ${b.name} was already gone; its record is removed.`;
            await reload();
          } catch (e) {
            confirm.replaceChildren(h("p", { class: "error", id: "storage-delete-error" }, errorText(e)));
          }
        },
      },
      "Delete",
    );
    const no = h("button", { id: "storage-confirm-no", onclick: () => (confirm.hidden = true) }, "Cancel");
    confirm.replaceChildren(h("p", {}, `Delete bucket ${b.name} (${b.store}, ${b.region}) and everything in it?`), yes, no);
    confirm.hidden = false;
  };
  body.replaceChildren(
    h(
      "div",
      { class: "card" },
      h(
        "table",
        { id: "storage-table" },
        h("thead", {}, h("tr", {}, ...["Bucket", "Store", "Region", "Size", "Objects", "Created", "Used by", "Persistent", "Source", ""].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          ...list.map((b) => {
            const inUse = b.clusters.length > 0;
            return h(
              "tr",
              { "data-bucket": b.name },
              h("td", {}, b.name),
              h("td", {}, b.store.toUpperCase()),
              h("td", {}, b.region),
              h("td", { title: b.problem ?? "" }, b.bytes === null ? `? (${b.problem ?? "not asked"})` : size(b.bytes)),
              h("td", {}, b.objects === null ? "?" : String(b.objects)),
              h("td", {}, `${duration(Math.max(0, now - b.created_at))} ago`),
              h("td", {}, inUse ? b.clusters.join(", ") : "-"),
              h("td", {}, b.persistent ? "yes" : "no (deleted at down)"),
              h("td", {}, b.sources.join(", ")),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    class: "danger",
                    "data-action": "delete",
                    disabled: inUse,
                    title: inUse ? `Used by ${b.clusters.join(", ")}: tear it down first` : `Delete ${b.name} and everything in it`,
                    onclick: () => ask(b),
                  },
                  "Delete",
                ),
              ),
            );
          }),
        ),
      ),
    ),
    confirm,
  );
}
