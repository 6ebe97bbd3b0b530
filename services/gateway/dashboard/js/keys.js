// API keys (admin): create (the secret is shown once), list, revoke.

import { api, listAll } from "./api.js";
import { age, badge, clear, errorBox, h, toast } from "./ui.js";

export async function render(root) {
  const me = await api("/v1/whoami");
  const body = h("tbody");
  const secret = h("div.secret", { role: "status" });
  const error = h("p.error", { role: "alert" });
  const form = h("form.card.key-form", { "aria-labelledby": "new-key-h" },
    h("h2", { id: "new-key-h", text: "New key" }),
    h("div.field", {}, h("label", { for: "key-name", text: "Name" }), h("input", { id: "key-name", name: "name", required: true, maxlength: 100, placeholder: "ci-pipeline" })),
    h("div.field", {}, h("label", { for: "key-role", text: "Role" }), h("select", { id: "key-role", name: "role" },
      ["viewer", "operator", "admin"].map((r) => h("option", { value: `ROLE_${r.toUpperCase()}`, text: r })))),
    h("div.field", {}, h("label", { for: "key-scopes", text: "Tool scopes" }), h("input", { id: "key-scopes", name: "scopes", placeholder: "file_*, read_file (empty: every tool the role allows)" })),
    error, h("button.primary", { type: "submit", text: "Create key" }), secret);
  clear(root, h("h1", { text: "API keys" }), h("div.split", {}, form,
    h("section.card", { "aria-labelledby": "keys-h" }, h("h2", { id: "keys-h", text: "Keys" }),
      h("div.table-wrap", {}, h("table.list", {}, h("thead", {}, h("tr", {}, ["Id", "Name", "Role", "Scopes", "Created", "State", ""].map((c) => h("th", { scope: "col", text: c })))), body)))));
  const load = async () => {
    try {
      const keys = await listAll("/v1/api-keys", "apiKeys");
      clear(body, keys.map((k) => h("tr", { "data-key": k.id },
        h("td", {}, h("code", { text: k.id })), h("td", { text: k.displayName }), h("td", {}, badge(k.role)),
        h("td", { text: (k.toolScopes || []).join(", ") || "all" }), h("td", { title: k.createTime, text: age(k.createTime) }),
        h("td", {}, k.revokeTime ? h("span.badge.b-failed", { text: "revoked" }) : h("span.badge.b-serving", { text: "active" })),
        h("td", {}, k.revokeTime ? null : me.principal === `key:${k.id}` ? h("span.muted", { text: "this session" }) : h("button.danger", { type: "button", text: "Revoke", "aria-label": `Revoke ${k.displayName}`, onclick: () => revoke(k) })))));
    } catch (e) {
      clear(body, h("tr", {}, h("td", { colspan: 7 }, errorBox(e))));
    }
  };
  async function revoke(key) {
    if (!window.confirm(`Revoke the key "${key.displayName}" (${key.id})? Clients using it stop working.`)) return;
    try {
      await api(`/v1/api-keys/${key.id}:revoke`, { method: "POST", body: {} });
      toast(`Revoked ${key.displayName}`);
      load();
    } catch (e) {
      toast(e.message, "error");
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const data = new FormData(form);
    const scopes = String(data.get("scopes") || "").split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const created = await api("/v1/api-keys", { method: "POST", body: { displayName: data.get("name"), role: data.get("role"), toolScopes: scopes } });
      const value = h("input", { readonly: true, value: created.secret, "aria-label": "New key secret", id: "new-secret" });
      clear(secret, h("p", {}, h("b", { text: "Copy the secret now: it is not shown again." })), value,
        h("button", { type: "button", text: "Copy", onclick: async () => { value.select(); try { await navigator.clipboard.writeText(created.secret); toast("Copied"); } catch { toast("Select and copy the field", "info"); } } }));
      form.reset();
      load();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  await load();
}
