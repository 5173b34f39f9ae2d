// The difference between two versions of a dataset (#/datasets/<name>/diff?a=1&b=2&key=id):
// schema changes, rows added/removed/changed drawn as one bar, and example rows with the
// changed cells marked.

import { api, datasetVersionPath } from "../api.js";
import { emptyState, errorBox, h, loading, replace } from "../dom.js";
import { rowsTable } from "./datasets_rows.js";

const EXAMPLES = 20;

function diffHref(name, a, b, key) {
  const q = new URLSearchParams({ a: String(a), b: String(b) });
  if (key) q.set("key", key);
  return `#/datasets/${encodeURIComponent(name)}/diff?${q}`;
}

function show(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function countCard(label, n, cls, testid) {
  return h("div", { class: ["card", "count-card", cls], dataset: { testid } },
    h("div", { class: "count-value" }, n.toLocaleString()), h("div", { class: "count-label" }, label));
}

/** One bar split into unchanged / changed / removed / added, in proportion. */
function compositionBar(rows) {
  const parts = [["unchanged", rows.unchanged], ["changed", rows.changed], ["removed", rows.removed], ["added", rows.added]]
    .filter(([, n]) => n > 0);
  const total = parts.reduce((s, [, n]) => s + n, 0) || 1;
  return h("div", { class: "diff-bar", dataset: { testid: "diff-bar" }, role: "img",
    "aria-label": parts.map(([k, n]) => `${n} ${k}`).join(", ") },
  parts.map(([k, n]) => h("span", { class: `diff-seg seg-${k}`, style: { width: `${(n / total) * 100}%` }, title: `${n.toLocaleString()} ${k}` })));
}

function schemaChanges(sc) {
  const items = [
    ...sc.added.map((c) => h("li", { class: "sc-added" }, h("span", { class: "sc-mark" }, "+"), h("span", { class: "mono" }, c), " added")),
    ...sc.removed.map((c) => h("li", { class: "sc-removed" }, h("span", { class: "sc-mark" }, "−"), h("span", { class: "mono" }, c), " removed")),
    ...sc.retyped.map((r) => h("li", { class: "sc-retyped" }, h("span", { class: "sc-mark" }, "~"), h("span", { class: "mono" }, r.column), ` ${r.from} → ${r.to}`)),
  ];
  return h("div", { class: "card pad", dataset: { testid: "schema-changes" } },
    items.length ? h("ul", { class: "schema-changes" }, items) : h("div", { class: "muted" }, "The schema did not change."));
}

function changedTable(examples, columns, key) {
  return h("div", { class: "table-wrap card rows-wrap" },
    h("table", { class: "table table-compact rows-table", dataset: { testid: "changed-table" } },
      h("thead", {}, h("tr", {}, h("th", { class: "mono" }, `${key} (key)`), h("th", { class: "num muted" }, "rows"), columns.filter((c) => c !== key).map((c) => h("th", { class: "mono" }, c)))),
      h("tbody", {}, examples.map((ex) => {
        const changed = new Set(ex.columns);
        return h("tr", { dataset: { testid: "changed-row" } },
          h("td", { class: "mono strong" }, show(ex.key)),
          h("td", { class: "num muted small" }, `${ex.row_before} → ${ex.row_after}`),
          columns.filter((c) => c !== key).map((c) => (changed.has(c)
            ? h("td", { class: "cell-changed", dataset: { testid: "changed-cell", column: c } },
              h("span", { class: "old-val" }, show(ex.before[c])), h("span", { class: "arrow" }, " → "), h("span", { class: "new-val" }, show(ex.after[c])))
            : h("td", { class: "muted" }, show(ex.after[c])))));
      }))));
}

/** Columns whose example values are all numbers (the diff carries no types). */
function numericIn(columns, rows) {
  return new Set(columns.filter((c) => rows.some((r) => r[c] != null) && rows.every((r) => r[c] == null || typeof r[c] === "number")));
}

function exampleSection(title, list, columns, testid, cls) {
  if (!list.length) return null;
  const values = list.map((e) => e.values);
  return h("section", { class: "section" },
    h("div", { class: "section-head" }, h("h2", {}, title), h("span", { class: "muted small" }, `first ${list.length}`)),
    h("div", { class: cls }, rowsTable(columns, values, list.map((e) => e.row), { testid, numeric: numericIn(columns, values) })));
}

export async function renderDatasetDiff(ctx, name) {
  ctx.setTitle(`${name} diff`);
  replace(ctx.root, h("div", { class: "page" }, loading("Comparing versions…")));
  const { versions } = await api(`/datasets/${encodeURIComponent(name)}/versions`, { signal: ctx.signal });
  versions.sort((x, y) => x.version - y.version);
  if (versions.length < 2) {
    replace(ctx.root, h("div", { class: "page" }, emptyState("This dataset has fewer than two versions: nothing to compare."),
      h("p", { class: "center" }, h("a", { href: `#/datasets/${encodeURIComponent(name)}` }, `Back to ${name}`))));
    return;
  }
  const last = versions[versions.length - 1].version;
  const a = Number(ctx.query.get("a")) || versions[versions.length - 2].version;
  const b = Number(ctx.query.get("b")) || last;
  const key = ctx.query.get("key") || "";

  const pick = (label, value, testid, onchange) => h("label", { class: "toolbar-field" }, h("span", { class: "muted small" }, label),
    h("select", { class: "input input-sm", dataset: { testid }, onchange },
      versions.map((v) => h("option", { value: String(v.version), selected: v.version === value }, `v${v.version}${v.message ? ` · ${v.message.slice(0, 40)}` : ""}`))));
  const selA = pick("from", a, "diff-a", () => { location.hash = diffHref(name, selA.querySelector("select").value, b, key); });
  const selB = pick("to", b, "diff-b", () => { location.hash = diffHref(name, a, selB.querySelector("select").value, key); });
  const keySel = h("select", { class: "input input-sm", dataset: { testid: "diff-key" }, disabled: true,
    onchange: () => { location.hash = diffHref(name, a, b, keySel.value); } },
  h("option", { value: "" }, key ? key : "none (compare whole rows)"));
  const body = h("div", {}, loading("Comparing versions…"));

  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/datasets" }, "Datasets"), h("span", { class: "sep" }, "/"),
          h("a", { href: `#/datasets/${encodeURIComponent(name)}` }, name), h("span", { class: "sep" }, "/"), "diff"),
        h("h1", { dataset: { testid: "diff-title" } }, `${name}: v${a} → v${b}`))),
    h("div", { class: "toolbar diff-toolbar" }, selA, selB,
      h("button", { class: "btn btn-sm", title: "Swap", dataset: { testid: "diff-swap" }, onclick: () => { location.hash = diffHref(name, b, a, key); } }, "⇄ Swap"),
      h("label", { class: "toolbar-field" }, h("span", { class: "muted small" }, "match rows by"), keySel)),
    body));

  let d;
  try {
    d = await api(`${datasetVersionPath(name, a)}/diff`, { query: { other: `${name}@${b}`, key: key || null, max_examples: EXAMPLES }, signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    replace(body, errorBox(err, "Could not compare these versions"),
      key ? h("p", {}, h("a", { href: diffHref(name, a, b, "") }, "Compare without a key column")) : null);
    return;
  }
  replace(keySel, h("option", { value: "" }, "none (compare whole rows)"),
    d.compared_columns.map((c) => h("option", { value: c, selected: c === key }, c)));
  keySel.disabled = false;
  const r = d.rows;
  const cols = d.compared_columns;
  replace(body,
    h("div", { class: "count-grid" },
      countCard(`rows in v${a}`, r.before, "", "count-before"),
      countCard(`rows in v${b}`, r.after, "", "count-after"),
      countCard("added", r.added, "c-added", "count-added"),
      countCard("removed", r.removed, "c-removed", "count-removed"),
      countCard("changed", r.changed, "c-changed", "count-changed"),
      countCard("unchanged", r.unchanged, "", "count-unchanged")),
    compositionBar(r),
    d.key ? null : h("div", { class: "muted small tab-note" }, "Rows are compared whole: a changed row counts as one removed and one added. Pick a key column to match rows and see changed cells."),
    h("section", { class: "section" }, h("div", { class: "section-head" }, h("h2", {}, "Schema changes")), schemaChanges(d.schema_changes)),
    d.examples.changed.length ? h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Changed rows"), h("span", { class: "muted small" }, `first ${d.examples.changed.length}; changed cells show old → new`)),
      changedTable(d.examples.changed, cols, d.key)) : null,
    exampleSection("Added rows", d.examples.added, cols, "added-table", "rows-added"),
    exampleSection("Removed rows", d.examples.removed, cols, "removed-table", "rows-removed"),
    !r.added && !r.removed && !r.changed ? emptyState("The rows are the same in both versions.") : null);
}
