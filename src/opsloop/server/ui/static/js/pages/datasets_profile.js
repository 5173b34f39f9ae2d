// A dataset version's schema and profile. The profile is drawn: a missing-values
// overview, per column a box plot of the quantiles (numbers), a min/mean/max strip
// (text lengths) and bars for the most frequent values.

import { emptyState, fmtNum, h } from "../dom.js";
import { clip, svgEl } from "../lineage.js";

const W = 320;
const PLOT_L = 10;
const PLOT_R = W - 10;

function pct(x) {
  if (x == null) return "—";
  if (x === 0) return "0%";
  if (x < 0.001) return "<0.1%";
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

function valueText(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "object") return JSON.stringify(v);
  return typeof v === "number" ? fmtNum(v) : String(v);
}

function profileByName(v) {
  const out = {};
  for (const c of (v.profile && v.profile.columns) || []) out[c.name] = c;
  return out;
}

export function schemaTab(v) {
  if (!v.columns.length) return emptyState("This version has no columns.");
  const prof = profileByName(v);
  return h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "schema-table" } },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Column"), h("th", {}, "Type"), h("th", {}, "Nullable"),
        h("th", { class: "num" }, "Nulls"), h("th", { class: "num" }, "Distinct"))),
      h("tbody", {}, v.columns.map((c, i) => {
        const p = prof[c.name] || {};
        return h("tr", { dataset: { testid: "schema-row", column: c.name } },
          h("td", { class: "num muted" }, String(i + 1)),
          h("td", { class: "strong mono" }, c.name),
          h("td", {}, h("span", { class: "type-chip" }, c.type)),
          h("td", {}, c.nullable ? "yes" : h("span", { class: "muted" }, "no")),
          h("td", { class: "num" }, p.nulls == null ? "—" : `${p.nulls.toLocaleString()} (${pct(p.null_fraction)})`),
          h("td", { class: "num" }, p.distinct == null ? "—" : `${p.distinct_exact === false ? "≈" : ""}${p.distinct.toLocaleString()}`));
      }))));
}

/** Horizontal bars: [{label, value, title}] scaled to `scaleMax`, else to the largest value. */
export function barChart(items, { testid = "bar-chart", valueFmt = (x) => x.toLocaleString(), cls = "", scaleMax = null } = {}) {
  const top = scaleMax ?? Math.max(1e-12, ...items.map((i) => i.value));
  return h("div", { class: ["bars", cls], dataset: { testid, drawn: "1" }, role: "list" },
    items.map((it) => h("div", { class: "bar-row", role: "listitem", title: it.title || `${it.label}: ${valueFmt(it.value)}` },
      h("span", { class: ["bar-label", it.muted ? "muted" : null] }, it.label),
      h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${Math.max(0.5, (it.value / top) * 100)}%` } })),
      h("span", { class: "bar-value" }, valueFmt(it.value)))));
}

/**
 * A horizontal box plot: whiskers p5..p95, box p25..p75, the median line, the mean as
 * a dot, min and max as end ticks. `q` holds p5..p95 (any may be missing).
 */
export function boxPlot({ min, max, mean, q = {} }, { testid = "box-plot", label = "" } = {}) {
  const lo = min;
  const hi = max;
  const x = (val) => (hi === lo ? (PLOT_L + PLOT_R) / 2 : PLOT_L + ((val - lo) / (hi - lo)) * (PLOT_R - PLOT_L));
  const svg = svgEl("svg", { class: "box-plot", viewBox: `0 0 ${W} 62`, width: "100%", height: 62, role: "img",
    "aria-label": label || `min ${fmtNum(min)}, max ${fmtNum(max)}`, "data-testid": testid, "data-drawn": "1" });
  const yMid = 20;
  svg.appendChild(svgEl("line", { x1: PLOT_L, x2: PLOT_R, y1: 42, y2: 42, class: "bp-axis" }));
  svg.appendChild(svgEl("line", { x1: x(lo), x2: x(hi), y1: yMid, y2: yMid, class: "bp-range" }));
  for (const end of [lo, hi]) svg.appendChild(svgEl("line", { x1: x(end), x2: x(end), y1: yMid - 5, y2: yMid + 5, class: "bp-range" }));
  if (q.p5 != null && q.p95 != null) {
    svg.appendChild(svgEl("line", { x1: x(q.p5), x2: x(q.p95), y1: yMid, y2: yMid, class: "bp-whisker" }));
  }
  if (q.p25 != null && q.p75 != null) {
    svg.appendChild(svgEl("rect", { x: x(q.p25), y: yMid - 9, width: Math.max(1.5, x(q.p75) - x(q.p25)), height: 18, rx: 2, class: "bp-box" },
      svgEl("title", {}, `p25 ${fmtNum(q.p25)} – p75 ${fmtNum(q.p75)}`)));
  }
  if (q.p50 != null) {
    svg.appendChild(svgEl("line", { x1: x(q.p50), x2: x(q.p50), y1: yMid - 9, y2: yMid + 9, class: "bp-median" },
      svgEl("title", {}, `median ${fmtNum(q.p50)}`)));
  }
  if (mean != null && Number.isFinite(mean)) {
    svg.appendChild(svgEl("circle", { cx: x(mean), cy: yMid, r: 3.5, class: "bp-mean" }, svgEl("title", {}, `mean ${fmtNum(mean)}`)));
  }
  if (hi === lo) {
    svg.appendChild(svgEl("text", { x: x(lo), y: 56, class: "bp-label", "text-anchor": "middle" }, `all ${clip(fmtNum(lo), 14)}`));
  } else {
    svg.appendChild(svgEl("text", { x: PLOT_L, y: 56, class: "bp-label" }, clip(fmtNum(lo), 14)));
    svg.appendChild(svgEl("text", { x: PLOT_R, y: 56, class: "bp-label", "text-anchor": "end" }, clip(fmtNum(hi), 14)));
  }
  return svg;
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value));
}

function columnCard(p, total) {
  const numeric = typeof p.min === "number" && typeof p.max === "number";
  const nullBar = h("div", { class: "null-bar", title: `${p.nulls} nulls of ${total} rows (${pct(p.null_fraction)})` },
    h("span", { class: "null-fill", style: { width: `${(1 - (p.null_fraction || 0)) * 100}%` } }));
  const parts = [];
  if (numeric) {
    parts.push(h("div", { class: "chart-sub" }, "Distribution", p.quantiles_exact === false ? h("span", { class: "muted" }, " (approx.)") : null),
      boxPlot({ min: p.min, max: p.max, mean: p.mean, q: p.quantiles || {} }, { label: `${p.name} distribution` }),
      h("div", { class: "stat-row" }, stat("mean", fmtNum(p.mean)), p.quantiles ? stat("median", fmtNum(p.quantiles.p50)) : null, stat("std", fmtNum(p.std)),
        p.quantiles ? stat("p5 / p95", `${fmtNum(p.quantiles.p5)} / ${fmtNum(p.quantiles.p95)}`) : null,
        p.non_finite ? stat("non-finite", String(p.non_finite)) : null));
  } else if (p.min != null || p.max != null) {
    parts.push(h("div", { class: "stat-row" }, stat("min", valueText(p.min)), stat("max", valueText(p.max))));
  }
  // For numbers the box plot says more than a long tail of values seen a few times.
  const showTop = p.top && p.top.length && (!numeric || (p.distinct != null && p.distinct <= 20));
  if (showTop) {
    const covered = p.top.reduce((s, t) => s + t.count, 0);
    parts.push(h("div", { class: "chart-sub" }, "Top values", p.top_exact === false ? h("span", { class: "muted" }, " (approx.)") : null),
      barChart(p.top.map((t) => ({ label: valueText(t.value), value: t.count, muted: t.value === null,
        title: `${valueText(t.value)}: ${t.count.toLocaleString()} (${pct(p.count ? t.count / p.count : null)})` })), { testid: "top-chart" }),
      p.count > covered ? h("div", { class: "muted small" }, `${(p.count - covered).toLocaleString()} other values`) : null);
  }
  if (p.text_length) {
    const t = p.text_length;
    parts.push(h("div", { class: "chart-sub" }, "Text length (characters)"),
      boxPlot({ min: t.min, max: t.max, mean: t.mean }, { testid: "length-plot", label: `${p.name} text length` }),
      h("div", { class: "stat-row" }, stat("mean", fmtNum(t.mean)), stat("std", fmtNum(t.std))));
  }
  return h("div", { class: "card profile-card", dataset: { testid: "profile-card", column: p.name } },
    h("div", { class: "profile-head" },
      h("span", { class: "strong mono profile-name", title: p.name }, p.name),
      h("span", { class: "type-chip" }, p.type)),
    h("div", { class: "stat-row" },
      stat("non-null", p.count == null ? "—" : p.count.toLocaleString()),
      stat("nulls", `${(p.nulls ?? 0).toLocaleString()} (${pct(p.null_fraction)})`),
      p.distinct != null ? stat("distinct", `${p.distinct_exact === false ? "≈" : ""}${p.distinct.toLocaleString()}`) : null),
    nullBar,
    parts);
}

export function profileTab(v) {
  const cols = (v.profile && v.profile.columns) || [];
  if (!cols.length) return emptyState("No profile for this version.");
  const total = v.profile.row_count ?? v.row_count;
  const withNulls = cols.filter((c) => c.nulls > 0);
  return h("div", { dataset: { testid: "profile" } },
    h("div", { class: "card profile-overview" },
      h("div", { class: "card-title" }, `Missing values · ${total.toLocaleString()} rows, ${cols.length} columns`),
      h("div", { class: "pad" }, withNulls.length
        ? barChart(withNulls.map((c) => ({ label: c.name, value: c.null_fraction, title: `${c.name}: ${c.nulls.toLocaleString()} nulls (${pct(c.null_fraction)})` })),
          { testid: "nulls-chart", valueFmt: pct, cls: "bars-warn", scaleMax: 1 })
        : h("div", { class: "muted small" }, "No column has missing values."))),
    h("div", { class: "profile-grid" }, cols.map((c) => columnCard(c, total))));
}
