// Formatting shared by the trace list and the trace view.

import { h } from "../dom.js";

export const KIND_LABELS = {
  llm: "LLM", chain: "CHAIN", retriever: "RETR", tool: "TOOL", embedding: "EMBED", agent: "AGENT", other: "SPAN",
};

export function traceHref(id, spanId = null) {
  return `#/traces/${encodeURIComponent(id)}${spanId ? `?span=${encodeURIComponent(spanId)}` : ""}`;
}

/** Milliseconds (fractional) as a short duration: 850 µs, 12.3 ms, 1.4 s, 2m 5s. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** US dollars; tiny amounts keep their significant digits. */
export function costText(v) {
  if (v === null || v === undefined) return "—";
  if (v === 0) return "$0";
  if (v >= 100) return `$${v.toFixed(0)}`;
  if (v >= 0.01) return `$${v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "")}`;
  return `$${Number(v.toPrecision(3))}`;
}

export function statusChip(status, errors = 0) {
  const err = status === "ERROR";
  return h("span", { class: `badge ${err ? "badge-failed" : "badge-finished"}`, title: err ? `${errors} failed span(s)` : "OK",
    dataset: { testid: "trace-status" } }, err ? (errors > 1 ? `ERROR ×${errors}` : "ERROR") : "OK");
}

export function kindBadge(kind) {
  const k = Object.hasOwn(KIND_LABELS, kind) ? kind : "other";
  return h("span", { class: `kind-badge kind-${k}`, title: `${kind} span`, dataset: { testid: "span-kind" } }, KIND_LABELS[k]);
}
