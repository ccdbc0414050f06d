// Drives the real Sky window through tauri-driver's WebDriver endpoint with plain fetch calls.
// Started by run.sh, which provides the display, the D-Bus session, the keyring and the temp HOME.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireEnv, sleep, waitForDriver, webdriver } from "./webdriver.mjs";

const env = requireEnv("tests/e2e/run.sh");
const BASE = `http://127.0.0.1:${env("SKY_E2E_PORT")}`;
const APP = env("SKY_E2E_APP");
const SKY = env("SKY_E2E_SKY");
const TMP = env("SKY_E2E_TMP");
const ARTIFACTS = env("SKY_E2E_ARTIFACTS");
const SHOTS = join(ARTIFACTS, "screenshots");
mkdirSync(SHOTS, { recursive: true });

const AWS_KEY_ID = "AKIAE2ETESTKEY000001";
const AWS_SECRET = "e2eSecretValue/ShouldOnlyLiveInKeyring0001";

const wd = webdriver(BASE);
let passed = 0;
let failed = 0;
const check = (name, ok, detail = "") => {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name} ${detail}`);
  }
};

// A W3C element reference is an object with a single key (element-6066-...) holding the id.
const ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf";
const elementId = (v) => Object.values(v)[0];

class Session {
  constructor(id) {
    this.id = id;
  }
  p(path) {
    return `/session/${this.id}${path}`;
  }
  async exec(script, ...args) {
    return wd("POST", this.p("/execute/sync"), { script, args });
  }
  async find(css, timeoutMs = 10000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return elementId(await wd("POST", this.p("/element"), { using: "css selector", value: css }));
      } catch (e) {
        if (Date.now() > end) throw new Error(`element ${css} not found: ${e.message}`);
        await sleep(100);
      }
    }
  }
  async click(css) {
    await wd("POST", this.p(`/element/${await this.find(css)}/click`), {});
  }
  async type(css, text) {
    const el = await this.find(css);
    await wd("POST", this.p(`/element/${el}/clear`), {});
    await wd("POST", this.p(`/element/${el}/value`), { text });
  }
  /// Keys into an element found earlier, by its reference: fails (stale element) if the page
  /// replaced it meanwhile, as a person's typing would be lost.
  async keys(el, text) {
    await wd("POST", this.p(`/element/${el}/value`), { text });
  }
  /// Runs a script with elements found earlier as its arguments.
  async execWith(script, ...els) {
    return this.exec(script, ...els.map((id) => ({ [ELEMENT_KEY]: id })));
  }
  async dataset(css, key) {
    return this.exec("return document.querySelector(arguments[0])?.dataset[arguments[1]] ?? null", css, key);
  }
  /// Replaces a field's whole text at once, as a paste does: WebKitWebDriver drops newlines
  /// from typed keys, so multi-line YAML cannot be typed.
  async paste(css, text) {
    await this.exec(
      "const el = document.querySelector(arguments[0]); el.focus(); el.value = arguments[1]; el.dispatchEvent(new Event('input', { bubbles: true }))",
      css,
      text,
    );
  }
  async text(css) {
    return wd("GET", this.p(`/element/${await this.find(css)}/text`));
  }
  async value(css) {
    return this.exec("return document.querySelector(arguments[0]).value", css);
  }
  async waitFor(js, what, timeoutMs = 10000, ...args) {
    const end = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < end) {
      try {
        if (await this.exec(js, ...args)) return true;
      } catch (e) {
        last = e.message;
      }
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what} ${last}`);
  }
  async page(route) {
    await this.click(`#nav-${route}`);
    await this.waitFor(
      "const m = document.querySelector('#content'); return m.dataset.page === arguments[0] && !m.hasAttribute('aria-busy')",
      `page ${route}`,
      10000,
      route,
    );
  }
  /// Resolves once the page has painted what it holds now: a frame's callbacks run before its
  /// paint, so the second frame's run after the first one's paint.
  async painted() {
    await wd("POST", this.p("/execute/async"), {
      script: "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)))",
      args: [],
    });
  }
  async screenshot(name) {
    await this.painted();
    const png = await wd("GET", this.p("/screenshot"));
    writeFileSync(join(SHOTS, `${name}.png`), Buffer.from(png, "base64"));
  }
}

function grepTree(dir, needle) {
  try {
    return execFileSync("grep", ["-rlF", "--", needle, dir], { encoding: "utf8" }).trim();
  } catch (e) {
    if (e.status === 1) return ""; // grep: no match
    throw e;
  }
}

/// A pid is gone when /proc no longer lists it or it is a zombie waiting to be reaped.
function pidGone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 1).trim().startsWith("Z");
  } catch {
    return true;
  }
}

function processTree(rootName) {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,rss=,comm="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .map(([pid, ppid, rss, comm]) => ({ pid: +pid, ppid: +ppid, rss: +rss, comm }));
  const app = rows.find((r) => r.comm === rootName);
  if (!app) return null;
  const tree = [app];
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (!tree.includes(r) && tree.some((t) => t.pid === r.ppid)) (tree.push(r), (grew = true));
  }
  return { pid: app.pid, appKb: app.rss, treeKb: tree.reduce((a, r) => a + r.rss, 0), processes: tree.map((r) => r.comm) };
}

async function main() {
  let appGone = false;
  await waitForDriver(BASE);
  const t0 = performance.now();
  const created = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { "tauri:options": { application: APP } } },
  });
  const s = new Session(created.sessionId);
  const metrics = {};
  try {
    await s.waitFor("const m = document.querySelector('#content'); return !!m && !!m.dataset.page && !m.hasAttribute('aria-busy')", "first page");
    metrics.cold_start_to_interactive_ms = Math.round(performance.now() - t0);
    check("window shows the first page", true);
    await s.screenshot("01-new-task");

    // Credentials: enter AWS keys, see them stored, find them in the keyring and nowhere on disk.
    await s.page("credentials");
    await s.screenshot("02-credentials-empty");
    check("AWS starts without credentials", (await s.exec("return document.querySelector('#status-aws').dataset.state")) === "missing");
    await s.waitFor("return document.querySelector('#inuse-aws')?.dataset.state !== 'pending'", "AWS in-use check");
    check(
      "the page says AWS is not usable now and why (sky check's answer)",
      (await s.exec("return document.querySelector('#inuse-aws').dataset.state")) === "off" &&
        (await s.text("#inuse-aws")).includes("Not usable now: no AWS credentials"),
      await s.text("#inuse-aws"),
    );
    await s.type("#aws-access-key-id", AWS_KEY_ID);
    await s.type("#aws-secret-access-key", AWS_SECRET);
    await s.click("#aws-save");
    await s.waitFor("return document.querySelector('#status-aws')?.dataset.state === 'stored'", "AWS stored");
    check("AWS status says stored", (await s.text("#status-aws")).includes("…0001"));
    check("secret input is cleared after saving", (await s.value("#aws-secret-access-key")) === "");
    await s.screenshot("03-credentials-stored");
    const item = execFileSync("secret-tool", ["lookup", "service", "sky", "username", "aws"], { encoding: "utf8" });
    check("secret is in the Secret Service keyring", item.includes(AWS_SECRET) && item.includes(AWS_KEY_ID));
    const onDisk = [grepTree(process.env.HOME, AWS_SECRET), grepTree(process.env.SKY_HOME, AWS_SECRET)].filter(Boolean);
    // The keyring file itself is encrypted, so a plain-text match anywhere under HOME is a leak.
    check("secret is nowhere on disk under HOME or SKY_HOME", onDisk.length === 0, onDisk.join(", "));
    const log = readFileSync(join(TMP, "driver.log"), "utf8");
    check("secret is not in the app's log", !log.includes(AWS_SECRET));

    // Bad input is refused with the field named.
    await s.type("#azure-tenant-id", "not-a-guid");
    await s.click("#azure-save");
    await s.waitFor("return document.querySelector('#azure-error').textContent.length > 0", "azure error");
    check("invalid Azure tenant is refused at the field", (await s.text("#azure-error")).startsWith("invalid azure.tenant_id"));

    // New task: the form and the YAML follow each other; YAML errors show their line.
    await s.page("task");
    check("a new task starts with autostop on (60 idle minutes)", (await s.value("#task-autostop")) === "60" && (await s.value("#task-yaml")).includes("autostop: 60"));
    await s.click("#task-autostop-down");
    check("tear down instead of stopping is written as SkyPilot's form", (await s.value("#task-yaml")).includes("idle_minutes: 60\n    down: true"), JSON.stringify(await s.value("#task-yaml")));
    await s.click("#task-autostop-down");
    await s.type("#task-name", "e2e-task");
    await s.type("#task-cpus", "4+");
    await s.click("#task-use-spot");
    await s.type("#task-run", "echo hello from e2e");
    const yaml = await s.value("#task-yaml");
    check("form fields appear in the YAML", yaml.includes("name: e2e-task") && yaml.includes("cpus: 4+") && yaml.includes("use_spot: true"), JSON.stringify(yaml));
    await s.paste("#task-yaml", "name: from-yaml\nnum_nodes: 0\nresources:\n  accelerators: V100:1\n");
    check("YAML edits appear in the form", (await s.value("#task-name")) === "from-yaml" && (await s.value("#task-accelerators")) === "V100:1");
    check("a field error shows at the field", (await s.text("#task-num-nodes-error")).includes("at least 1"));
    check("a field error shows its line", (await s.text("#task-yaml-errors")).includes("line 2"));
    await s.screenshot("04-new-task-errors");
    await s.paste("#task-yaml", "name: e2e-task\nresources:\n  cpus: 4+\n  use_spot: true\nrun: |\n  echo hello from e2e\n");
    await s.screenshot("05-new-task-filled");

    // Cost comparison of that task: the chart drawn in Rust, the ranked table, any row pickable.
    await s.page("compare");
    check("comparison shows no error", (await s.exec("return document.querySelector('#compare-error')?.textContent ?? ''")) === "");
    check("comparison chart is drawn", await s.exec("return !!document.querySelector('#compare-chart svg rect')"));
    const rows = await s.exec("return document.querySelectorAll('#compare-table tbody tr').length");
    check("comparison table ranks candidates", rows > 1, `rows=${rows}`);
    await s.click("#compare-table tbody tr[data-rank='2'] button");
    check("any candidate can be picked", (await s.text("#compare-picked")).startsWith("Picked:"));
    await s.screenshot("06-compare");

    // Launch from the comparison: a row of a cloud with no account runs on the local cloud, and
    // the progress page walks the stages to the job's log. Not AWS: the test stored AWS keys.
    const launchRank = await s.exec(
      "return [...document.querySelectorAll('#compare-table tbody tr')].find((r) => r.children[1].textContent !== 'AWS')?.dataset.rank",
    );
    await s.click(`#compare-table tbody tr[data-rank='${launchRank}'] button[data-action=launch]`);
    await s.waitFor("return document.querySelector('#content').dataset.page === 'launch'", "the launch page");
    await s.waitFor("return ['succeeded', 'failed', 'cancelled'].includes(document.querySelector('#launch-stages')?.closest('section').dataset.state)", "the launch to end", 180000);
    const launchState = await s.exec("return document.querySelector('#launch-stages').closest('section').dataset.state");
    check("a launch from the comparison succeeds", launchState === "succeeded", `${launchState}: ${await s.text("#launch-result")}`);
    check("the launch streams the job's log line", (await s.text("#launch-log")).includes("hello from e2e"));
    const stageStates = await s.exec("return [...document.querySelectorAll('#launch-stages li')].map((l) => l.dataset.stage + '=' + l.dataset.state).join(',')");
    check("the stages went optimizing -> provisioning -> running", stageStates === "optimizing=done,provisioning=done,setup=skipped,running=done", stageStates);
    check("the launch says it fell back to the local cloud", (await s.text("#launch-notes")).includes("launching on the local cloud"));
    check("the failover attempt is listed", (await s.text("#launch-attempts")).includes("LOCAL"));
    await s.screenshot("07-launch");
    const launchedName = /Cluster '([^']+)'/.exec(await s.text("#launch-result"))?.[1];
    check("the launch names its cluster", !!launchedName);
    if (launchedName) execFileSync(SKY, ["down", "-y", launchedName], { encoding: "utf8", timeout: 120000 });

    // Cancel during setup: a setup that would run for ten minutes is killed on the node at once,
    // and the cluster the launch created is torn down.
    const setupPidFile = join(TMP, "cancelled-setup.pid");
    await s.page("task");
    await s.paste("#task-yaml", `name: slow\nsetup: |\n  echo setting up\n  echo $$ > ${setupPidFile}\n  sleep 600\nrun: |\n  echo should-not-run\n`);
    await s.page("launch");
    await s.type("#launch-cluster", "e2e-cancel");
    await s.click("#launch-start");
    await s.waitFor("return document.querySelector('#launch-stages li[data-stage=setup]')?.dataset.state === 'active'", "setup to start", 60000);
    await s.click("#launch-cancel");
    await s.screenshot("07b-launch-cancelling");
    // Bounded well below the setup's 600 s: only a cancel that acts mid-setup ends it in time.
    await s.waitFor("return document.querySelector('#launch-stages').closest('section').dataset.state === 'cancelled'", "the launch to be cancelled mid-setup", 60000);
    const setupPid = Number.parseInt(readFileSync(setupPidFile, "utf8"), 10);
    check("cancel kills the running setup process", Number.isInteger(setupPid) && pidGone(setupPid), `pid ${setupPid}`);
    check("cancel ends the launch as cancelled", (await s.text("#launch-result")).includes("cancelled"));
    check("cancel tears down the cluster the launch created", (await s.text("#launch-result")).includes("terminated"));
    check("the cancelled launch never ran its job", !(await s.text("#launch-log")).includes("should-not-run"));
    const afterCancel = JSON.parse(execFileSync(SKY, ["status", "-o", "json"], { encoding: "utf8" }));
    const namesAfterCancel = (Array.isArray(afterCancel) ? afterCancel : (afterCancel.clusters ?? [])).map((c) => c.name);
    check("no cluster is left behind by the cancel", !namesAfterCancel.includes("e2e-cancel"), JSON.stringify(namesAfterCancel));
    await s.screenshot("07c-launch-cancelled");

    // Clusters: a cluster made by the real CLI over the same SKY_HOME shows UP in the window;
    // autostop, stop and down from the window reach the facade, and the CLI sees the result.
    const CLUSTER = "e2e-c1";
    const launched = execFileSync(SKY, ["launch", "-y", "-c", CLUSTER, "--cloud", "local", "echo hello"], {
      encoding: "utf8",
      timeout: 180000,
      stdio: ["ignore", "pipe", "pipe"],
    });
    check("the CLI launched a local cluster that ran `echo hello`", launched.includes("hello"), JSON.stringify(launched.slice(-300)));
    const row = `#clusters-table tr[data-cluster='${CLUSTER}']`;
    await s.page("clusters");
    await s.waitFor("return document.querySelector(arguments[0])?.dataset.status === 'UP'", "cluster UP in the table", 15000, row);
    check("the cluster shows UP in the Clusters table", (await s.text(row)).includes("LOCAL"));
    await s.screenshot("08-clusters-up");

    // Terminal access asks before it changes ~/.ssh/config (HOME is this run's temp folder).
    await s.waitFor("return ['absent', 'declined'].includes(document.querySelector('#clusters-ssh')?.dataset.state)", "the terminal access card");
    await s.click("#clusters-ssh-on");
    check("terminal access names the file it will change", (await s.text("#clusters-ssh-question")).includes(join(process.env.HOME, ".ssh", "config")));
    await s.click("#clusters-ssh-yes");
    await s.waitFor("return document.querySelector('#clusters-ssh')?.dataset.state === 'included'", "terminal access on");
    const sshConfig = join(process.env.HOME, ".ssh", "config");
    check("turning terminal access on adds the Include line", readFileSync(sshConfig, "utf8").includes("Include "));
    await s.click("#clusters-ssh-off");
    await s.waitFor("return document.querySelector('#clusters-ssh')?.dataset.state === 'declined'", "terminal access off");
    check("turning it off takes the line out again", readFileSync(sshConfig, "utf8") === "");

    // Jobs & logs: the CLI's job is in the queue and its log streams into the window.
    await s.page("jobs");
    await s.waitFor("return !!document.querySelector('#jobs-table tr[data-job]')", "a job in the queue", 15000);
    await s.click("#jobs-table tr[data-job] button[data-action=logs]");
    await s.waitFor("return document.querySelector('#jobs-log')?.dataset.state === 'ended'", "the log stream to end", 30000);
    check("the job's log streams `hello` into the window", (await s.text("#jobs-log")).includes("hello"));
    check("the log title shows the job succeeded", (await s.text("#jobs-log-title")).includes("SUCCEEDED"));
    await s.screenshot("09-jobs-logs");
    await s.page("clusters");
    await s.waitFor("return !!document.querySelector(arguments[0])", "cluster row", 10000, row);

    // Pushed updates while the user types and while a confirmation is open: the CLI changes the
    // cluster mid-way, the app pushes the change (a shown signal: the table's push count), and the
    // row, the half-typed minutes, the confirmation and its button are the same elements after it.
    const pushesNow = async () => Number((await s.dataset("#clusters-table", "pushes")) ?? 0);
    const cliAutostop = (minutes) => execFileSync(SKY, ["autostop", CLUSTER, "-i", String(minutes), "-y"], { encoding: "utf8", timeout: 60000 });
    const rowEl = await s.find(row);
    const minutesEl = await s.find(`${row} input[type=number]`);
    await s.type(`${row} input[type=number]`, "4");
    let pushes = await pushesNow();
    cliAutostop(50);
    await s.waitFor("return document.querySelector(arguments[0] + ' [data-field=autostop]')?.textContent.startsWith('50m')", "pushed autostop", 10000, row);
    check("a CLI change reaches the Clusters page as a pushed event", (await pushesNow()) > pushes && (await s.text("#clusters-checked")).includes("pushed"));
    await s.keys(minutesEl, "5");
    check(
      "the row and the minutes being typed survive a pushed update",
      await s.execWith("return arguments[0].isConnected && arguments[1].isConnected && arguments[1].value === '45'", rowEl, minutesEl),
    );
    await s.click(`${row} button[data-action=autostop]`);
    await s.waitFor("return document.querySelector(arguments[0] + ' [data-field=autostop]')?.textContent.startsWith('45m')", "autostop set", 30000, row);
    check("autostop set from the window shows in the table", true);

    await s.click(`${row} button[data-action=stop]`);
    const confirmYes = await s.find("#clusters-confirm-yes");
    pushes = await pushesNow();
    // A value the watcher has not sent before: it pushes a view only when it differs from the
    // last one it sent, and the window's 45 may have lived between two of its reads.
    cliAutostop(40);
    await s.waitFor("return Number(document.querySelector('#clusters-table').dataset.pushes) > arguments[0]", "a push while the confirmation is open", 10000, pushes);
    check(
      "an open confirmation and its button survive a pushed update",
      (await s.dataset("#clusters-confirm", "state")) === "open" && (await s.execWith("return arguments[0].isConnected", confirmYes)),
    );
    await s.click("#clusters-confirm-no");
    check("a cancelled confirmation stops nothing", (await s.dataset(row, "status")) === "UP");

    // Bulk autostop may tear the selection down instead of stopping it.
    await s.click(`${row} input.select`);
    await s.type("#clusters-bulk-minutes", "55");
    await s.click("#clusters-bulk-autostop-down");
    await s.click("#clusters-bulk-autostop");
    check("bulk autostop with down says it will tear down", (await s.text("#clusters-confirm-text")).includes("tear down"));
    await s.click("#clusters-confirm-yes");
    await s.waitFor("return document.querySelector(arguments[0] + ' [data-field=autostop]')?.textContent === '55m idle → down'", "bulk autostop down", 30000, row);
    check("bulk autostop sets down when chosen", true);
    await s.screenshot("08a-clusters-bulk-autostop-down");
    await s.click(`${row} input.select`);

    // Exec: a command box on the cluster runs a job and opens its log.
    await s.click(`${row} button[data-action=exec]`);
    await s.type("#clusters-exec-command", "echo exec-from-window");
    await s.click("#clusters-exec-run");
    await s.waitFor("return document.querySelector('#content').dataset.page === 'jobs'", "the jobs page after exec", 30000);
    await s.waitFor("return document.querySelector('#jobs-log')?.dataset.state === 'ended'", "the exec log to end", 30000);
    check("exec from the window runs the command and shows its log", (await s.text("#jobs-log")).includes("exec-from-window"));
    await s.screenshot("09b-exec-logs");
    await s.page("clusters");
    await s.waitFor("return !!document.querySelector(arguments[0])", "cluster row", 10000, row);

    await s.click(`${row} button[data-action=stop]`);
    check("stop asks for confirmation first", (await s.text("#clusters-confirm-text")).includes(CLUSTER));
    check("nothing is stopped before the answer", (await s.exec("return document.querySelector(arguments[0]).dataset.status", row)) === "UP");
    await s.screenshot("08b-clusters-confirm-stop");
    await s.click("#clusters-confirm-yes");
    await s.waitFor("return document.querySelector(arguments[0])?.dataset.status === 'STOPPED'", "cluster STOPPED", 60000, row);
    check("stop from the window stops the cluster", true);
    await s.screenshot("08c-clusters-stopped");

    // Down as a bulk action: select the row, one confirmation for the selection.
    await s.click(`${row} input.select`);
    await s.click("#clusters-bulk-down");
    check("bulk down asks once, naming the selection", (await s.text("#clusters-confirm-text")).includes(CLUSTER));
    check("down asks for confirmation first", (await s.text("#clusters-confirm-text")).includes("cannot be undone"));
    await s.click("#clusters-confirm-yes");
    await s.waitFor("return !document.querySelector(arguments[0])", "cluster gone from the table", 60000, row);
    const after = JSON.parse(execFileSync(SKY, ["status", "-o", "json"], { encoding: "utf8" }));
    const names = (Array.isArray(after) ? after : (after.clusters ?? [])).map((c) => c.name);
    check("down from the window removes the cluster for the CLI too", !names.includes(CLUSTER), JSON.stringify(after));
    await s.screenshot("08d-clusters-empty");

    // Cost report: the downed cluster is still listed, as terminated.
    await s.page("report");
    check("the cost report lists the downed cluster", (await s.text("#report-table tr[data-cluster='e2e-c1']")).includes("terminated"));
    check("the cost report draws spend over time", await s.exec("return !!document.querySelector('#report-chart svg path, #report-chart svg polygon, #report-chart svg polyline')"));
    await s.screenshot("10-report");

    // Storage: no task here made a bucket, and the page says so (and what would make one).
    await s.page("storage");
    check("the storage page says when Sky created no bucket", (await s.text("#storage-empty")).includes("No buckets created by Sky"));

    await sleep(1000);
    const mem = processTree("sky-desktop");
    if (mem) {
      metrics.idle_rss_app_mb = +(mem.appKb / 1024).toFixed(1);
      metrics.idle_rss_with_webkit_children_mb = +(mem.treeKb / 1024).toFixed(1);
      metrics.processes = mem.processes;
    }

    // Leaving with a cluster that bills and has no autostop: closing the window (as a window
    // manager's close button does) asks first; Cancel keeps the app, the autostop choice sets it
    // on the cluster and quits.
    execFileSync(SKY, ["launch", "-y", "-d", "-c", "e2e-quit", "--cloud", "local", "echo bye"], { encoding: "utf8", timeout: 120000 });
    const app = processTree("sky-desktop");
    check("the app's process is found", !!app);
    const closeWindow = () => execFileSync("python3", [join(import.meta.dirname, "close_window.py"), String(app.pid)], { encoding: "utf8", timeout: 30000 });
    closeWindow();
    await s.waitFor("return document.querySelector('#quit-dialog')?.dataset.state === 'open'", "the quit question", 30000);
    check("closing with an unattended cluster asks first, naming it", (await s.text("#quit-clusters")).includes("e2e-quit"));
    check("the quit question focuses Cancel", (await s.exec("return document.activeElement?.id")) === "quit-cancel");
    await s.screenshot("11-quit-question");
    await s.click("#quit-cancel");
    check("Cancel keeps the app open", (await s.exec("return document.querySelector('#quit-dialog').dataset.state")) === "closed" && !pidGone(app.pid));
    closeWindow();
    await s.waitFor("return document.querySelector('#quit-dialog')?.dataset.state === 'open'", "the quit question again", 30000);
    await s.click("#quit-autostop");
    const quitBy = Date.now() + 60000;
    while (!pidGone(app.pid) && Date.now() < quitBy) await sleep(100);
    check("the autostop choice quits the app", pidGone(app.pid));
    appGone = true;
    const quitView = JSON.parse(execFileSync(SKY, ["status", "-o", "json"], { encoding: "utf8" }));
    const quitCluster = quitView.clusters.find((c) => c.name === "e2e-quit");
    check("the cluster got autostop before the app quit", quitCluster?.autostop?.idle_minutes === 60 && quitCluster?.autostop?.down === false, JSON.stringify(quitCluster));
    execFileSync(SKY, ["down", "-y", "e2e-quit"], { encoding: "utf8", timeout: 120000 });
  } catch (e) {
    // Leave evidence: what the window showed and held when the run went wrong.
    await s.screenshot("failure").catch(() => {});
    const html = await s.exec("return document.documentElement.outerHTML.slice(0, 2000)").catch((x) => x.message);
    console.log(`page at failure: ${html}`);
    throw e;
  } finally {
    // After the app quit itself the driver's session has nothing left to close.
    if (!appGone) await wd("DELETE", `/session/${s.id}`).catch((e) => console.error(`closing session: ${e.message}`));
  }
  writeFileSync(join(ARTIFACTS, "desktop-metrics.json"), JSON.stringify(metrics, null, 2) + "\n");
  console.log(`metrics: ${JSON.stringify(metrics)}`);
}

main()
  .catch((e) => {
    failed++;
    console.log(`not ok - e2e run aborted: ${e.message}`);
  })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  });
