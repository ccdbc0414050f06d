// The in-page confirmation for destructive actions on clusters. It is built when asked and then
// left alone by status updates, so a push never closes it under the user's pointer; when a
// cluster it names disappears meanwhile (downed from the CLI, another window, a refresh), it says
// so and can no longer be confirmed, instead of vanishing or acting on what is not there.
import { h } from "./dom";

export type OnYes = (label: string, names: string[], run: () => Promise<unknown>) => void;

export interface Confirmation {
  open(question: string, label: string, names: string[], run: () => Promise<unknown>): void;
  /// Called with the clusters of every new status view.
  recheck(present: ReadonlySet<string>): void;
}

export function confirmationBox(box: HTMLElement, onYes: OnYes): Confirmation {
  let names: string[] = [];
  const close = () => {
    box.hidden = true;
    box.dataset.state = "closed";
    names = [];
  };
  close();
  return {
    open(question, label, forNames, run) {
      names = forNames;
      const yes = h(
        "button",
        {
          class: "danger",
          id: "clusters-confirm-yes",
          onclick: () => {
            const chosen = names;
            close();
            onYes(label, chosen, run);
          },
        },
        `Yes, ${label.toLowerCase()}`,
      );
      box.replaceChildren(
        h("p", { id: "clusters-confirm-text" }, question),
        yes,
        " ",
        h("button", { id: "clusters-confirm-no", onclick: close }, "Cancel"),
      );
      box.dataset.state = "open";
      box.dataset.clusters = names.join(",");
      box.hidden = false;
      // Focus goes to Cancel: Enter on a just-opened question must not destroy anything.
      box.querySelector<HTMLButtonElement>("#clusters-confirm-no")?.focus();
    },
    recheck(present) {
      if (box.dataset.state !== "open") return;
      const gone = names.filter((n) => !present.has(n));
      if (gone.length === 0) return;
      const text = box.querySelector<HTMLElement>("#clusters-confirm-text");
      const yes = box.querySelector<HTMLButtonElement>("#clusters-confirm-yes");
      if (text) {
        text.textContent =
          gone.length === 1
            ? `${gone[0]} no longer exists: it was removed while this question was open (from the CLI, another window or a refresh). Nothing was done.`
            : `${gone.join(", ")} no longer exist: they were removed while this question was open (from the CLI, another window or a refresh). Nothing was done.`;
      }
      if (yes) yes.disabled = true;
      const dismiss = box.querySelector<HTMLButtonElement>("#clusters-confirm-no");
      if (dismiss) dismiss.textContent = "Close";
      box.dataset.state = "stale";
    },
  };
}
