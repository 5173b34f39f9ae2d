// One model version: its card, signature and details, files, lineage graph and history.

import { API, api, encodePath, modelPath, modelVersionPath } from "../api.js";
import { emptyState, errorBox, fmtBytes, h, loading, naturalCompare, replace, timeCell } from "../dom.js";
import { GraphBuilder, lineageGraph } from "../lineage.js";
import { cardTab } from "./models_card.js";

const TABS = [["card", "Model card"], ["signature", "Signature"], ["files", "Files"], ["lineage", "Lineage"], ["history", "History"]];
const MAX_DATASETS = 6; // datasets whose other readers are drawn
const MAX_RUNS = 12; // other runs drawn per dataset

function specTable(cols, testid) {
  if (!cols || !cols.length) return h("div", { class: "muted small pad" }, "None declared.");
  return h("table", { class: "table table-compact", dataset: { testid } },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Shape"), h("th", {}, "Required"))),
    h("tbody", {}, cols.map((c) => h("tr", { dataset: { name: c.name } },
      h("td", { class: "mono strong" }, c.name),
      h("td", {}, h("span", { class: "type-chip" }, c.type)),
      h("td", { class: "mono muted" }, c.shape ? `[${c.shape.map((d) => (d === -1 ? "*" : d)).join(", ")}]` : "—"),
      h("td", {}, c.optional ? h("span", { class: "muted" }, "optional") : "yes")))));
}

function showValue(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function signatureTab(v) {
  const sig = v.signature;
  const meta = v.metadata || {};
  const keys = Object.keys(meta).sort(naturalCompare);
  return h("div", { class: "grid-2" },
    h("div", {},
      sig ? [
        h("div", { class: "card" }, h("div", { class: "card-title" }, "Inputs"), specTable(sig.inputs, "signature-inputs")),
        h("div", { class: "card spaced" }, h("div", { class: "card-title" }, "Outputs"), specTable(sig.outputs, "signature-outputs")),
      ] : h("div", { class: "card" }, emptyState("No signature: inputs are not checked at predict time."))),
    h("div", { class: "card" }, h("div", { class: "card-title" }, "Details"),
      keys.length ? h("table", { class: "table table-compact kv", dataset: { testid: "model-metadata" } },
        h("tbody", {}, keys.map((k) => h("tr", {}, h("td", { class: "kv-key" }, k), h("td", { class: "kv-val mono small" }, showValue(meta[k]))))))
        : h("div", { class: "muted small pad" }, "No metadata.")));
}

function filesTab(m, v) {
  const files = Object.entries(v.files || {}).sort((a, b) => naturalCompare(a[0], b[0]));
  if (!files.length) return emptyState("This version has no files.");
  const total = files.reduce((s, [, f]) => s + f.size, 0);
  return h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "files-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, `Path (${files.length})`), h("th", { class: "num" }, `Size (${fmtBytes(total)})`), h("th", {}, "Digest"), h("th", {}, ""))),
      h("tbody", {}, files.map(([p, f]) => h("tr", { dataset: { testid: "file-row", path: p } },
        h("td", { class: "mono" }, p),
        h("td", { class: "num" }, fmtBytes(f.size)),
        h("td", { class: "mono muted small", title: f.digest }, f.digest.slice(0, 19)),
        h("td", {}, h("a", { class: "btn btn-sm", href: `${API}${modelVersionPath(m.name, v.version)}/files/${encodePath(p)}`, download: p.split("/").pop() }, "Download")))))));
}

function describeEvent(e) {
  const d = e.detail || {};
  const parts = Object.entries(d).filter(([, x]) => x !== null && x !== undefined && x !== "")
    .map(([k, x]) => `${k}: ${typeof x === "object" ? JSON.stringify(x) : x}`);
  return parts.join(" · ");
}

function historyTab(m, v, ctx) {
  const body = h("div", {}, loading("Loading history…"));
  let scope = "version";
  const seg = h("div", { class: "seg", role: "group", "aria-label": "History scope" },
    [["version", `Version ${v.version}`], ["model", "Whole model"]].map(([k, label]) => h("button", {
      class: ["seg-btn", k === scope ? "active" : null], dataset: { scope: k, testid: `history-${k}` },
      onclick: () => {
        scope = k;
        for (const b of seg.children) b.classList.toggle("active", b.dataset.scope === k);
        load();
      },
    }, label)));
  async function load() {
    replace(body, loading("Loading history…"));
    try {
      const { events } = await api(`${modelPath(m.name)}/history`, { query: { version: scope === "version" ? v.version : null, limit: 500 }, signal: ctx.signal });
      replace(body, events.length ? h("div", { class: "table-wrap card" },
        h("table", { class: "table", dataset: { testid: "history-table" } },
          h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Version"), h("th", {}, "Details"))),
          h("tbody", {}, events.map((e) => h("tr", { dataset: { testid: "history-event", action: e.action } },
            h("td", { class: "nowrap" }, timeCell(e.at)),
            h("td", { class: "strong" }, e.actor || "—"),
            h("td", {}, h("span", { class: "pill" }, e.action.replace(/_/g, " "))),
            h("td", {}, e.version != null ? `v${e.version}` : h("span", { class: "muted" }, "model")),
            h("td", { class: "desc mono small", title: describeEvent(e) }, describeEvent(e)))))))
        : emptyState("No recorded changes."));
    } catch (err) {
      if (err.name !== "AbortError") replace(body, errorBox(err, "Could not load the history"));
    }
  }
  load();
  return h("div", {}, h("div", { class: "toolbar tab-note" }, seg), body);
}

/** The graph around a version: its run, the data the run read, and who else used that data. */
async function lineageTab(box, m, v, ctx) {
  replace(box, loading("Loading lineage…"));
  try {
    const lin = await api(`${modelVersionPath(m.name, v.version)}/lineage`, { signal: ctx.signal });
    const g = new GraphBuilder();
    const me = g.model(lin.model, { current: true });
    let rid = null;
    if (lin.run) {
      rid = g.run(lin.run);
      g.edge(rid, me);
    }
    for (const d of lin.datasets) if (rid) g.edge(g.dataset(d), rid, d.context);
    if (lin.base_model) g.edge(g.model(lin.base_model), me, "base");
    let more = 0;
    const downs = await Promise.all(lin.datasets.slice(0, MAX_DATASETS).map((d) =>
      api(`/registry/lineage/datasets/${encodeURIComponent(d.dataset_version_id)}`, { signal: ctx.signal }).catch((err) => {
        if (err.name === "AbortError") throw err;
        return null;
      })));
    for (const down of downs) {
      if (!down) continue;
      const did = g.dataset(down.dataset);
      down.runs.forEach((r, i) => {
        if (i >= MAX_RUNS && r.run_id !== (lin.run && lin.run.run_id)) { more++; return; }
        const other = g.run(r);
        g.edge(did, other, r.context);
        for (const mv of r.model_versions) g.edge(other, g.model(mv));
      });
    }
    const graphBox = h("div", { class: "card lineage-box-wrap" });
    const facts = [];
    if (lin.run) {
      facts.push(h("li", {}, "Made by run ", h("a", { href: `#/runs/${encodeURIComponent(lin.run.run_id)}`, dataset: { testid: "lineage-run-link" } }, lin.run.name || lin.run.run_id.slice(0, 8)),
        lin.datasets.length ? [" from ", lin.datasets.map((d, i) => [i ? ", " : "",
          h("a", { href: `#/datasets/${encodeURIComponent(d.dataset_name)}?v=${d.version}` }, `${d.dataset_name} v${d.version}`), d.context ? ` (${d.context})` : ""])] : " (no dataset inputs recorded)"));
    } else facts.push(h("li", {}, `Registered from ${lin.source || "a local path"}, not from a run.`));
    if (lin.base_model) facts.push(h("li", {}, "Adapter on ", h("a", { href: `#/models/${encodeURIComponent(lin.base_model.name)}?v=${lin.base_model.version}` }, `${lin.base_model.name} v${lin.base_model.version}`)));
    if (more) facts.push(h("li", { class: "muted" }, `${more} more runs read the same data (not drawn).`));
    replace(box, h("ul", { class: "lineage-facts" }, facts), graphBox,
      h("div", { class: "lineage-legend muted small" },
        h("span", { class: "lg lg-dataset" }, "dataset version"), h("span", { class: "lg lg-run" }, "run"), h("span", { class: "lg lg-model" }, "model version"),
        h("span", {}, "· click a box to open it")));
    lineageGraph(graphBox, { ...g.graph(), ariaLabel: `Lineage of ${m.name} v${v.version}` });
  } catch (err) {
    if (err.name !== "AbortError") replace(box, errorBox(err, "Could not load lineage"));
  }
}

/** Fill `root` with the version's header and tabs; `onTab(key)` hears tab changes. */
export function versionPanel(root, m, v, ctx, { tab = "card", onTab = () => {} } = {}) {
  const body = h("div", { class: "tab-panel", dataset: { testid: "version-tab-panel" } });
  if (!TABS.some(([k]) => k === tab)) tab = "card";
  const tabs = h("div", { class: "tabs", role: "tablist" }, TABS.map(([k, label]) => h("button", {
    class: ["tab", k === tab ? "active" : null], role: "tab", dataset: { tab: k, testid: `vtab-${k}` }, "aria-selected": String(k === tab),
    onclick: () => show(k),
  }, label)));
  function show(k) {
    tab = k;
    onTab(k);
    for (const b of tabs.children) {
      b.classList.toggle("active", b.dataset.tab === k);
      b.setAttribute("aria-selected", String(b.dataset.tab === k));
    }
    if (k === "card") replace(body, cardTab(m, v, ctx));
    else if (k === "signature") replace(body, signatureTab(v));
    else if (k === "files") replace(body, filesTab(m, v));
    else if (k === "history") replace(body, historyTab(m, v, ctx));
    else lineageTab(body, m, v, ctx);
  }
  const uri = `models:/${m.name}/${v.version}`;
  replace(root,
    h("div", { class: "section-head" },
      h("div", { class: "title-row" },
        h("h2", { dataset: { testid: "model-version-title" } }, `${m.name} v${v.version}`),
        h("span", { class: "type-chip" }, v.flavor),
        v.aliases.map((a) => h("span", { class: "alias-chip static" }, `@${a}`))),
      h("code", { class: "uri", title: "Load or serve this exact version with this URI" }, uri)),
    v.description ? h("div", { class: "desc-line version-message", dataset: { testid: "version-description" } }, v.description) : null,
    h("div", { class: "meta-row muted small" }, h("span", {}, "created ", timeCell(v.created_at), v.created_by ? ` by ${v.created_by}` : ""),
      v.source ? h("span", { class: "mono", title: v.source }, v.source) : null),
    tabs, body);
  show(tab);
}
