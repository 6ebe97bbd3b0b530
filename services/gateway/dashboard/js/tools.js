// Tools: the tools this key may use, each with a form from its input schema; execute and see the result.

import { api, listAll } from "./api.js";
import { schemaFields, valuesOf } from "./schema_form.js";
import { clear, errorBox, h } from "./ui.js";

function resultView(response) {
  const text = (response.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  const structured = response.structuredContent || response.result;
  return h("div.tool-result", { role: "status" },
    h("p.muted", {}, response.isError ? h("span.badge.b-failed", { text: "tool error" }) : h("span.badge.b-succeeded", { text: "ok" }),
      ` ${response.durationMs} ms${response.cached ? " · cached" : ""}`),
    structured && Object.keys(structured).length ? h("pre.json", {}, h("code", { text: JSON.stringify(structured, null, 2) }))
      : h("pre.json", {}, h("code", { text: text || "(no output)" })));
}

function toolCard(tool) {
  const output = h("div.output");
  const error = h("p.error", { role: "alert" });
  const submit = h("button.primary", { type: "submit", text: "Execute" });
  const form = h("form.tool-form", { "data-tool": tool.name }, schemaFields(tool.inputSchema), error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    clear(output, h("p.muted", { text: "Running…" }));
    try {
      const response = await api(`/v1/tools/${encodeURIComponent(tool.name)}/execute`, { method: "POST", body: { arguments: valuesOf(form) } });
      clear(output, resultView(response));
    } catch (e) {
      clear(output);
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  return h("details.card.tool", { id: `tool-${tool.name}` },
    h("summary", {}, h("b", { text: tool.name }), h("span.muted", { text: ` ${tool.description || ""}` })), form, output);
}

export async function render(root) {
  const filter = h("input", { type: "search", placeholder: "Filter tools…", "aria-label": "Filter tools" });
  const list = h("div.tools");
  clear(root, h("h1", { text: "Tools" }), h("p.muted", { text: "The tools this key may execute (its role and the tool "
    + "permissions decide; a viewer's key none unless an admin granted them). Open one to execute it." }), filter, list);
  try {
    const tools = await listAll("/v1/tools", "tools");
    const draw = () => {
      const q = filter.value.trim().toLowerCase();
      const shown = tools.filter((t) => !q || `${t.name} ${t.description}`.toLowerCase().includes(q));
      clear(list, ...(shown.length ? shown.map(toolCard)
        : [h("p.card.muted.empty", { text: tools.length ? "No tool matches the filter." : "This key may execute no tool." })]));
    };
    filter.addEventListener("input", draw);
    draw();
  } catch (error) {
    list.append(errorBox(error));
  }
}
