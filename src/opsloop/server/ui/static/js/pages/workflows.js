// Workflows (#/workflows): the workflow runs, newest first, and the schedules and event triggers.
// A workflow run (#/workflows/RUN_ID): its DAG, each step with its cache status (a hit names the
// run that made the output), attempts and lineage (each input's digest and producing run).

import { api } from "../api.js";
import { emptyState, h, loading, replace, statusBadge, timeCell } from "../dom.js";

const runHref = (id) => `#/runs/${encodeURIComponent(id)}`;
const wfHref = (id) => `#/workflows/${encodeURIComponent(id)}`;

function cacheChip(cache) {
  const cls = { hit: "badge-finished", miss: "badge-running", off: "badge-killed" }[cache] || "";
  return h("span", { class: `badge ${cls}`, dataset: { testid: "step-cache" } }, cache === "hit" ? "CACHED" : (cache || "—").toUpperCase());
}

export async function renderWorkflows(ctx) {
  ctx.setTitle("Workflows");
  const body = h("div", {}, loading("Loading workflow runs…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Workflows"),
        h("div", { class: "muted" }, "Step pipelines: a run per workflow, a child run per step, cached outputs reused."))),
    body));
  const [{ runs }, { triggers }] = await Promise.all([
    api("/workflows/runs?limit=200", { signal: ctx.signal }),
    api("/workflows/triggers", { signal: ctx.signal }),
  ]);
  const parts = [];
  if (!runs.length) {
    parts.push(emptyState("No workflow runs yet.", "Run one: opsloop workflows run my_steps:pipeline"));
  } else {
    parts.push(h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "workflow-runs" } },
        h("thead", {}, h("tr", {}, ...["Workflow", "Run", "Status", "Started", "Trigger"].map((t) => h("th", {}, t)))),
        h("tbody", {}, runs.map((r) => h("tr", { dataset: { testid: "workflow-run-row", id: r.id } },
          h("td", { class: "strong" }, r.name),
          h("td", {}, h("a", { href: wfHref(r.id), dataset: { testid: "workflow-run-link" } }, r.id.slice(0, 12))),
          h("td", {}, statusBadge(r.status)),
          h("td", {}, timeCell(r.start_time)),
          h("td", { class: "muted" }, r.tags["opsloop.workflow.trigger"] || "—")))))));
  }
  parts.push(h("h2", {}, "Schedules and triggers"));
  parts.push(!triggers.length
    ? emptyState("No schedules or triggers.", "opsloop workflows schedule NAME WORKFLOW --cron '0 3 * * *' (or --on EVENT)")
    : h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "workflow-triggers" } },
        h("thead", {}, h("tr", {}, ...["Name", "Workflow", "When", "Next"].map((t) => h("th", {}, t)))),
        h("tbody", {}, triggers.map((t) => h("tr", { dataset: { testid: "trigger-row" } },
          h("td", { class: "strong" }, t.name),
          h("td", {}, t.workflow),
          h("td", {}, t.kind === "cron" ? `cron ${t.spec.cron}` : `on ${t.spec.event}${t.spec.every > 1 ? ` ×${t.spec.every}` : ""}`),
          h("td", {}, t.next_at ? timeCell(t.next_at) : "—")))))));
  replace(body, ...parts);
}

// The DAG as columns by depth (a step's column is one more than its deepest input's).
function dagView(dag, steps) {
  const nodes = dag.nodes || [];
  const depth = {};
  for (const n of nodes) depth[n.name] = Math.max(0, ...n.upstream.map((u) => (depth[u] ?? 0) + 1));
  const byName = Object.fromEntries(steps.map((s) => [s.name, s]));
  const cols = [];
  for (const n of nodes) (cols[depth[n.name]] ||= []).push(n);
  return h("div", { class: "card", style: { display: "flex", gap: "2rem", padding: "1rem", overflow: "auto" }, dataset: { testid: "workflow-dag" } },
    ...cols.map((col) => h("div", { style: { display: "flex", flexDirection: "column", gap: ".75rem" } },
      ...col.map((n) => {
        const s = byName[n.name];
        return h("div", { class: "card", style: { padding: ".5rem .75rem", minWidth: "9rem" }, dataset: { testid: "dag-node", name: n.name } },
          h("div", { class: "strong" }, n.name),
          h("div", { class: "muted small" }, n.upstream.length ? `← ${n.upstream.join(", ")}` : "start"),
          s ? h("div", {}, statusBadge(s.status), " ", cacheChip(s.cache)) : h("span", { class: "muted small" }, "not run"));
      }))));
}

export async function renderWorkflowRun(ctx, id) {
  ctx.setTitle("Workflow run");
  replace(ctx.root, loading("Loading workflow run…"));
  const shown = await api(`/workflows/runs/${encodeURIComponent(id)}`, { signal: ctx.signal });
  const run = shown.run;
  // The latest attempt of each step (a resumed run has a failed step run and a newer one).
  const latest = {};
  for (const s of shown.steps) latest[s.name] = s;
  const steps = Object.values(latest);
  const row = (s) => h("tr", { dataset: { testid: "step-row", name: s.name, cache: s.cache } },
    h("td", { class: "strong" }, h("a", { href: runHref(s.run_id) }, s.name)),
    h("td", {}, statusBadge(s.status)),
    h("td", {}, cacheChip(s.cache), s.cached_from ? h("span", { class: "muted small" }, " from ", h("a", { href: runHref(s.cached_from), dataset: { testid: "step-cached-from" } }, s.cached_from.slice(0, 8))) : ""),
    h("td", {}, String(s.attempts.length)),
    h("td", {}, ...Object.entries(s.inputs).map(([name, inp]) => h("div", { class: "small", dataset: { testid: "step-input" } },
      `${name}: `, h("a", { href: runHref(inp.run_id) }, (inp.digest || "").replace("sha256:", "").slice(0, 12))))),
    h("td", { class: "mono small" }, (s.digest || "").replace("sha256:", "").slice(0, 12)),
    h("td", { class: "muted small" }, s.error || ""));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, run.name, " ", statusBadge(run.status)),
        h("div", { class: "muted" }, "Run ", h("a", { href: runHref(run.id) }, run.id), " · ", h("a", { href: "#/workflows" }, "all workflow runs")))),
    h("h2", {}, "Steps"),
    dagView(shown.dag, steps),
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "workflow-steps" } },
        h("thead", {}, h("tr", {}, ...["Step", "Status", "Cache", "Attempts", "Inputs (lineage)", "Output", "Error"].map((t) => h("th", {}, t)))),
        h("tbody", {}, steps.map(row))))));
}
