// The audit trail (#/audit): every change made through the server, newest first, searchable
// by who, method and path; each entry opens to the state before, the body sent and the answer.
// The chain check (GET /audit/verify) shows on top. Admins only when the server runs with --auth.

import { api } from "../api.js";
import { emptyState, h, loading, replace, timeCell } from "../dom.js";

const METHODS = ["", "POST", "PUT", "PATCH", "DELETE"];

function jsonBlock(label, value) {
  if (value === null || value === undefined) return null;
  return h("div", {}, h("div", { class: "muted small" }, label),
    h("pre", { class: "code-block" }, JSON.stringify(value, null, 2)));
}

function row(e) {
  const details = h("details", {}, h("summary", {}, "show"),
    jsonBlock("before", e.before), jsonBlock("sent", e.request), jsonBlock("answer", e.response),
    h("div", { class: "muted small" }, `hash ${e.hash}`));
  return h("tr", { dataset: { testid: "audit-row", seq: String(e.seq) } },
    h("td", { class: "strong" }, String(e.seq)),
    h("td", {}, timeCell(e.at)),
    h("td", { dataset: { testid: "audit-actor" } }, e.actor),
    h("td", {}, e.method),
    h("td", { dataset: { testid: "audit-path" } }, e.path),
    h("td", {}, String(e.status)),
    h("td", { class: "muted" }, e.client),
    h("td", {}, details));
}

export async function renderAudit(ctx) {
  ctx.setTitle("Audit trail");
  const actor = h("input", { type: "search", placeholder: "who", dataset: { testid: "audit-actor-filter" } });
  const path = h("input", { type: "search", placeholder: "path contains", dataset: { testid: "audit-path-filter" } });
  const method = h("select", { dataset: { testid: "audit-method-filter" } },
    ...METHODS.map((m) => h("option", { value: m }, m || "any method")));
  const chain = h("div", { class: "muted", dataset: { testid: "audit-chain" } }, "Checking the chain…");
  const body = h("div", {}, loading("Loading the audit trail…"));
  const form = h("form", { class: "toolbar" }, actor, method, path, h("button", { type: "submit" }, "Search"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Audit trail"), chain), form),
    body));

  const draw = async () => {
    const query = { actor: actor.value || null, method: method.value || null, path: path.value || null, limit: 200 };
    const { entries } = await api("/audit", { signal: ctx.signal, query });
    if (!entries.length) {
      replace(body, emptyState("No changes recorded.", "The server records them with --auth (or OPSLOOP_AUDIT=1)."));
      return;
    }
    replace(body, h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "audit-table" } },
        h("thead", {}, h("tr", {}, ...["#", "When", "Who", "Method", "Path", "Status", "From", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, entries.map(row)))));
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    draw().catch((err) => { if (err && err.name !== "AbortError") console.error(err); });
  });
  const check = await api("/audit/verify", { signal: ctx.signal });
  chain.textContent = check.ok
    ? `Chain intact: ${check.entries} entries, head ${check.head_hash.slice(0, 16)}…`
    : `Chain broken at entry ${check.first_bad_seq}: ${check.problem}`;
  chain.className = check.ok ? "muted" : "error-inline";
  await draw();
}
