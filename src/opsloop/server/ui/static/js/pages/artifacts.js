// Artifact browser: a lazily expanded tree and a preview pane (text, images,
// CSV/TSV tables), with a download link for every file.

import { api, artifactUrl, fetchArtifactHead } from "../api.js";
import { emptyState, errorBox, fmtBytes, h, icon, loading, naturalCompare, replace } from "../dom.js";

const TEXT_LIMIT = 200 * 1024;
const TABLE_LIMIT = 1024 * 1024;
const TABLE_ROWS = 500;

const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp", "bmp", "ico", "avif"]);
const TABLE_EXT = new Set(["csv", "tsv"]);
const TEXT_EXT = new Set([
  "txt", "log", "md", "markdown", "rst", "json", "jsonl", "ndjson", "yaml", "yml", "toml", "ini", "cfg", "conf",
  "py", "pyi", "ipynb", "js", "mjs", "ts", "tsx", "jsx", "css", "html", "htm", "xml", "svg", "sh", "bash", "zsh",
  "r", "sql", "java", "scala", "kt", "go", "rs", "c", "h", "cc", "cpp", "hpp", "rb", "pl", "lua", "tex", "env",
  "dockerfile", "mlmodel", "mlproject", "properties", "gitignore", "requirements", "lock", "diff", "patch", "err", "out",
]);

function ext(path) {
  const name = path.split("/").pop().toLowerCase();
  if (name === "dockerfile" || name === "mlmodel" || name === "makefile" || name === "license") return "txt";
  const i = name.lastIndexOf(".");
  return i >= 0 ? name.slice(i + 1) : "";
}

/** How to preview a file: "image", "table", "text" or null. */
export function previewKind(path, mediaType) {
  const e = ext(path);
  if (IMAGE_EXT.has(e)) return "image";
  if (TABLE_EXT.has(e)) return "table";
  if (TEXT_EXT.has(e)) return "text";
  const m = mediaType || "";
  if (m.startsWith("image/") && !m.startsWith("image/svg")) return "image";
  if (m === "text/csv" || m === "text/tab-separated-values") return "table";
  if (m.startsWith("text/") || m.includes("json") || m.includes("yaml") || m.includes("xml")) return "text";
  return null;
}

/** Parse CSV/TSV text (quoted fields, doubled quotes, CRLF) into at most `maxRows` rows. */
export function parseDelimited(text, delim, maxRows) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const n = text.length;
  while (i < n && rows.length < maxRows) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      field += c; i++; continue;
    }
    if (c === '"' && field === "") { quoted = true; i++; continue; }
    if (c === delim) { row.push(field); field = ""; i++; continue; }
    if (c === "\n" || c === "\r") {
      row.push(field); field = "";
      rows.push(row); row = [];
      if (c === "\r" && text[i + 1] === "\n") i++;
      i++; continue;
    }
    field += c; i++;
  }
  const complete = i >= n;
  if ((field !== "" || row.length) && rows.length < maxRows) { row.push(field); rows.push(row); }
  return { rows, complete };
}

function decode(bytes) {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function looksBinary(bytes) {
  const n = Math.min(bytes.length, 8192);
  for (let i = 0; i < n; i++) if (bytes[i] === 0) return true;
  return false;
}

export function artifactBrowser(root, runId, ctx) {
  const tree = h("div", { class: "art-tree", role: "tree", dataset: { testid: "artifact-tree" } }, loading("Loading artifacts…"));
  const preview = h("div", { class: "art-preview", dataset: { testid: "artifact-preview" } },
    h("div", { class: "muted center pad" }, "Select a file to preview it."));
  let selected = null;
  let previewSeq = 0;

  replace(root, h("div", { class: "card art-browser" }, tree, preview));

  async function list(path) {
    return api(`/runs/${encodeURIComponent(runId)}/artifacts`, { query: { path }, signal: ctx.signal });
  }

  function sortItems(items) {
    return [...items].sort((a, b) => (b.is_dir - a.is_dir) || naturalCompare(a.path, b.path));
  }

  function nodeFor(item, depth) {
    const name = item.path.split("/").pop();
    if (item.is_dir) {
      const kids = h("div", { role: "group", hidden: true });
      let loaded = false;
      const twisty = h("span", { class: "twisty-i" }, "▸");
      const btn = h("button", {
        class: "art-node art-dir", role: "treeitem", "aria-expanded": "false", title: item.path,
        style: { paddingLeft: `${8 + depth * 14}px` }, dataset: { testid: "artifact-dir", path: item.path },
        onclick: async () => {
          const open = kids.hidden;
          kids.hidden = !open;
          btn.setAttribute("aria-expanded", String(open));
          twisty.textContent = open ? "▾" : "▸";
          if (open && !loaded) {
            loaded = true;
            replace(kids, h("div", { class: "muted small", style: { paddingLeft: `${22 + depth * 14}px` } }, "Loading…"));
            try {
              const items = await list(item.path);
              replace(kids, items.length ? sortItems(items).map((it) => nodeFor(it, depth + 1))
                : h("div", { class: "muted small", style: { paddingLeft: `${22 + depth * 14}px` } }, "Empty folder"));
            } catch (err) {
              loaded = false;
              if (err.name !== "AbortError") replace(kids, h("div", { class: "error-inline small" }, err.message));
            }
          }
        },
      }, twisty, icon("dir"), h("span", { class: "art-name" }, name));
      return h("div", {}, btn, kids);
    }
    const btn = h("button", {
      class: "art-node art-file", role: "treeitem", title: item.path,
      style: { paddingLeft: `${22 + depth * 14}px` }, dataset: { testid: "artifact-file", path: item.path },
      onclick: () => {
        if (selected) selected.classList.remove("selected");
        selected = btn;
        btn.classList.add("selected");
        showPreview(item);
      },
    }, fileIcon(item), h("span", { class: "art-name" }, name),
    h("span", { class: "art-size muted small" }, fmtBytes(item.size)));
    return btn;
  }

  function fileIcon(item) {
    const k = previewKind(item.path, item.media_type);
    return icon(k || "file");
  }

  async function showPreview(item) {
    const seq = ++previewSeq;
    const url = artifactUrl(runId, item.path);
    const kind = previewKind(item.path, item.media_type);
    const body = h("div", { class: "art-body" }, loading("Loading preview…"));
    replace(preview,
      h("div", { class: "art-head" },
        h("div", { class: "art-path mono", title: item.path }, item.path),
        h("div", { class: "art-meta muted small" }, [fmtBytes(item.size), item.media_type].filter(Boolean).join(" · ")),
        h("a", { class: "btn btn-sm", href: url, download: item.path.split("/").pop(), dataset: { testid: "artifact-download" } }, "Download")),
      body);
    try {
      if (kind === "image") {
        const img = h("img", { src: url, alt: item.path, class: "art-img", dataset: { testid: "artifact-image" } });
        img.addEventListener("error", () => replace(body, h("div", { class: "muted pad" }, "This image cannot be displayed; download it instead.")));
        replace(body, h("div", { class: "art-img-wrap" }, img));
      } else if (kind === "table") {
        const { bytes, truncated } = await fetchArtifactHead(runId, item.path, TABLE_LIMIT, ctx.signal);
        if (seq !== previewSeq) return;
        replace(body, tablePreview(decode(bytes), item.path, truncated));
      } else if (kind === "text") {
        const { bytes, truncated, total } = await fetchArtifactHead(runId, item.path, TEXT_LIMIT, ctx.signal);
        if (seq !== previewSeq) return;
        if (looksBinary(bytes)) {
          replace(body, h("div", { class: "muted pad" }, "Binary file: no preview. Use Download."));
          return;
        }
        let text = decode(bytes);
        if (!truncated && /\.json$/i.test(item.path)) {
          try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* show as is */ }
        }
        replace(body,
          truncated ? h("div", { class: "notice small" }, `Showing the first ${fmtBytes(bytes.length)} of ${fmtBytes(total ?? item.size)}.`) : null,
          h("pre", { class: "art-text", dataset: { testid: "artifact-text" } }, text));
      } else {
        replace(body, emptyState("No preview for this file type.", "Use Download to get the file."));
      }
    } catch (err) {
      if (err.name === "AbortError" || seq !== previewSeq) return;
      replace(body, errorBox(err, "Could not load the preview"));
    }
  }

  function tablePreview(text, path, truncated) {
    const delim = /\.tsv$/i.test(path) || (!path.toLowerCase().endsWith(".csv") && text.split("\n", 1)[0].includes("\t")) ? "\t" : ",";
    let { rows, complete } = parseDelimited(text, delim, TABLE_ROWS + 1);
    // A cut-off download leaves a partial last line; drop it.
    if (truncated && complete && rows.length > 1) rows = rows.slice(0, -1);
    if (!rows.length) return h("div", { class: "muted pad" }, "Empty file");
    const [head, ...data] = rows;
    const width = Math.max(...rows.map((r) => r.length));
    const more = truncated || !complete;
    return h("div", {},
      h("div", { class: "notice small" },
        `${data.length} row${data.length === 1 ? "" : "s"}${more ? ` shown (the first ${TABLE_ROWS} at most)` : ""} · ${width} column${width === 1 ? "" : "s"}`),
      h("div", { class: "table-wrap art-table-wrap" },
        h("table", { class: "table table-compact", dataset: { testid: "artifact-table" } },
          h("thead", {}, h("tr", {}, h("th", { class: "muted" }, "#"), Array.from({ length: width }, (_, i) => h("th", {}, head[i] ?? "")))),
          h("tbody", {}, data.map((r, i) => h("tr", {}, h("td", { class: "muted num" }, String(i + 1)), Array.from({ length: width }, (_, j) => h("td", {}, r[j] ?? ""))))))));
  }

  list("").then((items) => {
    if (!items.length) {
      replace(root, h("div", { class: "card", dataset: { testid: "artifact-tree" } }, emptyState("No artifacts logged.", "Log files with client.log_artifact(run_id, path).")));
      return;
    }
    replace(tree, sortItems(items).map((it) => nodeFor(it, 0)));
  }).catch((err) => {
    if (err.name === "AbortError") return;
    replace(tree, errorBox(err, "Could not list artifacts"));
  });
}
