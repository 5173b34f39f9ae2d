// App shell and hash router. The pages and their hash patterns (#/experiments/<id>,
// #/datasets/<name>/diff?a=1&b=2, ...) come from the rooms' declarations via /ui/routes.js.

import { api, signOut } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
// Each room declares its pages (opsloop/rooms.py); the server generates this module from them.
import { routes } from "/ui/routes.js";

const main = document.getElementById("main");
const sideList = document.getElementById("side-experiments");

let current = null; // {controller, cleanup}

/** Parse location.hash into a path and query parameters. */
export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/experiments";
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, query };
}

/** The route whose pattern matches the hash's parts, with its captured values. */
function matchRoute(parts) {
  for (const r of routes) {
    if (r.pattern.length !== parts.length) continue;
    const captured = [];
    let ok = true;
    for (let i = 0; i < parts.length; i++) {
      const seg = r.pattern[i];
      if (seg.startsWith(":")) captured.push(parts[i]);
      else if (seg !== parts[i]) { ok = false; break; }
    }
    if (ok) return { render: r.render, captured };
  }
  return null;
}

async function route() {
  if (current) {
    current.controller.abort();
    for (const fn of current.cleanups) {
      try { fn(); } catch (err) { console.error(err); }
    }
  }
  const { parts, query } = parseHash();
  if (parts.length === 0) {
    location.replace("#/experiments");
    return;
  }
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  const ctx = {
    root: main,
    query,
    signal: controller.signal,
    onCleanup: (fn) => cleanups.push(fn),
    setTitle: (t) => { document.title = t ? `${t} · opsloop` : "opsloop"; },
    setActiveExperiment,
    refreshSidebar,
  };
  setActiveExperiment(parts[0] === "experiments" && parts[1] ? parts[1] : null);
  highlightNav(parts[0]);
  window.scrollTo(0, 0);
  const r = matchRoute(parts);
  if (!r) {
    ctx.setTitle("Not found");
    replace(main, h("div", { class: "page" }, errorBox(new Error(`No page at #${parts.join("/")}`), "Page not found"),
      h("p", {}, h("a", { href: "#/experiments" }, "Go to experiments"))));
    return;
  }
  try {
    await r.render(ctx, ...r.captured);
  } catch (err) {
    if (err && err.name === "AbortError") return;
    if (controller.signal.aborted) return;
    console.error(err);
    replace(main, h("div", { class: "page" }, errorBox(err, "Could not load this page")));
  }
}

function highlightNav(section) {
  for (const a of document.querySelectorAll(".nav-link")) {
    a.classList.toggle("active", a.dataset.section === section);
  }
}

let activeExperiment = null;
function setActiveExperiment(id) {
  activeExperiment = id;
  for (const a of sideList.querySelectorAll("a")) a.classList.toggle("active", a.dataset.id === id);
}

/** Reload the experiment list in the sidebar. */
export async function refreshSidebar() {
  try {
    const data = await api("/experiments");
    const items = data.experiments.map((e) =>
      h("li", {}, h("a", { href: `#/experiments/${encodeURIComponent(e.id)}`, dataset: { id: e.id }, title: e.name },
        h("span", { class: "side-name" }, e.name),
        e.run_count != null ? h("span", { class: "side-count" }, String(e.run_count)) : null)),
    );
    replace(sideList, items.length ? items : h("li", { class: "muted small side-empty" }, "No experiments yet"));
    setActiveExperiment(activeExperiment);
  } catch (err) {
    replace(sideList, h("li", { class: "muted small side-empty" }, "Could not load experiments"));
  }
}

/** Signed in to the UI (a session): who, and a way out, at the foot of the sidebar. */
async function showSession() {
  let me;
  try {
    me = await api("/whoami");
  } catch {
    return;
  }
  if (!me || !me.session_id) return;
  document.querySelector(".sidebar").append(
    h("div", { class: "sign-out small", id: "session-box" },
      h("span", { class: "muted", id: "session-user" }, `${me.user} (${me.role})`), " ",
      h("button", { class: "btn btn-link btn-sm", id: "sign-out", onclick: () => signOut() }, "Sign out")),
  );
}

window.addEventListener("hashchange", route);
refreshSidebar();
showSession();
route();
