// One run: header, params, tags, notes, latest metrics, metric charts (server
// downsampled), system metrics, child runs and the artifact browser.

import { api, metricHistories } from "../api.js";
import { ChartSet, chartCard, lineChart, pointsCaption } from "../charts.js";
import {
  emptyState, errorBox, fmtDuration, fmtNum, fmtTime, h, isSystemKey, loading, naturalCompare, replace,
  runDuration, statusBadge, store, timeCell,
} from "../dom.js";
import { artifactBrowser } from "./artifacts.js";

/** Points asked per chart: enough for a sharp line on a wide screen, small to send. */
export const CHART_POINTS = 2000;

function kvTable(obj, { testid, empty, mono = false }) {
  const keys = Object.keys(obj || {}).sort(naturalCompare);
  if (!keys.length) return h("div", { class: "muted small pad" }, empty);
  return h("div", { class: "table-wrap kv-wrap" },
    h("table", { class: "table kv", dataset: { testid } },
      h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Value"))),
      h("tbody", {}, keys.map((k) => h("tr", { dataset: { key: k } },
        h("td", { class: "kv-key", title: k }, k),
        h("td", { class: ["kv-val", mono ? "mono" : null], title: obj[k] }, obj[k]))))));
}

function metricsTable(metrics) {
  const keys = Object.keys(metrics || {}).sort((a, b) => (isSystemKey(a) - isSystemKey(b)) || naturalCompare(a, b));
  if (!keys.length) return h("div", { class: "muted small pad" }, "No metrics logged.");
  return h("div", { class: "table-wrap kv-wrap" },
    h("table", { class: "table kv", dataset: { testid: "metrics-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Metric"), h("th", { class: "num" }, "Latest"), h("th", { class: "num" }, "Min"), h("th", { class: "num" }, "Max"))),
      h("tbody", {}, keys.map((k) => {
        const m = metrics[k];
        return h("tr", {},
          h("td", { class: "kv-key", title: k }, k),
          h("td", { class: "num", title: `${m.value} at step ${m.step}` }, fmtNum(m.value)),
          h("td", { class: "num muted" }, fmtNum(m.min)),
          h("td", { class: "num muted" }, fmtNum(m.max)));
      }))));
}

function section(title, body, { id = null, extra = null } = {}) {
  return h("section", { class: "section", id },
    h("div", { class: "section-head" }, h("h2", {}, title), extra),
    body);
}

export async function renderRun(ctx, runId) {
  replace(ctx.root, h("div", { class: "page" }, loading("Loading run…")));
  const run = await api(`/runs/${encodeURIComponent(runId)}`, { signal: ctx.signal });
  ctx.setTitle(run.name);
  ctx.setActiveExperiment(run.experiment_id);
  const charts = new ChartSet();
  ctx.onCleanup(() => charts.destroy());

  const expLink = h("a", { href: `#/experiments/${encodeURIComponent(run.experiment_id)}`, dataset: { testid: "experiment-link" } }, run.experiment_id.slice(0, 8));
  const crumbExp = h("a", { href: `#/experiments/${encodeURIComponent(run.experiment_id)}` }, "Experiment");

  const parentLink = run.parent_run_id
    ? h("a", { href: `#/runs/${encodeURIComponent(run.parent_run_id)}`, dataset: { testid: "parent-link" } }, run.parent_run_id.slice(0, 8))
    : null;

  const meta = (label, value) => h("div", { class: "meta-item" }, h("div", { class: "meta-label" }, label), h("div", { class: "meta-value" }, value));
  const header = h("div", { class: "page-header run-header" },
    h("div", {},
      h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), h("span", { class: "sep" }, "/"), crumbExp, h("span", { class: "sep" }, "/"), run.name),
      h("div", { class: "title-row" }, h("h1", { dataset: { testid: "run-name" } }, run.name), statusBadge(run.status)),
      h("div", { class: "meta-grid" },
        meta("Run ID", h("span", { class: "mono" }, run.id)),
        meta("Experiment", expLink),
        parentLink ? meta("Parent run", parentLink) : null,
        meta("Started", h("span", { title: fmtTime(run.start_time) }, fmtTime(run.start_time))),
        meta("Ended", run.end_time ? fmtTime(run.end_time) : (run.status === "RUNNING" ? "running" : "—")),
        meta("Duration", fmtDuration(runDuration(run))),
        meta("User", run.user || "—"))));

  const metricKeys = Object.keys(run.metrics).filter((k) => !isSystemKey(k)).sort(naturalCompare);
  const systemKeys = Object.keys(run.metrics).filter(isSystemKey).sort(naturalCompare);

  const chartsGrid = h("div", { class: "chart-grid", dataset: { testid: "metric-charts" } });
  const systemGrid = h("div", { class: "chart-grid chart-grid-small", dataset: { testid: "system-charts" } });
  const chartFilter = h("input", { type: "search", class: "input input-sm", placeholder: "Filter charts", "aria-label": "Filter charts",
    oninput: () => {
      const q = chartFilter.value.trim().toLowerCase();
      for (const c of chartsGrid.children) c.hidden = Boolean(q) && !String(c.dataset.key || "").toLowerCase().includes(q);
    } });
  let xMode = store.get("xMode", "step");
  const xToggle = h("div", { class: "seg", role: "group", "aria-label": "X axis" },
    ["step", "time"].map((m) => h("button", { class: ["seg-btn", m === xMode ? "active" : null], dataset: { x: m, testid: `x-${m}` },
      onclick: () => {
        if (xMode === m) return;
        xMode = m;
        store.set("xMode", m);
        for (const b of xToggle.children) b.classList.toggle("active", b.dataset.x === m);
        drawAll();
      } }, m === "step" ? "Step" : "Wall time")));

  const childrenBox = h("div", {});
  const artifacts = h("div", {}, loading("Loading artifacts…"));

  replace(ctx.root, h("div", { class: "page" },
    header,
    h("div", { class: "grid-3" },
      h("div", { class: "card" }, h("div", { class: "card-title" }, `Parameters (${Object.keys(run.params).length})`), kvTable(run.params, { testid: "params-table", empty: "No parameters logged.", mono: true })),
      h("div", { class: "card" }, h("div", { class: "card-title" }, `Metrics (${Object.keys(run.metrics).length})`), metricsTable(run.metrics)),
      h("div", { class: "card" }, h("div", { class: "card-title" }, `Tags (${Object.keys(run.tags).length})`), kvTable(run.tags, { testid: "tags-table", empty: "No tags." }))),
    run.notes ? section("Notes", h("div", { class: "card notes", dataset: { testid: "notes" } }, run.notes)) : null,
    section("Metric charts", metricKeys.length ? chartsGrid : emptyState("No metrics logged yet."), {
      id: "charts", extra: metricKeys.length ? h("div", { class: "toolbar" }, chartFilter, xToggle) : null }),
    systemKeys.length ? section("System metrics", systemGrid, { id: "system" }) : null,
    childrenBox,
    section("Artifacts", artifacts, { id: "artifacts" })));

  // One ChartSet per grid, so redrawing one grid leaves the other alone.
  const metricCharts = charts;
  const systemCharts = new ChartSet();
  ctx.onCleanup(() => systemCharts.destroy());

  async function drawCharts(grid, keys, height, set) {
    set.destroy();
    const gen = (set.gen = (set.gen || 0) + 1); // a newer redraw (x toggle) wins
    const slots = {};
    replace(grid, keys.map((k) => {
      const slot = chartCard(k);
      slot.area.append(loading("Loading points…"));
      slots[k] = slot;
      return slot.card;
    }));
    let hists;
    try {
      hists = await metricHistories(run.id, keys, { maxPoints: CHART_POINTS, x: xMode, signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      if (set.gen === gen) replace(grid, errorBox(err, "Could not load metric histories"));
      return;
    }
    if (set.gen !== gen) return;
    for (const k of keys) {
      const slot = slots[k];
      const hist = hists[k];
      slot.area.replaceChildren();
      if (!hist || !hist.steps.length) {
        slot.area.append(h("div", { class: "muted small pad" }, "No points"));
        continue;
      }
      slot.cap.textContent = pointsCaption(hist);
      slot.card.dataset.downsampled = String(hist.downsampled);
      set.add(lineChart(slot.area, {
        series: [{ label: k, color: grid === systemGrid ? "#59a14f" : "#4e79a7", xs: xMode === "time" ? hist.timestamps : hist.steps, ys: hist.values }],
        xMode, height, sync: grid === systemGrid ? "run-sys" : "run-m",
      }));
    }
  }

  function drawAll() {
    return Promise.all([
      metricKeys.length ? drawCharts(chartsGrid, metricKeys, 220, metricCharts) : null,
      systemKeys.length ? drawCharts(systemGrid, systemKeys, 160, systemCharts) : null,
    ]);
  }

  // The charts' requests go first: the rest of the page waits for them, so a
  // big history does not share the server with the secondary requests.
  await drawAll().catch(() => {});
  if (ctx.signal.aborted) return;

  api(`/experiments/${encodeURIComponent(run.experiment_id)}`, { signal: ctx.signal })
    .then((e) => { expLink.textContent = e.name; crumbExp.textContent = e.name; })
    .catch(() => {});
  if (run.parent_run_id) {
    api(`/runs/${encodeURIComponent(run.parent_run_id)}`, { signal: ctx.signal })
      .then((p) => { parentLink.textContent = p.name; })
      .catch(() => {});
  }

  // Child runs, when there are any.
  api("/runs/search", { method: "POST", body: { experiment_ids: [run.experiment_id], parent_run_id: run.id, max_results: 100, order_by: ["start_time ASC"] }, signal: ctx.signal })
    .then((page) => {
      if (!page.runs.length) return;
      replace(childrenBox, section(`Child runs (${page.total ?? page.runs.length})`,
        h("div", { class: "table-wrap card" }, h("table", { class: "table", dataset: { testid: "children-table" } },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Started"), h("th", {}, "Duration"))),
          h("tbody", {}, page.runs.map((c) => h("tr", {},
            h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(c.id)}`, class: "strong" }, c.name)),
            h("td", {}, statusBadge(c.status)),
            h("td", {}, timeCell(c.start_time)),
            h("td", {}, fmtDuration(runDuration(c))))))))));
    })
    .catch(() => {});

  artifactBrowser(artifacts, run.id, ctx);
}
