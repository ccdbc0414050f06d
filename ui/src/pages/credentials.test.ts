// @vitest-environment happy-dom
// The Credentials page says what each cloud would sign in with now (`sky check`'s answer, which
// covers the environment and the clouds' CLI logins, not only the keychain), without waiting for
// it to render the forms.
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { CloudCheckView } from "../backend";

let checks: Promise<CloudCheckView[]> = Promise.resolve([]);
vi.mock("../backend", () => ({
  errorText: (e: unknown) => String(e),
  backend: {
    appInfo: () => Promise.resolve({ keychain: "secret-service", keychain_error: null }),
    credentialsList: () => Promise.resolve([]),
    cloudsCheck: () => checks,
  },
}));

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("Credentials page", () => {
  beforeEach(() => {
    document.body.replaceChildren();
  });

  it("shows each cloud's source once the check answers, and why a cloud is not usable", async () => {
    let answer: (v: CloudCheckView[]) => void = () => {};
    checks = new Promise((r) => (answer = r));
    const { credentialsPage } = await import("./credentials");
    const page = await credentialsPage();
    document.body.append(page);
    // The forms are there before the clouds have answered.
    expect(document.querySelector("#aws-save")).not.toBeNull();
    expect(document.querySelector("#inuse-aws")?.getAttribute("data-state")).toBe("pending");
    answer([
      { cloud: "aws", enabled: true, reason: 'credentials from the AWS profile "work" (AWS SSO, account 1, role Dev)' },
      { cloud: "gcp", enabled: false, reason: "no GCP entry in the keychain, and GOOGLE_APPLICATION_CREDENTIALS is not set" },
    ]);
    await flush();
    const aws = document.querySelector("#inuse-aws") as HTMLElement;
    expect(aws.dataset.state).toBe("ok");
    expect(aws.textContent).toContain('AWS profile "work" (AWS SSO');
    const gcp = document.querySelector("#inuse-gcp") as HTMLElement;
    expect(gcp.dataset.state).toBe("off");
    expect(gcp.textContent).toContain("Not usable now: no GCP entry");
    expect(document.querySelector("#inuse-azure")?.textContent).toContain("not in allowed_clouds");
  });

  it("says the check failed instead of leaving the line pending", async () => {
    checks = Promise.reject(new Error("facade gone"));
    const { credentialsPage } = await import("./credentials");
    document.body.append(await credentialsPage());
    await flush();
    const aws = document.querySelector("#inuse-aws") as HTMLElement;
    expect(aws.dataset.state).toBe("error");
    expect(aws.textContent).toContain("facade gone");
  });
});
