// Compare runs: overlaid metric curves, param diff, metrics with the best value
// marked, and a parallel-coordinates plot.

import { api, metricHistories } from "../api.js";
import { ChartSet, chartCard, lineChart } from "../charts.js";
import {
  colorFor, emptyState, errorBox, fmtNum, h, isSystemKey, loading, naturalCompare, replace, statusBadge, store,
} from "../dom.js";
import { parallelCoordinates } from "../parcoords.js";

/** Points per run per chart: several runs share a chart, so fewer than on a run page. */
const COMPARE_POINTS = 1000;

function runHeaderCell(run, i) {
  return h("th", { class: "run-col", title: run.name },
    h("span", { class: "swatch", style: { background: colorFor(i) } }),
    h("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, run.name));
}

/** A metric's goal as the server decided it ("maximize", "minimize" or null): never guessed here. */
function goalOf(cmp, k) {
  return (cmp.goals && cmp.goals[k]) || null;
}

const GOAL_ARROW = { maximize: " ↑", minimize: " ↓" };
const GOAL_TITLE = { maximize: "higher is better", minimize: "lower is better" };

/**
 * The best runs per metric (a Set of run ids), by the metric's goal from the server.
 * Ties share the mark; when every run has the same value, or the metric has no goal
 * (system metrics), nothing is marked.
 */
export function bestRuns(cmp) {
  const best = {};
  for (const k of cmp.metric_keys) {
    const goal = goalOf(cmp, k);
    if (!goal) { best[k] = new Set(); continue; }
    const low = goal === "minimize";
    const vals = cmp.runs
      .map((r) => [r.id, cmp.metrics[k][r.id]])
      .filter(([, v]) => v !== null && v !== undefined && Number.isFinite(v));
    if (vals.length < 2) { best[k] = new Set(); continue; }
    const target = low ? Math.min(...vals.map(([, v]) => v)) : Math.max(...vals.map(([, v]) => v));
    const winners = vals.filter(([, v]) => v === target).map(([id]) => id);
    best[k] = winners.length === vals.length ? new Set() : new Set(winners);
  }
  return best;
}

function paramTable(cmp) {
  const differing = new Set(cmp.differing_params);
  const onlyDiff = h("input", { type: "checkbox", checked: store.get("onlyDiff", false), dataset: { testid: "only-diff" } });
  const tbody = h("tbody");
  const draw = () => {
    store.set("onlyDiff", onlyDiff.checked);
    const keys = cmp.param_keys.filter((k) => !onlyDiff.checked || differing.has(k));
    replace(tbody, keys.length ? keys.map((k) => h("tr", { class: differing.has(k) ? "diff-row" : null, dataset: { testid: "param-row", key: k, differs: String(differing.has(k)) } },
      h("td", { class: "sticky-left kv-key", title: k }, differing.has(k) ? h("span", { class: "diff-dot", title: "Differs between runs" }) : null, k),
      cmp.runs.map((r) => {
        const v = r.params[k];
        return h("td", { class: ["mono", v === undefined ? "muted" : null], title: v ?? "" }, v === undefined ? "—" : v);
      })))
      : h("tr", {}, h("td", { colspan: cmp.runs.length + 1, class: "muted center" }, cmp.param_keys.length ? "All params are the same." : "No params logged.")));
  };
  onlyDiff.addEventListener("change", draw);
  draw();
  return h("section", { class: "section" },
    h("div", { class: "section-head" }, h("h2", {}, `Parameters`),
      h("div", { class: "toolbar" },
        h("span", { class: "muted small" }, `${cmp.differing_params.length} of ${cmp.param_keys.length} differ`),
        h("label", { class: "check-row" }, onlyDiff, "Only differences"))),
    h("div", { class: "table-wrap card" }, h("table", { class: "table compare-table", dataset: { testid: "param-diff" } },
      h("thead", {}, h("tr", {}, h("th", { class: "sticky-left" }, "Param"), cmp.runs.map(runHeaderCell))),
      tbody)));
}

function metricTable(cmp, best) {
  const keys = [...cmp.metric_keys].sort((a, b) => (isSystemKey(a) - isSystemKey(b)) || naturalCompare(a, b));
  return h("section", { class: "section" },
    h("div", { class: "section-head" }, h("h2", {}, "Metrics"), h("span", { class: "muted small" }, "Latest values; ★ best by the metric's goal (↑ higher is better, ↓ lower), set on the experiment or inferred from the name")),
    h("div", { class: "table-wrap card" }, h("table", { class: "table compare-table", dataset: { testid: "metric-compare" } },
      h("thead", {}, h("tr", {}, h("th", { class: "sticky-left" }, "Metric"), cmp.runs.map(runHeaderCell))),
      h("tbody", {}, keys.length ? keys.map((k) => h("tr", { dataset: { key: k } },
        h("td", { class: "sticky-left kv-key", title: k }, k,
          h("span", { class: "muted small dir", title: GOAL_TITLE[goalOf(cmp, k)] || "no goal", dataset: { goal: goalOf(cmp, k) || "none" } }, GOAL_ARROW[goalOf(cmp, k)] || "")),
        cmp.runs.map((r) => {
          const v = cmp.metrics[k][r.id];
          const isBest = best[k].has(r.id);
          return h("td", { class: ["num", isBest ? "best" : null, v == null ? "muted" : null], title: v == null ? "" : String(v), dataset: { best: String(isBest) } },
            isBest ? "★ " : null, fmtNum(v));
        })))
        : h("tr", {}, h("td", { colspan: cmp.runs.length + 1, class: "muted center" }, "No metrics logged."))))));
}

function asNumber(s) {
  if (s === undefined || s === null) return undefined;
  const t = String(s).trim();
  if (t === "" || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

/**
 * Axes for the parallel-coordinates plot: the params that differ between the runs
 * (numeric, or categorical with at most 30 values) and every non-system metric.
 * A param with one value for all runs would be a flat line through every axis point.
 */
export function buildAxes(cmp) {
  const axes = [];
  const differing = new Set(cmp.differing_params);
  for (const k of cmp.param_keys) {
    const present = cmp.runs.filter((r) => r.params[k] !== undefined);
    const numeric = present.length > 0 && present.every((r) => asNumber(r.params[k]) !== undefined);
    if (numeric && differing.has(k)) {
      axes.push({ label: k, group: "param", kind: "num", values: new Map(present.map((r) => [r.id, asNumber(r.params[k])])) });
    } else if (differing.has(k) && new Set(present.map((r) => r.params[k])).size <= 30) {
      axes.push({ label: k, group: "param", kind: "cat", values: new Map(present.map((r) => [r.id, r.params[k]])) });
    }
  }
  for (const k of cmp.metric_keys.filter((x) => !isSystemKey(x))) {
    const m = new Map();
    for (const r of cmp.runs) {
      const v = cmp.metrics[k][r.id];
      if (v !== null && v !== undefined) m.set(r.id, v);
    }
    axes.push({ label: k, group: "metric", kind: "num", values: m });
  }
  return axes.slice(0, 40);
}

function parcoordsSection(cmp, ctx) {
  const axes = buildAxes(cmp);
  const box = h("div", { class: "pc-box", dataset: { testid: "parcoords" } });
  const metricAxes = axes.map((a, i) => [a, i]).filter(([a]) => a.group === "metric");
  const pick = h("select", { class: "input input-sm", "aria-label": "Color by", dataset: { testid: "color-by" } },
    h("option", { value: "-1" }, "(single color)"),
    metricAxes.map(([a, i]) => h("option", { value: String(i) }, a.label)));
  const sec = h("section", { class: "section" },
    h("div", { class: "section-head" }, h("h2", {}, "Parallel coordinates"),
      h("div", { class: "toolbar" }, h("label", { class: "muted small" }, "Color by "), pick)),
    h("div", { class: "card pad" }, axes.length < 2 ? emptyState("Needs at least two numeric params or metrics.") : box));
  if (axes.length >= 2) {
    const first = metricAxes.find(([a]) => goalOf(cmp, a.label) === "maximize") || metricAxes[0];
    const ci = first ? first[1] : -1;
    pick.value = String(ci);
    // Drawn after the section is in the document, so it knows its width.
    requestAnimationFrame(() => {
      const pc = parallelCoordinates(box, { runs: cmp.runs, axes, colorAxis: ci, onOpen: (r) => { location.hash = `#/runs/${encodeURIComponent(r.id)}`; } });
      pick.addEventListener("change", () => pc.redraw(Number(pick.value)));
      ctx.onCleanup(() => pc.destroy());
    });
  }
  return sec;
}

async function overlayCharts(grid, cmp, keys, xMode, charts, ctx) {
  charts.destroy();
  const gen = (charts.gen = (charts.gen || 0) + 1);
  replace(grid, loading("Loading metric histories…"));
  const perRun = await Promise.all(cmp.runs.map((r) => {
    const ks = keys.filter((k) => cmp.metrics[k] && cmp.metrics[k][r.id] !== undefined && r.metrics[k]);
    return ks.length ? metricHistories(r.id, ks, { maxPoints: COMPARE_POINTS, x: xMode, signal: ctx.signal }) : Promise.resolve({});
  }));
  if (gen !== charts.gen) return;
  grid.replaceChildren();
  for (const k of keys) {
    const series = [];
    cmp.runs.forEach((r, i) => {
      const hist = perRun[i][k];
      if (hist && hist.steps.length) series.push({ label: r.name, color: colorFor(i), xs: xMode === "time" ? hist.timestamps : hist.steps, ys: hist.values });
    });
    if (!series.length) continue;
    const slot = chartCard(k);
    grid.append(slot.card);
    const total = series.reduce((n, s) => n + s.xs.length, 0);
    slot.cap.textContent = `${series.length} run${series.length > 1 ? "s" : ""} · ${total.toLocaleString()} points drawn`;
    charts.add(lineChart(slot.area, { series, xMode, height: 240, sync: "compare" }));
  }
  if (!grid.children.length) replace(grid, emptyState("No metric points to chart."));
}

export async function renderCompare(ctx) {
  ctx.setTitle("Compare runs");
  const ids = [...new Set((ctx.query.get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean))];
  const page = h("div", { class: "page page-wide" });
  replace(ctx.root, page);
  if (!ids.length) {
    replace(page, h("h1", {}, "Compare runs"), emptyState("No runs chosen.", "Select runs in an experiment's table and press Compare."));
    return;
  }
  replace(page, loading(`Loading ${ids.length} runs…`));
  let cmp;
  try {
    cmp = await api("/runs/compare", { method: "POST", body: { run_ids: ids }, signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(page, h("h1", {}, "Compare runs"), errorBox(err, "Could not compare these runs"));
    return;
  }
  const best = bestRuns(cmp);
  const expIds = [...new Set(cmp.runs.map((r) => r.experiment_id))];
  if (expIds.length === 1) ctx.setActiveExperiment(expIds[0]);
  const charts = new ChartSet();
  const sysCharts = new ChartSet();
  ctx.onCleanup(() => { charts.destroy(); sysCharts.destroy(); });

  const metricKeys = cmp.metric_keys.filter((k) => !isSystemKey(k));
  const systemKeys = cmp.metric_keys.filter(isSystemKey);
  const grid = h("div", { class: "chart-grid", dataset: { testid: "compare-charts" } });
  const sysGrid = h("div", { class: "chart-grid chart-grid-small" });
  let xMode = store.get("xMode", "step");
  const xToggle = h("div", { class: "seg", role: "group", "aria-label": "X axis" },
    ["step", "time"].map((m) => h("button", { class: ["seg-btn", m === xMode ? "active" : null], dataset: { x: m },
      onclick: () => {
        if (m === xMode) return;
        xMode = m;
        store.set("xMode", m);
        for (const b of xToggle.children) b.classList.toggle("active", b.dataset.x === m);
        overlayCharts(grid, cmp, metricKeys, xMode, charts, ctx).catch(() => {});
        if (sysLoaded) overlayCharts(sysGrid, cmp, systemKeys, xMode, sysCharts, ctx).catch(() => {});
      } }, m === "step" ? "Step" : "Wall time")));
  let sysLoaded = false;
  const sysDetails = systemKeys.length
    ? h("details", { class: "section", ontoggle: (e) => {
      if (e.target.open && !sysLoaded) { sysLoaded = true; overlayCharts(sysGrid, cmp, systemKeys, xMode, sysCharts, ctx).catch(() => {}); }
    } }, h("summary", { class: "section-summary" }, `System metrics (${systemKeys.length})`), sysGrid)
    : null;

  const backExp = expIds.length === 1
    ? h("a", { href: `#/experiments/${encodeURIComponent(expIds[0])}` }, "Experiment")
    : null;
  if (backExp) api(`/experiments/${encodeURIComponent(expIds[0])}`, { signal: ctx.signal }).then((e) => { backExp.textContent = e.name; }).catch(() => {});

  replace(page,
    h("div", { class: "page-header" }, h("div", {},
      h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), backExp ? [h("span", { class: "sep" }, "/"), backExp] : null, h("span", { class: "sep" }, "/"), "Compare"),
      h("h1", {}, `Comparing ${cmp.runs.length} run${cmp.runs.length > 1 ? "s" : ""}`),
      h("div", { class: "run-chips", dataset: { testid: "compare-runs" } }, cmp.runs.map((r, i) => h("a", { class: "run-chip", href: `#/runs/${encodeURIComponent(r.id)}`, title: r.id },
        h("span", { class: "swatch", style: { background: colorFor(i) } }), r.name, " ", statusBadge(r.status)))))),
    h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Metric charts"), metricKeys.length ? xToggle : null),
      metricKeys.length ? grid : emptyState("No metrics logged.")),
    sysDetails,
    parcoordsSection(cmp, ctx),
    paramTable(cmp),
    metricTable(cmp, best));

  if (metricKeys.length) {
    try {
      await overlayCharts(grid, cmp, metricKeys, xMode, charts, ctx);
    } catch (err) {
      if (err.name !== "AbortError") replace(grid, errorBox(err, "Could not load metric histories"));
    }
  }
}
