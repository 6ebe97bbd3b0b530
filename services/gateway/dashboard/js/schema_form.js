// A form built from a JSON Schema (an object's properties), and the typed values read back from it.

import { h } from "./ui.js";

let formCount = 0;

function field(id, name, prop, required) {
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
  const label = h("label", { for: id }, name, required ? h("span.req", { "aria-hidden": "true", text: " *" }) : null);
  const hint = prop.description ? h("small.hint", { id: `${id}-hint`, text: prop.description }) : null;
  const common = { id, name, "aria-describedby": hint ? `${id}-hint` : undefined, required: required || undefined };
  let input;
  if (Array.isArray(prop.enum)) {
    input = h("select", common, required ? null : h("option", { value: "", text: "—" }),
      prop.enum.map((v) => h("option", { value: String(v), text: String(v), selected: v === prop.default || undefined })));
  } else if (type === "boolean") {
    input = h("input", { ...common, type: "checkbox", required: undefined, checked: prop.default === true || undefined });
    return h("div.field.check", {}, input, label, hint);
  } else if (type === "integer" || type === "number") {
    input = h("input", { ...common, type: "number", step: type === "integer" ? "1" : "any", min: prop.minimum, max: prop.maximum,
      value: prop.default, inputmode: "numeric" });
  } else if (type === "array" || type === "object") {
    const example = type === "array" ? "[]" : "{}";
    input = h("textarea", { ...common, rows: 3, placeholder: type === "array" && prop.items && prop.items.type === "string" ? "one per line" : example,
      spellcheck: "false" });
    if (prop.default !== undefined) input.value = type === "array" && prop.items && prop.items.type === "string"
      ? prop.default.join("\n") : JSON.stringify(prop.default);
  } else {
    input = h("input", { ...common, type: "text", minlength: prop.minLength, maxlength: prop.maxLength, value: prop.default,
      pattern: prop.pattern, autocomplete: "off", spellcheck: "false" });
  }
  input.dataset.type = type || "string";
  if (type === "array" && prop.items) input.dataset.items = prop.items.type || "";
  return h("div.field", {}, label, input, hint);
}

/** The form's fields for a schema; read them back with `valuesOf`. */
export function schemaFields(schema) {
  formCount += 1;
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const names = Object.keys(props).sort((a, b) => Number(required.has(b)) - Number(required.has(a)) || a.localeCompare(b));
  if (!names.length) return [h("p.muted", { text: "No parameters." })];
  return names.map((name) => field(`f${formCount}-${name}`, name, props[name], required.has(name)));
}

/** Typed values of the form's fields: empty optional fields are left out; a bad value throws naming the field. */
export function valuesOf(form) {
  const values = {};
  for (const input of form.querySelectorAll("[data-type]")) {
    const { type, items } = input.dataset;
    const name = input.name;
    if (type === "boolean") {
      if (input.checked) values[name] = true;
      continue;
    }
    const text = input.value.trim();
    if (!text) continue;
    if (type === "integer" || type === "number") {
      const n = Number(text);
      if (!Number.isFinite(n) || (type === "integer" && !Number.isInteger(n))) throw new Error(`${name}: must be ${type === "integer" ? "an integer" : "a number"}`);
      values[name] = n;
    } else if (type === "array" && items === "string" && !text.startsWith("[")) {
      values[name] = text.split("\n").map((s) => s.trim()).filter(Boolean);
    } else if (type === "array" || type === "object") {
      try { values[name] = JSON.parse(text); } catch { throw new Error(`${name}: must be JSON (${type})`); }
    } else {
      values[name] = input.value;
    }
  }
  return values;
}
