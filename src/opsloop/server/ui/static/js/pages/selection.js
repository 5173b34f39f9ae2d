// A model selection (#/selections/<run_id>): the leaderboard `opsloop select` stored on its parent
// run (selection/leaderboard.json), with the Pareto members and the recommendation marked, and the
// quality-vs-p95-latency chart (selection/pareto.svg, drawn by select_model when the run ended).

import { api, artifactUrl } from "../api.js";
import { emptyState, h, loading, replace } from "../dom.js";

const LEADERBOARD = "selection/leaderboard.json";
const CHART = "selection/pareto.svg";

function num(v, digits = 3) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "n/a");
  return String(Number(v.toPrecision(digits)));
}

function fixed(v, d) {
  return v === null || v === undefined ? h("span", { class: "muted" }, "n/a") : v.toFixed(d);
}

function row(r, i, data) {
  const rec = data.recommendation.candidate === r.candidate;
  const marks = [];
  if (rec) marks.push(h("span", { class: "badge badge-finished", dataset: { testid: "recommended" } }, "★ recommended"));
  if (r.pareto) marks.push(h("span", { class: "alias-chip", dataset: { testid: "pareto" } }, "pareto"));
  if (r.violations.length) {
    marks.push(h("span", { class: "small", style: { color: "var(--danger, #c0392b)" }, dataset: { testid: "violations" } },
      r.violations.join("; ")));
  }
  const ci = r.quality_ci ? ` (${r.quality_ci[0].toFixed(2)}–${r.quality_ci[1].toFixed(2)})` : "";
  return h("tr", { dataset: { testid: "selection-row", candidate: r.candidate } },
    h("td", {}, String(i + 1)),
    h("td", { class: "strong" }, r.run_id ? h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.candidate) : r.candidate),
    h("td", {}, r.quality === null ? h("span", { class: "muted" }, "n/a") : `${num(r.quality)}${ci}`),
    ...data.metrics.slice(1).map((m) => h("td", {}, num(r.metrics[m]))),
    h("td", {}, fixed(r.p50_latency_ms, 0)),
    h("td", {}, fixed(r.p95_latency_ms, 0)),
    h("td", {}, fixed(r.tokens_per_s, 1)),
    h("td", {}, num(r.cost_per_1k_usd, 4)),
    h("td", {}, fixed(r.memory_mb, 0)),
    h("td", {}, `${r.errors}/${r.examples}`),
    h("td", { style: { whiteSpace: "normal", minWidth: "200px" } }, ...marks));
}

export async function renderSelection(ctx, runId) {
  ctx.setTitle("Model selection");
  replace(ctx.root, h("div", { class: "page" }, loading("Loading the selection…")));
  const run = await api(`/runs/${encodeURIComponent(runId)}`, { signal: ctx.signal });
  const res = await fetch(artifactUrl(runId, LEADERBOARD), { signal: ctx.signal });
  const header = h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, "Model selection"),
      h("div", { class: "muted" }, "Run ", h("a", { href: `#/runs/${encodeURIComponent(runId)}` }, run.run?.name || run.name || runId))));
  if (!res.ok) {
    replace(ctx.root, h("div", { class: "page" }, header,
      emptyState("This run holds no selection leaderboard.", "Run opsloop select; its parent run stores selection/leaderboard.json.")));
    return;
  }
  const data = await res.json();
  const cols = ["#", "Candidate", "Quality (95% CI)", ...data.metrics.slice(1), "p50 ms", "p95 ms", "tok/s", "$ / 1k req", "Memory MB", "Errors", ""];
  const rec = data.recommendation;
  const chartBox = h("div", { class: "card", style: { marginTop: "12px", padding: "8px" } }, loading("Loading the chart…"));
  const limits = Object.entries(data.constraints).map(([k, v]) => `${k}=${v}`).join(", ");
  replace(ctx.root, h("div", { class: "page" }, header,
    h("div", { class: "card", style: { padding: "12px", marginBottom: "12px" }, dataset: { testid: "selection-reason" } },
      h("div", { class: "strong" }, rec.candidate ? `Recommended: ${rec.candidate}` : "No recommendation"),
      h("div", {}, rec.reason),
      data.registered ? h("div", { class: "muted small" }, `Registered as ${data.registered}`) : null,
      h("div", { class: "muted small" }, `Quality metric: ${data.metrics[0]}. Constraints: ${limits || "none"}. Pareto objectives: ${Object.entries(data.objectives).map(([k, d]) => `${k} (${d})`).join(", ")}.`)),
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "selection-table" } },
        h("thead", {}, h("tr", {}, ...cols.map((t) => h("th", {}, t)))),
        h("tbody", {}, ...data.leaderboard.map((r, i) => row(r, i, data))))),
    chartBox));
  // The server sends SVG artifacts as text/plain (never as a document in this origin); an <img>
  // of a blob shows the picture and, being an image, runs no script.
  const svg = await fetch(artifactUrl(runId, CHART), { signal: ctx.signal });
  if (!svg.ok) {
    replace(chartBox, h("span", { class: "muted" }, "No chart stored."));
    return;
  }
  const url = URL.createObjectURL(new Blob([await svg.text()], { type: "image/svg+xml" }));
  ctx.onCleanup(() => URL.revokeObjectURL(url));
  replace(chartBox, h("img", { src: url, alt: "Quality against p95 latency, Pareto front in red", dataset: { testid: "selection-chart" } }));
}
