// Workflows: the list (state filter, paging, live updates) and the start form built from each type's parameter schema.

import { api } from "./api.js";
import { live } from "./live.js";
import { schemaFields, valuesOf } from "./schema_form.js";
import { age, badge, clear, errorBox, h, progress, toast } from "./ui.js";

const STATES = ["", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
let types = null;

export async function workflowTypes() {
  types = types || (await api("/v1/workflow-types")).workflowTypes || [];
  return types;
}

function startForm(all, onStarted) {
  const fields = h("div.fields");
  const description = h("p.muted");
  const select = h("select", { id: "wf-type", name: "type" }, all.map((t) => h("option", { value: t.name, text: t.name })));
  const error = h("p.error", { role: "alert" });
  const submit = h("button.primary", { type: "submit", text: "Start workflow" });
  const form = h("form.card.start-form", { "aria-labelledby": "start-h" },
    h("h2", { id: "start-h", text: "Start a workflow" }),
    h("div.field", {}, h("label", { for: "wf-type", text: "Type" }), select), description, fields, error, submit);
  const pick = () => {
    const type = all.find((t) => t.name === select.value);
    description.textContent = type ? `${type.description} Steps: ${type.steps.join(" → ")}.` : "";
    clear(fields, schemaFields(type ? type.parametersSchema : {}));
  };
  select.addEventListener("change", pick);
  pick();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const parameters = valuesOf(form);
      const { workflow } = await api("/v1/workflows", { method: "POST", body: { type: select.value, parameters } });
      toast(`Started ${workflow.type} ${workflow.id.slice(0, 8)}`);
      onStarted(workflow);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function row(w) {
  const link = h("a", { href: `#/workflows/${w.id}`, text: w.id.slice(0, 12) });
  return h("tr", { "data-id": w.id },
    h("td", {}, link), h("td", { text: w.type }), h("td", {}, badge(w.state)),
    h("td", {}, progress(w.progressPercent, `Progress of ${w.id.slice(0, 8)}`)),
    h("td", { title: w.createTime, text: age(w.createTime) }),
    h("td.path", { text: (w.parameters && w.parameters.path) || "" }));
}

export async function render(root, params) {
  const state = params.get("state") || "";
  const typeFilter = params.get("type") || "";
  const table = h("tbody");
  const pager = h("div.pager");
  const stateSelect = h("select", { id: "filter-state" }, STATES.map((s) => h("option", { value: s, text: s ? s.toLowerCase() : "all states", selected: s === state || undefined })));
  const typeSelect = h("select", { id: "filter-type" }, h("option", { value: "", text: "all types" }));
  const filters = h("div.filters", {}, h("label", { for: "filter-state", text: "State" }), stateSelect, h("label", { for: "filter-type", text: "Type" }), typeSelect);
  const listCard = h("section.card", { "aria-labelledby": "list-h" }, h("h2", { id: "list-h", text: "Workflows" }), filters,
    h("div.table-wrap", {}, h("table.list", {}, h("thead", {}, h("tr", {}, ["Id", "Type", "State", "Progress", "Created", "Folder"].map((c) => h("th", { scope: "col", text: c })))), table)), pager);
  const layout = h("div.split");
  clear(root, h("h1", { text: "Workflows" }), layout);
  clear(layout, listCard);
  const tokens = [""];  // page tokens seen, so Previous works without the server keeping state
  let page = 0;
  let rows = [];

  const load = async () => {
    try {
      const response = await api("/v1/workflows", { query: { pageSize: 20, pageToken: tokens[page], state: state ? `WORKFLOW_STATE_${state}` : "" } });
      rows = (response.workflows || []).filter((w) => !typeFilter || w.type === typeFilter);
      tokens[page + 1] = response.nextPageToken || "";
      clear(table, rows.length ? rows.map(row) : h("tr", {}, h("td.muted", { colspan: 6, text: "No workflows yet." })));
      clear(pager,
        h("button", { type: "button", text: "← Previous", disabled: page === 0 || undefined, onclick: () => { page -= 1; load(); } }),
        h("span.muted", { text: `Page ${page + 1}` }),
        h("button", { type: "button", text: "Next →", disabled: !tokens[page + 1] || undefined, onclick: () => { page += 1; load(); } }));
    } catch (e) {
      clear(table, h("tr", {}, h("td", { colspan: 6 }, errorBox(e))));
    }
  };
  const setFilter = () => {
    const next = new URLSearchParams();
    if (stateSelect.value) next.set("state", stateSelect.value);
    if (typeSelect.value) next.set("type", typeSelect.value);
    location.hash = `#/workflows${next.toString() ? `?${next}` : ""}`;
  };
  stateSelect.addEventListener("change", setFilter);
  typeSelect.addEventListener("change", setFilter);
  // Live (listening before the first load, so nothing is missed): a change of a listed workflow updates its row; a new one reloads the first page.
  let pending = 0;
  const off = live.on("workflow_update", (event) => {
    if (!event) return load();
    const index = rows.findIndex((w) => w.id === event.workflow_id);
    if (index >= 0) {
      rows[index] = { ...rows[index], state: event.state, progressPercent: event.progress_percent };
      table.children[index].replaceWith(row(rows[index]));
    } else if (page === 0 && !pending) {
      pending = setTimeout(() => { pending = 0; load(); }, 300);
    }
    return undefined;
  });
  await load();
  try {
    const all = await workflowTypes();
    for (const t of all) typeSelect.append(h("option", { value: t.name, text: t.name, selected: t.name === typeFilter || undefined }));
    layout.prepend(document.body.dataset.role === "ROLE_VIEWER"
      ? h("p.card.muted", { text: "This key is a viewer's: it can watch workflows; starting one needs an operator or admin key." })
      : startForm(all, (w) => { location.hash = `#/workflows/${w.id}`; }));
  } catch (e) {
    layout.prepend(errorBox(e));
  }
  const tick = setInterval(() => rows.forEach((w, i) => { const cell = table.children[i] && table.children[i].children[4]; if (cell) cell.textContent = age(w.createTime); }), 10_000);
  return () => { off(); clearInterval(tick); clearTimeout(pending); };
}
