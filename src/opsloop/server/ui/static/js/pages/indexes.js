// Vector indexes (#/indexes): the indexes in the server's home, and per index (#/indexes/NAME)
// its info and a keyword search box (BM25 over the items' texts: the browser has no embedder)
// showing each hit's rank, id, score, metadata and text.

import { api } from "../api.js";
import { emptyState, errorBox, fmtBytes, fmtNum, h, loading, replace } from "../dom.js";

export const indexHref = (name) => `#/indexes/${encodeURIComponent(name)}`;

export async function renderIndexes(ctx) {
  ctx.setTitle("Indexes");
  replace(ctx.root, h("div", { class: "page" }, loading("Loading indexes…")));
  const { indexes } = await api("/indexes", { signal: ctx.signal });
  const header = h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Vector indexes"),
    h("div", { class: "muted" }, "Embedded vector indexes in the server's home: FAISS search, metadata filters, BM25 and hybrid search.")));
  if (!indexes.length) {
    replace(ctx.root, h("div", { class: "page" }, header,
      emptyState("No vector indexes yet.", "Build one: opsloop index build NAME --collection DATASET@VERSION")));
    return;
  }
  replace(ctx.root, h("div", { class: "page" }, header,
    h("div", { class: "table-wrap card" }, h("table", { class: "table", dataset: { testid: "indexes-table" } },
      h("thead", {}, h("tr", {}, ["Index", "Items", "Dimensions", "Metric", "Search", "Size"].map((t) => h("th", {}, t)))),
      h("tbody", {}, indexes.map((i) => h("tr", { dataset: { testid: "index-row", name: i.name } },
        h("td", { class: "strong" }, h("a", { href: indexHref(i.name), dataset: { testid: "index-link" } }, i.name)),
        h("td", { class: "num" }, fmtNum(i.count)),
        h("td", { class: "num" }, i.dim == null ? "—" : String(i.dim)),
        h("td", {}, i.metric),
        h("td", {}, i.search === "ivf" ? `IVF (${i.nlist} lists, nprobe ${i.nprobe})` : "exact"),
        h("td", { class: "num" }, fmtBytes(i.size_bytes)))))))));
}

function fact(label, value, testid) {
  return h("div", { class: "meta-item" }, h("div", { class: "meta-label" }, label),
    h("div", { class: "meta-value", dataset: testid ? { testid } : {} }, value));
}

export async function renderIndex(ctx, name) {
  ctx.setTitle(`Index ${name}`);
  replace(ctx.root, h("div", { class: "page" }, loading("Loading the index…")));
  let info;
  try {
    info = await api(`/indexes/${encodeURIComponent(name)}`, { signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(ctx.root, h("div", { class: "page" }, errorBox(err, `Could not load index ${name}`)));
    return;
  }
  const results = h("div", { class: "section", dataset: { testid: "index-results" } });
  const input = h("input", { type: "search", class: "input", placeholder: "Search the texts (BM25)", dataset: { testid: "index-query" } });
  const filterInput = h("input", { type: "text", class: "input mono", placeholder: '{"source": "a.md"} (optional filter)', dataset: { testid: "index-filter" } });
  const k = h("input", { type: "number", class: "input", value: "10", min: "1", max: "100", dataset: { testid: "index-k" } });
  const search = async () => {
    const query = input.value.trim();
    if (!query) return;
    let filter = null;
    if (filterInput.value.trim()) {
      try {
        filter = JSON.parse(filterInput.value);
      } catch {
        replace(results, errorBox(new Error("The filter is not valid JSON"), "Bad filter"));
        return;
      }
    }
    replace(results, loading("Searching…"));
    let res;
    try {
      res = await api(`/indexes/${encodeURIComponent(name)}/search`, {
        method: "POST", signal: ctx.signal,
        body: { mode: "keyword", query, k: Number(k.value) || 10, filter },
      });
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(results, errorBox(err, "The search failed"));
      return;
    }
    const hits = res.results[0] || [];
    if (!hits.length) {
      replace(results, emptyState("No item's text holds these words."));
      return;
    }
    replace(results, h("div", { class: "table-wrap card" }, h("table", { class: "table", dataset: { testid: "hits-table" } },
      h("thead", {}, h("tr", {}, ["#", "Id", "Score", "Metadata", "Text"].map((t) => h("th", {}, t)))),
      h("tbody", {}, hits.map((hit, i) => h("tr", { dataset: { testid: "hit-row", id: hit.id } },
        h("td", { class: "num" }, String(i + 1)),
        h("td", { class: "mono", dataset: { testid: "hit-id" } }, hit.id),
        h("td", { class: "num", dataset: { testid: "hit-score" } }, hit.score.toFixed(4)),
        h("td", { class: "mono small", dataset: { testid: "hit-metadata" } }, JSON.stringify(hit.metadata)),
        h("td", { class: "small", dataset: { testid: "hit-text" } }, (hit.text || "").slice(0, 300))))))));
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" }, h("div", {},
      h("div", { class: "muted small" }, h("a", { href: "#/indexes" }, "Indexes")),
      h("h1", { dataset: { testid: "index-name" } }, name))),
    h("div", { class: "meta-grid card", dataset: { testid: "index-info" } },
      fact("Items", fmtNum(info.count), "index-count"),
      fact("Dimensions", info.dim == null ? "—" : String(info.dim), "index-dim"),
      fact("Metric", info.metric, "index-metric"),
      fact("Search", info.search === "ivf" ? `IVF, ${info.nlist} lists, nprobe ${info.nprobe}` : "exact", "index-search"),
      fact("Engine", info.engine || "faiss"),
      fact("Deleted rows", fmtNum(info.deleted)),
      fact("On disk", fmtBytes(info.size_bytes))),
    h("div", { class: "section" }, h("h2", {}, "Search"),
      h("div", { class: "toolbar" }, input, filterInput, k,
        h("button", { class: "btn", dataset: { testid: "index-search-button" }, onclick: search }, "Search"))),
    results));
}
