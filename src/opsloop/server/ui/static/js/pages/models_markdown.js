// A small Markdown renderer for model cards that builds DOM nodes directly: headings,
// paragraphs, lists, fenced code, block quotes, rules, tables, and inline code, bold,
// italics and links. Text only ever becomes text nodes; raw HTML in the source is shown
// as written, and links keep only http(s), mailto, in-app (#) and same-site (/) targets.

import { h, isSafeHref } from "../dom.js";

const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+?)\*\*|__([^_]+?)__|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)/g;

/** Inline Markdown of one line or paragraph, as nodes. */
export function inline(text) {
  const out = [];
  let last = 0;
  // A fresh regex per call: bold and italics recurse, and a shared lastIndex would loop.
  const re = new RegExp(INLINE.source, "g");
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) out.push(h("code", {}, m[2]));
    else if (m[3] || m[4]) out.push(h("strong", {}, inline(m[3] || m[4])));
    else if (m[5] || m[6]) out.push(h("em", {}, inline(m[5] || m[6])));
    else if (m[7]) {
      const href = m[8];
      out.push(isSafeHref(href)
        ? h("a", { href, rel: "noopener noreferrer", target: href.startsWith("#") ? null : "_blank" }, inline(m[7]))
        : h("span", { title: href }, inline(m[7])));
    }
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

const isTableSep = (line) => /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(line);
const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

/** Render Markdown `src` into a fragment of block elements. */
export function renderMarkdown(src) {
  const lines = String(src ?? "").replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++; // the closing fence
      blocks.push(h("pre", { class: "md-code" }, h("code", { dataset: fence[2] ? { lang: fence[2] } : {} }, body.join("\n"))));
      continue;
    }
    const head = line.match(/^\s*(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (head) {
      blocks.push(h(`h${Math.min(6, head[1].length + 1)}`, { class: "md-h" }, inline(head[2])));
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { blocks.push(h("hr")); i++; continue; }
    if (line.includes("|") && i + 1 < lines.length && isTableSep(lines[i + 1])) {
      const header = splitRow(line);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].trim() && lines[i].includes("|")) rows.push(splitRow(lines[i++]));
      blocks.push(h("div", { class: "md-table-wrap" }, h("table", { class: "table table-compact md-table" },
        h("thead", {}, h("tr", {}, header.map((c) => h("th", {}, inline(c))))),
        h("tbody", {}, rows.map((r) => h("tr", {}, header.map((_, j) => h("td", {}, inline(r[j] ?? "")))))))));
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      blocks.push(h("blockquote", { class: "md-quote" }, renderMarkdown(body.join("\n"))));
      continue;
    }
    const item = line.match(LIST_ITEM);
    if (item) {
      const ordered = /\d/.test(item[2]);
      const list = h(ordered ? "ol" : "ul", { class: "md-list" });
      while (i < lines.length) {
        const m = lines[i].match(LIST_ITEM);
        if (m && /\d/.test(m[2]) === ordered) {
          list.appendChild(h("li", {}, inline(m[3])));
          i++;
        } else if (lines[i].trim() && /^\s{2,}/.test(lines[i]) && list.lastChild) {
          list.lastChild.append(" ", ...inline(lines[i].trim()));
          i++;
        } else break;
      }
      blocks.push(list);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !LIST_ITEM.test(lines[i]) && !/^\s*(#{1,6}\s|```|~~~|>)/.test(lines[i])
      && !(lines[i].includes("|") && i + 1 < lines.length && isTableSep(lines[i + 1]))) para.push(lines[i++].trim());
    if (!para.length) { blocks.push(h("p", {}, inline(lines[i++]))); continue; }
    blocks.push(h("p", {}, inline(para.join(" "))));
  }
  return h("div", { class: "markdown" }, blocks);
}
