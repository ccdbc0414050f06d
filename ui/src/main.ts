// The shell: a sidebar of pages and a hash router. Pages are plain functions returning elements.
import "./style.css";
import { h } from "./dom";
import { backend } from "./backend";
import { credentialsPage } from "./pages/credentials";
import { taskPage } from "./pages/task";
import { launchPage } from "./pages/launch";
import { reportPage } from "./pages/report";
import { storagePage } from "./pages/storage";
import { jobsPage } from "./pages/jobs";
import { clustersPage } from "./pages/clusters";
import { comparePage } from "./pages/compare";
import { installQuitDialog } from "./quit";

type Page = () => HTMLElement | Promise<HTMLElement>;

const PAGES: { route: string; title: string; page: Page }[] = [
  { route: "task", title: "New task", page: taskPage },
  { route: "compare", title: "Cost comparison", page: comparePage },
  { route: "launch", title: "Launch", page: launchPage },
  { route: "clusters", title: "Clusters", page: clustersPage },
  { route: "jobs", title: "Jobs & logs", page: jobsPage },
  { route: "storage", title: "Storage", page: storagePage },
  { route: "report", title: "Cost report", page: reportPage },
  { route: "credentials", title: "Credentials", page: credentialsPage },
];

const app = document.getElementById("app") as HTMLElement;
const main = h("main", { id: "content" });
const nav = h(
  "nav",
  { class: "sidebar" },
  h("div", { class: "brand" }, h("img", { src: "/icon.png", alt: "" }), h("span", {}, "Sky")),
  ...PAGES.map((p) => h("a", { href: `#/${p.route}`, id: `nav-${p.route}`, "data-route": p.route }, p.title)),
);
app.append(nav, main);
installQuitDialog(app);

async function render() {
  const route = location.hash.replace(/^#\/?/, "") || "task";
  const entry = PAGES.find((p) => p.route === route) ?? PAGES[0]!;
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.route === entry.route);
  main.setAttribute("aria-busy", "true");
  const el = await entry.page();
  main.replaceChildren(el);
  main.dataset.page = entry.route;
  main.removeAttribute("aria-busy");
}

window.addEventListener("hashchange", () => void render());
// Tell the app once the first page is on screen: a timeout queued from an animation frame runs
// after that frame's paint. The app logs it as the start-up time.
void render().then(() =>
  requestAnimationFrame(() => setTimeout(() => void backend.appReady().catch(() => undefined), 0)),
);
