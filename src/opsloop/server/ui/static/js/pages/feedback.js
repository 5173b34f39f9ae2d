// Feedback (#/feedback): the score definitions, and per score the agreement between
// annotators (Krippendorff's alpha, pairwise Cohen's kappa) and of the LLM judge with them.

import { api } from "../api.js";
import { errorBox, h, loading, replace } from "../dom.js";
import { tracesHref } from "./traces.js";

const f3 = (v) => (v === null || v === undefined ? "n/a" : v.toFixed(3));

function values(s) {
  if (s.kind === "categorical" || s.kind === "preference") return (s.categories || []).join(", ");
  if (s.kind === "numeric") return `[${s.min_value ?? "−∞"}, ${s.max_value ?? "∞"}]`;
  return s.kind === "boolean" ? "true / false" : "text";
}

export async function renderFeedback(ctx) {
  ctx.setTitle("Feedback");
  replace(ctx.root, h("div", { class: "page" }, loading("Loading scores…")));
  const { scores } = await api("/feedback/scores", { signal: ctx.signal });
  const detail = h("div", { class: "section", dataset: { testid: "agreement" } });
  const queuesBox = h("div", { class: "section", dataset: { testid: "queues" } });
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Feedback"),
      h("div", { class: "muted" }, "Scores declared once; annotations on traces, spans, sessions and served predictions."))),
    h("div", { class: "table-wrap card" }, h("table", { class: "table", dataset: { testid: "scores-table" } },
      h("thead", {}, h("tr", {}, ["Score", "Kind", "Values", "Description", ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, scores.map((s) => h("tr", { dataset: { testid: "score-row", name: s.name } },
        h("td", { class: "strong" }, s.name, s.builtin ? h("span", { class: "muted small" }, " built-in") : null),
        h("td", {}, s.kind),
        h("td", { class: "small" }, values(s)),
        h("td", { class: "small" }, s.description),
        h("td", { class: "nowrap" },
          h("a", { href: tracesHref({ filter: `score.${s.name} is not null` }), dataset: { testid: "score-traces" } }, "Traces"),
          s.kind !== "text" && s.kind !== "preference"
            ? h("button", { class: "btn btn-link btn-sm", dataset: { testid: "show-agreement" }, onclick: () => agreement(s.name) }, "Agreement")
            : null)))))),
    detail, queuesBox));
  queues(queuesBox, ctx.signal);

  async function agreement(name) {
    replace(detail, loading("Computing agreement…"));
    let a;
    try {
      a = await api(`/feedback/scores/${encodeURIComponent(name)}/agreement`, { signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(detail, errorBox(err, "Could not compute the agreement"));
      return;
    }
    replace(detail,
      h("h2", {}, "Agreement on ", h("span", { class: "mono" }, a.score), h("span", { class: "muted small" }, ` (${a.level})`)),
      h("div", { class: "meta-grid" },
        fact("Krippendorff's alpha", f3(a.alpha), "alpha"),
        fact("Mean Cohen's kappa", f3(a.mean_kappa), "mean-kappa"),
        fact("Items scored by 2+", String(a.items)),
        fact("Annotators", Object.entries(a.per_annotator).map(([k, v]) => `${k} (${v})`).join(", ") || "none")),
      a.pairwise.length ? h("table", { class: "table table-compact", dataset: { testid: "pairwise" } },
        h("thead", {}, h("tr", {}, ["Annotator", "Annotator", "Items", "Kappa", "Same value"].map((x) => h("th", {}, x)))),
        h("tbody", {}, a.pairwise.map((p) => h("tr", {}, h("td", {}, p.a), h("td", {}, p.b), h("td", { class: "num" }, String(p.items)),
          h("td", { class: "num" }, f3(p.kappa)), h("td", { class: "num" }, f3(p.agreement)))))) : null,
      a.judge ? h("div", { class: "meta-grid", dataset: { testid: "judge-agreement" } },
        fact("LLM judge vs humans: items", String(a.judge.items)),
        fact("Judge kappa", f3(a.judge.kappa), "judge-kappa"),
        fact("Judge alpha", f3(a.judge.alpha)),
        fact("Same value", f3(a.judge.agreement)),
        a.judge.mean_abs_error !== null ? fact("Mean abs. error", f3(a.judge.mean_abs_error)) : null) : null);
  }
}

function fact(label, value, testid = null) {
  return h("div", { dataset: testid ? { testid } : {} }, h("div", { class: "meta-label" }, label), h("div", { class: "meta-value" }, value));
}

async function queues(box, signal) {
  let list;
  try {
    list = (await api("/feedback/queues", { signal })).queues;
  } catch (err) {
    if (err.name !== "AbortError") replace(box, errorBox(err, "Could not load the queues"));
    return;
  }
  const rows = await Promise.all(list.map(async (q) => [q, await api(`/feedback/queues/${encodeURIComponent(q.name)}/progress`, { signal })]));
  replace(box, h("h2", {}, "Annotation queues"), rows.length
    ? h("div", { class: "table-wrap card" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["Queue", "Rule", "Scores", "Done", "Skipped", "Pending", ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.map(([q, p]) => h("tr", { dataset: { testid: "queue-row", name: q.name } },
        h("td", { class: "strong" }, q.name),
        h("td", { class: "mono small" }, q.filter + (q.sample_ratio < 1 ? ` (${Math.round(q.sample_ratio * 100)}%)` : "")),
        h("td", {}, q.scores.join(", ")),
        h("td", { class: "num" }, String(p.done)),
        h("td", { class: "num" }, String(p.skipped)),
        h("td", { class: "num" }, String(p.pending)),
        h("td", {}, h("a", { href: `#/feedback/queues/${encodeURIComponent(q.name)}`, dataset: { testid: "queue-annotate" } }, "Annotate ›")))))))
    : h("div", { class: "muted" }, "No queues yet: create one with client.feedback.create_queue or `opsloop feedback queue create`."));
}
