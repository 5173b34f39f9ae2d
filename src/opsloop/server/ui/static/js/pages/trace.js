// One trace (#/traces/<id>?span=<span id>): the span tree as a collapsible, indented
// waterfall (each bar placed at the span's offset and sized by its duration, both relative
// to the whole trace), the chosen span's details, and the other traces of its session.

import { api } from "../api.js";
import { errorBox, h, loading, replace, timeCell } from "../dom.js";
import { renderSpanDetail } from "./trace_span.js";
import { costText, fmtMs, kindBadge, statusChip, traceHref } from "./trace_fmt.js";
import { tracesHref } from "./traces.js";

const TICKS = [0, 1 / 3, 2 / 3, 1];

/** Depth-first list of the tree (the server sends children in start order). */
function flatten(roots) {
  const out = [];
  const stack = [...roots].reverse();
  while (stack.length) {
    const n = stack.pop();
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out;
}

export async function renderTrace(ctx, traceId) {
  ctx.setTitle("Trace");
  replace(ctx.root, h("div", { class: "page page-wide" }, loading("Loading trace…")));
  const t = await api(`/traces/${encodeURIComponent(traceId)}`, { signal: ctx.signal });
  ctx.setTitle(t.name);
  const all = flatten(t.spans);
  const byId = new Map(all.map((s) => [s.span_id, s]));
  const total = Math.max(t.duration_ms, 1e-3);
  const collapsed = new Set();
  let selected = byId.get(ctx.query.get("span")) || all[0] || null;

  const rowsEl = h("div", { class: "wf-rows", role: "tree", "aria-label": "Spans", dataset: { testid: "span-tree" } });
  const detailEl = h("div", { class: "card span-detail", dataset: { testid: "span-detail" } });
  const links = h("div", { class: "meta-row small trace-links" });

  replace(ctx.root, h("div", { class: "page page-wide trace-page" },
    h("div", { class: "page-header run-header" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/traces" }, "Traces"), h("span", { class: "sep" }, "/"), h("span", { class: "mono" }, t.id)),
        h("div", { class: "title-row" }, h("h1", { dataset: { testid: "trace-name" } }, t.name), statusChip(t.status, t.error_count)),
        h("div", { class: "meta-grid" },
          fact("Started", timeCell(t.start_us / 1000)),
          fact("Duration", fmtMs(t.duration_ms), "trace-duration"),
          fact("Spans", `${t.span_count}${t.error_count ? ` (${t.error_count} failed)` : ""}`),
          fact("Tokens in / out", `${t.input_tokens} / ${t.output_tokens}`),
          fact("Cost", costText(t.total_cost)),
          t.models.length ? fact("Models", h("span", { class: "mono" }, t.models.join(", "))) : null,
          t.user_id ? fact("User", h("a", { href: tracesHref({ user: t.user_id }), dataset: { testid: "trace-user-link" } }, t.user_id)) : null,
          t.session_id ? fact("Session", h("a", { href: tracesHref({ session: t.session_id }), dataset: { testid: "trace-session-link" } }, t.session_id)) : null,
          t.service_name ? fact("Service", t.service_name) : null,
          t.tags.length ? fact("Tags", h("div", { class: "chips" }, t.tags.map((g) => h("span", { class: "tag-chip" }, g)))) : null),
        links)),
    all.length
      ? h("div", { class: "trace-split" },
        h("div", { class: "card wf", dataset: { testid: "waterfall" } },
          h("div", { class: "wf-row wf-head" },
            h("div", { class: "wf-name" }, "Span"),
            h("div", { class: "wf-track wf-axis" }, TICKS.map((f) => h("span", {
              class: ["wf-tick", f === 1 ? "wf-tick-end" : null], style: { left: `${f * 100}%` },
            }, fmtMs(f * t.duration_ms)))),
            h("div", { class: "wf-dur" }, "Duration")),
          rowsEl),
        detailEl)
      : h("div", { class: "empty card" }, "This trace has no spans."),
    h("div", { class: "section", dataset: { testid: "trace-feedback" }, hidden: true }),
    h("div", { class: "section", dataset: { testid: "session-traces" }, hidden: !t.session_id })));

  const sessionBox = ctx.root.querySelector("[data-testid=session-traces]");

  function visible() {
    const out = [];
    const hiddenUnder = new Set();
    for (const s of all) {
      if (s.parent_span_id && hiddenUnder.has(s.parent_span_id)) { hiddenUnder.add(s.span_id); continue; }
      out.push(s);
      if (collapsed.has(s.span_id)) hiddenUnder.add(s.span_id);
    }
    return out;
  }

  function toggle(s) {
    if (collapsed.has(s.span_id)) collapsed.delete(s.span_id); else collapsed.add(s.span_id);
    drawRows();
  }

  const rowEls = new Map(); // span id -> its row, as last drawn

  function select(s, focus = false) {
    // Only the two rows change: a trace of thousands of spans is not redrawn per click.
    const old = selected && rowEls.get(selected.span_id);
    if (old) markSelected(old, false);
    selected = s;
    history.replaceState(null, "", traceHref(t.id, s.span_id));
    const el = rowEls.get(s.span_id);
    if (el) {
      markSelected(el, true);
      if (focus) el.focus();
    }
    replace(detailEl, renderSpanDetail(s, t, byId, (p) => select(p, true)));
  }

  function onKey(e, s) {
    const vis = visible();
    const i = vis.indexOf(s);
    if (e.key === "ArrowDown" && i < vis.length - 1) select(vis[i + 1], true);
    else if (e.key === "ArrowUp" && i > 0) select(vis[i - 1], true);
    else if (e.key === "ArrowLeft" && s.children.length && !collapsed.has(s.span_id)) toggle(s);
    else if (e.key === "ArrowRight" && collapsed.has(s.span_id)) toggle(s);
    else if (e.key === "Enter" || e.key === " ") select(s, true);
    else return;
    e.preventDefault();
  }

  function spanRow(s) {
    const err = s.status === "ERROR";
    const open = !collapsed.has(s.span_id);
    const left = Math.min(100, Math.max(0, (s.offset_ms / total) * 100));
    const width = Math.min(100 - left, Math.max(0, (s.duration_ms / total) * 100));
    return h("div", {
      class: ["wf-row", "wf-span", err ? "span-error" : null, selected === s ? "selected" : null],
      role: "treeitem", tabindex: selected === s ? "0" : "-1",
      "aria-level": String(s.depth + 1), "aria-selected": String(selected === s),
      "aria-expanded": s.children.length ? String(open) : null,
      dataset: { testid: "span-row", spanId: s.span_id, depth: String(s.depth), kind: s.kind, status: s.status },
      onclick: () => select(s),
      onkeydown: (e) => onKey(e, s),
    },
    h("div", { class: "wf-name", style: { paddingLeft: `${6 + s.depth * 16}px` } },
      s.children.length
        ? h("button", { class: "twisty", tabindex: "-1", title: open ? "Hide child spans" : "Show child spans",
          "aria-label": open ? "Collapse" : "Expand", dataset: { testid: "span-toggle" },
          onclick: (e) => { e.stopPropagation(); toggle(s); } }, open ? "▾" : "▸")
        : h("span", { class: "twisty-spacer" }),
      kindBadge(s.kind),
      h("span", { class: "wf-label", title: s.name, dataset: { testid: "span-name" } }, s.name),
      err ? h("span", { class: "err-mark", title: s.status_message || "error", dataset: { testid: "span-error-mark" } }, "!") : null,
      !open ? h("span", { class: "pill small" }, `+${countBelow(s)}`) : null),
    h("div", { class: "wf-track" },
      h("div", { class: `wf-bar kind-${s.kind}`, style: { left: `${left}%`, width: `${width}%` },
        title: `${fmtMs(s.offset_ms)} → ${fmtMs(s.offset_ms + s.duration_ms)}`, dataset: { testid: "span-bar" } })),
    h("div", { class: "wf-dur num", dataset: { testid: "span-duration" } }, fmtMs(s.duration_ms)));
  }

  function drawRows() {
    rowEls.clear();
    replace(rowsEl, visible().map((s) => {
      const el = spanRow(s);
      rowEls.set(s.span_id, el);
      return el;
    }));
  }

  drawRows();
  if (selected) select(selected);

  linkOwners(t, links, ctx.signal);
  if (t.session_id) sessionTraces(t, sessionBox, ctx.signal);
  feedbackPanel(t, ctx.root.querySelector("[data-testid=trace-feedback]"), ctx.signal);
}

/** The feedback room's panel, where that room is installed (this page works without it). */
async function feedbackPanel(t, box, signal) {
  let mod;
  try {
    mod = await import("./trace_feedback.js");
  } catch {
    return;
  }
  box.hidden = false;
  await mod.renderTraceFeedback(box, t, signal);
}

function markSelected(el, on) {
  el.classList.toggle("selected", on);
  el.setAttribute("aria-selected", String(on));
  el.tabIndex = on ? 0 : -1;
}

function countBelow(s) {
  let n = 0;
  const stack = [...s.children];
  while (stack.length) { const c = stack.pop(); n++; stack.push(...c.children); }
  return n;
}

/** A string literal of the trace filter language. */
function quote(s) {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function fact(label, value, testid = null) {
  return h("div", { dataset: testid ? { testid } : {} }, h("div", { class: "meta-label" }, label), h("div", { class: "meta-value" }, value));
}

/** Links to the experiment (or run) and the deployment the trace belongs to, named once known. */
async function linkOwners(t, box, signal) {
  const parts = [];
  if (t.experiment_id) {
    const a = h("a", { href: `#/experiments/${encodeURIComponent(t.experiment_id)}`, dataset: { testid: "trace-experiment-link" } }, t.experiment_id);
    parts.push(h("span", {}, "Experiment ", a));
    // The id may name an experiment or a run (start_trace(experiment_id=run.id)).
    api(`/experiments/${encodeURIComponent(t.experiment_id)}`, { signal }).then((e) => { a.textContent = e.name; })
      .catch(() => api(`/runs/${encodeURIComponent(t.experiment_id)}`, { signal }).then((r) => {
        a.textContent = r.name;
        a.href = `#/runs/${encodeURIComponent(r.id)}`;
        a.previousSibling.textContent = "Run ";
      }))
      .catch(() => { /* unknown id: the plain id stays */ });
  }
  if (t.deployment_id) {
    const a = h("a", { href: "#/deployments", dataset: { testid: "trace-deployment-link" } }, t.deployment_id);
    parts.push(h("span", {}, "Deployment ", a));
    api(`/deployments/${encodeURIComponent(t.deployment_id)}`, { signal }).then((d) => { a.textContent = d.name; }).catch(() => {});
  }
  if (t.deployment_id || t.experiment_id) {
    const f = t.deployment_id ? `deployment_id = ${quote(t.deployment_id)}` : `experiment_id = ${quote(t.experiment_id)}`;
    parts.push(h("a", { href: tracesHref({ filter: f }), dataset: { testid: "trace-owner-traces" } }, "All its traces"));
  }
  replace(box, parts);
}

async function sessionTraces(t, box, signal) {
  replace(box, h("div", { class: "section-head" },
    h("h2", {}, "Session ", h("span", { class: "mono" }, t.session_id)),
    h("a", { href: tracesHref({ session: t.session_id }), dataset: { testid: "session-all-link" } }, "All traces in this session ›")),
  loading("Loading the session…"));
  try {
    const page = await api("/traces", { query: { session_id: t.session_id, order: "asc", limit: 50 }, signal });
    box.lastChild.replaceWith(h("div", { class: "table-wrap card" }, h("table", { class: "table table-compact" },
      h("thead", {}, h("tr", {}, ["#", "Trace", "Started", "Duration", "Status", "Tokens in / out", "Cost"].map((x) => h("th", {}, x)))),
      h("tbody", {}, page.traces.map((s, i) => h("tr", { class: s.id === t.id ? "selected" : null, dataset: { testid: "session-trace", id: s.id } },
        h("td", { class: "muted" }, String(i + 1)),
        h("td", {}, s.id === t.id ? h("span", { class: "strong" }, `${s.name} (this trace)`) : h("a", { href: traceHref(s.id) }, s.name)),
        h("td", {}, timeCell(s.start_us / 1000)),
        h("td", { class: "num" }, fmtMs(s.duration_ms)),
        h("td", {}, statusChip(s.status, s.error_count)),
        h("td", { class: "num" }, `${s.input_tokens} / ${s.output_tokens}`),
        h("td", { class: "num" }, costText(s.total_cost))))))));
    if (page.next_page_token) box.append(h("div", { class: "muted small" }, "First 50 traces of the session."));
  } catch (err) {
    if (err.name === "AbortError") return;
    box.lastChild.replaceWith(errorBox(err, "Could not load the session's traces"));
  }
}
