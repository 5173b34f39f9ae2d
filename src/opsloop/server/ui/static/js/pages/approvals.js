// Approvals (#/approvals): requests to move protected aliases, newest first, pending ones on
// top by default. Each shows the move asked for, who asked and why, and the promotion gate's
// result with its failed rules; a reviewer approves (the alias moves) or rejects with a comment.
// The server decides who may: a named reviewer, an admin or an owner, never the requester.

import { api } from "../api.js";
import { emptyState, h, loading, replace, timeCell } from "../dom.js";

const STATES = ["pending", "approved", "rejected", ""];

function gateCell(a) {
  const label = a.gate === "failed" ? "failed (forced)" : a.gate;
  const failures = (a.gate_failures || []).map((f) =>
    h("li", { class: "small" }, String(f.message || JSON.stringify(f))));
  return h("td", { dataset: { testid: "approval-gate" } },
    h("span", { class: `badge badge-${a.gate === "failed" ? "failed" : a.gate === "passed" ? "finished" : "killed"}` }, label),
    failures.length ? h("ul", {}, ...failures) : null);
}

function decide(a, redraw) {
  if (a.state !== "pending") {
    return h("td", { class: "muted" }, `${a.state} by ${a.decided_by}${a.comment ? `: ${a.comment}` : ""}`);
  }
  const comment = h("input", { type: "text", placeholder: "comment", dataset: { testid: "approval-comment" } });
  const error = h("div", { class: "error-inline", dataset: { testid: "approval-error" } });
  const act = (verb) => async () => {
    error.textContent = "";
    try {
      await api(`/approvals/${encodeURIComponent(a.id)}/${verb}`, { method: "POST", body: { comment: comment.value } });
      await redraw();
    } catch (err) {
      error.textContent = `${err.code || "ERROR"}: ${err.message}`;
    }
  };
  const approve = h("button", { type: "button", class: "btn btn-sm btn-primary" }, "Approve");
  const reject = h("button", { type: "button", class: "btn btn-sm" }, "Reject");
  approve.addEventListener("click", act("approve"));
  reject.addEventListener("click", act("reject"));
  return h("td", {}, comment, approve, reject, error);
}

function row(a, redraw) {
  const from = a.from_version === null ? "—" : `v${a.from_version}`;
  return h("tr", { dataset: { testid: "approval-row", id: a.id } },
    h("td", { class: "strong" }, a.model),
    h("td", {}, a.alias),
    h("td", { dataset: { testid: "approval-move" } }, `${from} → v${a.version}`),
    h("td", {}, a.requested_by, a.note ? h("div", { class: "muted small" }, a.note) : null),
    h("td", {}, timeCell(a.requested_at)),
    gateCell(a),
    decide(a, redraw));
}

export async function renderApprovals(ctx) {
  ctx.setTitle("Approvals");
  const state = h("select", { dataset: { testid: "approval-state-filter" } },
    ...STATES.map((s) => h("option", { value: s }, s || "any state")));
  const body = h("div", {}, loading("Loading approvals…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Approvals"),
        h("div", { class: "muted" }, "Protected aliases move only when a reviewer approves.")),
      h("div", { class: "toolbar" }, state)),
    body));

  const draw = async () => {
    const { approvals } = await api("/approvals", { signal: ctx.signal, query: { state: state.value || null } });
    if (!approvals.length) {
      replace(body, emptyState("No approvals here.",
        "Ask with `opsloop approvals request MODEL ALIAS VERSION` once an admin protects the alias."));
      return;
    }
    replace(body, h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "approvals-table" } },
        h("thead", {}, h("tr", {}, ...["Model", "Alias", "Move", "Asked by", "When", "Promotion gate", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, approvals.map((a) => row(a, draw))))));
  };
  state.addEventListener("change", () => {
    draw().catch((err) => { if (err && err.name !== "AbortError") console.error(err); });
  });
  await draw();
}
