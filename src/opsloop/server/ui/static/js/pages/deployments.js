// Running deployments (#/deployments): the model servers `opsloop serve` recorded, refreshed every 5 s.
// A server that stopped heartbeating without saying it stopped shows "lost".

import { api } from "../api.js";
import { emptyState, h, isSafeHref, loading, replace, timeCell } from "../dom.js";
import { modelHref } from "./models.js";

const REFRESH_MS = 5000;
// Statuses reuse the run badges' colours: lost is amber like "scheduled", stopped grey like "killed".
const BADGE = { running: "badge-running", stopped: "badge-killed", failed: "badge-failed", lost: "badge-scheduled" };

function deploymentBadge(status) {
  return h("span", { class: `badge ${BADGE[status] || ""} badge-${status}`, title: status, dataset: { testid: "deployment-status" } },
    status.toUpperCase());
}

// The URL a server reported is data: only an http(s) address becomes a link, anything else
// (javascript:, data:, ...) is shown as plain text.
function urlCell(url) {
  const testid = { testid: "deployment-url" };
  return isSafeHref(url, { web: true })
    ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", dataset: testid }, url)
    : h("span", { class: "muted", title: "not an http(s) address, so not a link", dataset: testid }, url);
}

function row(d) {
  const muted = (t = "—") => h("span", { class: "muted" }, t);
  return h("tr", { dataset: { testid: "deployment-row", id: d.id, status: d.status } },
    h("td", { class: "strong", title: d.id }, d.name),
    h("td", {}, h("a", { href: modelHref(d.model_name), dataset: { testid: "deployment-model" } }, d.model_name)),
    h("td", {}, d.version == null ? muted() : h("a", { href: modelHref(d.model_name, d.version) }, `v${d.version}`)),
    h("td", {}, d.alias ? h("span", { class: "alias-chip" }, `@${d.alias}`) : muted()),
    h("td", {}, urlCell(d.url)),
    h("td", {}, deploymentBadge(d.status)),
    h("td", {}, timeCell(d.started_at)),
    h("td", {}, timeCell(d.last_heartbeat_at)));
}

export async function renderDeployments(ctx) {
  ctx.setTitle("Deployments");
  const body = h("div", {}, loading("Loading deployments…"));
  const updated = h("span", { class: "muted small", dataset: { testid: "deployments-updated" } });
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Deployments"),
        h("div", { class: "muted" }, "Model servers started with opsloop serve. A server silent for three heartbeats shows lost.")),
      h("div", { class: "toolbar" }, updated)),
    body));

  const draw = async () => {
    const { deployments } = await api("/deployments", { signal: ctx.signal });
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    if (!deployments.length) {
      replace(body, emptyState("No deployments yet.", "Serve a registered model: opsloop serve models:/NAME@ALIAS"));
      return;
    }
    replace(body, h("div", { class: "table-wrap card" },
      h("table", { class: "table", dataset: { testid: "deployments-table" } },
        h("thead", {}, h("tr", {}, ...["Serves", "Model", "Version", "Alias", "URL", "Status", "Started", "Last heartbeat"].map((t) => h("th", {}, t)))),
        h("tbody", {}, deployments.map(row)))));
  };
  await draw();
  const timer = setInterval(() => {
    draw().catch((err) => { if (err && err.name !== "AbortError") console.error(err); });
  }, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
