// The runs of one experiment: server-side filter, sort and pages; chosen columns;
// selection for comparison.

import { api } from "../api.js";
import { errorBox, h, loading, replace, showListError, store, timeCell } from "../dom.js";
import { columnChooser, defaultColumns, fieldExpr, renderRunsTable } from "./runs_table.js";

const FILTER_EXAMPLES = [
  'metrics.f1 > 0.9 and params.model = "rf"',
  'status = "FINISHED"',
  'name ilike "%baseline%"',
  "params.lr < 0.01 or tags.team = \"a\"",
];

function parseSort(s) {
  // "metric:f1:desc" (kind:key:dir, key may contain colons)
  if (!s) return { kind: "attr", key: "start_time", dir: "desc" };
  const first = s.indexOf(":");
  const last = s.lastIndexOf(":");
  if (first < 0 || last === first) return { kind: "attr", key: "start_time", dir: "desc" };
  const dir = s.slice(last + 1) === "asc" ? "asc" : "desc";
  return { kind: s.slice(0, first), key: s.slice(first + 1, last), dir };
}

function pageSizeFrom(s) {
  const n = Number(s);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : null;
}

export async function renderRuns(ctx, expId) {
  const S = {
    filter: ctx.query.get("filter") || "",
    order: parseSort(ctx.query.get("sort")),
    pageSize: pageSizeFrom(ctx.query.get("size")) || store.get("pageSize", 50),
    tokens: [null], // page tokens; tokens[i] fetches page i
    page: 0,
    next: null,
    total: null,
    runs: [],
    known: { params: new Set(), metrics: new Set() },
    columns: store.get(`columns.${expId}`, null),
    selected: new Map(),
    collapsed: new Set(),
    seq: 0,
  };

  const header = h("div", { class: "page-header" }, h("div", {}, h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments")), h("h1", {}, "…")));
  const filterInput = h("input", {
    type: "text", class: "input mono filter-input", value: S.filter, spellcheck: "false", autocomplete: "off",
    placeholder: 'Filter runs, e.g. metrics.f1 > 0.9 and params.model = "rf"', "aria-label": "Filter runs",
    dataset: { testid: "filter-input" },
  });
  const filterErr = h("div", { class: "filter-error", role: "alert", dataset: { testid: "filter-error" }, hidden: true });
  const compareBtn = h("button", { class: "btn btn-primary", disabled: true, dataset: { testid: "compare-button" }, onclick: () => {
    const ids = [...S.selected.keys()];
    location.hash = `#/compare?runs=${ids.map(encodeURIComponent).join(",")}`;
  } }, "Compare");
  const clearSel = h("button", { class: "btn btn-link", hidden: true, onclick: () => { S.selected.clear(); draw(); } }, "Clear selection");
  const tableWrap = h("div", { class: "table-wrap card runs-wrap" }, loading("Loading runs…"));
  const countEl = h("span", { class: "muted", dataset: { testid: "run-count" } });
  const prevBtn = h("button", { class: "btn", disabled: true, dataset: { testid: "prev-page" }, onclick: () => go(S.page - 1) }, "‹ Prev");
  const nextBtn = h("button", { class: "btn", disabled: true, dataset: { testid: "next-page" }, onclick: () => go(S.page + 1) }, "Next ›");
  const pageLabel = h("span", { class: "muted small" });
  const sizeSel = h("select", { class: "input input-sm", "aria-label": "Runs per page", onchange: (e) => {
    S.pageSize = Number(e.target.value);
    store.set("pageSize", S.pageSize);
    reset();
  } }, [...new Set([25, 50, 100, 250, S.pageSize])].sort((a, b) => a - b)
    .map((n) => h("option", { value: String(n), selected: n === S.pageSize }, `${n} / page`)));

  const chooser = columnChooser(
    () => ({ known: S.known, columns: S.columns }),
    (cols) => { S.columns = cols; store.set(`columns.${expId}`, cols); draw(); },
    () => { S.columns = defaultColumns(S.known.params, S.known.metrics); store.set(`columns.${expId}`, null); draw(); },
  );

  const apply = () => { S.filter = filterInput.value.trim(); reset(); };
  filterInput.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  const examples = h("details", { class: "filter-help" }, h("summary", {}, "Syntax"),
    h("div", { class: "small" },
      h("p", {}, "Compare ", h("code", {}, "metrics.<key>"), ", ", h("code", {}, "params.<key>"), ", ", h("code", {}, "tags.<key>"),
        " or ", h("code", {}, "name, status, user, start_time"), " with = != < <= > >= like ilike in, is null; combine with and / or / not and parentheses."),
      h("ul", { class: "examples" }, FILTER_EXAMPLES.map((ex) => h("li", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); filterInput.value = ex; apply(); } }, h("code", {}, ex)))))));

  replace(ctx.root, h("div", { class: "page page-wide" },
    header,
    h("div", { class: "toolbar runs-toolbar" },
      h("div", { class: "filter-box" }, filterInput,
        h("button", { class: "btn", onclick: apply, dataset: { testid: "filter-apply" } }, "Search"),
        h("button", { class: "btn btn-link", onclick: () => { filterInput.value = ""; apply(); } }, "Clear")),
      h("div", { class: "toolbar-right" }, chooser.el, clearSel, compareBtn)),
    examples,
    filterErr,
    tableWrap,
    h("div", { class: "pager" }, countEl, h("div", { class: "pager-right" }, sizeSel, pageLabel, prevBtn, nextBtn))));

  // The experiment header loads alongside the first page of runs.
  api(`/experiments/${encodeURIComponent(expId)}`, { signal: ctx.signal }).then((exp) => {
    ctx.setTitle(exp.name);
    replace(header,
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), h("span", { class: "sep" }, "/"), exp.name),
        h("h1", { dataset: { testid: "experiment-name" } }, exp.name),
        exp.description ? h("div", { class: "muted desc-line" }, exp.description) : null,
        h("div", { class: "meta-row small muted" },
          h("span", {}, "ID ", h("span", { class: "mono" }, exp.id)),
          h("span", {}, "Created ", timeCell(exp.created_at)),
          Object.entries(exp.tags || {}).map(([k, v]) => h("span", { class: "tag-chip" }, h("b", {}, k), " ", v)))));
  }).catch((err) => {
    if (err.name === "AbortError") return;
    replace(header, errorBox(err, "Could not load the experiment"));
  });

  function syncHash() {
    const q = new URLSearchParams();
    if (S.filter) q.set("filter", S.filter);
    const o = S.order;
    if (!(o.kind === "attr" && o.key === "start_time" && o.dir === "desc")) q.set("sort", `${o.kind}:${o.key}:${o.dir}`);
    const qs = q.toString();
    history.replaceState(null, "", `#/experiments/${encodeURIComponent(expId)}${qs ? `?${qs}` : ""}`);
  }

  function reset() {
    S.tokens = [null];
    S.page = 0;
    syncHash();
    load();
  }

  function go(page) {
    if (page < 0 || page >= S.tokens.length) return;
    S.page = page;
    load();
  }

  async function load() {
    const seq = ++S.seq;
    tableWrap.classList.add("is-loading");
    const o = S.order;
    const body = {
      experiment_ids: [expId],
      filter: S.filter || null,
      order_by: [`${fieldExpr(o.kind, o.key)} ${o.dir.toUpperCase()}`],
      max_results: S.pageSize,
      page_token: S.tokens[S.page],
    };
    let page;
    try {
      page = await api("/runs/search", { method: "POST", body, signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError" || seq !== S.seq) return;
      showListError(err, { filterErr, tableWrap, countEl, prevBtn, nextBtn, noun: "runs" });
      filterInput.setAttribute("aria-invalid", "true");
      S.runs = [];
      return;
    }
    if (seq !== S.seq) return;
    filterErr.hidden = true;
    filterInput.removeAttribute("aria-invalid");
    S.runs = page.runs;
    S.next = page.next_page_token;
    S.total = page.total;
    S.tokens = S.tokens.slice(0, S.page + 1);
    if (S.next) S.tokens.push(S.next);
    for (const r of page.runs) {
      for (const k of Object.keys(r.params)) S.known.params.add(k);
      for (const k of Object.keys(r.metrics)) S.known.metrics.add(k);
    }
    if (!S.columns) S.columns = defaultColumns(S.known.params, S.known.metrics);
    tableWrap.classList.remove("is-loading");
    draw();
  }

  function draw() {
    renderRunsTable(tableWrap, S.runs, S, {
      onSort: (col) => {
        const same = S.order.kind === col.kind && S.order.key === col.key;
        const firstDir = col.kind === "metric" || col.key === "start_time" ? "desc" : "asc";
        S.order = { kind: col.kind, key: col.key, dir: same ? (S.order.dir === "desc" ? "asc" : "desc") : firstDir };
        reset();
      },
      onSelect: (run, on) => { if (on) S.selected.set(run.id, run.name); else S.selected.delete(run.id); draw(); },
      onSelectAll: (runs, on) => { for (const r of runs) { if (on) S.selected.set(r.id, r.name); else S.selected.delete(r.id); } draw(); },
      onToggle: (id) => { if (S.collapsed.has(id)) S.collapsed.delete(id); else S.collapsed.add(id); draw(); },
    });
    const n = S.selected.size;
    compareBtn.disabled = n < 2;
    compareBtn.textContent = n ? `Compare (${n})` : "Compare";
    compareBtn.title = n < 2 ? "Select two or more runs to compare" : "";
    clearSel.hidden = n === 0;
    chooser.setCount(S.columns.params.length + S.columns.metrics.length);
    chooser.redraw();
    const start = S.page * S.pageSize;
    const total = S.total == null ? "" : `${S.total} run${S.total === 1 ? "" : "s"}`;
    countEl.textContent = S.runs.length
      ? `${total}${total ? " · " : ""}showing ${start + 1}–${start + S.runs.length}${S.filter ? " (filtered)" : ""}`
      : total || "0 runs";
    pageLabel.textContent = `Page ${S.page + 1}`;
    prevBtn.disabled = S.page === 0;
    nextBtn.disabled = !S.next;
  }

  await load();
}
