// Traces (#/traces): server-side filter (the trace filter language plus quick filters),
// sort and keyset pages, with an optional auto-refresh. State lives in the hash so a
// filtered, sorted list can be linked (a trace's "other traces in this session" does).

import { api } from "../api.js";
import { h, loading, replace, showListError, store, timeCell } from "../dom.js";
import { costText, fmtMs, statusChip, traceHref } from "./trace_fmt.js";

const REFRESH_MS = 5000;
const DEFAULT_SORT = { key: "start_time", dir: "desc" };
const FILTER_EXAMPLES = [
  'status = "error" and latency_ms > 500',
  'model = "gpt-4o" and cost > 0.01',
  '(user = "u1" or user = "u2") and not tag = "test"',
  'name ilike "%chat%" and tokens >= 1000',
  'score.thumbs = "false" or score.helpfulness.llm_judge < 3',
];
// Quick time ranges: label -> milliseconds back from now.
const RANGES = { "": null, "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const RANGE_LABELS = { "": "Any time", "15m": "Last 15 min", "1h": "Last hour", "24h": "Last 24 h", "7d": "Last 7 days", "30d": "Last 30 days" };

// Columns: sort key (the API's `sort` names) or null when the column does not sort.
const COLUMNS = [
  { id: "name", label: "Name", sort: "name" },
  { id: "start", label: "Started", sort: "start_time" },
  { id: "duration", label: "Duration", sort: "latency_ms", num: true },
  { id: "status", label: "Status", sort: "errors" },
  { id: "user", label: "User", sort: null },
  { id: "session", label: "Session", sort: null },
  { id: "tokens", label: "Tokens in / out", sort: "tokens", num: true },
  { id: "cost", label: "Cost", sort: "cost", num: true },
  { id: "spans", label: "Spans", sort: "spans", num: true },
  { id: "tags", label: "Tags", sort: null },
];

function parseSort(s) {
  const m = /^([a-z_]+):(asc|desc)$/.exec(s || "");
  return m ? { key: m[1], dir: m[2] } : { ...DEFAULT_SORT };
}

/** The hash for a traces list with these settings (only non-default ones). */
export function tracesHref(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const qs = q.toString();
  return `#/traces${qs ? `?${qs}` : ""}`;
}

export async function renderTraces(ctx) {
  ctx.setTitle("Traces");
  const S = {
    filter: ctx.query.get("filter") || "",
    errorsOnly: ctx.query.get("status") === "error",
    user: ctx.query.get("user") || "",
    session: ctx.query.get("session") || "",
    range: Object.hasOwn(RANGES, ctx.query.get("range") || "") ? ctx.query.get("range") || "" : "",
    sort: parseSort(ctx.query.get("sort")),
    pageSize: store.get("traces.pageSize", 50),
    tokens: [null],
    page: 0,
    next: null,
    traces: [],
    seq: 0,
    auto: store.get("traces.autoRefresh", false),
  };

  const filterInput = h("input", {
    type: "text", class: "input mono filter-input", value: S.filter, spellcheck: "false", autocomplete: "off",
    placeholder: 'Filter traces, e.g. status = "error" and latency_ms > 500', "aria-label": "Filter traces",
    dataset: { testid: "trace-filter-input" },
  });
  const filterErr = h("div", { class: "filter-error", role: "alert", dataset: { testid: "trace-filter-error" }, hidden: true });
  const errorsBox = h("input", { type: "checkbox", checked: S.errorsOnly, dataset: { testid: "quick-errors" } });
  const userInput = h("input", { type: "text", class: "input input-sm quick-input", value: S.user, placeholder: "User id",
    "aria-label": "User id", dataset: { testid: "quick-user" } });
  const sessionInput = h("input", { type: "text", class: "input input-sm quick-input", value: S.session, placeholder: "Session id",
    "aria-label": "Session id", dataset: { testid: "quick-session" } });
  const rangeSel = h("select", { class: "input input-sm", "aria-label": "Time range", dataset: { testid: "quick-range" } },
    Object.keys(RANGES).map((k) => h("option", { value: k, selected: k === S.range }, RANGE_LABELS[k])));
  // Score filter (the feedback room's score.NAME fields): builds a clause into the filter string.
  const scoreSel = h("select", { class: "input input-sm", "aria-label": "Score", dataset: { testid: "score-name" } },
    h("option", { value: "" }, "Score…"));
  const scoreOp = h("select", { class: "input input-sm", "aria-label": "Score condition", dataset: { testid: "score-op" } },
    [[">=", "≥"], ["<=", "≤"], ["=", "="], ["!=", "≠"], ["missing", "is missing"], ["present", "is present"]]
      .map(([v, label]) => h("option", { value: v }, label)));
  const scoreVal = h("input", { type: "text", class: "input input-sm quick-input", placeholder: "Value", "aria-label": "Score value", dataset: { testid: "score-value" } });
  const scoreSrc = h("select", { class: "input input-sm", "aria-label": "Score source", dataset: { testid: "score-source" } },
    [["", "any source"], ["human", "human"], ["llm_judge", "LLM judge"], ["code", "code"]].map(([v, label]) => h("option", { value: v }, label)));
  const scoreBox = h("span", { class: "score-filter", hidden: true, dataset: { testid: "score-filter" } }, scoreSel, scoreSrc, scoreOp, scoreVal,
    h("button", { class: "btn btn-sm", dataset: { testid: "score-add" }, onclick: () => addScoreClause() }, "Add score filter"));
  const scoreKinds = new Map();
  api("/feedback/scores", { signal: ctx.signal }).then(({ scores }) => {
    for (const s of scores) {
      if (s.kind === "text") continue;
      scoreKinds.set(s.name, s.kind);
      scoreSel.append(h("option", { value: s.name }, s.name));
    }
    scoreBox.hidden = false;
  }).catch(() => { /* no feedback room on this server: no score filter */ });

  function addScoreClause() {
    const name = scoreSel.value;
    if (!name) return;
    const field = `score.${name}${scoreSrc.value ? `.${scoreSrc.value}` : ""}`;
    let clause;
    if (scoreOp.value === "missing") clause = `${field} is null`;
    else if (scoreOp.value === "present") clause = `${field} is not null`;
    else {
      const raw = scoreVal.value.trim();
      const num = scoreKinds.get(name) === "numeric" && raw !== "" && !Number.isNaN(Number(raw));
      clause = `${field} ${scoreOp.value} ${num ? raw : `"${raw.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`}`;
    }
    const cur = filterInput.value.trim();
    filterInput.value = cur ? `(${cur}) and ${clause}` : clause;
    apply();
  }

  const autoBox = h("input", { type: "checkbox", checked: S.auto, dataset: { testid: "auto-refresh" } });
  const updated = h("span", { class: "muted small", dataset: { testid: "traces-updated" } });
  const tableWrap = h("div", { class: "table-wrap card traces-wrap" }, loading("Loading traces…"));
  const countEl = h("span", { class: "muted", dataset: { testid: "trace-count" } });
  const prevBtn = h("button", { class: "btn", disabled: true, dataset: { testid: "prev-page" }, onclick: () => go(S.page - 1) }, "‹ Prev");
  const nextBtn = h("button", { class: "btn", disabled: true, dataset: { testid: "next-page" }, onclick: () => go(S.page + 1) }, "Next ›");
  const pageLabel = h("span", { class: "muted small" });
  const sizeSel = h("select", { class: "input input-sm", "aria-label": "Traces per page", onchange: (e) => {
    S.pageSize = Number(e.target.value);
    store.set("traces.pageSize", S.pageSize);
    reset();
  } }, [...new Set([25, 50, 100, 250, S.pageSize])].sort((a, b) => a - b)
    .map((n) => h("option", { value: String(n), selected: n === S.pageSize }, `${n} / page`)));

  const apply = () => {
    S.filter = filterInput.value.trim();
    S.user = userInput.value.trim();
    S.session = sessionInput.value.trim();
    S.errorsOnly = errorsBox.checked;
    S.range = rangeSel.value;
    reset();
  };
  filterInput.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  for (const el of [userInput, sessionInput]) el.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  errorsBox.addEventListener("change", apply);
  rangeSel.addEventListener("change", apply);

  const help = h("details", { class: "filter-help" }, h("summary", {}, "Syntax"),
    h("div", { class: "small" },
      h("p", {}, "Fields: ", h("code", {}, "name status user session model latency_ms cost tokens input_tokens output_tokens spans errors tag service experiment_id deployment_id start_time"),
        ". Operators = != < <= > >= like ilike in, is null; combine with and / or / not and parentheses."),
      h("p", {}, "Scores (feedback): ", h("code", {}, "score.NAME >= 4"), ", ", h("code", {}, 'score.NAME = "rude"'), ", ",
        h("code", {}, "score.NAME.human < 3"), " (or .llm_judge, .code), ", h("code", {}, 'score.NAME.author = "ann"'), ", ",
        h("code", {}, "score.NAME is null"), " (missing)."),
      h("ul", { class: "examples" }, FILTER_EXAMPLES.map((ex) => h("li", {},
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); filterInput.value = ex; apply(); } }, h("code", {}, ex)))))));

  replace(ctx.root, h("div", { class: "page page-wide" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Traces"),
        h("div", { class: "muted" }, "Requests to LLM applications: every model call, retrieval and tool call as a span.")),
      h("div", { class: "toolbar" }, updated,
        h("label", { class: "check-row", title: `Reload this page every ${REFRESH_MS / 1000} s` }, autoBox, "Auto-refresh"))),
    h("div", { class: "toolbar runs-toolbar" },
      h("div", { class: "filter-box" }, filterInput,
        h("button", { class: "btn", onclick: apply, dataset: { testid: "trace-filter-apply" } }, "Search"),
        h("button", { class: "btn btn-link", onclick: () => { filterInput.value = ""; apply(); } }, "Clear"))),
    h("div", { class: "toolbar quick-filters", dataset: { testid: "quick-filters" } },
      h("label", { class: "check-row" }, errorsBox, "Errors only"),
      userInput, sessionInput, rangeSel,
      h("button", { class: "btn btn-sm", onclick: apply, dataset: { testid: "quick-apply" } }, "Apply"),
      scoreBox,
      h("button", { class: "btn btn-link btn-sm", onclick: () => {
        errorsBox.checked = false; userInput.value = ""; sessionInput.value = ""; rangeSel.value = ""; apply();
      } }, "Reset")),
    help,
    filterErr,
    tableWrap,
    h("div", { class: "pager" }, countEl, h("div", { class: "pager-right" }, sizeSel, pageLabel, prevBtn, nextBtn))));

  function isFiltered() {
    return Boolean(S.filter || S.user || S.session || S.errorsOnly || S.range);
  }

  function syncHash() {
    const sort = S.sort.key === DEFAULT_SORT.key && S.sort.dir === DEFAULT_SORT.dir ? null : `${S.sort.key}:${S.sort.dir}`;
    history.replaceState(null, "", tracesHref({
      filter: S.filter, status: S.errorsOnly ? "error" : null, user: S.user, session: S.session, range: S.range, sort,
    }));
  }

  function reset() {
    S.tokens = [null];
    S.page = 0;
    syncHash();
    load();
  }

  function go(page) {
    if (page < 0 || page >= S.tokens.length) return;
    S.page = page;
    load();
  }

  async function load({ quiet = false } = {}) {
    const seq = ++S.seq;
    if (!quiet) tableWrap.classList.add("is-loading");
    const query = {
      filter: S.filter || null,
      status: S.errorsOnly ? "error" : null,
      user_id: S.user || null,
      session_id: S.session || null,
      since_ms: RANGES[S.range] ? Date.now() - RANGES[S.range] : null,
      sort: S.sort.key,
      order: S.sort.dir,
      limit: S.pageSize,
      page_token: S.tokens[S.page],
    };
    let page;
    try {
      page = await api("/traces", { query, signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError" || seq !== S.seq) return;
      const isFilter = showListError(err, { filterErr, tableWrap, countEl, prevBtn, nextBtn, noun: "traces" });
      filterInput.setAttribute("aria-invalid", isFilter ? "true" : "false");
      S.traces = [];
      return;
    }
    if (seq !== S.seq) return;
    filterErr.hidden = true;
    filterInput.removeAttribute("aria-invalid");
    S.traces = page.traces;
    S.next = page.next_page_token;
    S.tokens = S.tokens.slice(0, S.page + 1);
    if (S.next) S.tokens.push(S.next);
    tableWrap.classList.remove("is-loading");
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    draw();
  }

  function onSort(col) {
    const same = S.sort.key === col.sort;
    const firstDir = col.sort === "name" ? "asc" : "desc";
    S.sort = { key: col.sort, dir: same ? (S.sort.dir === "desc" ? "asc" : "desc") : firstDir };
    reset();
  }

  function quickUser(u) { userInput.value = u; apply(); }
  function quickSession(s) { sessionInput.value = s; apply(); }

  function draw() {
    if (!S.traces.length && S.page === 0 && !isFiltered()) {
      replace(tableWrap, noTraces());
    } else {
      replace(tableWrap, h("table", { class: "table traces-table", dataset: { testid: "traces-table" } },
        h("thead", {}, h("tr", {}, COLUMNS.map((c) => headerCell(c, S.sort, onSort)))),
        h("tbody", {}, S.traces.length
          ? S.traces.map((t) => traceRow(t, quickUser, quickSession))
          : h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted center empty-row" }, "No traces match these filters.")))));
    }
    const start = S.page * S.pageSize;
    countEl.textContent = S.traces.length
      ? `Showing ${start + 1}–${start + S.traces.length}${isFiltered() ? " (filtered)" : ""}`
      : "0 traces";
    pageLabel.textContent = `Page ${S.page + 1}`;
    prevBtn.disabled = S.page === 0;
    nextBtn.disabled = !S.next;
  }

  let timer = null;
  const setAuto = (on) => {
    S.auto = on;
    store.set("traces.autoRefresh", on);
    if (timer) clearInterval(timer);
    timer = on ? setInterval(() => { load({ quiet: true }).catch((err) => console.error(err)); }, REFRESH_MS) : null;
  };
  autoBox.addEventListener("change", () => setAuto(autoBox.checked));
  ctx.onCleanup(() => { if (timer) clearInterval(timer); });
  setAuto(S.auto);

  await load();
}

function headerCell(col, sort, onSort) {
  const active = col.sort && sort.key === col.sort;
  const arrow = active ? (sort.dir === "desc" ? " ▼" : " ▲") : "";
  return h("th", {
    class: ["th", col.sort ? "sortable" : null, active ? "sorted" : null, col.num ? "num" : null],
    title: col.sort ? `Sort by ${col.label.toLowerCase()}` : null,
    dataset: { testid: "trace-col", col: col.id },
    "aria-sort": active ? (sort.dir === "desc" ? "descending" : "ascending") : null,
    onclick: col.sort ? () => onSort(col) : null,
  }, h("span", { class: "col-label" }, col.label, h("span", { class: "sort-arrow" }, arrow)));
}

function traceRow(t, onUser, onSession) {
  const muted = (x = "—") => h("span", { class: "muted" }, x);
  const pick = (value, fn, title) => h("a", { href: "#", class: "quick-link", title, onclick: (e) => { e.preventDefault(); fn(value); } }, value);
  return h("tr", { class: ["trace-row", t.status === "ERROR" ? "trace-error" : null], dataset: { testid: "trace-row", id: t.id, status: t.status } },
    h("td", { class: "trace-name-cell" },
      h("a", { href: traceHref(t.id), class: "strong", title: t.name, dataset: { testid: "trace-link" } }, t.name),
      t.models.length ? h("div", { class: "small muted mono models-line" }, t.models.join(", ")) : null),
    h("td", { class: "nowrap" }, timeCell(t.start_us / 1000)),
    h("td", { class: "num nowrap", dataset: { testid: "trace-duration" } }, fmtMs(t.duration_ms)),
    h("td", {}, statusChip(t.status, t.error_count)),
    h("td", { dataset: { testid: "trace-user" } }, t.user_id ? pick(t.user_id, onUser, "Show this user's traces") : muted()),
    h("td", { dataset: { testid: "trace-session" } }, t.session_id ? pick(t.session_id, onSession, "Show this session's traces") : muted()),
    h("td", { class: "num nowrap" }, `${t.input_tokens} / ${t.output_tokens}`),
    h("td", { class: "num nowrap" }, costText(t.total_cost)),
    h("td", { class: "num" }, String(t.span_count)),
    h("td", {}, t.tags.length ? h("div", { class: "chips" }, t.tags.map((g) => h("span", { class: "tag-chip" }, g))) : muted()));
}

function noTraces() {
  const origin = location.origin;
  return h("div", { class: "empty traces-empty", dataset: { testid: "traces-empty" } },
    h("div", { class: "strong" }, "No traces yet."),
    h("div", { class: "muted small" }, "Instrument your application with the opsloop SDK:"),
    h("pre", { class: "code-block" },
      "from opsloop import tracing\n\n@tracing.trace\ndef answer(question: str) -> str:\n    ...\n\ntracing.flush()"),
    h("div", { class: "muted small" }, "or point any OpenTelemetry exporter at this server:"),
    h("pre", { class: "code-block" }, `OTEL_EXPORTER_OTLP_ENDPOINT=${origin}\n# OTLP/HTTP, protobuf or JSON: POST ${origin}/v1/traces`),
    h("div", { class: "muted small" }, "See docs/tracing.md for decorators, record_llm_call and the OTLP mapping."));
}
