// Evaluations (#/evaluations): evaluation runs with their aggregates and bootstrap intervals;
// #/evaluations/compare?runs=a,b&metric=m: aggregates with CI error bars, wins/losses and
// p-values against the baseline, a histogram of per-example differences, and the examples
// side by side with the differing outputs highlighted. Charts are drawn on a plain canvas.

import { api } from "../api.js";
import { colorFor, emptyState, fmtNum, h, loading, replace, timeCell } from "../dom.js";

const PAGE = 50;
const FETCH = 1000;

function ciText(m, key) {
  const lo = m[`${key}_ci_low`], hi = m[`${key}_ci_high`];
  return lo == null || hi == null ? "" : ` [${fmtNum(lo)}, ${fmtNum(hi)}]`;
}

export async function renderEvaluations(ctx) {
  ctx.setTitle("Evaluations");
  const body = h("div", {}, loading("Loading evaluations…"));
  const metricSel = h("select", { dataset: { testid: "eval-metric" } });
  const compareBtn = h("button", { class: "btn", dataset: { testid: "eval-compare" }, disabled: true }, "Compare selected");
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Evaluations"),
        h("div", { class: "muted" }, "Evaluation runs: aggregates with bootstrap confidence intervals. Tick two or more to compare; the first ticked is the baseline.")),
      h("div", { class: "toolbar" }, metricSel, compareBtn)),
    body));
  const { evaluations } = await api("/evaluations", { signal: ctx.signal, query: { max_results: 500 } });
  if (!evaluations.length) {
    replace(body, emptyState("No evaluation runs yet.", "opsloop eval run --candidate models:/NAME@ALIAS --dataset NAME@VERSION --metric f1"));
    return;
  }
  const names = [...new Set(evaluations.flatMap((e) => e.metric_names))];
  replace(metricSel, names.map((n) => h("option", { value: n }, n)));
  const picked = new Set(); // in the order they were ticked: the first one is the baseline
  const update = () => { compareBtn.disabled = picked.size < 2; };
  compareBtn.addEventListener("click", () => {
    const runs = [...picked];
    location.hash = `#/evaluations/compare?runs=${runs.map(encodeURIComponent).join(",")}&metric=${encodeURIComponent(metricSel.value)}`;
  });
  const rows = evaluations.map((e) => {
    const box = h("input", { type: "checkbox", dataset: { testid: "eval-pick" } });
    box.addEventListener("change", () => { if (box.checked) picked.add(e.run_id); else picked.delete(e.run_id); update(); });
    return h("tr", { dataset: { testid: "eval-row", id: e.run_id } },
      h("td", {}, box),
      h("td", { class: "strong" }, h("a", { href: `#/runs/${encodeURIComponent(e.run_id)}` }, e.name)),
      h("td", {}, e.candidate),
      h("td", {}, e.dataset),
      h("td", { dataset: { testid: "eval-aggregates" } },
        e.metric_names.map((k) => h("div", {}, h("span", { class: "muted" }, `${k} `),
          h("span", {}, fmtNum(e.metrics[k])), h("span", { class: "muted small" }, ciText(e.metrics, k))))),
      h("td", {}, e.metrics.latency_p99_ms == null ? "—" : `${fmtNum(e.metrics.latency_p99_ms)} ms`),
      h("td", {}, timeCell(e.start_time)));
  });
  replace(body, h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "evaluations-table" } },
      h("thead", {}, h("tr", {}, ...["", "Run", "Candidate", "Dataset", "Aggregates (95% CI)", "p99 latency", "Started"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows))));
}

// ---------------------------------------------------------------- charts

function canvasCard(title, testid, width, height) {
  const ratio = window.devicePixelRatio || 1;
  const c = h("canvas", { width: width * ratio, height: height * ratio, style: { width: `${width}px`, height: `${height}px` } });
  const g = c.getContext("2d");
  g.scale(ratio, ratio);
  return { card: h("div", { class: "card chart-card", dataset: { testid } }, h("div", { class: "chart-title" }, title), c), g, c };
}

function barChart(cands) {
  const W = 460, H = 240, pad = 36;
  const { card, g, c } = canvasCard("Aggregate with confidence interval", "eval-bar-chart", W, H);
  const vals = cands.flatMap((x) => [x.value, x.ci_low, x.ci_high]).filter((v) => v != null && Number.isFinite(v));
  const lo = Math.min(0, ...vals), hi = Math.max(...vals, lo + 1e-9);
  const y = (v) => H - pad - ((v - lo) / (hi - lo)) * (H - 2 * pad);
  const bw = (W - 2 * pad) / cands.length;
  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = "#999";
  g.beginPath(); g.moveTo(pad, y(lo)); g.lineTo(W - pad / 2, y(lo)); g.stroke();
  cands.forEach((x, i) => {
    const x0 = pad + i * bw + bw * 0.2, w = bw * 0.6;
    g.fillStyle = colorFor(i);
    g.fillRect(x0, y(x.value), w, y(lo) - y(x.value));
    if (x.ci_low != null && x.ci_high != null) {
      const mid = x0 + w / 2;
      g.strokeStyle = "#222"; g.lineWidth = 1.5;
      g.beginPath();
      g.moveTo(mid, y(x.ci_low)); g.lineTo(mid, y(x.ci_high));
      g.moveTo(mid - 6, y(x.ci_low)); g.lineTo(mid + 6, y(x.ci_low));
      g.moveTo(mid - 6, y(x.ci_high)); g.lineTo(mid + 6, y(x.ci_high));
      g.stroke();
    }
    g.fillStyle = "#333";
    g.fillText(fmtNum(x.value), x0, y(x.value) - 4);
    g.fillText(`#${i}`, x0 + w / 2 - 6, H - pad + 14);
  });
  c.dataset.drawn = "1";
  return card;
}

function histogram(diffs) {
  const W = 460, H = 240, pad = 36;
  const { card, g, c } = canvasCard("Per-example difference vs baseline", "eval-diff-histogram", W, H);
  const xs = diffs.filter((v) => v != null && Number.isFinite(v));
  if (!xs.length) return card;
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const bins = 15, span = hi - lo || 1;
  const counts = new Array(bins).fill(0);
  for (const v of xs) counts[Math.min(bins - 1, Math.floor(((v - lo) / span) * bins))] += 1;
  const top = Math.max(...counts);
  const bw = (W - 2 * pad) / bins;
  g.fillStyle = colorFor(1);
  counts.forEach((n, i) => {
    const hgt = (n / top) * (H - 2 * pad);
    g.fillRect(pad + i * bw + 1, H - pad - hgt, bw - 2, hgt);
  });
  g.fillStyle = "#333";
  g.font = "11px system-ui, sans-serif";
  g.fillText(fmtNum(lo), pad, H - pad + 14);
  g.fillText(fmtNum(hi), W - pad - 30, H - pad + 14);
  g.fillText(`max ${top}`, 4, pad - 6);
  c.dataset.drawn = "1";
  return card;
}

// ---------------------------------------------------------------- compare page

function pText(p) {
  if (p == null) return "—";
  return h("span", { class: p < 0.05 ? "strong" : "" }, fmtNum(p));
}

function show(v) {
  if (v == null) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export async function renderEvalCompare(ctx) {
  ctx.setTitle("Compare evaluations");
  const runs = ctx.query.get("runs") || "";
  const metric = ctx.query.get("metric") || "";
  const baseline = ctx.query.get("baseline") || "0";
  const body = h("div", {}, loading("Comparing…"));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, `Compare evaluations on ${metric}`),
        h("div", { class: "muted" }, h("a", { href: "#/evaluations" }, "← all evaluations")))),
    body));
  // One request brings up to FETCH examples (the histogram uses them all); the table shows PAGE at a time.
  const query = { runs, metric, baseline, offset: 0, limit: FETCH };
  const cmp = await api("/evaluations/compare", { signal: ctx.signal, query });
  const base = cmp.baseline;
  const summary = h("table", { class: "table", dataset: { testid: "eval-summary" } },
    h("thead", {}, h("tr", {}, ...["#", "Run", "Candidate", "Value (CI)", "Δ vs baseline (CI)", "Wins", "Losses", "Ties",
      "p bootstrap", "p permutation", "p sign", "p McNemar"].map((t) => h("th", {}, t)))),
    h("tbody", {}, cmp.candidates.map((c, i) => h("tr", { dataset: { testid: "eval-summary-row", id: c.run_id } },
      h("td", {}, i === base ? `#${i} (baseline)` : `#${i}`),
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(c.run_id)}` }, c.name)),
      h("td", {}, c.candidate),
      h("td", {}, `${fmtNum(c.value)}${c.ci_low == null ? "" : ` [${fmtNum(c.ci_low)}, ${fmtNum(c.ci_high)}]`}`),
      h("td", {}, i === base ? "—" : `${c.delta >= 0 ? "+" : ""}${fmtNum(c.delta)} [${fmtNum(c.delta_ci_low)}, ${fmtNum(c.delta_ci_high)}]`),
      h("td", { dataset: { testid: "eval-wins" } }, i === base ? "—" : String(c.wins)),
      h("td", { dataset: { testid: "eval-losses" } }, i === base ? "—" : String(c.losses)),
      h("td", {}, i === base ? "—" : String(c.ties)),
      h("td", {}, i === base ? "—" : pText(c.p_value_bootstrap)),
      h("td", { dataset: { testid: "eval-p-perm" } }, i === base ? "—" : pText(c.p_value_permutation)),
      h("td", {}, i === base ? "—" : pText(c.p_value_sign)),
      h("td", {}, i === base ? "—" : pText(c.p_value_mcnemar))))));
  const other = cmp.candidates.length > 1 ? (base === 0 ? 1 : 0) : base;
  const exBody = h("tbody", {});
  const more = h("button", { class: "btn", dataset: { testid: "eval-more" } }, "More examples");
  let offset = 0;
  const addRows = (examples) => {
    for (const e of examples) {
      const differs = e.diffs.some((d) => d != null && d !== 0);
      exBody.append(h("tr", { class: differs ? "eval-differs" : "", dataset: { testid: "eval-example", id: e.id, differs: differs ? "1" : "0" } },
        h("td", {}, e.id),
        h("td", {}, show(e.reference)),
        ...e.outputs.map((o, i) => h("td", {
          style: i !== base && e.diffs[i] ? { background: e.diffs[i] > 0 === cmp.greater_is_better ? "#e5f6e5" : "#fbe4e4" } : null,
        }, show(o), h("div", { class: "muted small" }, `${cmp.metric} ${fmtNum(e.values[i])}`)))));
    }
  };
  const loaded = cmp.examples;
  const next = async () => {
    if (offset >= loaded.length) {
      const page = await api("/evaluations/compare", { signal: ctx.signal, query: { ...query, offset } });
      loaded.push(...page.examples);
    }
    const rows = loaded.slice(offset, offset + PAGE);
    addRows(rows);
    offset += rows.length;
    more.hidden = offset >= cmp.total_examples;
  };
  await next();
  more.addEventListener("click", () => { next().catch((err) => console.error(err)); });
  replace(body,
    h("div", { class: "muted" }, `${cmp.n_common} common examples; per-example basis: ${cmp.per_example_basis}.`),
    h("div", { class: "table-wrap card" }, summary),
    h("div", { style: { display: "flex", gap: "16px", flexWrap: "wrap", margin: "16px 0" } },
      barChart(cmp.candidates),
      histogram(cmp.examples.map((e) => e.diffs[other]))),
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "eval-examples" } },
        h("thead", {}, h("tr", {}, h("th", {}, "Example"), h("th", {}, "Reference"),
          ...cmp.candidates.map((c, i) => h("th", {}, `#${i} ${c.name}`)))),
        exBody)),
    more);
}
