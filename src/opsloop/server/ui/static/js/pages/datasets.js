// Datasets: the list (#/datasets) and one dataset (#/datasets/<name>?v=2&tab=profile):
// its versions, and for the chosen version its schema, profile, sample rows, a rows
// browser, the validation report and lineage.

import { api, datasetVersionPath } from "../api.js";
import { emptyState, errorBox, fmtBytes, h, loading, replace, timeCell } from "../dom.js";
import { profileTab, schemaTab } from "./datasets_profile.js";
import { lineageTab } from "./datasets_lineage.js";
import { failedCells, rowsTab, sampleTab, validationTab } from "./datasets_rows.js";

const TABS = [
  ["schema", "Schema"], ["profile", "Profile"], ["sample", "Sample rows"], ["rows", "Rows"],
  ["validation", "Validation"], ["lineage", "Lineage"],
];

/** A dataset version's status as a badge: VALID (green) or FLAGGED (amber). */
export function versionBadge(status) {
  const s = String(status || "").toLowerCase();
  return h("span", { class: `badge badge-${s}`, dataset: { testid: "status-badge", status: s },
    title: s === "flagged" ? "Stored although some rows broke its validation rules" : s }, s.toUpperCase());
}

export function kindPill(kind) {
  return h("span", { class: "pill kind-pill", title: "Dataset kind" }, kind);
}

function datasetHref(name, query = "") {
  return `#/datasets/${encodeURIComponent(name)}${query ? `?${query}` : ""}`;
}

export async function renderDatasets(ctx) {
  ctx.setTitle("Datasets");
  const search = h("input", { type: "search", class: "input", placeholder: "Search datasets", "aria-label": "Search datasets", dataset: { testid: "dataset-search" } });
  const body = h("div", {}, loading("Loading datasets…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Datasets"), h("div", { class: "muted" }, "Versioned, content-addressed data with schema, profile and validation.")),
      h("div", { class: "toolbar" }, search)),
    body));
  const list = (await api("/datasets", { signal: ctx.signal })).datasets;
  if (!list.length) {
    replace(body, emptyState("No datasets yet.", 'Create one from Python: client.datasets.create("name", "data.csv", message="first load")'));
    return;
  }
  list.sort((a, b) => b.updated_at - a.updated_at);
  const tbody = h("tbody");
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = list.filter((d) => !q || d.name.toLowerCase().includes(q) || d.description.toLowerCase().includes(q)).map((d) => {
      const href = datasetHref(d.name);
      return h("tr", { class: "clickable", dataset: { testid: "dataset-row", name: d.name }, onclick: (ev) => {
        if (!ev.target.closest("a")) location.hash = href;
      } },
        h("td", {}, h("a", { href, class: "strong" }, d.name)),
        h("td", {}, kindPill(d.kind)),
        h("td", { class: "num" }, String(d.version_count)),
        h("td", {}, d.latest_version == null ? h("span", { class: "muted" }, "—")
          : h("a", { href: datasetHref(d.name, `v=${d.latest_version}`), dataset: { testid: "latest-link" } }, `v${d.latest_version}`)),
        h("td", {}, timeCell(d.updated_at)),
        h("td", { class: "desc" }, d.description ? h("span", { title: d.description }, d.description) : h("span", { class: "muted" }, "—")));
    });
    replace(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted center" }, "No dataset matches.")));
  };
  search.addEventListener("input", draw);
  draw();
  replace(body, h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "datasets-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", { class: "num" }, "Versions"), h("th", {}, "Latest"), h("th", {}, "Updated"), h("th", {}, "Description"))),
      tbody)));
}

export async function renderDataset(ctx, name) {
  replace(ctx.root, h("div", { class: "page" }, loading("Loading dataset…")));
  const [ds, { versions }] = await Promise.all([
    api(`/datasets/${encodeURIComponent(name)}`, { signal: ctx.signal }),
    api(`/datasets/${encodeURIComponent(name)}/versions`, { signal: ctx.signal }),
  ]);
  ctx.setTitle(ds.name);
  versions.sort((a, b) => b.version - a.version);
  const state = { v: Number(ctx.query.get("v")) || (versions[0] && versions[0].version), tab: ctx.query.get("tab") || "schema" };
  if (!TABS.some(([k]) => k === state.tab)) state.tab = "schema";
  const detail = h("div", { class: "section", dataset: { testid: "version-detail" } });

  const saveState = () => {
    history.replaceState(null, "", datasetHref(ds.name, `v=${state.v}&tab=${state.tab}`));
  };

  const tbody = h("tbody", {}, versions.map((v) => h("tr", {
    class: ["clickable", v.version === state.v ? "selected" : null],
    dataset: { testid: "version-row", version: String(v.version) },
    onclick: (ev) => {
      if (ev.target.closest("a")) return;
      selectVersion(v.version);
    },
  },
    h("td", { class: "strong" }, `v${v.version}`),
    h("td", { class: "mono muted small", title: v.id }, v.id.slice(0, 12)),
    h("td", { class: "desc" }, v.message ? h("span", { title: v.message }, v.message) : h("span", { class: "muted" }, "—")),
    h("td", { class: "num" }, v.row_count.toLocaleString()),
    h("td", { class: "num" }, fmtBytes(v.size_bytes)),
    h("td", {}, versionBadge(v.status)),
    h("td", {}, timeCell(v.created_at)),
    h("td", { class: "muted" }, v.created_by || "—"),
    h("td", {}, v.version > 1 && versions.some((o) => o.version === v.version - 1)
      ? h("a", { href: `#/datasets/${encodeURIComponent(ds.name)}/diff?a=${v.version - 1}&b=${v.version}`, dataset: { testid: "diff-link" } }, `diff vs v${v.version - 1}`)
      : null))));

  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/datasets" }, "Datasets"), h("span", { class: "sep" }, "/"), ds.name),
        h("div", { class: "title-row" }, h("h1", { dataset: { testid: "dataset-name" } }, ds.name), kindPill(ds.kind)),
        ds.description ? h("div", { class: "desc-line", dataset: { testid: "dataset-description" } }, ds.description) : null,
        h("div", { class: "meta-row muted small" },
          h("span", {}, `${ds.version_count} version${ds.version_count === 1 ? "" : "s"}`),
          h("span", {}, "created ", timeCell(ds.created_at), ds.created_by ? ` by ${ds.created_by}` : ""),
          h("span", {}, "updated ", timeCell(ds.updated_at))))),
    versions.length
      ? h("div", { class: "table-wrap card versions-wrap" },
        h("table", { class: "table", dataset: { testid: "versions-table" } },
          h("thead", {}, h("tr", {}, ["Version", "ID", "Message", "Rows", "Size", "Status", "Created", "By", ""].map((t, i) => h("th", { class: i === 3 || i === 4 ? "num" : null }, t)))),
          tbody))
      : emptyState("This dataset has no versions yet."),
    detail));

  let seq = 0;
  async function selectVersion(num) {
    state.v = num;
    for (const tr of tbody.children) tr.classList.toggle("selected", tr.dataset.version === String(num));
    saveState();
    const mine = ++seq;
    replace(detail, loading(`Loading v${num}…`));
    let v;
    try {
      v = await api(datasetVersionPath(ds.name, num), { signal: ctx.signal });
    } catch (err) {
      if (err.name !== "AbortError" && mine === seq) replace(detail, errorBox(err, `Could not load v${num}`));
      return;
    }
    if (mine !== seq) return;
    renderVersion(v);
  }

  function renderVersion(v) {
    const panel = h("div", { class: "tab-panel", dataset: { testid: "tab-panel" } });
    const bad = failedCells(v.validation);
    const tabs = h("div", { class: "tabs", role: "tablist" }, TABS.map(([key, label]) => h("button", {
      class: ["tab", key === state.tab ? "active" : null], role: "tab", dataset: { tab: key, testid: `tab-${key}` },
      "aria-selected": String(key === state.tab),
      onclick: () => show(key),
    }, label, key === "validation" && v.validation && !v.validation.passed
      ? h("span", { class: "tab-count tab-bad" }, String(v.validation.total_violations)) : null)));
    const show = (key, opts = {}) => {
      state.tab = key;
      saveState();
      for (const b of tabs.children) {
        b.classList.toggle("active", b.dataset.tab === key);
        b.setAttribute("aria-selected", String(b.dataset.tab === key));
      }
      const tabCtx = { ...ctx, bad, goToRow: (row) => show("rows", { row }) };
      const view = {
        schema: () => schemaTab(v),
        profile: () => profileTab(v),
        sample: () => sampleTab(v, tabCtx),
        rows: () => rowsTab(v, tabCtx, opts),
        validation: () => validationTab(v, tabCtx),
        lineage: () => lineageTab(v, tabCtx),
      }[key];
      replace(panel, view());
    };
    replace(detail,
      h("div", { class: "section-head" },
        h("div", { class: "title-row" },
          h("h2", { dataset: { testid: "version-title" } }, `Version ${v.version}`), versionBadge(v.status),
          h("span", { class: "muted small" }, `${v.row_count.toLocaleString()} rows · ${v.columns.length} columns · ${fmtBytes(v.size_bytes)} · ${v.format}`)),
        h("span", { class: "mono muted small", title: v.content_digest }, v.content_digest.slice(0, 19))),
      v.message ? h("div", { class: "muted version-message" }, v.message) : null,
      v.derivation ? h("div", { class: "muted small" }, `Derived: ${v.derivation}`) : null,
      tabs, panel);
    show(state.tab);
  }

  if (state.v) selectVersion(state.v);
}
