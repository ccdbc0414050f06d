// @vitest-environment happy-dom
// Terminal access asks before it touches ~/.ssh/config, and says what it will write there.
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { SshIncludeView } from "./backend";
import { sshAccessCard } from "./sshaccess";

const calls: boolean[] = [];
let current: SshIncludeView = { state: "absent", user_config: "/home/u/.ssh/config", cluster_configs: "/home/u/.local/share/sky/ssh/config.d" };
vi.mock("./backend", () => ({
  errorText: (e: unknown) => String(e),
  backend: {
    sshInclude: () => Promise.resolve(current),
    sshIncludeSet: (on: boolean) => {
      calls.push(on);
      current = { ...current, state: on ? "included" : "declined" };
      return Promise.resolve(current);
    },
  },
}));

const flush = () => new Promise((r) => setTimeout(r, 0));
const click = (card: HTMLElement, id: string) => {
  const el = card.querySelector<HTMLButtonElement>(`#${id}`);
  if (!el) throw new Error(`no #${id} in ${card.innerHTML}`);
  el.click();
};

describe("terminal access", () => {
  beforeEach(() => {
    calls.length = 0;
    current = { ...current, state: "absent" };
  });

  it("asks first, naming the file and the line, and cancelling changes nothing", async () => {
    const card = sshAccessCard();
    await flush();
    expect(card.dataset.state).toBe("absent");
    click(card, "clusters-ssh-on");
    expect(card.dataset.state).toBe("asking");
    const question = card.querySelector("#clusters-ssh-question")?.textContent ?? "";
    expect(question).toContain("/home/u/.ssh/config");
    expect(question).toContain("Include /home/u/.local/share/sky/ssh/config.d/*");
    click(card, "clusters-ssh-no");
    expect(card.dataset.state).toBe("absent");
    expect(calls).toEqual([]);
  });

  it("turns on after yes, and off again", async () => {
    const card = sshAccessCard();
    await flush();
    click(card, "clusters-ssh-on");
    click(card, "clusters-ssh-yes");
    await flush();
    expect(card.dataset.state).toBe("included");
    expect(card.textContent).toContain("ssh CLUSTER");
    click(card, "clusters-ssh-off");
    await flush();
    expect(calls).toEqual([true, false]);
    expect(card.dataset.state).toBe("declined");
    expect(card.querySelector("#clusters-ssh-on")).not.toBeNull();
  });
});
