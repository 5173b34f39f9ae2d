// A loop run (`opsloop loop run`): its report and its lineage graph, every arrow of the
// loop: traces -> feedback -> dataset version -> job run -> adapter and version 2 ->
// evaluations -> the alias move (or the gate's refusal). Read from the loop run and its
// loop/report.json artifact.

import { api, artifactUrl } from "../api.js";
import { emptyState, h, loading, replace } from "../dom.js";
import { lineageGraph } from "../lineage.js";

const REPORT = "loop/report.json";
const f3 = (x) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(3));

/** Nodes and edges of one loop (ids come from the report; links go to each room's page). */
export function loopGraph(rep) {
  const a = rep.artifacts;
  const model = encodeURIComponent(a.model);
  const nodes = [];
  const edges = [];
  const node = (id, kind, label, sub, href) => (nodes.push({ id, kind, label, sub, href }), id);
  const edge = (from, to, label = "") => edges.push({ from, to, label });
  const traces = node("traces", "trace", `${a.traces.length} traces`, "train questions on v1",
    a.traces.length ? `#/traces/${encodeURIComponent(a.traces[0])}` : "#/traces");
  const fb = node("feedback", "annotation", `${a.annotations.length} annotations`,
    "thumbs + correction (code)", "#/feedback");
  const [dsName, dsVersion] = a.dataset.split("@");
  const ds = node("dataset", "dataset", `${dsName} v${dsVersion}`, "SFT rows",
    `#/datasets/${encodeURIComponent(dsName)}?v=${dsVersion}`);
  const v1 = node("v1", "model", `${a.model} v${a.v1}`, "version 1 (served)", `#/models/${model}?v=${a.v1}`);
  const job = node("job", "run", "fine-tuning job", a.job_run_id.slice(0, 8), `#/runs/${encodeURIComponent(a.job_run_id)}`);
  edge(v1, traces, "served");
  edge(traces, fb, "annotated");
  edge(fb, ds, "exported");
  edge(ds, job, "train");
  edge(v1, job, "base");
  let v2 = null;
  if (a.v2 !== null && a.v2 !== undefined) {
    const [adName, adVersion] = a.adapter.replace("models:/", "").split("/");
    const adapter = node("adapter", "model", `${adName} v${adVersion}`, "LoRA adapter",
      `#/models/${encodeURIComponent(adName)}?v=${adVersion}`);
    v2 = node("v2", "model", `${a.model} v${a.v2}`, "merged: version 2", `#/models/${model}?v=${a.v2}`);
    edge(job, adapter, "made");
    edge(adapter, v2, "merged");
  }
  const cmp = `#/evaluations/compare?runs=${encodeURIComponent(a.eval_run_v1)},${encodeURIComponent(a.eval_run_v2)}&metric=${encodeURIComponent(rep.metric)}`;
  const e1 = node("eval-v1", "evaluation", `v${a.v1}: ${rep.metric} ${f3(rep.v1_quality)}`, "held-out", cmp);
  const e2 = node("eval-v2", "evaluation", `v${a.v2}: ${rep.metric} ${f3(rep.v2_quality)}`,
    `gain ${f3(rep.gain)} [${f3(rep.ci_low)}, ${f3(rep.ci_high)}]`, cmp);
  edge(v1, e1, "evaluated");
  if (v2) edge(v2, e2, "evaluated");
  const move = node("alias", "alias", rep.promoted ? `@${rep.alias} → v${a.v2}` : `@${rep.alias} stays v${a.v1}`,
    rep.promoted ? `promoted (event ${a.alias_event_id})` : "refused by the gate", `#/models/${model}`);
  edge(e1, move, "baseline");
  edge(e2, move, rep.promoted ? "gate passed" : "gate refused");
  return { nodes, edges };
}

export async function renderLoop(ctx, runId) {
  ctx.setTitle("Loop");
  replace(ctx.root, h("div", { class: "page" }, loading("Loading the loop…")));
  const run = await api(`/runs/${encodeURIComponent(runId)}`, { signal: ctx.signal });
  const res = await fetch(artifactUrl(runId, REPORT), { signal: ctx.signal });
  const header = h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, "Loop"),
      h("div", { class: "muted" }, "Run ", h("a", { href: `#/runs/${encodeURIComponent(runId)}` }, run.run?.name || run.name || runId))));
  if (!res.ok) {
    replace(ctx.root, h("div", { class: "page" }, header,
      emptyState("This run holds no loop report.", "Run opsloop loop run; its run stores loop/report.json.")));
    return;
  }
  const rep = await res.json();
  const rows = [
    [`v1 held-out ${rep.metric}`, f3(rep.v1_quality)],
    [`v2 held-out ${rep.metric}`, f3(rep.v2_quality)],
    ["gain (v2 - v1)", f3(rep.gain)],
    ["95% paired bootstrap CI", `[${f3(rep.ci_low)}, ${f3(rep.ci_high)}]`],
    ["p-value", f3(rep.p_value)],
    ["gate", `${rep.promoted ? "promoted" : "refused"}: ${rep.decision}`],
    ...Object.entries(rep.stage_seconds).map(([k, v]) => [`time: ${k}`, `${Number(v).toFixed(1)} s`]),
  ];
  const graphBox = h("div", { class: "card lineage-box-wrap" });
  replace(ctx.root, h("div", { class: "page" }, header,
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "loop-report" } },
        h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))))),
    h("section", { class: "section" }, h("div", { class: "section-head" }, h("h2", {}, "Lineage")), graphBox)));
  lineageGraph(graphBox, { ...loopGraph(rep), ariaLabel: `Lineage of loop ${runId}` });
}
