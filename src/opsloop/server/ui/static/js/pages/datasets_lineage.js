// A dataset version's lineage: the version it was split from, the versions split from
// it, the runs that read it and the model versions those runs made, as tables and as
// a graph.

import { api } from "../api.js";
import { emptyState, errorBox, h, loading, replace, statusBadge, timeCell } from "../dom.js";
import { GraphBuilder, lineageGraph } from "../lineage.js";

const asLineage = (x) => ({ dataset_version_id: x.id, dataset_name: x.dataset_name, version: x.version, row_count: x.row_count });

function versionLink(x, testid) {
  return h("a", { class: "chip-link", href: `#/datasets/${encodeURIComponent(x.dataset_name)}?v=${x.version}`, dataset: { testid } }, `${x.dataset_name} v${x.version}`);
}

function runsTable(runs, made, down) {
  return h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "lineage-runs" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Read as"), h("th", {}, "Status"), h("th", {}, "Recorded"), h("th", {}, "Model versions from the run"))),
      h("tbody", {}, runs.map((r) => h("tr", { dataset: { testid: "lineage-run", id: r.run_id } },
        h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, class: "strong", dataset: { testid: "run-link" } }, r.run_name || r.run_id.slice(0, 8))),
        h("td", {}, h("span", { class: "pill" }, r.context)),
        h("td", {}, statusBadge(r.status)),
        h("td", {}, timeCell(r.created_at)),
        h("td", {}, (made.get(r.run_id) || []).length
          ? made.get(r.run_id).map((m) => h("a", { class: "chip-link", href: `#/models/${encodeURIComponent(m.name)}?v=${m.version}`, dataset: { testid: "model-link" } }, `${m.name} v${m.version}`))
          : h("span", { class: "muted" }, down ? "none" : "—")))))));
}

export function lineageTab(v, ctx) {
  const box = h("div", {}, loading("Loading lineage…"));
  const id = encodeURIComponent(v.id);
  const optional = (p) => p.catch((err) => (err.name === "AbortError" ? Promise.reject(err) : null));
  Promise.all([
    api(`/dataset-versions/${id}/runs`, { signal: ctx.signal }),
    optional(api(`/registry/lineage/datasets/${id}`, { signal: ctx.signal })),
    optional(api(`/dataset-versions/${id}/children`, { signal: ctx.signal })),
    v.parent_version_id ? optional(api(`/dataset-versions/${encodeURIComponent(v.parent_version_id)}`, { signal: ctx.signal })) : null,
  ]).then(([{ runs }, down, kids, parent]) => {
    const children = (kids && kids.versions) || [];
    const made = new Map();
    for (const r of (down && down.runs) || []) made.set(r.run_id, r.model_versions);
    const g = new GraphBuilder();
    const me = g.dataset(asLineage(v), { current: true });
    if (parent) g.edge(g.dataset(asLineage(parent)), me, "split");
    for (const c of children) g.edge(me, g.dataset(asLineage(c)), "split");
    for (const r of runs) {
      const rid = g.run({ run_id: r.run_id, name: r.run_name, status: r.status });
      g.edge(me, rid, r.context);
      for (const m of made.get(r.run_id) || []) g.edge(rid, g.model(m));
    }
    const graphBox = h("div", { class: "card lineage-box-wrap" });
    const derived = [];
    if (parent) derived.push(h("li", { dataset: { testid: "lineage-parent" } }, "Split from ", versionLink(parent, "parent-link")));
    if (children.length) derived.push(h("li", { dataset: { testid: "lineage-children" } }, "Split into ", children.map((c) => versionLink(c, "child-link"))));
    replace(box,
      derived.length ? h("ul", { class: "lineage-facts" }, derived) : null,
      runs.length ? runsTable(runs, made, down)
        : emptyState("No run has read this version yet.", `Record it with client.datasets.log_input(run_id, "${v.dataset_name}@${v.version}").`),
      runs.length || derived.length
        ? h("section", { class: "section" }, h("div", { class: "section-head" }, h("h2", {}, "Graph")), graphBox) : null);
    if (runs.length || derived.length) lineageGraph(graphBox, { ...g.graph(), ariaLabel: `Lineage of ${v.dataset_name} v${v.version}` });
  }).catch((err) => {
    if (err.name !== "AbortError") replace(box, errorBox(err, "Could not load lineage"));
  });
  return box;
}
