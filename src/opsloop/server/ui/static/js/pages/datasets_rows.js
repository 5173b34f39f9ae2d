// A dataset version's rows: the stored sample, a paged rows browser, the validation
// report (cells that broke a rule are marked everywhere rows are shown).

import { api } from "../api.js";
import { emptyState, errorBox, h, loading, replace } from "../dom.js";

const PAGE_SIZES = [25, 50, 100, 500];
const MAX_CELL = 200;

/** Cells that broke a rule: Map "row\0column" -> [rule names], from the report's examples. */
export function failedCells(report) {
  const out = new Map();
  for (const r of (report && report.rules) || []) {
    for (const ex of r.examples || []) {
      if (ex.row === null || ex.row === undefined) continue;
      const k = `${ex.row}\u0000${r.column}`;
      if (!out.has(k)) out.set(k, []);
      out.get(k).push(r.name || r.rule);
    }
  }
  return out;
}

function cell(value) {
  if (value === null || value === undefined) return h("span", { class: "null-val" }, "null");
  // Data shows as stored: no rounding of numbers.
  let s = typeof value === "object" ? JSON.stringify(value) : String(value);
  const full = typeof value === "object" ? s : String(value);
  if (s.length > MAX_CELL) s = `${s.slice(0, MAX_CELL)}…`;
  return h("span", { title: full.length > 40 ? full.slice(0, 2000) : null }, s);
}

/** Names of the numeric columns of a schema ([{name, type}]), to align them right. */
export function numericColumns(schema) {
  return new Set((schema || []).filter((c) => /^(u?int\d*|float\d*|double|half_float|decimal)/.test(c.type)).map((c) => c.name));
}

/**
 * A table of rows; `indices` are their row numbers in the version, `bad` marks failed
 * cells, `numeric` names the columns to align right.
 */
export function rowsTable(columns, rows, indices, { bad = new Map(), focus = null, testid = "rows-table", numeric = new Set() } = {}) {
  return h("div", { class: "table-wrap card rows-wrap" },
    h("table", { class: "table table-compact rows-table", dataset: { testid } },
      h("thead", {}, h("tr", {}, h("th", { class: "num muted row-idx" }, "row"), columns.map((c) => h("th", { class: ["mono", numeric.has(c) ? "num" : null] }, c)))),
      h("tbody", {}, rows.map((r, i) => {
        const idx = indices[i];
        return h("tr", { class: idx === focus ? "selected" : null, dataset: { testid: "data-row", row: String(idx) } },
          h("td", { class: "num muted row-idx" }, String(idx)),
          columns.map((c) => {
            const rules = bad.get(`${idx}\u0000${c}`);
            return h("td", { class: ["cell", numeric.has(c) ? "num" : null, rules ? "cell-bad" : null], title: rules ? `Breaks ${rules.join(", ")}` : null,
              dataset: rules ? { testid: "bad-cell" } : {} }, cell(r[c]));
          }));
      }))));
}

export function sampleTab(v, ctx) {
  const s = v.sample || {};
  const rows = s.rows || [];
  if (!rows.length) return emptyState("No sample rows stored for this version.");
  const cols = v.columns.length ? v.columns.map((c) => c.name) : Object.keys(rows[0]);
  const idx = s.row_indices || rows.map((_, i) => i);
  return h("div", {},
    h("div", { class: "muted small tab-note" }, `${rows.length} sample rows (the first rows and a few picked at random) of ${v.row_count.toLocaleString()}.`),
    rowsTable(cols, rows, idx, { bad: ctx.bad, testid: "sample-table", numeric: numericColumns(v.columns) }));
}

export function rowsTab(v, ctx, { row = null } = {}) {
  const size = PAGE_SIZES.includes(Number(ctx.query.get("size"))) ? Number(ctx.query.get("size")) : 50;
  const st = { limit: size, offset: row != null ? Math.floor(row / size) * size : 0, table: "data", total: v.row_count };
  const body = h("div", {}, loading("Loading rows…"));
  const info = h("span", { class: "muted small", dataset: { testid: "rows-info" } });
  const btn = (label, testid, fn) => h("button", { class: "btn btn-sm", dataset: { testid }, onclick: fn }, label);
  const prev = btn("‹ Prev", "rows-prev", () => go(st.offset - st.limit));
  const next = btn("Next ›", "rows-next", () => go(st.offset + st.limit));
  const first = btn("« First", "rows-first", () => go(0));
  const last = btn("Last »", "rows-last", () => go(Math.max(0, Math.floor((st.total - 1) / st.limit) * st.limit)));
  const jump = h("input", { type: "number", min: 0, class: "input input-sm jump-input", placeholder: "row", "aria-label": "Go to row", dataset: { testid: "rows-jump" },
    onkeydown: (ev) => {
      if (ev.key !== "Enter") return;
      const n = Number(jump.value);
      if (Number.isInteger(n) && n >= 0) { focus = n; go(Math.floor(n / st.limit) * st.limit); }
    } });
  const sizeSel = h("select", { class: "input input-sm", "aria-label": "Rows per page", onchange: () => { st.limit = Number(sizeSel.value); go(0); } },
    PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === st.limit }, `${n} / page`)));
  const tableSel = v.storage && v.storage.chunks
    ? h("select", { class: "input input-sm", "aria-label": "Table", onchange: () => { st.table = tableSel.value; go(0); } },
      h("option", { value: "data" }, "documents"), h("option", { value: "chunks" }, "chunks"))
    : null;
  let focus = row;
  let seq = 0;

  async function go(offset) {
    st.offset = Math.max(0, offset);
    const mine = ++seq;
    body.classList.add("is-loading");
    let page;
    try {
      page = await api(`/dataset-versions/${encodeURIComponent(v.id)}/rows`, { query: { offset: st.offset, limit: st.limit, table: st.table }, signal: ctx.signal });
    } catch (err) {
      if (err.name !== "AbortError" && mine === seq) replace(body, errorBox(err, "Could not load rows"));
      return;
    } finally {
      body.classList.remove("is-loading");
    }
    if (mine !== seq) return;
    st.total = page.total;
    const end = st.offset + page.rows.length;
    info.textContent = page.total ? `rows ${st.offset.toLocaleString()}–${(end - 1).toLocaleString()} of ${page.total.toLocaleString()}` : "no rows";
    prev.disabled = first.disabled = st.offset === 0;
    next.disabled = last.disabled = end >= page.total;
    replace(body, page.rows.length
      ? rowsTable(page.columns, page.rows, page.rows.map((_, i) => st.offset + i), { bad: st.table === "data" ? ctx.bad : new Map(), focus, numeric: st.table === "data" ? numericColumns(v.columns) : new Set() })
      : emptyState("No rows on this page."));
  }

  go(st.offset);
  return h("div", { dataset: { testid: "rows-browser" } },
    h("div", { class: "toolbar rows-toolbar" }, first, prev, next, last, info,
      h("div", { class: "toolbar-right" }, tableSel, h("label", { class: "muted small" }, "Go to row "), jump, sizeSel)),
    body);
}

function paramsText(params) {
  if (!params) return "";
  return Object.entries(params).filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]) => `${k}=${Array.isArray(x) ? x.map(String).join(", ") : typeof x === "object" ? JSON.stringify(x) : x}`).join("; ");
}

export function validationTab(v, ctx) {
  const rep = v.validation;
  if (!rep) return emptyState("No validation rules were checked for this version.", 'Pass rules=[Rule.range("age", min=0)] to datasets.create() to check them.');
  const failures = [];
  for (const r of rep.rules) for (const ex of r.examples || []) failures.push({ r, ex });
  const rowLink = (row) => (row === null || row === undefined ? h("span", { class: "muted" }, "whole column")
    : h("button", { class: "btn-link row-link", dataset: { testid: "failure-row" }, title: "Show this row", onclick: () => ctx.goToRow(row) }, String(row)));
  return h("div", { dataset: { testid: "validation-report" } },
    h("div", { class: ["validation-summary", rep.passed ? "ok" : "bad"], dataset: { testid: "validation-summary" } },
      h("strong", {}, rep.passed ? "All rules passed" : `${rep.total_violations.toLocaleString()} violation${rep.total_violations === 1 ? "" : "s"}`),
      h("span", {}, ` · ${rep.rows_checked.toLocaleString()} rows checked against ${rep.rules.length} rule${rep.rules.length === 1 ? "" : "s"}`),
      rep.on_error ? h("span", {}, ` · on error: ${rep.on_error}`) : null),
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "rules-table" } },
        h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Column"), h("th", {}, "Parameters"), h("th", { class: "num" }, "Violations"), h("th", {}, "Result"))),
        h("tbody", {}, rep.rules.map((r) => h("tr", { dataset: { testid: "rule-row", rule: r.name || r.rule } },
          h("td", { class: "mono" }, r.name || r.rule),
          h("td", { class: "mono" }, r.column ?? "—"),
          h("td", { class: "mono small desc", title: paramsText(r.params) }, paramsText(r.params) || "—"),
          h("td", { class: ["num", r.violations ? "strong" : "muted"] }, r.violations.toLocaleString()),
          h("td", {}, r.violations ? h("span", { class: "badge badge-flagged" }, "FAILED") : h("span", { class: "badge badge-valid" }, "PASSED"),
            r.message ? h("span", { class: "muted small" }, ` ${r.message}`) : null)))))),
    failures.length ? h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Failures"),
        h("span", { class: "muted small" }, `showing up to ${rep.max_examples ?? 20} per rule; click a row number to see it`)),
      h("div", { class: "table-wrap card" },
        h("table", { class: "table table-compact", dataset: { testid: "failures-table" } },
          h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", { class: "num" }, "Row"), h("th", {}, "Column"), h("th", {}, "Value"))),
          h("tbody", {}, failures.map(({ r, ex }) => h("tr", { dataset: { testid: "failure", row: String(ex.row), column: r.column ?? "" } },
            h("td", { class: "mono" }, r.name || r.rule),
            h("td", { class: "num" }, rowLink(ex.row)),
            h("td", { class: "mono" }, r.column ?? "—"),
            h("td", { class: "cell-bad-text" }, cell(ex.value)))))))) : null);
}
