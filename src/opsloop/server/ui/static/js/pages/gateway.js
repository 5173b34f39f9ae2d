// The LLM gateway (#/gateway): routes, virtual keys (never their secrets), and usage per
// day as bars of cost with tokens and requests, grouped by key, team, route or model.

import { api } from "../api.js";
import { emptyState, fmtNum, h, loading, replace, timeCell } from "../dom.js";

const GROUPS = ["route", "key", "team", "model"];

function keyStatus(k) {
  if (k.revoked_at) return "revoked";
  if (k.expires_at && k.expires_at <= Date.now()) return "expired";
  return "active";
}

function limitsText(limits) {
  const set = Object.entries(limits || {}).filter(([, v]) => v !== null && v !== undefined);
  return set.length ? set.map(([k, v]) => `${k}=${v}`).join(", ") : "none";
}

function routesTable(routes) {
  if (!routes.length) return emptyState("No routes yet.", "opsloop gateway routes set NAME --url http://host:port/v1");
  return h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "gateway-routes" } },
      h("thead", {}, h("tr", {}, ...["Route", "Upstreams", "Fallbacks", "Prices in/out (USD/1M)", "Cache", "Guards"].map((t) => h("th", {}, t)))),
      h("tbody", {}, routes.map((r) => h("tr", { dataset: { testid: "gateway-route", name: r.name } },
        h("td", { class: "strong" }, r.name),
        h("td", {}, r.upstreams.map((u) => u.url || u.deployment).join(", ")),
        h("td", {}, r.fallbacks.join(", ") || "—"),
        h("td", {}, `${r.prices.input_per_mtok} / ${r.prices.output_per_mtok}`),
        h("td", {}, r.cache.ttl_s ? `${r.cache.ttl_s} s` : "off"),
        h("td", {}, Object.entries(r.guards).filter(([k, v]) => k !== "banned" && v && v !== "off").map(([k, v]) => (k === "canary" ? "canary" : `${k}:${v}`)).join(", ") || "none"))))));
}

function keysTable(keys) {
  if (!keys.length) return emptyState("No keys yet.", "opsloop gateway keys create NAME --route ROUTE");
  return h("div", { class: "table-wrap card" },
    h("table", { class: "table", dataset: { testid: "gateway-keys" } },
      h("thead", {}, h("tr", {}, ...["Key", "Name", "Team", "Routes", "Limits", "Status", "Expires"].map((t) => h("th", {}, t)))),
      h("tbody", {}, keys.map((k) => h("tr", { dataset: { testid: "gateway-key", id: k.id, status: keyStatus(k) } },
        h("td", { class: "mono", title: k.id }, `${k.prefix}…`),
        h("td", { class: "strong" }, k.name),
        h("td", {}, k.team || "—"),
        h("td", {}, k.routes.join(", ") || "none"),
        h("td", { class: "small" }, limitsText(k.limits)),
        h("td", {}, keyStatus(k)),
        h("td", {}, k.expires_at ? timeCell(k.expires_at) : "never"))))));
}

// One bar per (day, group): its width is the cost relative to the largest, labelled with
// requests, tokens and cost. Plain elements, so every label is text.
function usageChart(rows) {
  if (!rows.length) return emptyState("No usage yet.", "Requests through opsloop gateway serve show here.");
  const top = Math.max(...rows.map((r) => r.cost_usd), 1e-12);
  const topTok = Math.max(...rows.map((r) => r.input_tokens + r.output_tokens), 1);
  return h("div", { class: "card", dataset: { testid: "gateway-usage" } },
    rows.map((r) => {
      const tokens = r.input_tokens + r.output_tokens;
      const width = r.cost_usd > 0 ? (100 * r.cost_usd) / top : (100 * tokens) / topTok;
      return h("div", { class: "gw-bar-row", dataset: { testid: "gateway-usage-row", group: r.group ?? "", bucket: String(r.bucket ?? "") } },
        h("span", { class: "gw-bar-label" }, `${r.bucket ? new Date(r.bucket).toISOString().slice(0, 10) : ""} ${r.group ?? "—"}`),
        h("span", { class: "gw-bar-track" }, h("span", { class: "gw-bar", style: { width: `${Math.max(width, 0.5)}%` } })),
        h("span", { class: "gw-bar-value small", dataset: { testid: "gateway-usage-value" } },
          `${r.requests} req · ${fmtNum(tokens)} tok · $${r.cost_usd.toFixed(6)}${r.errors ? ` · ${r.errors} err` : ""}`));
    }));
}

export async function renderGateway(ctx) {
  ctx.setTitle("Gateway");
  const routesEl = h("div", {}, loading("Loading routes…"));
  const keysEl = h("div", {}, loading("Loading keys…"));
  const usageEl = h("div", {}, loading("Loading usage…"));
  const groupSel = h("select", { dataset: { testid: "gateway-group" } }, GROUPS.map((g) => h("option", { value: g }, g)));
  replace(ctx.root, h("div", { class: "page" },
    h("div", { class: "page-header" },
      h("div", {}, h("h1", {}, "Gateway"),
        h("div", { class: "muted" }, "Routes, virtual keys and usage of opsloop gateway serve."))),
    h("h2", {}, "Usage per day"), h("div", { class: "toolbar" }, "Group by ", groupSel), usageEl,
    h("h2", {}, "Routes"), routesEl,
    h("h2", {}, "Keys"), keysEl));

  const drawUsage = async () => {
    const rep = await api("/gateway/usage", { signal: ctx.signal, query: { group_by: groupSel.value, bucket: "day" } });
    replace(usageEl, usageChart(rep.rows));
  };
  groupSel.addEventListener("change", () => { drawUsage().catch((e) => console.error(e)); });
  const [{ routes }, { keys }] = await Promise.all([
    api("/gateway/routes", { signal: ctx.signal }),
    api("/gateway/keys", { signal: ctx.signal }),
  ]);
  replace(routesEl, routesTable(routes));
  replace(keysEl, keysTable(keys));
  await drawUsage();
}
