// A model version's card: rendered from its Markdown (safely, through the DOM), with an
// edit form that PUTs the structured fields, or a whole custom text, back to the API.

import { api, modelVersionPath } from "../api.js";
import { errorBox, fmtTime, h, loading, replace, timeCell } from "../dom.js";
import { renderMarkdown } from "./models_markdown.js";

const FIELDS = [
  ["summary", "Summary", "What the model does, in a sentence or two."],
  ["intended_use", "Intended use", "Who should use it, for what."],
  ["limitations", "Limitations", "Where it fails or was not tested."],
  ["ethical_considerations", "Ethical considerations", ""],
  ["evaluation_notes", "Evaluation notes", "How it was evaluated, beyond the logged metrics."],
];

function cardView(card, onEdit, onRegenerate) {
  return h("div", { class: "card model-card" },
    h("div", { class: "model-card-head" },
      h("span", { class: "muted small", dataset: { testid: "card-origin" } },
        card.custom_markdown ? "Custom text" : "Generated from lineage and the fields below",
        " · edited ", h("span", { title: fmtTime(card.updated_at) }, timeCell(card.updated_at)), card.updated_by ? ` by ${card.updated_by}` : ""),
      h("div", { class: "toolbar-right" },
        h("button", { class: "btn btn-sm", dataset: { testid: "card-regenerate" }, title: "Recompute the facts from the source run's current params, metrics and data", onclick: onRegenerate }, "Refresh facts"),
        h("button", { class: "btn btn-sm btn-primary", dataset: { testid: "card-edit" }, onclick: onEdit }, "Edit card"))),
    h("div", { class: "model-card-body", dataset: { testid: "model-card" } }, renderMarkdown(card.markdown)));
}

function cardForm(card, onSave, onCancel) {
  const f = card.fields || {};
  const inputs = {};
  const rows = FIELDS.map(([k, label, hint]) => {
    inputs[k] = h("textarea", { class: "input card-textarea", rows: 2, name: k, placeholder: hint, dataset: { testid: `card-field-${k}` } });
    inputs[k].value = f[k] || "";
    return h("label", { class: "form-row" }, h("span", { class: "form-label" }, label), inputs[k]);
  });
  inputs.license = h("input", { class: "input", name: "license", placeholder: "e.g. Apache-2.0", dataset: { testid: "card-field-license" } });
  inputs.license.value = f.license || "";
  inputs.owners = h("input", { class: "input", name: "owners", placeholder: "comma-separated", dataset: { testid: "card-field-owners" } });
  inputs.owners.value = (f.owners || []).join(", ");
  const custom = h("input", { type: "checkbox", checked: card.custom_markdown, dataset: { testid: "card-custom" } });
  const md = h("textarea", { class: "input card-markdown mono", rows: 18, name: "markdown", dataset: { testid: "card-markdown" }, "aria-label": "Card Markdown" });
  md.value = card.markdown;
  const mdBox = h("div", { hidden: !card.custom_markdown }, md,
    h("div", { class: "muted small" }, "Markdown: # headings, - lists, | tables |, `code`, **bold**, [links](https://…). Untick to go back to the generated card."));
  custom.addEventListener("change", () => { mdBox.hidden = !custom.checked; });
  const error = h("div", {});
  const save = h("button", { class: "btn btn-primary", type: "submit", dataset: { testid: "card-save" } }, "Save card");
  const form = h("form", { class: "card pad card-form", dataset: { testid: "card-form" }, onsubmit: async (ev) => {
    ev.preventDefault();
    const fields = {};
    for (const [k] of FIELDS) {
      const val = inputs[k].value.trim();
      if (val !== (f[k] || "")) fields[k] = val || null;
    }
    const lic = inputs.license.value.trim();
    if (lic !== (f.license || "")) fields.license = lic || null;
    const owners = inputs.owners.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (owners.join(",") !== (f.owners || []).join(",")) fields.owners = owners.length ? owners : null;
    const body = { fields: Object.keys(fields).length ? fields : null, markdown: null };
    if (custom.checked) {
      if (!md.value.trim()) {
        replace(error, errorBox(new Error("Write the card text, or untick custom text to use the generated card."), "Nothing to save"));
        return;
      }
      if (!card.custom_markdown || md.value !== card.markdown) body.markdown = md.value;
    } else if (card.custom_markdown) body.markdown = "";
    save.disabled = true;
    try {
      await onSave(body);
    } catch (err) {
      save.disabled = false;
      replace(error, errorBox(err, "Could not save the card"));
    }
  } },
  h("div", { class: "form-grid" }, rows,
    h("label", { class: "form-row" }, h("span", { class: "form-label" }, "License"), inputs.license),
    h("label", { class: "form-row" }, h("span", { class: "form-label" }, "Owners"), inputs.owners)),
  h("label", { class: "check-row custom-row" }, custom, "Write the whole card myself (custom Markdown replaces the generated text)"),
  mdBox, error,
  h("div", { class: "toolbar form-actions" }, save, h("button", { class: "btn", type: "button", dataset: { testid: "card-cancel" }, onclick: onCancel }, "Cancel")));
  return form;
}

/** The Card tab: loads the card, shows it, and swaps in the edit form on demand. */
export function cardTab(m, v, ctx) {
  const box = h("div", {}, loading("Loading the model card…"));
  const url = `${modelVersionPath(m.name, v.version)}/card`;
  let card = null;
  const view = () => replace(box, cardView(card, edit, regenerate));
  const edit = () => {
    replace(box, cardForm(card, async (body) => {
      card = await api(url, { method: "PUT", body, signal: ctx.signal });
      view();
    }, view));
    const first = box.querySelector("textarea");
    if (first) first.focus();
  };
  const regenerate = async () => {
    try {
      card = await api(url, { method: "PUT", body: { regenerate: true }, signal: ctx.signal });
      view();
    } catch (err) {
      if (err.name !== "AbortError") box.prepend(errorBox(err, "Could not refresh the card"));
    }
  };
  api(url, { signal: ctx.signal }).then((c) => {
    card = c;
    view();
  }).catch((err) => {
    if (err.name !== "AbortError") replace(box, errorBox(err, "Could not load the model card"));
  });
  return box;
}
