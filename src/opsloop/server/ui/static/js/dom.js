// DOM building and formatting helpers. Every piece of data reaches the page as a
// text node or an attribute value set through the DOM API, never as parsed HTML,
// so run names, tags and notes cannot inject markup or script.

/**
 * Create an element. `attrs` keys: `class`, `style` (object), `dataset` (object),
 * `on<event>` (listener), boolean or string attributes; `null`/`false` values are skipped.
 * Children may be nodes, strings/numbers (become text nodes), arrays, or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    else if (k === "style") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "disabled" || k === "selected" || k === "open") el[k] = Boolean(v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Append children (nodes, text, nested arrays; null skipped). */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Remove every child of `el`, then append `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function loading(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner" }), text);
}

/** A readable error box for an exception (ApiError or any Error). */
export function errorBox(err, title = "Something went wrong") {
  const msg = err && err.message ? err.message : String(err);
  const code = err && err.code ? err.code : null;
  return h(
    "div",
    { class: "error-box", role: "alert" },
    h("strong", {}, title),
    h("div", { class: "error-msg" }, msg),
    code ? h("div", { class: "error-code" }, code) : null,
  );
}

/**
 * A paged list whose load failed: the error under the filter box, an empty
 * table saying why, no count and no paging. Returns whether the filter was at
 * fault (a 400 naming it), so the caller can mark the filter box.
 */
export function showListError(err, { filterErr, tableWrap, countEl, prevBtn, nextBtn, noun }) {
  tableWrap.classList.remove("is-loading");
  const isFilter = err.status === 400 && /filter/i.test(err.message);
  replace(filterErr, h("strong", {}, isFilter ? "Invalid filter: " : "Error: "), h("span", { class: "error-msg" }, err.message));
  filterErr.hidden = false;
  replace(tableWrap, h("div", { class: "empty" }, isFilter ? `Fix the filter to see ${noun}.` : `Could not load ${noun}.`));
  countEl.textContent = "";
  prevBtn.disabled = true;
  nextBtn.disabled = true;
  return isFilter;
}

export function emptyState(text, hint = null) {
  return h("div", { class: "empty" }, h("div", {}, text), hint ? h("div", { class: "muted small" }, hint) : null);
}

export function statusBadge(status) {
  const s = String(status || "").toUpperCase();
  return h("span", { class: `badge badge-${s.toLowerCase()}`, title: s }, s);
}

// ---------------------------------------------------------------- formatting

export function fmtNum(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e12) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function fmtAgo(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return fmtTime(ms);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return new Date(ms).toLocaleDateString();
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  const hh = Math.floor(m / 60);
  if (hh < 48) return `${hh}h ${m % 60}m`;
  return `${Math.floor(hh / 24)}d ${hh % 24}h`;
}

/** A run's duration: end - start, or elapsed so far while it is running. */
export function runDuration(run) {
  if (run.end_time) return run.end_time - run.start_time;
  if (run.status === "RUNNING") return Date.now() - run.start_time;
  return null;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function timeCell(ms) {
  return h("span", { title: fmtTime(ms) }, fmtAgo(ms));
}

/** Stable, readable colors for series (Tableau 10). */
export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

export function colorFor(i) {
  return PALETTE[i % PALETTE.length];
}

// Hrefs taken from data (model cards, deployment URLs) keep only these targets, so a stored
// `javascript:`, `data:` or `vbscript:` URL never becomes a live link. The test is on the raw
// string, before any trimming, so leading spaces or control characters fail it too.
const SAFE_HREF = /^(https?:\/\/|mailto:|#|\/(?!\/))/i;
const WEB_HREF = /^https?:\/\/[^\s/]/i;

/** Whether `href` may become a link: http(s), mailto, in-app (#) or same-site (/); `web`: http(s) only. */
export function isSafeHref(href, { web = false } = {}) {
  return typeof href === "string" && (web ? WEB_HREF : SAFE_HREF).test(href);
}

export function isSystemKey(key) {
  return key.startsWith("system/");
}

export function naturalCompare(a, b) {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
}

/** Read/write a JSON value in localStorage, tolerating private mode and bad data. */
export const store = {
  get(key, fallback) {
    try {
      const raw = localStorage.getItem(`opsloop.${key}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try { localStorage.setItem(`opsloop.${key}`, JSON.stringify(value)); } catch { /* quota or privacy mode */ }
  },
};

const ICON_PATHS = {
  dir: "M1.5 3.5a1 1 0 0 1 1-1h3.6l1.4 1.5h6a1 1 0 0 1 1 1v7.5a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1z",
  text: "M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3 M5.5 7.5h5 M5.5 9.5h5 M5.5 11.5h3",
  image: "M1.5 2.5h13v11h-13z M1.5 11l4-4 3 3 2-2 4 4 M10.5 6a1 1 0 1 0 0.01 0",
  table: "M1.5 2.5h13v11h-13z M1.5 6h13 M1.5 9.5h13 M6 2.5v11 M10.5 2.5v11",
  file: "M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3",
};

/** A small line icon as inline SVG (built through the DOM, no markup parsing). */
export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", `art-icon i-${name}`);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICON_PATHS[name] || ICON_PATHS.file);
  path.setAttribute("fill", name === "dir" ? "currentColor" : "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.2");
  path.setAttribute("stroke-linejoin", "round");
  svg.appendChild(path);
  return svg;
}
