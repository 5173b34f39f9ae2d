// The runs table of an experiment: columns, nesting of child runs, sort headers,
// and the column chooser popover.

import {
  fmtDuration, fmtNum, h, isSystemKey, naturalCompare, replace, runDuration, statusBadge, timeCell,
} from "../dom.js";

/** A filter-language field for a key: back-quoted so any key name parses. */
export function fieldExpr(kind, key) {
  if (kind === "attr") return key;
  const prefix = kind === "param" ? "params" : "metrics";
  if (!key.includes("`")) return `${prefix}.\`${key}\``;
  return `${prefix}."${key.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export const ATTR_COLUMNS = [
  { kind: "attr", key: "name", label: "Name", sortable: true },
  { kind: "attr", key: "status", label: "Status", sortable: true },
  { kind: "attr", key: "start_time", label: "Started", sortable: true },
  { kind: "attr", key: "duration", label: "Duration", sortable: false },
  { kind: "attr", key: "user", label: "User", sortable: true },
];

/** The default chosen columns: the first few params and non-system metrics. */
export function defaultColumns(knownParams, knownMetrics) {
  const params = [...knownParams].sort(naturalCompare).slice(0, 3);
  const metrics = [...knownMetrics].filter((k) => !isSystemKey(k)).sort(naturalCompare).slice(0, 3);
  return { params, metrics };
}

/**
 * Order runs so that children follow their parent (when the parent is on this page).
 * Returns [{run, depth, orphanParent, childCount}].
 */
export function nestRuns(runs) {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const children = new Map();
  const top = [];
  for (const r of runs) {
    if (r.parent_run_id && byId.has(r.parent_run_id) && r.parent_run_id !== r.id) {
      if (!children.has(r.parent_run_id)) children.set(r.parent_run_id, []);
      children.get(r.parent_run_id).push(r);
    } else {
      top.push(r);
    }
  }
  const out = [];
  const seen = new Set();
  const walk = (r, depth) => {
    if (seen.has(r.id)) return; // guards against parent cycles
    seen.add(r.id);
    const kids = children.get(r.id) || [];
    out.push({ run: r, depth, orphanParent: depth === 0 && r.parent_run_id ? r.parent_run_id : null, childCount: kids.length });
    for (const k of kids) walk(k, depth + 1);
  };
  for (const r of top) walk(r, 0);
  for (const r of runs) if (!seen.has(r.id)) walk(r, 0);
  return out;
}

/**
 * Render the table into `wrap`.
 * state: {columns, order: {kind,key,dir}, selected: Map, collapsed: Set}
 * handlers: {onSort(col), onSelect(run, checked), onSelectAll(runs, checked), onToggle(id)}
 */
export function renderRunsTable(wrap, runs, state, handlers) {
  const cols = [
    ...ATTR_COLUMNS,
    ...state.columns.params.map((k) => ({ kind: "param", key: k, label: k, sortable: true })),
    ...state.columns.metrics.map((k) => ({ kind: "metric", key: k, label: k, sortable: true })),
  ];
  const nested = nestRuns(runs);
  const hidden = new Set();
  for (const item of nested) {
    if (item.run.parent_run_id && (state.collapsed.has(item.run.parent_run_id) || hidden.has(item.run.parent_run_id)) && item.depth > 0) {
      hidden.add(item.run.id);
    }
  }
  const allChecked = runs.length > 0 && runs.every((r) => state.selected.has(r.id));
  const head = h("tr", {},
    h("th", { class: "col-check sticky-left" },
      h("input", { type: "checkbox", "aria-label": "Select all runs on this page", checked: allChecked,
        onchange: (e) => handlers.onSelectAll(runs, e.target.checked) })),
    cols.map((c) => headerCell(c, state.order, handlers.onSort)),
  );
  const rows = nested.filter((it) => !hidden.has(it.run.id)).map((it) => runRow(it, cols, state, handlers));
  const table = h("table", { class: "table runs-table", dataset: { testid: "runs-table" } },
    h("thead", {}, head),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: cols.length + 1, class: "muted center empty-row" },
      state.filter ? "No runs match this filter." : "No runs in this experiment yet."))),
  );
  replace(wrap, table);
}

function headerCell(col, order, onSort) {
  const active = order && order.kind === col.kind && order.key === col.key;
  const arrow = active ? (order.dir === "desc" ? " ▼" : " ▲") : "";
  const kindLabel = col.kind === "param" ? "param" : col.kind === "metric" ? "metric" : null;
  const cls = ["th", col.sortable ? "sortable" : null, active ? "sorted" : null, col.key === "name" && col.kind === "attr" ? "sticky-left col-name" : null,
    col.kind !== "attr" ? `col-${col.kind}` : null];
  return h("th", {
    class: cls,
    title: col.sortable ? `Sort by ${col.label}` : null,
    dataset: { testid: "col-header", kind: col.kind, key: col.key },
    "aria-sort": active ? (order.dir === "desc" ? "descending" : "ascending") : null,
    onclick: col.sortable ? () => onSort(col) : null,
  },
  kindLabel ? h("div", { class: `col-kind kind-${col.kind}` }, kindLabel) : null,
  h("span", { class: "col-label" }, col.label, h("span", { class: "sort-arrow" }, arrow)));
}

function runRow(item, cols, state, handlers) {
  const r = item.run;
  const checked = state.selected.has(r.id);
  const tr = h("tr", { class: ["run-row", checked ? "selected" : null, item.depth ? "child-row" : null], dataset: { testid: "run-row", id: r.id } });
  tr.append(h("td", { class: "col-check sticky-left" },
    h("input", { type: "checkbox", "aria-label": `Select run ${r.name}`, checked, dataset: { testid: "run-check" },
      onchange: (e) => handlers.onSelect(r, e.target.checked) })));
  for (const c of cols) tr.append(cell(c, item, state, handlers));
  return tr;
}

function cell(col, item, state, handlers) {
  const r = item.run;
  if (col.kind === "attr") {
    switch (col.key) {
      case "name": {
        const toggle = item.childCount
          ? h("button", { class: "twisty", title: state.collapsed.has(r.id) ? "Show child runs" : "Hide child runs",
            "aria-expanded": String(!state.collapsed.has(r.id)), onclick: () => handlers.onToggle(r.id) },
          state.collapsed.has(r.id) ? "▸" : "▾")
          : null;
        return h("td", { class: "sticky-left col-name" },
          h("div", { class: "name-cell", style: { paddingLeft: `${item.depth * 18}px` } },
            item.depth ? h("span", { class: "child-mark", "aria-hidden": "true" }, "↳") : null,
            toggle,
            h("a", { href: `#/runs/${encodeURIComponent(r.id)}`, class: "strong run-link", title: r.name }, r.name),
            item.childCount ? h("span", { class: "pill small" }, `${item.childCount} child${item.childCount > 1 ? "ren" : ""}`) : null),
          item.orphanParent
            ? h("div", { class: "small muted parent-link" }, "child of ",
              h("a", { href: `#/runs/${encodeURIComponent(item.orphanParent)}` }, item.orphanParent.slice(0, 8)))
            : null);
      }
      case "status": return h("td", {}, statusBadge(r.status));
      case "start_time": return h("td", { class: "nowrap" }, timeCell(r.start_time));
      case "duration": return h("td", { class: "nowrap num" }, fmtDuration(runDuration(r)));
      case "user": return h("td", { class: "muted" }, r.user || "—");
      default: return h("td", {}, "");
    }
  }
  if (col.kind === "param") {
    const v = r.params[col.key];
    return h("td", { class: "param-cell", title: v === undefined ? null : v }, v === undefined ? h("span", { class: "muted" }, "—") : v);
  }
  const m = r.metrics[col.key];
  if (!m) return h("td", { class: "num muted" }, "—");
  return h("td", { class: "num metric-cell", title: `${m.value} (step ${m.step})` }, fmtNum(m.value));
}

/**
 * The "Columns" button with its popover of checkboxes for every known param and metric key.
 * getState() -> {known: {params:Set, metrics:Set}, columns}; onChange(columns) applies a choice.
 */
export function columnChooser(getState, onChange, onReset) {
  const pop = h("div", { class: "popover", hidden: true, role: "dialog", "aria-label": "Choose columns", dataset: { testid: "columns-popover" } });
  const btn = h("button", { class: "btn", "aria-haspopup": "dialog", dataset: { testid: "columns-button" } }, "Columns");
  const wrap = h("div", { class: "popover-anchor" }, btn, pop);
  const search = h("input", { type: "search", class: "input input-sm", placeholder: "Filter keys" });
  const lists = h("div", { class: "popover-lists" });

  const group = (title, kind, keys, chosen) => {
    const q = search.value.trim().toLowerCase();
    const shown = keys.filter((k) => !q || k.toLowerCase().includes(q));
    return h("div", { class: "popover-group" },
      h("div", { class: "popover-title" }, `${title} (${keys.length})`),
      shown.length ? shown.map((k) => h("label", { class: "check-row", title: k },
        h("input", { type: "checkbox", checked: chosen.includes(k), dataset: { testid: `column-option-${kind}`, key: k },
          onchange: (e) => {
            const cur = getState().columns;
            const list = kind === "param" ? cur.params : cur.metrics;
            const next = e.target.checked ? [...list.filter((x) => x !== k), k] : list.filter((x) => x !== k);
            onChange(kind === "param" ? { ...cur, params: next } : { ...cur, metrics: next });
          } }),
        h("span", {}, k)))
        : h("div", { class: "muted small" }, keys.length ? "No match" : "None in the loaded runs"));
  };
  const draw = () => {
    const { known, columns } = getState();
    replace(lists,
      group("Params", "param", [...known.params].sort(naturalCompare), columns.params),
      group("Metrics", "metric", [...known.metrics].sort((a, b) => (isSystemKey(a) - isSystemKey(b)) || naturalCompare(a, b)), columns.metrics));
  };
  search.addEventListener("input", draw);
  replace(pop, search, lists, h("div", { class: "popover-foot" },
    h("button", { class: "btn btn-link", onclick: () => { onReset(); draw(); } }, "Reset to default")));
  const close = (ev) => {
    if (!wrap.contains(ev.target)) { pop.hidden = true; document.removeEventListener("mousedown", close); }
  };
  btn.addEventListener("click", () => {
    pop.hidden = !pop.hidden;
    if (!pop.hidden) {
      draw();
      search.focus();
      document.addEventListener("mousedown", close);
    } else {
      document.removeEventListener("mousedown", close);
    }
  });
  return { el: wrap, redraw: () => { if (!pop.hidden) draw(); }, setCount: (n) => { btn.textContent = `Columns (${n})`; } };
}
