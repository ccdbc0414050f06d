// Leaving the app while clusters bill. When the window is closed (or the app quit) with clusters
// UP and no autostop, the app holds the quit back and sends `quit-requested` with their names;
// this dialog offers to set autostop on them, stop them, or leave them running, then quits. A
// failed action (a cloud that cannot autostop, a cluster busy elsewhere) is shown and nothing
// quits until the user chooses again. Signals for tests: `#quit-dialog[data-state]`
// (`open`, `working`, `failed`, `closed`).
import { listen } from "@tauri-apps/api/event";
import { backend, errorText } from "./backend";
import { h } from "./dom";
import { DEFAULT_AUTOSTOP_MINUTES } from "./taskform";

interface QuitRequest {
  clusters: string[];
}

export function installQuitDialog(root: HTMLElement): void {
  const box = h("div", { class: "card quit-dialog", id: "quit-dialog", role: "alertdialog", "aria-labelledby": "quit-title", hidden: true });
  box.dataset.state = "closed";
  root.append(box);

  const open = (clusters: string[]) => {
    const list = h("ul", { id: "quit-clusters" }, ...clusters.map((c) => h("li", {}, c)));
    const error = h("p", { class: "field-error", id: "quit-error" });
    const buttons: HTMLButtonElement[] = [];
    const choose = async (run: (name: string) => Promise<unknown>) => {
      box.dataset.state = "working";
      for (const b of buttons) b.disabled = true;
      const failed: string[] = [];
      for (const name of clusters) {
        try {
          await run(name);
        } catch (e) {
          failed.push(`${name}: ${errorText(e)}`);
        }
      }
      if (failed.length > 0) {
        error.textContent = failed.join("\n");
        box.dataset.state = "failed";
        for (const b of buttons) b.disabled = false;
        return;
      }
      await backend.appQuit();
    };
    const button = (id: string, label: string, cls: string, onclick: () => void) => {
      const b = h("button", { id, class: cls, onclick }, label);
      buttons.push(b);
      return b;
    };
    const cancel = button("quit-cancel", "Cancel", "", () => {
      box.hidden = true;
      box.dataset.state = "closed";
    });
    const one = clusters.length === 1;
    box.replaceChildren(
      h("h2", { id: "quit-title" }, one ? "1 cluster is still running" : `${clusters.length} clusters are still running`),
      h("p", {}, one ? "It has no autostop and bills until stopped:" : "They have no autostop and bill until stopped:"),
      list,
      error,
      h(
        "div",
        { class: "actions" },
        button("quit-autostop", `Autostop after ${DEFAULT_AUTOSTOP_MINUTES} idle min, and quit`, "primary", () =>
          void choose((n) => backend.clusterAutostop(n, DEFAULT_AUTOSTOP_MINUTES, false))),
        button("quit-stop", one ? "Stop it, and quit" : "Stop them, and quit", "danger", () => void choose((n) => backend.clusterStop(n))),
        button("quit-leave", one ? "Leave it running, and quit" : "Leave them running, and quit", "", () => void backend.appQuit()),
        cancel,
      ),
    );
    box.hidden = false;
    box.dataset.state = "open";
    // Enter never stops or quits anything by accident.
    cancel.focus();
  };

  void listen<QuitRequest>("quit-requested", (e) => open(e.payload.clusters));
}
