// "Terminal access" on the Clusters page: whether `ssh CLUSTER` (and VS Code's Remote-SSH) reach
// Sky's clusters. Turning it on changes a file of the user's own (~/.ssh/config), so the card
// says exactly what will be written and asks first; turning it off takes the line out again.
import { backend, errorText, type SshIncludeView } from "./backend";
import { h } from "./dom";

export function sshAccessCard(): HTMLElement {
  const card = h("div", { class: "card", id: "clusters-ssh", "data-state": "pending" });
  const say = (...children: (Node | string)[]) => card.replaceChildren(...children);

  function render(view: SshIncludeView) {
    card.dataset.state = view.state;
    if (view.state === "included") {
      say(
        h("span", {}, "Terminal access is on: ", h("code", {}, "ssh CLUSTER"), " and VS Code's Remote-SSH reach your clusters (workers as ", h("code", {}, "CLUSTER-worker1"), "…). "),
        h("button", { class: "small", id: "clusters-ssh-off", onclick: () => void set(false) }, "Turn off"),
      );
      return;
    }
    say(
      h("span", {}, "Log in to clusters from a terminal or VS Code with ", h("code", {}, "ssh CLUSTER"), ". "),
      h("button", { class: "small", id: "clusters-ssh-on", onclick: () => ask(view) }, "Turn on…"),
    );
  }

  /// The consent step: what changes in which file, and how to undo it.
  function ask(view: SshIncludeView) {
    card.dataset.state = "asking";
    say(
      h("p", { id: "clusters-ssh-question" },
        "Sky will add one line at the top of ", h("code", {}, view.user_config), ": ",
        h("code", {}, `Include ${view.cluster_configs}/*`),
        ". Nothing else in that file changes, and Turn off removes the line again."),
      h("button", { class: "primary", id: "clusters-ssh-yes", onclick: () => void set(true) }, "Add the line"),
      " ",
      h("button", { id: "clusters-ssh-no", onclick: () => render(view) }, "Cancel"),
    );
  }

  async function set(on: boolean) {
    try {
      render(await backend.sshIncludeSet(on));
    } catch (e) {
      card.dataset.state = "error";
      say(h("span", { class: "form-error" }, `Terminal access: ${errorText(e)}`));
    }
  }

  backend.sshInclude().then(render, (e: unknown) => {
    card.dataset.state = "error";
    say(h("span", { class: "form-error" }, `Terminal access: ${errorText(e)}`));
  });
  return card;
}
