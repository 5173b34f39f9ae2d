// The details of one span: timings, model, parameters, usage and cost, inputs and
// outputs (chat messages as messages, anything else as pretty JSON), attributes, and
// events with exceptions. Long text is cut with a "show more" button. Everything is
// DOM text: a prompt full of markup shows as the characters it holds.

import { h } from "../dom.js";
import { costText, fmtMs, kindBadge } from "./trace_fmt.js";

export const TRUNCATE_AT = 2000;
const PARAM_PREFIX = "gen_ai.request.";
const TRUNCATED_KEY = "opsloop.truncated";

/** Text that shows its first TRUNCATE_AT characters and a button for the rest. */
export function longText(text, cls = "io-text") {
  const pre = h("pre", { class: cls });
  if (text.length <= TRUNCATE_AT) {
    pre.textContent = text;
    return pre;
  }
  pre.textContent = text.slice(0, TRUNCATE_AT);
  const more = h("button", { class: "btn btn-link btn-sm show-more", dataset: { testid: "show-more" } },
    `Show more (${(text.length - TRUNCATE_AT).toLocaleString()} more characters)`);
  more.addEventListener("click", () => {
    const open = more.dataset.open === "1";
    pre.textContent = open ? text.slice(0, TRUNCATE_AT) : text;
    more.dataset.open = open ? "0" : "1";
    more.textContent = open ? `Show more (${(text.length - TRUNCATE_AT).toLocaleString()} more characters)` : "Show less";
  });
  return h("div", { class: "long-text" }, pre, more);
}

function pretty(v) {
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

/** The text of a message's content: a string, or the text parts of a parts list. */
function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((p) => {
      if (typeof p === "string") return p;
      if (p && p.type === "text") return p.text ?? p.content ?? "";
      return JSON.stringify(p);
    }).join("\n");
  }
  return content == null ? "" : JSON.stringify(content, null, 2);
}

function isMessage(m) {
  return m !== null && typeof m === "object" && !Array.isArray(m) && typeof m.role === "string"
    && ("content" in m || "parts" in m || "tool_calls" in m);
}

/** Chat messages: a list of {role, content|parts}, or an object holding one under `messages`. */
function chatMessages(v) {
  if (Array.isArray(v) && v.length && v.every(isMessage)) return v;
  if (v && typeof v === "object" && Array.isArray(v.messages) && v.messages.length && v.messages.every(isMessage)) return v.messages;
  return null;
}

function messageView(m) {
  const body = m.parts !== undefined ? contentText(m.parts) : contentText(m.content);
  const extra = {};
  for (const [k, val] of Object.entries(m)) if (!["role", "content", "parts"].includes(k)) extra[k] = val;
  return h("div", { class: `chat-msg role-${/^[a-z]+$/.test(m.role) ? m.role : "other"}`, dataset: { testid: "chat-message", role: m.role } },
    h("div", { class: "chat-role" }, m.role),
    body ? longText(body, "chat-text") : null,
    Object.keys(extra).length ? longText(pretty(extra), "io-text io-extra") : null);
}

/** Inputs or outputs as messages, text or JSON. */
export function ioView(v, testid) {
  if (v === null || v === undefined) return h("div", { class: "muted small", dataset: { testid } }, "None recorded");
  if (v && typeof v === "object" && v[TRUNCATED_KEY] === true) {
    return h("div", { dataset: { testid } },
      h("div", { class: "notice small" }, `Stored cut to its head: the full value was ${Number(v.size).toLocaleString()} bytes.`),
      longText(String(v.head ?? "")));
  }
  const msgs = chatMessages(v);
  if (msgs) {
    const rest = Array.isArray(v) ? null : Object.fromEntries(Object.entries(v).filter(([k]) => k !== "messages"));
    return h("div", { class: "chat", dataset: { testid } }, msgs.map(messageView),
      rest && Object.keys(rest).length ? longText(pretty(rest)) : null);
  }
  return h("div", { dataset: { testid } }, longText(pretty(v)));
}

function kvTable(obj, testid) {
  const keys = Object.keys(obj).sort();
  if (!keys.length) return h("div", { class: "muted small" }, "None");
  return h("table", { class: "table table-compact kv", dataset: { testid } },
    h("tbody", {}, keys.map((k) => h("tr", {},
      h("td", { class: "kv-key mono", title: k }, k),
      h("td", { class: "kv-val mono" }, typeof obj[k] === "string" ? obj[k] : JSON.stringify(obj[k]))))));
}

function section(title, body, testid = null) {
  return h("div", { class: "sd-section", dataset: testid ? { testid } : {} }, h("div", { class: "sd-title" }, title), body);
}

function eventView(e) {
  const a = e.attributes || {};
  if (e.name === "exception") {
    return h("div", { class: "sd-event sd-exception", dataset: { testid: "span-exception" } },
      h("div", { class: "strong" }, a["exception.type"] || "exception", a["exception.message"] ? `: ${a["exception.message"]}` : ""),
      a["exception.stacktrace"] ? longText(String(a["exception.stacktrace"]), "io-text stacktrace") : null);
  }
  const rest = Object.keys(a).length ? kvTable(a, "event-attributes") : null;
  return h("div", { class: "sd-event", dataset: { testid: "span-event" } },
    h("div", {}, h("span", { class: "strong" }, e.name || "event"),
      e.time_us ? h("span", { class: "muted small" }, ` at ${new Date(e.time_us / 1000).toLocaleTimeString()}`) : null),
    rest);
}

/**
 * The panel for span `s` of trace `t`. `byId` maps span ids to spans (for the parent
 * link); `onSelect(span)` moves the selection.
 */
export function renderSpanDetail(s, t, byId, onSelect) {
  const attrs = s.attributes || {};
  const params = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith(PARAM_PREFIX) && k !== "gen_ai.request.model") params[k.slice(PARAM_PREFIX.length)] = v;
  }
  const parent = s.parent_span_id ? byId.get(s.parent_span_id) : null;
  const stat = (label, value, testid) => h("div", { class: "sd-stat", dataset: { testid } },
    h("div", { class: "meta-label" }, label), h("div", { class: "meta-value" }, value));
  const tokens = s.input_tokens != null || s.output_tokens != null
    ? `${s.input_tokens ?? "—"} in / ${s.output_tokens ?? "—"} out` : "—";
  return h("div", { class: "sd" },
    h("div", { class: "sd-head" },
      kindBadge(s.kind),
      h("span", { class: "sd-name", dataset: { testid: "detail-name" } }, s.name),
      h("span", { class: `badge ${s.status === "ERROR" ? "badge-failed" : "badge-finished"}`, dataset: { testid: "detail-status" } }, s.status)),
    s.status === "ERROR"
      ? h("div", { class: "error-box sd-error", dataset: { testid: "detail-error" } }, h("strong", {}, "Error"),
        h("div", { class: "error-msg" }, s.status_message || "The span failed."))
      : null,
    h("div", { class: "sd-stats" },
      stat("Latency", fmtMs(s.duration_ms), "detail-latency"),
      stat("Starts at", `+${fmtMs(s.offset_ms)}`, "detail-offset"),
      stat("Model", s.model ? h("span", { class: "mono" }, s.model) : "—", "detail-model"),
      stat("Tokens", tokens, "detail-tokens"),
      stat("Cost", costText(s.cost), "detail-cost"),
      stat("Span", h("span", { class: "mono small" }, s.span_id), "detail-span-id"),
      parent ? stat("Parent", h("a", { href: "#", onclick: (e) => { e.preventDefault(); onSelect(parent); } }, parent.name), "detail-parent") : null),
    Object.keys(params).length ? section("Parameters", kvTable(params, "detail-params")) : null,
    section("Inputs", ioView(s.inputs, "detail-inputs")),
    section("Outputs", ioView(s.outputs, "detail-outputs")),
    s.events && s.events.length ? section(`Events (${s.events.length})`, h("div", { class: "sd-events" }, s.events.map(eventView)), "detail-events") : null,
    section(`Attributes (${Object.keys(attrs).length})`, kvTable(attrs, "detail-attributes")));
}
