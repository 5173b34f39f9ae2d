// Experiments: every experiment with its run count, newest first.

import { api } from "../api.js";
import { emptyState, errorBox, h, loading, replace, timeCell } from "../dom.js";

export async function renderExperiments(ctx) {
  ctx.setTitle("Experiments");
  const search = h("input", {
    type: "search", class: "input", placeholder: "Search experiments", "aria-label": "Search experiments",
    dataset: { testid: "experiment-search" },
  });
  const body = h("div", {}, loading("Loading experiments…"));
  replace(
    ctx.root,
    h("div", { class: "page" },
      h("div", { class: "page-header" },
        h("div", {}, h("h1", {}, "Experiments"), h("div", { class: "muted" }, "Groups of runs you can search, sort and compare.")),
        h("div", { class: "toolbar" }, search)),
      body),
  );
  let exps;
  try {
    exps = (await api("/experiments", { signal: ctx.signal })).experiments;
  } catch (err) {
    if (err.name === "AbortError") return;
    replace(body, errorBox(err, "Could not load experiments"));
    return;
  }
  ctx.refreshSidebar();
  if (!exps.length) {
    replace(body, emptyState("No experiments yet.", 'Create one from Python: opsloop.Client().create_experiment("my-experiment")'));
    return;
  }
  exps.sort((a, b) => b.created_at - a.created_at);
  const tbody = h("tbody");
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = exps
      .filter((e) => !q || e.name.toLowerCase().includes(q) || (e.description || "").toLowerCase().includes(q))
      .map((e) => {
        const href = `#/experiments/${encodeURIComponent(e.id)}`;
        return h("tr", { class: "clickable", dataset: { testid: "experiment-row", id: e.id }, onclick: (ev) => {
          if (ev.target.closest("a")) return;
          location.hash = href;
        } },
          h("td", {}, h("a", { href, class: "strong" }, e.name)),
          h("td", { class: "num" }, e.run_count == null ? "—" : String(e.run_count)),
          h("td", {}, timeCell(e.created_at)),
          h("td", { class: "desc" }, e.description ? h("span", { title: e.description }, e.description) : h("span", { class: "muted" }, "—")),
          h("td", { class: "mono muted small" }, e.id),
        );
      });
    replace(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted center" }, "No experiment matches.")));
  };
  search.addEventListener("input", draw);
  draw();
  replace(
    body,
    h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "experiments-table" } },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Runs"), h("th", {}, "Created"), h("th", {}, "Description"), h("th", {}, "ID"))),
        tbody)),
  );
}
