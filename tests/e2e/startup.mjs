// Start-up and memory figures of one desktop app binary (a release build or the installed
// /usr/bin/sky-desktop), driven like e2e.mjs through tauri-driver. Started by startup.sh, which
// provides the display, the D-Bus session, the keyring and a temp HOME.
//
// Cold start to interactive through the driver: from asking tauri-driver for a session (which
// launches the app) to the first page being rendered and idle, repeated SKY_STARTUP_RUNS times;
// the first run is reported apart (page cache may be cold). startup.sh also starts the app
// directly (no driver) and passes those times in; they are what a user's start costs. Idle RSS is
// read from /proc after the last start, ten seconds after the first page: the app process alone,
// then WebKit's helper processes (everything started below the app) together.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { requireEnv, sleep, waitForDriver, webdriver } from "./webdriver.mjs";

const env = requireEnv("tests/e2e/startup.sh");
const BASE = `http://127.0.0.1:${env("SKY_E2E_PORT")}`;
const APP = env("SKY_E2E_APP");
const RUNS = Number.parseInt(process.env.SKY_STARTUP_RUNS ?? "7", 10);
const OUT = process.env.SKY_STARTUP_OUT;
const wd = webdriver(BASE);

const READY = "const m = document.querySelector('#content'); return !!m && !!m.dataset.page && !m.hasAttribute('aria-busy')";

async function startOnce() {
  const t0 = performance.now();
  const created = await wd("POST", "/session", { capabilities: { alwaysMatch: { "tauri:options": { application: APP } } } });
  const id = created.sessionId;
  for (let i = 0; i < 600; i++) {
    if (await wd("POST", `/session/${id}/execute/sync`, { script: READY, args: [] }).catch(() => false)) {
      return { id, ms: performance.now() - t0 };
    }
    await sleep(5);
  }
  throw new Error("the first page never became interactive");
}

function processes() {
  return execFileSync("ps", ["-eo", "pid=,ppid=,rss=,comm="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .map(([pid, ppid, rss, comm]) => ({ pid: +pid, ppid: +ppid, rss: +rss, comm }));
}

function memory(comm = "sky-desktop") {
  const rows = processes();
  const app = rows.find((r) => r.comm === comm);
  if (!app) throw new Error(`no ${comm} process`);
  const below = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) {
      if (r !== app && !below.includes(r) && (r.ppid === app.pid || below.some((b) => b.pid === r.ppid))) {
        below.push(r);
        grew = true;
      }
    }
  }
  const mb = (kb) => +(kb / 1024).toFixed(1);
  // RSS counts every shared library page a process touched (GTK and WebKit are large); PSS
  // splits shared pages among their users, so the PSS figures add up across processes.
  const pss = (pid) => {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      return m ? +m[1] : 0;
    } catch {
      return 0;
    }
  };
  return {
    app_rss_mb: mb(app.rss),
    app_pss_mb: mb(pss(app.pid)),
    webkit_rss_mb: mb(below.reduce((a, r) => a + r.rss, 0)),
    webkit_pss_mb: mb(below.reduce((a, r) => a + pss(r.pid), 0)),
    webkit_processes: below.map((r) => `${r.comm} ${mb(r.rss)} MB`),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The floor: WebKitGTK's own MiniBrowser (C, no Rust, no Tauri) showing a one-line page, started
// through the same WebKitWebDriver (tauri-driver's native port) and measured the same way. What
// Sky costs is its figures minus these.
async function floor(binary) {
  const NATIVE = `http://127.0.0.1:${Number(env("SKY_E2E_PORT")) + 1}`;
  const page = `file://${process.env.SKY_STARTUP_FLOOR_PAGE}`;
  const native = webdriver(NATIVE);
  const caps = { capabilities: { alwaysMatch: { "webkitgtk:browserOptions": { binary, args: ["--automation"] } } } };
  const floorTimes = [];
  let floorMem = null;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const { sessionId } = await native("POST", "/session", caps);
    await native("POST", `/session/${sessionId}/url`, { url: page });
    const ready = "return document.readyState === 'complete' && !!document.querySelector('h1')";
    while (!(await native("POST", `/session/${sessionId}/execute/sync`, { script: ready, args: [] }))) await sleep(5);
    floorTimes.push(Math.round(performance.now() - t0));
    if (i === RUNS - 1) {
      await sleep(10000);
      floorMem = memory("MiniBrowser");
    }
    await native("DELETE", `/session/${sessionId}`);
    await sleep(500);
  }
  return { binary, webdriver_start_to_interactive_ms: floorTimes, webdriver_median_ms: median(floorTimes), ...floorMem };
}

await waitForDriver(BASE);
const times = [];
let mem = null;
for (let i = 0; i < RUNS; i++) {
  const { id, ms } = await startOnce();
  times.push(Math.round(ms));
  if (i === RUNS - 1) {
    await sleep(10000);
    mem = memory();
  }
  await wd("DELETE", `/session/${id}`);
  await sleep(500);
}
// With SKY_STARTUP_LAUNCH=1: one launch on the local cloud from the window, which needs the
// sky-agent the package carries (found next to the app's executable), then down.
let launch = null;
if (process.env.SKY_STARTUP_LAUNCH === "1") {
  const { id } = await startOnce();
  const exec = (script, ...args) => wd("POST", `/session/${id}/execute/sync`, { script, args });
  try {
    await exec("location.hash = '#/task'");
    await sleep(500);
    await exec(
      "const el = document.querySelector('#task-yaml'); el.value = arguments[0]; el.dispatchEvent(new Event('input', { bubbles: true }))",
      "run: echo agent-found\n",
    );
    await exec("location.hash = '#/launch'");
    await sleep(500);
    await exec("document.querySelector('#launch-cluster').value = 'startup-check'; document.querySelector('#launch-start').click()");
    let state = "running";
    for (let i = 0; i < 1200 && state === "running"; i++) {
      await sleep(100);
      state = await exec("return document.querySelector('#launch-stages').closest('section').dataset.state");
    }
    launch = {
      state,
      result: await exec("return document.querySelector('#launch-result').textContent"),
      log: await exec("return document.querySelector('#launch-log').textContent"),
    };
  } finally {
    await wd("DELETE", `/session/${id}`);
  }
}

const floorBinary = process.env.SKY_STARTUP_FLOOR;
const webkitFloor = floorBinary ? await floor(floorBinary) : null;

// Direct starts, measured by startup.sh before the driver ran (see there).
const direct = (process.env.SKY_STARTUP_DIRECT_MS ?? "").split(" ").filter(Boolean).map(Number);
const result = {
  launch,
  app: APP,
  runs: RUNS,
  direct_start_to_first_paint_ms: direct,
  direct_median_ms: direct.length ? median(direct) : null,
  webdriver_start_to_interactive_ms: times,
  webdriver_first_run_ms: times[0],
  webdriver_median_ms: median(times),
  ...mem,
  webkit_floor: webkitFloor,
};
console.log(JSON.stringify(result, null, 2));
if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2) + "\n");
