// App shell and hash router: #/experiments, #/experiments/<id>, #/runs/<id>, #/compare?runs=a,b,
// #/datasets, #/datasets/<name>, #/datasets/<name>/diff?a=1&b=2, #/models, #/models/<name>

import { api } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { renderCompare } from "./pages/compare.js";
import { renderDataset, renderDatasets } from "./pages/datasets.js";
import { renderDatasetDiff } from "./pages/datasets_diff.js";
import { renderDeployments } from "./pages/deployments.js";
import { renderEvalCompare, renderEvaluations } from "./pages/evaluations.js";
import { renderExperiments } from "./pages/experiments.js";
import { renderModel, renderModels } from "./pages/models.js";
import { renderPrompt, renderPrompts } from "./pages/prompts.js";
import { renderRun } from "./pages/run.js";
import { renderRuns } from "./pages/runs.js";
import { renderSelection } from "./pages/selection.js";
import { renderTrace } from "./pages/trace.js";
import { renderTraces } from "./pages/traces.js";

const main = document.getElementById("main");
const sideList = document.getElementById("side-experiments");

let current = null; // {controller, cleanup}

/** Parse location.hash into a path and query parameters. */
export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/experiments";
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, query };
}

const routes = [
  { match: (p) => p.length === 1 && p[0] === "experiments", render: (ctx) => renderExperiments(ctx) },
  { match: (p) => p.length === 2 && p[0] === "experiments", render: (ctx, p) => renderRuns(ctx, p[1]) },
  { match: (p) => p.length === 2 && p[0] === "runs", render: (ctx, p) => renderRun(ctx, p[1]) },
  { match: (p) => p.length === 2 && p[0] === "selections", render: (ctx, p) => renderSelection(ctx, p[1]) },
  { match: (p) => p.length === 1 && p[0] === "compare", render: (ctx) => renderCompare(ctx) },
  { match: (p) => p.length === 1 && p[0] === "datasets", render: (ctx) => renderDatasets(ctx) },
  { match: (p) => p.length === 2 && p[0] === "datasets", render: (ctx, p) => renderDataset(ctx, p[1]) },
  { match: (p) => p.length === 3 && p[0] === "datasets" && p[2] === "diff", render: (ctx, p) => renderDatasetDiff(ctx, p[1]) },
  { match: (p) => p.length === 1 && p[0] === "models", render: (ctx) => renderModels(ctx) },
  { match: (p) => p.length === 2 && p[0] === "models", render: (ctx, p) => renderModel(ctx, p[1]) },
  { match: (p) => p.length === 1 && p[0] === "prompts", render: (ctx) => renderPrompts(ctx) },
  { match: (p) => p.length === 2 && p[0] === "prompts", render: (ctx, p) => renderPrompt(ctx, p[1]) },
  { match: (p) => p.length === 1 && p[0] === "deployments", render: (ctx) => renderDeployments(ctx) },
  { match: (p) => p.length === 1 && p[0] === "evaluations", render: (ctx) => renderEvaluations(ctx) },
  { match: (p) => p.length === 2 && p[0] === "evaluations" && p[1] === "compare", render: (ctx) => renderEvalCompare(ctx) },
  { match: (p) => p.length === 1 && p[0] === "traces", render: (ctx) => renderTraces(ctx) },
  { match: (p) => p.length === 2 && p[0] === "traces", render: (ctx, p) => renderTrace(ctx, p[1]) },
];

async function route() {
  if (current) {
    current.controller.abort();
    for (const fn of current.cleanups) {
      try { fn(); } catch (err) { console.error(err); }
    }
  }
  const { parts, query } = parseHash();
  if (parts.length === 0) {
    location.replace("#/experiments");
    return;
  }
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  const ctx = {
    root: main,
    query,
    signal: controller.signal,
    onCleanup: (fn) => cleanups.push(fn),
    setTitle: (t) => { document.title = t ? `${t} · opsloop` : "opsloop"; },
    setActiveExperiment,
    refreshSidebar,
  };
  setActiveExperiment(parts[0] === "experiments" && parts[1] ? parts[1] : null);
  highlightNav(parts[0]);
  window.scrollTo(0, 0);
  const r = routes.find((x) => x.match(parts));
  if (!r) {
    ctx.setTitle("Not found");
    replace(main, h("div", { class: "page" }, errorBox(new Error(`No page at #${parts.join("/")}`), "Page not found"),
      h("p", {}, h("a", { href: "#/experiments" }, "Go to experiments"))));
    return;
  }
  try {
    await r.render(ctx, parts);
  } catch (err) {
    if (err && err.name === "AbortError") return;
    if (controller.signal.aborted) return;
    console.error(err);
    replace(main, h("div", { class: "page" }, errorBox(err, "Could not load this page")));
  }
}

function highlightNav(section) {
  for (const a of document.querySelectorAll(".nav-link")) {
    a.classList.toggle("active", a.dataset.section === section);
  }
}

let activeExperiment = null;
function setActiveExperiment(id) {
  activeExperiment = id;
  for (const a of sideList.querySelectorAll("a")) a.classList.toggle("active", a.dataset.id === id);
}

/** Reload the experiment list in the sidebar. */
export async function refreshSidebar() {
  try {
    const data = await api("/experiments");
    const items = data.experiments.map((e) =>
      h("li", {}, h("a", { href: `#/experiments/${encodeURIComponent(e.id)}`, dataset: { id: e.id }, title: e.name },
        h("span", { class: "side-name" }, e.name),
        e.run_count != null ? h("span", { class: "side-count" }, String(e.run_count)) : null)),
    );
    replace(sideList, items.length ? items : h("li", { class: "muted small side-empty" }, "No experiments yet"));
    setActiveExperiment(activeExperiment);
  } catch (err) {
    replace(sideList, h("li", { class: "muted small side-empty" }, "Could not load experiments"));
  }
}

window.addEventListener("hashchange", route);
refreshSidebar();
route();
