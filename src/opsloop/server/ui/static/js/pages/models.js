// The model registry: the list (#/models) and one model (#/models/<name>?v=3&tab=card):
// its aliases, tags and versions, and for the chosen version the version panel.

import { api, modelPath } from "../api.js";
import { emptyState, h, loading, naturalCompare, replace, statusBadge, timeCell } from "../dom.js";
import { versionPanel } from "./models_version.js";

export function modelHref(name, version = null, tab = null) {
  const q = new URLSearchParams();
  if (version != null) q.set("v", String(version));
  if (tab) q.set("tab", tab);
  const s = q.toString();
  return `#/models/${encodeURIComponent(name)}${s ? `?${s}` : ""}`;
}

/** An alias as a chip, e.g. "@champion v3", linking to that version. */
export function aliasChip(name, alias, version = null, { showVersion = true } = {}) {
  return h("a", { class: "alias-chip", href: modelHref(name, version), dataset: { testid: "alias-chip", alias },
    title: version != null ? `${name}@${alias} is version ${version}` : `${name}@${alias}` },
  `@${alias}`, version != null && showVersion ? h("span", { class: "alias-v" }, `v${version}`) : null);
}

export async function renderModels(ctx) {
  ctx.setTitle("Models");
  const search = h("input", { type: "search", class: "input", placeholder: "Search models", "aria-label": "Search models", dataset: { testid: "model-search" } });
  const body = h("div", {}, loading("Loading models…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Models"), h("div", { class: "muted" }, "Registered models, their versions, aliases and lineage.")),
      h("div", { class: "toolbar" }, search)),
    body));
  const models = (await api("/registry/models", { signal: ctx.signal })).models;
  if (!models.length) {
    replace(body, emptyState("No registered models yet.", 'Register one from Python: client.registry.register("name", "runs:/<run_id>/model")'));
    return;
  }
  models.sort((a, b) => b.updated_at - a.updated_at);
  const tbody = h("tbody");
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = models.filter((m) => !q || m.name.toLowerCase().includes(q) || m.description.toLowerCase().includes(q)
      || Object.keys(m.aliases).some((a) => a.toLowerCase().includes(q))).map((m) => {
      const href = modelHref(m.name);
      const aliases = Object.entries(m.aliases).sort((x, y) => naturalCompare(x[0], y[0]));
      return h("tr", { class: "clickable", dataset: { testid: "model-row", name: m.name }, onclick: (ev) => {
        if (!ev.target.closest("a")) location.hash = href;
      } },
        h("td", {}, h("a", { href, class: "strong" }, m.name)),
        h("td", {}, h("span", { class: "pill" }, m.kind)),
        h("td", {}, m.latest_version == null ? h("span", { class: "muted" }, "—") : h("a", { href: modelHref(m.name, m.latest_version) }, `v${m.latest_version}`)),
        h("td", { class: "num" }, String(m.version_count)),
        h("td", {}, h("div", { class: "chips" }, aliases.length ? aliases.map(([a, v]) => aliasChip(m.name, a, v)) : h("span", { class: "muted" }, "—"))),
        h("td", {}, timeCell(m.updated_at)),
        h("td", { class: "desc" }, m.description ? h("span", { title: m.description }, m.description) : h("span", { class: "muted" }, "—")));
    });
    replace(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted center" }, "No model matches.")));
  };
  search.addEventListener("input", draw);
  draw();
  replace(body, h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "models-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Latest"), h("th", { class: "num" }, "Versions"), h("th", {}, "Aliases"), h("th", {}, "Updated"), h("th", {}, "Description"))),
      tbody)));
}

function kv(obj, testid, empty) {
  const keys = Object.keys(obj || {}).sort(naturalCompare);
  if (!keys.length) return h("div", { class: "muted small pad" }, empty);
  return h("table", { class: "table table-compact kv", dataset: { testid } },
    h("tbody", {}, keys.map((k) => h("tr", { dataset: { key: k } }, h("td", { class: "kv-key", title: k }, k), h("td", { class: "kv-val" }, obj[k])))));
}

export async function renderModel(ctx, name) {
  replace(ctx.root, h("div", { class: "page" }, loading("Loading model…")));
  const [m, { versions }, { aliases }] = await Promise.all([
    api(modelPath(name), { signal: ctx.signal }),
    api(`${modelPath(name)}/versions`, { signal: ctx.signal }),
    api(`${modelPath(name)}/aliases`, { signal: ctx.signal }),
  ]);
  ctx.setTitle(m.name);
  versions.sort((a, b) => b.version - a.version);
  const state = { v: Number(ctx.query.get("v")) || (versions[0] && versions[0].version), tab: ctx.query.get("tab") || "card" };
  const panel = h("div", { class: "section", dataset: { testid: "model-version-panel" } });
  const runNames = new Map();

  const runCell = (v) => {
    if (!v.source_run_id) return h("span", { class: "muted", title: v.source }, v.source ? "local path" : "—");
    return h("a", { href: `#/runs/${encodeURIComponent(v.source_run_id)}`, dataset: { testid: "source-run", run: v.source_run_id }, title: v.source }, v.source_run_id.slice(0, 8));
  };
  const tbody = h("tbody", {}, versions.map((v) => h("tr", {
    class: ["clickable", v.version === state.v ? "selected" : null], dataset: { testid: "model-version-row", version: String(v.version) },
    onclick: (ev) => { if (!ev.target.closest("a")) select(v.version); },
  },
    h("td", { class: "strong" }, `v${v.version}`),
    h("td", {}, h("span", { class: "type-chip" }, v.flavor)),
    h("td", {}, runCell(v)),
    h("td", {}, statusBadge(v.status)),
    h("td", {}, timeCell(v.created_at)),
    h("td", { class: "muted" }, v.created_by || "—"),
    h("td", {}, h("div", { class: "chips" }, v.aliases.map((a) => aliasChip(m.name, a, v.version, { showVersion: false })))),
    h("td", { class: "desc" }, v.description ? h("span", { title: v.description }, v.description) : h("span", { class: "muted" }, "—")))));

  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), h("span", { class: "sep" }, "/"), m.name),
        h("div", { class: "title-row" }, h("h1", { dataset: { testid: "model-name" } }, m.name), h("span", { class: "pill" }, m.kind)),
        m.description ? h("div", { class: "desc-line", dataset: { testid: "model-description" } }, m.description) : null,
        h("div", { class: "meta-row muted small" },
          h("span", {}, `${m.version_count} version${m.version_count === 1 ? "" : "s"}`),
          h("span", {}, "created ", timeCell(m.created_at), m.created_by ? ` by ${m.created_by}` : ""),
          h("span", {}, "updated ", timeCell(m.updated_at))))),
    h("div", { class: "grid-2" },
      h("div", { class: "card" }, h("div", { class: "card-title" }, `Aliases (${aliases.length})`),
        aliases.length ? h("table", { class: "table table-compact", dataset: { testid: "aliases-table" } },
          h("thead", {}, h("tr", {}, h("th", {}, "Alias"), h("th", {}, "Version"), h("th", {}, "Moved"), h("th", {}, "By"))),
          h("tbody", {}, aliases.map((a) => h("tr", { dataset: { alias: a.alias } },
            h("td", {}, aliasChip(m.name, a.alias)),
            h("td", {}, h("a", { href: modelHref(m.name, a.version) }, `v${a.version}`)),
            h("td", {}, timeCell(a.updated_at)),
            h("td", { class: "muted" }, a.updated_by || "—")))))
          : h("div", { class: "muted small pad" }, "No aliases. Point one at a version with client.registry.set_alias(name, \"champion\", 1).")),
      h("div", { class: "card" }, h("div", { class: "card-title" }, `Tags (${Object.keys(m.tags).length})`), kv(m.tags, "model-tags", "No tags."))),
    h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Versions")),
      versions.length ? h("div", { class: "table-wrap card versions-wrap" },
        h("table", { class: "table", dataset: { testid: "model-versions-table" } },
          h("thead", {}, h("tr", {}, ["Version", "Flavor", "Source run", "Status", "Created", "By", "Aliases", "Description"].map((t) => h("th", {}, t)))),
          tbody)) : emptyState("No versions yet.")),
    panel));

  // Show run names instead of ids once they are known.
  const runIds = [...new Set(versions.map((v) => v.source_run_id).filter(Boolean))].slice(0, 50);
  Promise.all(runIds.map((id) => api(`/runs/${encodeURIComponent(id)}`, { signal: ctx.signal }).then((r) => runNames.set(id, r.name)).catch(() => {})))
    .then(() => {
      for (const a of tbody.querySelectorAll("[data-testid=source-run]")) if (runNames.has(a.dataset.run)) a.textContent = runNames.get(a.dataset.run);
    });

  function select(num) {
    state.v = num;
    for (const tr of tbody.children) tr.classList.toggle("selected", tr.dataset.version === String(num));
    history.replaceState(null, "", modelHref(m.name, num, state.tab));
    const v = versions.find((x) => x.version === num);
    if (!v) {
      replace(panel, emptyState(`Version ${num} does not exist.`));
      return;
    }
    versionPanel(panel, m, v, ctx, {
      tab: state.tab,
      onTab: (t) => {
        state.tab = t;
        history.replaceState(null, "", modelHref(m.name, state.v, t));
      },
    });
  }

  if (state.v) select(state.v);
}
