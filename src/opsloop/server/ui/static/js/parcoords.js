// Parallel-coordinates plot on a canvas: one vertical axis per param/metric, one
// polyline per run, colored by a chosen metric. Hover shows the run; click opens it.

import { fmtNum, h } from "./dom.js";

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = '600 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A color on the viridis scale for t in [0, 1]. */
export function viridis(t) {
  // The top of viridis is a pale yellow that vanishes on white; stop short of it.
  const x = Math.min(1, Math.max(0, t)) * 0.88 * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(VIRIDIS[i]);
  const b = hexToRgb(VIRIDIS[i + 1]);
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** An axis's scale: maps a value to [0, 1] (0 = bottom). */
function scaleFor(axis, runs) {
  const vals = runs.map((r) => axis.values.get(r.id)).filter((v) => v !== undefined && v !== null);
  if (axis.kind === "cat") {
    const cats = [...new Set(vals.map(String))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const pos = (v) => (cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
    return { pos, ticks: cats.map((c) => [pos(c), c]) };
  }
  const nums = vals.filter((v) => Number.isFinite(v));
  let lo = Math.min(...nums);
  let hi = Math.max(...nums);
  if (!nums.length) { lo = 0; hi = 1; }
  if (lo === hi) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  if (lo > 0 && hi / lo >= 100) {
    // Values spanning decades (learning rates, weight decay) read better on a log axis.
    const [a, b] = [Math.log10(lo), Math.log10(hi)];
    const pos = (v) => (v > 0 ? (Math.log10(v) - a) / (b - a) : 0);
    return { pos, ticks: [[0, fmtNum(lo)], [0.5, fmtNum(10 ** ((a + b) / 2))], [1, fmtNum(hi)]], lo, hi, log: true };
  }
  const pos = (v) => (v - lo) / (hi - lo);
  return { pos, ticks: [[0, fmtNum(lo)], [0.5, fmtNum((lo + hi) / 2)], [1, fmtNum(hi)]], lo, hi };
}

function ellipsize(ctx, text, maxWidth) {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > maxWidth) s = s.slice(0, -1);
  return `${s}…`;
}

/**
 * Draw into `container`. runs: [{id, name}]; axes: [{label, kind: "num"|"cat", values: Map(runId → value)}];
 * colorAxis: index into axes (a numeric axis) or -1. Returns {destroy(), redraw(colorAxis)}.
 */
export function parallelCoordinates(container, { runs, axes, colorAxis = -1, height = 360, onOpen = null }) {
  const canvas = h("canvas", { class: "pc-canvas", dataset: { testid: "parcoords-canvas" } });
  const tip = h("div", { class: "pc-tip", hidden: true });
  const legend = h("div", { class: "pc-legend small muted" });
  container.replaceChildren(h("div", { class: "pc-wrap" }, canvas, tip), legend);
  const margin = { top: 44, bottom: 28, left: 70, right: 70 };
  let lines = [];
  let hover = -1;
  let colorIdx = colorAxis;
  const scales = axes.map((a) => scaleFor(a, runs));

  function colorOf(run) {
    if (colorIdx < 0) return "#4e79a7";
    const v = axes[colorIdx].values.get(run.id);
    if (v === undefined || v === null || !Number.isFinite(v)) return "#b8c0cc";
    const s = scales[colorIdx];
    return viridis(s.pos(v));
  }

  function draw() {
    const width = Math.max(320, container.clientWidth);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const n = axes.length;
    const plotW = width - margin.left - margin.right;
    const xs = axes.map((_, i) => margin.left + (n === 1 ? plotW / 2 : (plotW * i) / (n - 1)));
    const y = (t) => margin.top + (1 - t) * (height - margin.top - margin.bottom);
    const spacing = n > 1 ? plotW / (n - 1) : plotW;

    // Polylines first, so axes stay readable on top; the hovered run last and bold.
    lines = runs.map((r) => {
      const pts = axes.map((a, i) => {
        const v = a.values.get(r.id);
        if (v === undefined || v === null || (a.kind === "num" && !Number.isFinite(v))) return null;
        return [xs[i], y(scales[i].pos(v))];
      });
      return { run: r, pts, color: colorOf(r) };
    });
    const order = lines.map((_, i) => i).filter((i) => i !== hover);
    if (hover >= 0) order.push(hover);
    for (const i of order) {
      const L = lines[i];
      g.strokeStyle = L.color;
      g.globalAlpha = hover >= 0 && i !== hover ? 0.18 : 0.85;
      g.lineWidth = i === hover ? 3 : 1.6;
      g.beginPath();
      let pen = false;
      for (const p of L.pts) {
        if (!p) { pen = false; continue; }
        if (pen) g.lineTo(p[0], p[1]); else g.moveTo(p[0], p[1]);
        pen = true;
      }
      g.stroke();
      g.fillStyle = L.color;
      for (const p of L.pts) if (p) { g.beginPath(); g.arc(p[0], p[1], i === hover ? 3.5 : 2.2, 0, Math.PI * 2); g.fill(); }
    }
    g.globalAlpha = 1;

    axes.forEach((a, i) => {
      const x = xs[i];
      g.strokeStyle = "#94a3b8";
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(x, y(0));
      g.lineTo(x, y(1));
      g.stroke();
      g.font = LABEL_FONT;
      g.fillStyle = i === colorIdx ? "#4338ca" : "#1e293b";
      g.textAlign = "center";
      g.fillText(ellipsize(g, a.label, Math.max(40, spacing - 8)), x, 16);
      g.font = FONT;
      g.fillStyle = "#94a3b8";
      g.fillText(`${a.group || ""}${scales[i].log ? " · log" : ""}`, x, 29);
      g.fillStyle = "#475569";
      g.textAlign = i === n - 1 && n > 1 ? "left" : "right";
      const dx = i === n - 1 && n > 1 ? 6 : -6;
      for (const [t, label] of scales[i].ticks) {
        g.beginPath();
        g.moveTo(x - 3, y(t));
        g.lineTo(x + 3, y(t));
        g.stroke();
        const text = ellipsize(g, String(label), margin.left - 12);
        // A white halo keeps tick labels readable where lines cross them.
        g.strokeStyle = "rgba(255,255,255,0.9)";
        g.lineWidth = 3;
        g.strokeText(text, x + dx, y(t) + 4);
        g.fillText(text, x + dx, y(t) + 4);
        g.strokeStyle = "#94a3b8";
        g.lineWidth = 1;
      }
    });
    container.dataset.drawn = "1";
    container.dataset.axes = String(n);
    container.dataset.lines = String(runs.length);
    drawLegend();
  }

  function drawLegend() {
    legend.replaceChildren();
    if (colorIdx < 0) return;
    const s = scales[colorIdx];
    const stops = Array.from({ length: 8 }, (_, i) => viridis(i / 7));
    const bar = h("span", { class: "pc-gradient", style: { background: `linear-gradient(90deg, ${stops.join(",")})` } });
    legend.append("Color: ", h("strong", {}, axes[colorIdx].label), " ", fmtNum(s.lo), " ", bar, " ", fmtNum(s.hi));
  }

  function distToSegment(px, py, a, b) {
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len = dx * dx + dy * dy;
    const t = len ? Math.max(0, Math.min(1, ((px - a[0]) * dx + (py - a[1]) * dy) / len)) : 0;
    return Math.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy));
  }

  function nearest(px, py) {
    let best = -1;
    let bestD = 7;
    lines.forEach((L, i) => {
      for (let k = 1; k < L.pts.length; k++) {
        const a = L.pts[k - 1];
        const b = L.pts[k];
        if (!a || !b) continue;
        const d = distToSegment(px, py, a, b);
        if (d < bestD) { bestD = d; best = i; }
      }
      for (const p of L.pts) if (p && Math.hypot(px - p[0], py - p[1]) < bestD) { bestD = Math.hypot(px - p[0], py - p[1]); best = i; }
    });
    return best;
  }

  canvas.addEventListener("mousemove", (ev) => {
    const rect = canvas.getBoundingClientRect();
    const px = ev.clientX - rect.left;
    const py = ev.clientY - rect.top;
    const i = nearest(px, py);
    if (i !== hover) { hover = i; draw(); }
    canvas.style.cursor = i >= 0 && onOpen ? "pointer" : "default";
    if (i < 0) { tip.hidden = true; return; }
    const r = lines[i].run;
    tip.replaceChildren(h("div", { class: "strong" }, r.name),
      axes.map((a) => {
        const v = a.values.get(r.id);
        return h("div", {}, h("span", { class: "muted" }, `${a.label}: `), v === undefined || v === null ? "—" : a.kind === "num" ? fmtNum(v) : String(v));
      }));
    tip.hidden = false;
    tip.style.left = `${Math.min(px + 14, canvas.clientWidth - 220)}px`;
    tip.style.top = `${py + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => { hover = -1; tip.hidden = true; draw(); });
  canvas.addEventListener("click", () => { if (hover >= 0 && onOpen) onOpen(lines[hover].run); });

  let lastW = container.clientWidth;
  const ro = new ResizeObserver(() => {
    if (Math.abs(container.clientWidth - lastW) > 2) { lastW = container.clientWidth; draw(); }
  });
  ro.observe(container);
  draw();
  return {
    redraw(ci) { colorIdx = ci; draw(); },
    destroy() { ro.disconnect(); },
  };
}
