// Monitoring (#/monitoring): per deployment, request rate, error rate and latency
// percentiles over the last hours (rolled up per minute by the server), the LLM gateway's
// cost, cache hits and guardrail hits per route and model, judge-score and feedback
// trends per prompt version and model, the monitors, and the alert history.

import { api } from "../api.js";
import { errorBox, h, loading, replace } from "../dom.js";
import { chartCard, lineChart } from "../charts.js";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#ca8a04", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");

export async function renderMonitoring(ctx) {
  ctx.setTitle("Monitoring");
  replace(ctx.root, h("div", { class: "page" }, loading("Loading monitoring…")));
  let deps, monitors, alerts;
  try {
    [deps, monitors, alerts] = await Promise.all([
      api("/monitoring/deployments", { signal: ctx.signal }),
      api("/monitoring/monitors", { signal: ctx.signal }),
      api("/monitoring/alerts?limit=200", { signal: ctx.signal }),
    ]);
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(ctx.root, errorBox(err, "Could not load monitoring"));
    return;
  }
  const charts = h("div", { class: "chart-grid", dataset: { testid: "monitoring-charts" } });
  const llm = h("div", { class: "chart-grid", dataset: { testid: "gateway-charts" } });
  const scores = h("div", { class: "chart-grid", dataset: { testid: "score-charts" } });
  const scoreInput = h("input", { value: "thumbs", dataset: { testid: "score-name" },
    onkeydown: (e) => { if (e.key === "Enter") drawScores(scoreInput.value.trim()); } });
  const picker = h("select", { dataset: { testid: "deployment-picker" }, onchange: () => draw(picker.value) },
    deps.deployments.map((d) => h("option", { value: d }, d)));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Monitoring"),
      h("div", { class: "muted" }, "Live metrics of served models, monitors and their alerts."))),
    deps.deployments.length ? h("div", { class: "section" }, h("label", {}, "Deployment ", picker)) :
      h("div", { class: "muted", dataset: { testid: "no-traffic" } }, "No served traffic in the last day."),
    charts,
    llm,
    h("h2", {}, "Score trends"),
    h("div", { class: "section" }, h("label", {}, "Score ", scoreInput), " ",
      h("button", { class: "btn", onclick: () => drawScores(scoreInput.value.trim()) }, "Show")),
    scores,
    h("h2", {}, "Monitors"),
    h("table", { class: "table", dataset: { testid: "monitors-table" } },
      h("thead", {}, h("tr", {}, ["Monitor", "Kind", "Deployment", "Check", "Every"].map((x) => h("th", {}, x)))),
      h("tbody", {}, monitors.monitors.map((m) => h("tr", {},
        h("td", { class: "strong" }, m.name), h("td", {}, m.kind), h("td", {}, m.deployment),
        h("td", { class: "small" }, m.kind === "metric" ? `${m.metric} ${m.op} ${m.threshold}` : m.kind === "drift" ? `drift vs ${m.reference}` : `${m.text} embeddings vs ${m.reference}`),
        h("td", {}, `${m.interval_s}s`))))),
    h("h2", {}, "Alert history"),
    h("table", { class: "table", dataset: { testid: "alerts-table" } },
      h("thead", {}, h("tr", {}, ["Monitor", "State", "Message", "Opened", "Resolved", "Notices"].map((x) => h("th", {}, x)))),
      h("tbody", {}, alerts.alerts.map((a) => h("tr", { dataset: { testid: "alert-row", state: a.state } },
        h("td", { class: "strong" }, a.monitor),
        h("td", { class: a.state === "firing" ? "status-failed" : "status-finished" }, a.state),
        h("td", { class: "small" }, a.message), h("td", {}, when(a.opened_at)), h("td", {}, when(a.resolved_at)),
        h("td", { class: "num" }, String(a.notifications))))))));
  if (deps.deployments.length) draw(deps.deployments[0]);
  drawGateway();
  drawScores("thumbs");

  // One line per group (route/model, prompt version/model) of the points, on shared times.
  function grouped(points, keyOf, valueOf) {
    const groups = new Map();
    for (const p of points) {
      const k = keyOf(p);
      if (!groups.has(k)) groups.set(k, { xs: [], ys: [] });
      groups.get(k).xs.push(p.t);
      groups.get(k).ys.push(valueOf(p));
    }
    return [...groups.entries()].slice(0, PALETTE.length).map(([label, g], i) => ({ label, color: PALETTE[i], ...g }));
  }

  async function drawGateway() {
    const until = Date.now();
    let u;
    try {
      u = await api(`/monitoring/usage?since=${until - 6 * 3600e3}&until=${until}&bucket_s=300`, { signal: ctx.signal });
    } catch (err) {
      if (err.name !== "AbortError") replace(llm, errorBox(err, "Could not load the gateway's usage"));
      return;
    }
    replace(llm);
    if (!u.points.length) return;
    const key = (p) => `${p.route || "-"} / ${p.model || "-"}`;
    const specs = [
      ["LLM gateway: cost (USD)", (p) => p.cost, "per route / model, 5-minute buckets"],
      ["LLM gateway: cache hit rate", (p) => p.cache_hit_rate, "hits / (hits + misses)"],
      ["LLM gateway: guardrail hits", (p) => p.guardrail_hits, "requests a guard blocked, redacted or flagged"],
    ];
    for (const [title, f, caption] of specs) {
      const { card, area } = chartCard(title, { caption, testid: "gateway-chart" });
      llm.append(card);
      lineChart(area, { xMode: "time", series: grouped(u.points, key, f) });
    }
  }

  async function drawScores(name) {
    if (!name) return;
    replace(scores, loading("Loading scores…"));
    const until = Date.now();
    let s;
    try {
      s = await api(`/monitoring/scores?name=${encodeURIComponent(name)}&since=${until - 7 * 86400e3}&until=${until}&bucket_s=3600`, { signal: ctx.signal });
    } catch (err) {
      if (err.name !== "AbortError") replace(scores, errorBox(err, "Could not load the scores"));
      return;
    }
    replace(scores);
    if (!s.points.length) {
      scores.append(h("div", { class: "muted", dataset: { testid: "no-scores" } }, `No "${name}" annotations on traces in the last 7 days.`));
      return;
    }
    const { card, area } = chartCard(`Mean ${name} per prompt version and model`, {
      caption: "hourly, by the traces' start; booleans as 1/0", testid: "score-chart",
    });
    scores.append(card);
    lineChart(area, { xMode: "time", series: grouped(s.points, (p) => `${p.prompt || "-"} / ${p.model || "-"}`, (p) => p.mean) });
  }

  async function draw(dep) {
    replace(charts, loading("Loading metrics…"));
    const until = Date.now();
    const m = await api(`/monitoring/metrics?deployment=${encodeURIComponent(dep)}&since=${until - 6 * 3600e3}&until=${until}&bucket_s=60`, { signal: ctx.signal });
    const xs = m.points.map((p) => p.t);
    const specs = [
      ["Requests per second", [["rate", "#2563eb", (p) => p.request_rate]]],
      ["Error rate", [["errors", "#dc2626", (p) => p.error_rate]]],
      ["Latency (ms)", [["p50", "#16a34a", (p) => p.latency_p50], ["p95", "#ca8a04", (p) => p.latency_p95], ["p99", "#dc2626", (p) => p.latency_p99]]],
    ];
    replace(charts);
    for (const [title, lines] of specs) {
      const { card, area } = chartCard(title, { testid: "monitoring-chart" });
      charts.append(card);
      lineChart(area, { xMode: "time", series: lines.map(([label, color, f]) => ({ label, color, xs, ys: m.points.map(f) })) });
    }
    // Estimated accuracy (before labels) and realised accuracy (as labels join), one chart.
    const perf = await api(`/monitoring/performance?deployment=${encodeURIComponent(dep)}&since=${until - 7 * 86400e3}&until=${until}&bucket_s=3600`, { signal: ctx.signal });
    if (perf.points.some((p) => p.estimated_accuracy !== null || p.realised_accuracy !== null)) {
      const { card, area } = chartCard("Accuracy: estimated vs realised", {
        caption: "estimated: mean top-class probability; realised: over the rows labelled so far",
        testid: "performance-chart",
      });
      charts.append(card);
      const pxs = perf.points.map((p) => p.t);
      lineChart(area, { xMode: "time", series: [
        { label: "estimated", color: "#7c3aed", xs: pxs, ys: perf.points.map((p) => p.estimated_accuracy) },
        { label: "realised", color: "#0891b2", xs: pxs, ys: perf.points.map((p) => p.realised_accuracy) },
      ] });
    }
  }
}
