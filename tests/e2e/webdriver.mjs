// The WebDriver calls the e2e run (e2e.mjs) and the release measurement (startup.mjs) both make:
// plain fetch against tauri-driver, or against WebKitWebDriver's own port behind it.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A reader of required environment variables; `script` names who should have set them. */
export const requireEnv = (script) => (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run ${script})`);
  return v;
};

/** `wd(method, path, body)` against the WebDriver endpoint at `base`; returns the `value`. */
export function webdriver(base) {
  return async function wd(method, path, body) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
    return json.value;
  };
}

/** Waits (up to 10 s) until the driver at `base` answers. */
export async function waitForDriver(base) {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${base}/status`);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("tauri-driver did not start");
}
