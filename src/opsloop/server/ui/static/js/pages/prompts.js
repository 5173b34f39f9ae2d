// The prompt registry: the list (#/prompts) and one prompt (#/prompts/<name>?v=3&a=1&b=3):
// its versions with commit messages and labels, the chosen version's template, a diff
// between two chosen versions, and a render box calling the render API.
// Every template, message and value reaches the page as text (never parsed as HTML).

import { api } from "../api.js";
import { emptyState, errorBox, h, loading, naturalCompare, replace, timeCell } from "../dom.js";

function promptPath(name) {
  return `/prompts/${encodeURIComponent(name)}`;
}

export function promptHref(name, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return `#/prompts/${encodeURIComponent(name)}${s ? `?${s}` : ""}`;
}

function labelChip(label, version = null) {
  return h("span", { class: ["label-chip", label === "latest" ? "latest" : null], dataset: { testid: "label-chip", label } },
    `@${label}`, version != null ? ` v${version}` : null);
}

export async function renderPrompts(ctx) {
  ctx.setTitle("Prompts");
  const search = h("input", { type: "search", class: "input", placeholder: "Search prompts", "aria-label": "Search prompts", dataset: { testid: "prompt-search" } });
  const body = h("div", {}, loading("Loading prompts…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Prompts"), h("div", { class: "muted" }, "Versioned prompt templates, their labels and commit messages.")),
      h("div", { class: "toolbar" }, search)),
    body));
  const prompts = (await api("/prompts", { signal: ctx.signal })).prompts;
  if (!prompts.length) {
    replace(body, emptyState("No prompts yet.", 'Create one: opsloop prompts create NAME --text "Hello {{ name }}" -m "first"'));
    return;
  }
  prompts.sort((a, b) => b.updated_at - a.updated_at);
  const tbody = h("tbody");
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = prompts.filter((p) => !q || p.name.toLowerCase().includes(q) || Object.keys(p.labels).some((l) => l.toLowerCase().includes(q)))
      .map((p) => {
        const href = promptHref(p.name);
        const labels = Object.entries(p.labels).sort((x, y) => naturalCompare(x[0], y[0]));
        return h("tr", { class: "clickable", dataset: { testid: "prompt-row", name: p.name }, onclick: (ev) => {
          if (!ev.target.closest("a")) location.hash = href;
        } },
          h("td", {}, h("a", { href, class: "strong" }, p.name)),
          h("td", {}, p.latest_version == null ? "—" : h("a", { href: promptHref(p.name, { v: p.latest_version }) }, `v${p.latest_version}`)),
          h("td", { class: "num" }, String(p.version_count)),
          h("td", {}, labels.length ? labels.map(([l, v]) => labelChip(l, v)) : h("span", { class: "muted" }, "—")),
          h("td", {}, timeCell(p.updated_at)));
      });
    replace(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted center" }, "No prompt matches.")));
  };
  search.addEventListener("input", draw);
  draw();
  replace(body, h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "prompts-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Latest"), h("th", { class: "num" }, "Versions"), h("th", {}, "Labels"), h("th", {}, "Updated"))),
      tbody)));
}

/** Text with {{ variable }} placeholders highlighted (as separate text nodes, never HTML). */
function templateText(text) {
  const out = [];
  const re = /(\\?)\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m[1]) continue; // an escaped "\{{" is literal text
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("span", { class: "prompt-var", title: `variable ${m[2]}` }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function templateView(v) {
  if (v.kind === "text") {
    return h("pre", { class: "prompt-template", dataset: { testid: "prompt-template" } }, templateText(v.template));
  }
  return h("div", { dataset: { testid: "prompt-template" } }, v.template.map((m, i) =>
    h("div", { class: "prompt-msg", dataset: { testid: "prompt-message", role: m.role, index: String(i) } },
      h("span", { class: "prompt-role" }, m.role),
      h("pre", { class: "prompt-template" }, templateText(m.content)))));
}

function renderedView(kind, rendered) {
  if (kind === "text" || typeof rendered === "string") {
    return h("pre", { class: "prompt-template", dataset: { testid: "render-output" } }, rendered);
  }
  return h("div", { dataset: { testid: "render-output" } }, rendered.map((m) =>
    h("div", { class: "prompt-msg", dataset: { testid: "rendered-message", role: m.role } },
      h("span", { class: "prompt-role" }, m.role),
      h("pre", { class: "prompt-template" }, m.content))));
}

function diffLines(lines) {
  return h("pre", { class: "prompt-diff", dataset: { testid: "diff-text" } }, lines.map((line) => {
    let cls = "dl";
    if (line.startsWith("+++") || line.startsWith("---")) cls += " dl-head";
    else if (line.startsWith("+")) cls += " dl-add";
    else if (line.startsWith("-")) cls += " dl-del";
    else if (line.startsWith("@@")) cls += " dl-hunk";
    else if (!line.startsWith(" ")) cls += " dl-note";
    return h("span", { class: cls }, line || " ");
  }));
}

export async function renderPrompt(ctx, name) {
  replace(ctx.root, h("div", { class: "page" }, loading("Loading prompt…")));
  const [p, { versions }] = await Promise.all([
    api(promptPath(name), { signal: ctx.signal }),
    api(`${promptPath(name)}/versions`, { signal: ctx.signal }),
  ]);
  ctx.setTitle(`${p.name} · prompt`);
  versions.sort((a, b) => b.version - a.version);
  const newest = versions.length ? versions[0].version : null;
  const state = {
    v: Number(ctx.query.get("v")) || newest,
    a: Number(ctx.query.get("a")) || (versions[1] ? versions[1].version : newest),
    b: Number(ctx.query.get("b")) || newest,
  };
  const panel = h("div", { class: "section", dataset: { testid: "prompt-version-panel" } });
  const diffBox = h("div", { class: "card", dataset: { testid: "prompt-diff" } });

  const tbody = h("tbody", {}, versions.map((v) => h("tr", {
    class: ["clickable", v.version === state.v ? "selected" : null], dataset: { testid: "prompt-version-row", version: String(v.version) },
    onclick: () => select(v.version),
  },
    h("td", { class: "strong" }, `v${v.version}`),
    h("td", {}, h("span", { class: "type-chip" }, v.kind)),
    h("td", {}, v.labels.length ? v.labels.map((l) => labelChip(l)) : h("span", { class: "muted" }, "—")),
    h("td", { class: "desc" }, v.message ? h("span", { title: v.message, dataset: { testid: "commit-message" } }, v.message) : h("span", { class: "muted" }, "—")),
    h("td", {}, v.variables.length ? v.variables.join(", ") : h("span", { class: "muted" }, "—")),
    h("td", {}, timeCell(v.created_at)),
    h("td", { class: "muted" }, v.created_by || "—"))));

  const options = (sel) => versions.map((v) => h("option", { value: String(v.version), selected: v.version === sel }, `v${v.version}${v.labels.length ? ` (${v.labels.join(", ")})` : ""}`));
  const selA = h("select", { class: "input input-sm", "aria-label": "From version", dataset: { testid: "diff-a" } }, options(state.a));
  const selB = h("select", { class: "input input-sm", "aria-label": "To version", dataset: { testid: "diff-b" } }, options(state.b));
  const onDiffChange = () => {
    state.a = Number(selA.value);
    state.b = Number(selB.value);
    syncUrl();
    showDiff();
  };
  selA.addEventListener("change", onDiffChange);
  selB.addEventListener("change", onDiffChange);

  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/prompts" }, "Prompts"), h("span", { class: "sep" }, "/"), p.name),
        h("div", { class: "title-row" }, h("h1", { dataset: { testid: "prompt-name" } }, p.name),
          Object.entries(p.labels).sort((x, y) => naturalCompare(x[0], y[0])).map(([l, v]) => labelChip(l, v))),
        h("div", { class: "meta-row muted small" },
          h("span", {}, `${p.version_count} version${p.version_count === 1 ? "" : "s"}`),
          h("span", {}, "created ", timeCell(p.created_at), p.created_by ? ` by ${p.created_by}` : ""),
          h("span", {}, "updated ", timeCell(p.updated_at)),
          h("a", { href: `#/models/${encodeURIComponent(p.name)}` }, "history in the registry")))),
    h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Versions")),
      versions.length ? h("div", { class: "table-wrap card versions-wrap" },
        h("table", { class: "table", dataset: { testid: "prompt-versions-table" } },
          h("thead", {}, h("tr", {}, ["Version", "Kind", "Labels", "Message", "Variables", "Created", "By"].map((t) => h("th", {}, t)))),
          tbody)) : emptyState("No versions yet.")),
    panel,
    versions.length > 1 ? h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, "Diff"),
        h("div", { class: "toolbar" }, h("span", { class: "muted small" }, "from"), selA, h("span", { class: "muted small" }, "to"), selB)),
      diffBox) : null));

  function syncUrl() {
    history.replaceState(null, "", promptHref(p.name, { v: state.v, a: state.a, b: state.b }));
  }

  async function showDiff() {
    replace(diffBox, loading("Comparing…"));
    try {
      const d = await api(`${promptPath(p.name)}/diff`, { query: { a: state.a, b: state.b }, signal: ctx.signal });
      const facts = [];
      if (d.kind_a !== d.kind_b) facts.push(h("li", {}, `kind: ${d.kind_a} → ${d.kind_b}`));
      if (d.variables_added.length) facts.push(h("li", { dataset: { testid: "vars-added" } }, `variables added: ${d.variables_added.join(", ")}`));
      if (d.variables_removed.length) facts.push(h("li", { dataset: { testid: "vars-removed" } }, `variables removed: ${d.variables_removed.join(", ")}`));
      for (const [k, ab] of Object.entries(d.metadata_changed)) facts.push(h("li", {}, `metadata ${k}: ${JSON.stringify(ab.a)} → ${JSON.stringify(ab.b)}`));
      replace(diffBox,
        h("div", { class: "card-title" }, `v${d.a} → v${d.b}`, d.identical ? h("span", { class: "muted small", dataset: { testid: "diff-identical" } }, " (identical)") : null),
        facts.length ? h("ul", { class: "pad small" }, facts) : null,
        d.identical ? null : diffLines(d.template_diff));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      replace(diffBox, errorBox(err, "Could not compare"));
    }
  }

  function renderBox(v) {
    const inputs = new Map();
    const out = h("div", { class: "prompt-out" });
    const fields = v.variables.map((name) => {
      const ta = h("textarea", { class: "input", rows: 1, "aria-label": name, dataset: { testid: "render-var", var: name } });
      inputs.set(name, ta);
      return [h("label", { class: "form-label" }, name), ta];
    });
    const go = async () => {
      const variables = {};
      for (const [k, el] of inputs) variables[k] = el.value;
      replace(out, loading("Rendering…"));
      try {
        const r = await api(`${promptPath(p.name)}/render`, { method: "POST", body: { version: v.version, variables }, signal: ctx.signal });
        replace(out, renderedView(r.kind, r.rendered));
      } catch (err) {
        if (err && err.name === "AbortError") return;
        replace(out, errorBox(err, "Could not render"));
      }
    };
    return h("div", { class: "card", dataset: { testid: "render-box" } },
      h("div", { class: "card-title" }, "Render"),
      fields.length ? h("div", { class: "prompt-vars" }, fields) : h("div", { class: "muted small pad" }, "This version has no variables."),
      h("div", { class: "form-actions pad" }, h("button", { class: "btn btn-primary btn-sm", type: "button", dataset: { testid: "render-go" }, onclick: go }, "Render")),
      out);
  }

  function select(num) {
    state.v = num;
    for (const tr of tbody.children) tr.classList.toggle("selected", tr.dataset.version === String(num));
    syncUrl();
    const v = versions.find((x) => x.version === num);
    if (!v) {
      replace(panel, emptyState(`Version ${num} does not exist.`));
      return;
    }
    const meta = Object.keys(v.metadata || {}).sort(naturalCompare);
    replace(panel,
      h("div", { class: "section-head" }, h("div", { class: "title-row" },
        h("h2", { dataset: { testid: "prompt-version-title" } }, `${p.name} v${v.version}`),
        h("span", { class: "pill" }, v.kind), v.labels.map((l) => labelChip(l)))),
      v.message ? h("div", { class: "desc-line", dataset: { testid: "prompt-version-message" } }, v.message) : null,
      h("div", { class: "grid-2" },
        h("div", { class: "card" }, h("div", { class: "card-title" }, "Template"), templateView(v),
          meta.length ? h("table", { class: "table table-compact kv", dataset: { testid: "prompt-metadata" } },
            h("tbody", {}, meta.map((k) => h("tr", {}, h("td", { class: "kv-key" }, k), h("td", { class: "kv-val" }, typeof v.metadata[k] === "string" ? v.metadata[k] : JSON.stringify(v.metadata[k])))))) : null),
        renderBox(v)));
  }

  if (state.v) select(state.v);
  if (versions.length > 1) showDiff();
}
