// Line charts on uPlot (vendored, global `uPlot`). Data arrives already
// downsampled by the server, so a chart never holds more than a few thousand points.

import { fmtNum, h } from "./dom.js";

const AXIS_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

/** Sort (x, y) pairs by x when they are not already ascending (uPlot needs ascending x). */
function ascending(xs, ys) {
  let sorted = true;
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) { sorted = false; break; }
  if (sorted) return [xs, ys];
  const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  return [idx.map((i) => xs[i]), idx.map((i) => ys[i])];
}

function yAxisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  let longest = 0;
  for (const v of values || []) longest = Math.max(longest, String(v).length);
  return Math.max(40, 12 + longest * 7);
}

/**
 * Draw a line chart into `container`.
 * series: [{label, color, xs, ys}] — xs are steps or epoch milliseconds (xMode "time").
 * Returns {destroy()}. The container gets data-drawn="1" once the canvas is painted.
 */
export function lineChart(container, { series, xMode = "step", height = 220, sync = null, legend = true }) {
  const time = xMode === "time";
  const tables = series.map((s) => {
    const xs = time ? s.xs.map((t) => t / 1000) : s.xs;
    return ascending(xs, s.ys);
  });
  const data = tables.length === 1 ? [tables[0][0], tables[0][1]] : uPlot.join(tables);
  const width = Math.max(240, container.clientWidth || 400);
  const opts = {
    width,
    height,
    ms: 1e-3,
    legend: { show: legend, live: true },
    cursor: { drag: { x: true, y: false }, sync: sync ? { key: sync } : undefined, points: { size: 6 } },
    scales: {
      x: {
        time,
        // One point (or one x) would sit on the left edge: centre it instead.
        range: (u, min, max) => (min === max ? [min - (time ? 60 : 1), max + (time ? 60 : 1)] : [min, max]),
      },
    },
    axes: [
      { font: AXIS_FONT, stroke: "#64748b", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#e2e8f0" } },
      {
        font: AXIS_FONT,
        stroke: "#64748b",
        grid: { stroke: "#eef1f5" },
        ticks: { stroke: "#e2e8f0" },
        size: yAxisSize,
        values: (u, vals) => vals.map((v) => fmtNum(v)),
      },
    ],
    series: [
      { label: time ? "Time" : "Step", value: time ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : (u, v) => (v == null ? "—" : String(v)) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        spanGaps: tables.length > 1,
        // Sparse series get dots, or a single point would be invisible.
        points: { show: s.xs.length <= 20, size: 5, fill: s.color },
        value: (u, v) => fmtNum(v),
      })),
    ],
    hooks: {
      draw: [
        () => {
          container.dataset.drawn = "1";
          if (!window.__opsloopFirstChart) window.__opsloopFirstChart = performance.now();
        },
      ],
    },
  };
  const plot = new uPlot(opts, data, container);
  let lastWidth = width;
  const ro = new ResizeObserver(() => {
    const w = Math.max(240, container.clientWidth);
    if (Math.abs(w - lastWidth) > 2) {
      lastWidth = w;
      plot.setSize({ width: w, height });
    }
  });
  ro.observe(container);
  return {
    plot,
    destroy() {
      ro.disconnect();
      plot.destroy();
    },
  };
}

/** A card holding one chart: title, optional caption, and the chart area. */
export function chartCard(title, { caption = null, testid = "chart-card" } = {}) {
  const area = h("div", { class: "chart-area" });
  const cap = h("div", { class: "chart-caption muted small" }, caption || "");
  const card = h(
    "div",
    { class: "card chart-card", dataset: { testid, key: title } },
    h("div", { class: "chart-title", title }, title),
    area,
    cap,
  );
  return { card, area, cap };
}

/** A caption saying how the server reduced the points, e.g. "2,000 of 1,000,000 points". */
export function pointsCaption(hist) {
  if (!hist) return "";
  const total = hist.total_points.toLocaleString();
  if (hist.downsampled) return `${hist.steps.length.toLocaleString()} of ${total} points (downsampled)`;
  return `${total} point${hist.total_points === 1 ? "" : "s"}`;
}

/** Keep a set of charts and destroy them together when the page goes away. */
export class ChartSet {
  constructor() { this.charts = []; }
  add(c) { this.charts.push(c); return c; }
  destroy() {
    for (const c of this.charts) c.destroy();
    this.charts = [];
  }
}
