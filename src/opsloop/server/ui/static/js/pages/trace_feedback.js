// A trace's feedback (on #/traces/<id>): every annotation on the trace and its spans, and a
// form to add one (the score's kind picks the input: true/false, a category, a bounded
// number, text). Loaded by trace.js when the feedback room is installed.

import { api } from "../api.js";
import { errorBox, h, loading, replace, timeCell } from "../dom.js";

function fmtValue(v) {
  if (v === true) return "true";
  if (v === false) return "false";
  if (v === null || v === undefined) return "—";
  return String(v);
}

function valueInput(score) {
  const attrs = { class: "input input-sm", "aria-label": "Value", dataset: { testid: "feedback-value" } };
  if (!score) return h("input", { ...attrs, type: "text", disabled: true });
  if (score.kind === "boolean") {
    return h("select", attrs, h("option", { value: "true" }, "true (👍)"), h("option", { value: "false" }, "false (👎)"));
  }
  if (score.kind === "categorical") {
    return h("select", attrs, (score.categories || []).map((c) => h("option", { value: c }, c)));
  }
  if (score.kind === "numeric") {
    return h("input", { ...attrs, type: "number", step: "any",
      min: score.min_value ?? null, max: score.max_value ?? null,
      placeholder: score.min_value != null && score.max_value != null ? `${score.min_value}–${score.max_value}` : "number" });
  }
  return h("input", { ...attrs, type: "text", placeholder: "text" });
}

function parseValue(score, raw) {
  if (score.kind === "boolean") return raw === "true";
  if (score.kind === "numeric") return raw === "" ? null : Number(raw);
  return raw;
}

/** Fill `box` with the feedback panel of trace `t`. */
export async function renderTraceFeedback(box, t, signal) {
  replace(box, h("div", { class: "section-head" }, h("h2", {}, "Feedback")), loading("Loading feedback…"));
  let scores;
  try {
    scores = (await api("/feedback/scores", { signal })).scores.filter((s) => s.kind !== "preference");
  } catch (err) {
    if (err.name === "AbortError") return;
    box.lastChild.replaceWith(errorBox(err, "Could not load the scores"));
    return;
  }
  const list = h("div", { class: "table-wrap card", dataset: { testid: "feedback-list" } });
  const scoreSel = h("select", { class: "input input-sm", "aria-label": "Score", dataset: { testid: "feedback-score" } },
    scores.map((s) => h("option", { value: s.name }, s.builtin ? `${s.name} (built-in)` : s.name)));
  let valueEl = valueInput(scores[0]);
  const valueSlot = h("span", {}, valueEl);
  const comment = h("input", { type: "text", class: "input input-sm", placeholder: "Comment (optional)", "aria-label": "Comment", dataset: { testid: "feedback-comment" } });
  const msg = h("div", { class: "filter-error", role: "alert", hidden: true, dataset: { testid: "feedback-error" } });
  const current = () => scores.find((s) => s.name === scoreSel.value);
  scoreSel.addEventListener("change", () => { valueEl = valueInput(current()); replace(valueSlot, valueEl); });

  async function send(name, value, extra = {}) {
    msg.hidden = true;
    try {
      await api("/feedback/annotations", { method: "POST", body: { name, value, trace_id: t.id, ...extra } });
    } catch (err) {
      msg.textContent = `${err.code}: ${err.message}`;
      msg.hidden = false;
      return;
    }
    comment.value = "";
    await load();
  }

  // novalidate: the server checks values against the score and answers with a stable code.
  const form = h("form", { class: "toolbar feedback-form", novalidate: true, dataset: { testid: "feedback-form" }, onsubmit: (e) => {
    e.preventDefault();
    const s = current();
    if (!s) return;
    send(s.name, parseValue(s, valueEl.value), comment.value.trim() ? { comment: comment.value.trim() } : {});
  } },
  h("button", { type: "button", class: "btn btn-sm", title: "Thumbs up", dataset: { testid: "thumbs-up" }, onclick: () => send("thumbs", true) }, "👍"),
  h("button", { type: "button", class: "btn btn-sm", title: "Thumbs down", dataset: { testid: "thumbs-down" }, onclick: () => send("thumbs", false) }, "👎"),
  scoreSel, valueSlot, comment,
  h("button", { type: "submit", class: "btn btn-sm", dataset: { testid: "feedback-submit" } }, "Add"));

  replace(box, h("div", { class: "section-head" }, h("h2", {}, "Feedback"),
    h("a", { href: "#/feedback" }, "Scores and agreement ›")), form, msg, list);

  async function load() {
    let rows;
    try {
      rows = (await api("/feedback/annotations", { query: { trace_id: t.id }, signal })).annotations;
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(list, errorBox(err, "Could not load the feedback"));
      return;
    }
    if (!rows.length) {
      replace(list, h("div", { class: "muted empty-row", dataset: { testid: "feedback-empty" } }, "No feedback on this trace yet."));
      return;
    }
    replace(list, h("table", { class: "table table-compact" },
      h("thead", {}, h("tr", {}, ["Score", "Value", "On", "Source", "Author", "Comment", "When"].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.map((a) => h("tr", { dataset: { testid: "feedback-row", name: a.name, author: a.author } },
        h("td", { class: "strong" }, a.name),
        h("td", { dataset: { testid: "feedback-row-value" } }, fmtValue(a.value)),
        h("td", { class: "mono small" }, a.span_id ? `span ${a.span_id}` : a.target_kind),
        h("td", {}, a.source),
        h("td", {}, a.author),
        h("td", { class: "small" }, a.correction && a.name !== "correction" ? `${a.comment || ""} (corrected)` : (a.comment || "")),
        h("td", {}, timeCell(a.updated_at)))))));
  }
  await load();
}
