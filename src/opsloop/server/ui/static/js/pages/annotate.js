// Annotate a queue (#/feedback/queues/<name>): claim the next trace (locked to you), read its
// question, answer and retrieved context, give the queue's scores, finish or skip.
// Keyboard: 1-9 pick the active score's option (a number for numeric scores), j/k or
// ↓/↑ move between scores, Enter saves and moves on, s skips.

import { api } from "../api.js";
import { errorBox, h, loading, replace, store } from "../dom.js";
import { traceHref } from "./trace_fmt.js";

function text(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

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

/** The options a score offers to the keyboard: [label, value]. */
function options(score) {
  if (score.kind === "boolean") return [["true", true], ["false", false]];
  if (score.kind === "categorical") return (score.categories || []).map((c) => [c, c]);
  if (score.kind === "numeric" && score.min_value != null && score.max_value != null
      && Number.isInteger(score.min_value) && Number.isInteger(score.max_value)
      && score.max_value - score.min_value <= 9) {
    const out = [];
    for (let v = score.min_value; v <= score.max_value; v++) out.push([String(v), v]);
    return out;
  }
  return null; // typed in
}

export async function renderAnnotate(ctx, name) {
  ctx.setTitle(`Annotate ${name}`);
  replace(ctx.root, h("div", { class: "page" }, loading("Loading the queue…")));
  const q = await api(`/feedback/queues/${encodeURIComponent(name)}`, { signal: ctx.signal });
  const defs = (await api("/feedback/scores", { signal: ctx.signal })).scores;
  const scores = q.scores.map((n) => defs.find((d) => d.name === n)).filter(Boolean);

  const who = h("input", { type: "text", class: "input input-sm", value: store.get("annotate.annotator", ""),
    placeholder: "Your name", "aria-label": "Annotator", dataset: { testid: "annotator" } });
  const progressEl = h("div", { class: "muted", dataset: { testid: "queue-progress" } });
  const itemEl = h("div", { dataset: { testid: "annotate-item" } });
  const msg = h("div", { class: "filter-error", role: "alert", hidden: true, dataset: { testid: "annotate-error" } });
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" }, h("div", {},
      h("div", { class: "crumbs" }, h("a", { href: "#/feedback" }, "Feedback"), h("span", { class: "sep" }, "/"), h("span", {}, "Queue")),
      h("h1", {}, q.name), h("div", { class: "muted small mono" }, q.filter)),
    h("div", { class: "toolbar" }, "Annotator ", who,
      h("button", { class: "btn btn-sm", dataset: { testid: "annotate-start" }, onclick: () => next() }, "Start"))),
    progressEl,
    h("div", { class: "muted small" }, "Keys: 1–9 pick a value · j/k or ↓/↑ move between scores · Enter saves and moves on · s skips"),
    msg, itemEl));

  const S = { item: null, trace: null, active: 0, values: {} };
  const annotator = () => who.value.trim();

  async function refreshProgress() {
    try {
      const p = await api(`/feedback/queues/${encodeURIComponent(name)}/progress`, { signal: ctx.signal });
      const mine = p.annotators.find((a) => a.annotator === annotator());
      progressEl.textContent = `${p.done} done, ${p.skipped} skipped, ${p.pending} pending of ${p.total}`
        + (mine ? ` · you: ${mine.done} done, ${mine.skipped} skipped` : "");
    } catch (err) { if (err.name !== "AbortError") progressEl.textContent = ""; }
  }

  function fail(err) {
    msg.textContent = `${err.code || "ERROR"}: ${err.message}`;
    msg.hidden = false;
  }

  async function next() {
    msg.hidden = true;
    if (!annotator()) { fail({ code: "INVALID_ARGUMENT", message: "enter your name first" }); return; }
    store.set("annotate.annotator", annotator());
    replace(itemEl, loading("Claiming the next trace…"));
    let res;
    try {
      res = await api(`/feedback/queues/${encodeURIComponent(name)}/claim`, { method: "POST", body: { annotator: annotator() }, signal: ctx.signal });
    } catch (err) { if (err.name !== "AbortError") replace(itemEl, errorBox(err, "Could not claim an item")); return; }
    S.item = res.item;
    S.values = {};
    S.active = 0;
    await refreshProgress();
    if (!S.item) { replace(itemEl, h("div", { class: "empty card", dataset: { testid: "queue-empty" } }, "Nothing left to annotate in this queue.")); return; }
    try {
      S.trace = await api(`/traces/${encodeURIComponent(S.item.trace_id)}`, { signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      S.trace = null; // the trace may be gone; the item can still be skipped
    }
    draw();
  }

  function draw() {
    const t = S.trace;
    const spans = t ? flatten(t.spans) : [];
    const root = spans[0];
    const context = spans.filter((s) => s.kind === "retriever" && s.outputs != null);
    replace(itemEl, h("div", { class: "card annotate-card", dataset: { testid: "annotate-trace", traceId: S.item.trace_id } },
      h("div", { class: "section-head" }, h("h2", {}, t ? t.name : S.item.trace_id),
        h("a", { href: traceHref(S.item.trace_id), target: "_blank" }, "Open the trace ›")),
      h("div", { class: "meta-label" }, "Input"),
      h("pre", { class: "code-block", dataset: { testid: "annotate-input" } }, root ? text(root.inputs) : "(trace not found)"),
      h("div", { class: "meta-label" }, "Output"),
      h("pre", { class: "code-block", dataset: { testid: "annotate-output" } }, root ? text(root.outputs) : ""),
      context.length ? h("div", { dataset: { testid: "annotate-context" } }, h("div", { class: "meta-label" }, "Retrieved context"),
        context.map((s) => h("pre", { class: "code-block small" }, text(s.outputs)))) : null,
      h("div", { class: "annotate-scores", dataset: { testid: "annotate-scores" } }, scores.map((s, i) => scoreRow(s, i))),
      h("div", { class: "toolbar" },
        h("button", { class: "btn", dataset: { testid: "annotate-save" }, onclick: () => save() }, "Save and next (Enter)"),
        h("button", { class: "btn btn-link", dataset: { testid: "annotate-skip" }, onclick: () => skip() }, "Skip (s)"))));
  }

  function scoreRow(s, i) {
    const opts = options(s);
    const cur = S.values[s.name];
    const active = i === S.active;
    const input = opts
      ? h("div", { class: "chips" }, opts.map(([label, v], k) => h("button", {
        class: ["btn", "btn-sm", cur === v ? "btn-primary" : null], dataset: { testid: "annotate-option", value: label },
        onclick: () => { S.values[s.name] = v; S.active = i; draw(); },
      }, `${k + 1} ${label}`)))
      : h("input", { type: s.kind === "numeric" ? "number" : "text", class: "input input-sm", value: cur ?? "",
        dataset: { testid: "annotate-input-value" },
        oninput: (e) => { S.values[s.name] = s.kind === "numeric" ? (e.target.value === "" ? undefined : Number(e.target.value)) : e.target.value; } });
    return h("div", { class: ["annotate-score", active ? "active" : null], dataset: { testid: "annotate-score", name: s.name, active: String(active) } },
      h("span", { class: "strong" }, `${active ? "▸ " : ""}${s.name}`), h("span", { class: "muted small" }, ` ${s.kind}`), input);
  }

  async function save() {
    if (!S.item) return;
    msg.hidden = true;
    try {
      for (const s of scores) {
        const v = S.values[s.name];
        if (v === undefined || v === "") continue;
        await api("/feedback/annotations", { method: "POST", body: { name: s.name, value: v, trace_id: S.item.trace_id, author: annotator() } });
      }
      await api(`/feedback/queues/${encodeURIComponent(name)}/items/${encodeURIComponent(S.item.trace_id)}/complete`,
        { method: "POST", body: { annotator: annotator() } });
    } catch (err) { fail(err); return; }
    await next();
  }

  async function skip() {
    if (!S.item) return;
    try {
      await api(`/feedback/queues/${encodeURIComponent(name)}/items/${encodeURIComponent(S.item.trace_id)}/skip`,
        { method: "POST", body: { annotator: annotator() } });
    } catch (err) { fail(err); return; }
    await next();
  }

  const onKey = (e) => {
    if (!S.item || e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
    const s = scores[S.active];
    if (/^[1-9]$/.test(e.key) && s) {
      const opts = options(s);
      if (opts && opts[Number(e.key) - 1]) S.values[s.name] = opts[Number(e.key) - 1][1];
      else if (!opts && s.kind === "numeric") S.values[s.name] = Number(e.key);
      else return;
      draw();
    } else if ((e.key === "j" || e.key === "ArrowDown") && S.active < scores.length - 1) { S.active++; draw(); }
    else if ((e.key === "k" || e.key === "ArrowUp") && S.active > 0) { S.active--; draw(); }
    else if (e.key === "Enter") save();
    else if (e.key === "s") skip();
    else return;
    e.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  ctx.onCleanup(() => document.removeEventListener("keydown", onKey));
  who.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); next(); } });
  if (annotator()) await next();
}
