// Lineage graphs as SVG: dataset versions -> runs -> model versions, drawn as
// a left-to-right DAG of boxes and arrows. Every node is a link. Built through
// the DOM (createElementNS + textContent), never from markup, so names and
// aliases cannot inject anything.

const NS = "http://www.w3.org/2000/svg";
const BOX_W = 210;
const BOX_H = 50;
const COL_GAP = 90;
const ROW_GAP = 18;
const PAD = 16;
const KIND_LABEL = {
  dataset: "DATASET", run: "RUN", model: "MODEL",
  trace: "TRACES", annotation: "FEEDBACK", evaluation: "EVALUATION", alias: "ALIAS MOVE",
};

/** Create an SVG element; `attrs` become attributes, children are nodes or text. */
export function svgEl(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Cut `text` to about `max` characters with an ellipsis (SVG text does not wrap or clip). */
export function clip(text, max) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, Math.max(1, max - 1))}…` : s;
}

/**
 * Column of each node: its longest path from a source, so arrows always point right.
 * Cycles (which lineage should never have) are cut where they are met.
 */
export function layers(nodes, edges) {
  const incoming = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) if (incoming.has(e.to) && incoming.has(e.from)) incoming.get(e.to).push(e.from);
  const depth = new Map();
  const visiting = new Set();
  const visit = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const p of incoming.get(id)) d = Math.max(d, visit(p) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  for (const n of nodes) visit(n.id);
  return depth;
}

/** Node positions: columns by layer, rows ordered by their parents' rows (fewer crossings). */
export function layout(nodes, edges) {
  const depth = layers(nodes, edges);
  const cols = [];
  for (const n of nodes) {
    const d = depth.get(n.id);
    (cols[d] ||= []).push(n);
  }
  const parents = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) if (parents.has(e.to)) parents.get(e.to).push(e.from);
  const rowOf = new Map();
  cols.forEach((col, ci) => {
    if (ci > 0) {
      const bary = (n) => {
        const ps = parents.get(n.id).filter((p) => rowOf.has(p));
        return ps.length ? ps.reduce((s, p) => s + rowOf.get(p), 0) / ps.length : Infinity;
      };
      const keyed = col.map((n, i) => ({ n, i, b: bary(n) }));
      keyed.sort((a, b) => (a.b - b.b) || (a.i - b.i));
      col.splice(0, col.length, ...keyed.map((k) => k.n));
    }
    col.forEach((n, ri) => rowOf.set(n.id, ri));
  });
  const tallest = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
  const height = PAD * 2 + tallest * BOX_H + (tallest - 1) * ROW_GAP;
  const pos = new Map();
  cols.forEach((col, ci) => {
    if (!col) return;
    const colH = col.length * BOX_H + (col.length - 1) * ROW_GAP;
    const top = (height - colH) / 2;
    col.forEach((n, ri) => pos.set(n.id, { x: PAD + ci * (BOX_W + COL_GAP), y: top + ri * (BOX_H + ROW_GAP) }));
  });
  const width = PAD * 2 + cols.length * BOX_W + Math.max(0, cols.length - 1) * COL_GAP;
  return { pos, width, height };
}

function edgePath(a, b) {
  const x1 = a.x + BOX_W;
  const y1 = a.y + BOX_H / 2;
  const x2 = b.x - 2;
  const y2 = b.y + BOX_H / 2;
  const mid = (x1 + x2) / 2;
  return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
}

/**
 * Draw a lineage DAG into `container`.
 * nodes: [{id, kind: "dataset"|"run"|"model", label, sub, href, current, title}]
 * edges: [{from, to, label}]
 * The SVG gets data-testid="lineage-graph" and each node data-testid="lineage-node"
 * with data-kind and data-id; the container's svg gets data-drawn="1".
 */
export function lineageGraph(container, { nodes, edges, ariaLabel = "Lineage graph" }) {
  const known = new Set(nodes.map((n) => n.id));
  const live = edges.filter((e) => known.has(e.from) && known.has(e.to));
  const { pos, width, height } = layout(nodes, live);
  const arrowId = `arrow-${Math.random().toString(36).slice(2, 9)}`;
  const svg = svgEl("svg", {
    class: "lineage-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": ariaLabel, "data-testid": "lineage-graph", "data-drawn": "1",
  });
  svg.appendChild(svgEl("defs", {},
    svgEl("marker", { id: arrowId, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "lineage-arrow" }))));
  const edgeLayer = svgEl("g", { class: "lineage-edges" });
  for (const e of live) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    edgeLayer.appendChild(svgEl("path", {
      d: edgePath(a, b), class: "lineage-edge", "marker-end": `url(#${arrowId})`,
      "data-testid": "lineage-edge", "data-from": e.from, "data-to": e.to,
    }));
    if (e.label) {
      const x = (a.x + BOX_W + b.x) / 2;
      const y = (a.y + b.y) / 2 + BOX_H / 2 - 5;
      edgeLayer.appendChild(svgEl("text", { x, y, class: "lineage-edge-label", "text-anchor": "middle" }, clip(e.label, 14)));
    }
  }
  svg.appendChild(edgeLayer);
  const nodeLayer = svgEl("g", { class: "lineage-nodes" });
  for (const n of nodes) {
    const p = pos.get(n.id);
    const box = svgEl("g", {
      class: `lineage-node kind-${n.kind}${n.current ? " current" : ""}`, transform: `translate(${p.x},${p.y})`,
      "data-testid": "lineage-node", "data-kind": n.kind, "data-id": n.id,
    },
    svgEl("title", {}, n.title || [n.label, n.sub].filter(Boolean).join("\n")),
    svgEl("rect", { width: BOX_W, height: BOX_H, rx: 7, ry: 7, class: "lineage-box" }),
    svgEl("rect", { width: 5, height: BOX_H, rx: 2, class: "lineage-stripe" }),
    svgEl("text", { x: 14, y: 15, class: "lineage-kind" }, KIND_LABEL[n.kind] || n.kind.toUpperCase()),
    svgEl("text", { x: 14, y: 31, class: "lineage-label" }, clip(n.label, 26)),
    n.sub ? svgEl("text", { x: 14, y: 44, class: "lineage-sub" }, clip(n.sub, 32)) : null);
    nodeLayer.appendChild(n.href && !n.current ? svgEl("a", { href: n.href, class: "lineage-link", "aria-label": `${n.kind} ${n.label}` }, box) : box);
  }
  svg.appendChild(nodeLayer);
  container.replaceChildren(svg);
  return svg;
}

// ------------------------------------------------------------------ graph building

/** Accumulates nodes and edges without duplicates. */
export class GraphBuilder {
  constructor() {
    this.nodes = new Map();
    this.edges = new Map();
  }

  dataset(d, { current = false } = {}) {
    const id = `dataset:${d.dataset_version_id}`;
    if (!this.nodes.has(id)) {
      const named = d.dataset_name != null;
      this.nodes.set(id, {
        id, kind: "dataset", current,
        label: named ? `${d.dataset_name} v${d.version}` : d.dataset_version_id.slice(0, 12),
        sub: d.row_count != null ? `${d.row_count.toLocaleString()} rows` : "",
        href: named ? `#/datasets/${encodeURIComponent(d.dataset_name)}?v=${d.version}` : null,
      });
    } else if (current) this.nodes.get(id).current = true;
    return id;
  }

  run(r, { current = false } = {}) {
    const id = `run:${r.run_id}`;
    if (!this.nodes.has(id)) {
      this.nodes.set(id, {
        id, kind: "run", current, label: r.name || r.run_id.slice(0, 8),
        sub: [r.status, r.run_id.slice(0, 8)].filter(Boolean).join(" · "),
        href: `#/runs/${encodeURIComponent(r.run_id)}`,
      });
    }
    return id;
  }

  model(m, { current = false } = {}) {
    const id = `model:${m.version_id}`;
    if (!this.nodes.has(id)) {
      this.nodes.set(id, {
        id, kind: "model", current, label: `${m.name} v${m.version}`,
        sub: (m.aliases || []).map((a) => `@${a}`).join(" "),
        href: `#/models/${encodeURIComponent(m.name)}?v=${m.version}`,
      });
    } else if (current) this.nodes.get(id).current = true;
    return id;
  }

  edge(from, to, label = "") {
    const k = `${from}>${to}`;
    if (!this.edges.has(k)) this.edges.set(k, { from, to, label });
  }

  graph() {
    return { nodes: [...this.nodes.values()], edges: [...this.edges.values()] };
  }
}
