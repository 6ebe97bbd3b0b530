// A finished workflow's results: findings table (sort, filter, snippet, SARIF), database report with its ER diagram,
// the knowledge graph and the generated documentation.

import { api } from "./api.js";
import { drawGraph } from "./graph.js";
import { badge, clear, download, drawMermaid, errorBox, h, renderMarkdown, stateName } from "./ui.js";

const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const rank = (s) => SEVERITIES.indexOf(stateName(s));

/** The agents' parts of a result: code_analysis keeps the code part at the top level, the others under their name. */
export function parts(result) {
  const found = {};
  if (result.findings && !result.agent) found.code = result;
  for (const key of ["code", "database", "knowledge", "documentation"]) if (result[key] && typeof result[key] === "object") found[key] = result[key];
  return found;
}

function allFindings(result) {
  return Object.entries(parts(result)).flatMap(([source, part]) => (part.findings || []).map((f) => ({ ...f, source })));
}

function where(f) {
  if (f.file) return `${f.file}${f.line ? `:${f.line}` : ""}`;
  return f.object ? `${f.object.kind} ${f.object.name}` : "";
}

/** SARIF 2.1.0, one run per tool, as the CLI's `--sarif` writes it. */
export function toSarif(findings, root) {
  const level = { critical: "error", high: "error", medium: "warning", low: "note", info: "note" };
  const byTool = new Map();
  for (const f of findings) {
    const tool = f.tool || "mcpmesh";
    if (!byTool.has(tool)) byTool.set(tool, []);
    byTool.get(tool).push(f);
  }
  return {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [...byTool].map(([tool, list]) => ({
      tool: { driver: { name: tool, informationUri: "https://github.com/mcpmesh", rules: [...new Set(list.map((f) => f.rule_id))].map((id) => ({ id })) } },
      originalUriBaseIds: { SRCROOT: { uri: root ? `file://${root.replace(/\/?$/, "/")}` : "" } },
      results: list.map((f) => ({
        ruleId: f.rule_id,
        level: level[stateName(f.severity)] || "note",
        message: { text: f.message },
        partialFingerprints: f.fingerprint ? { primaryLocationLineHash: f.fingerprint } : undefined,
        properties: { severity: stateName(f.severity), category: f.category, cwe: f.cwe, fixHint: f.fix_hint },
        locations: f.file ? [{ physicalLocation: {
          artifactLocation: { uri: f.file, uriBaseId: "SRCROOT" },
          region: { startLine: Number(f.line) || 1, startColumn: (Number(f.column) || 0) + 1, snippet: f.snippet ? { text: f.snippet } : undefined },
        } }] : [{ logicalLocations: [{ name: f.object ? f.object.name : "", kind: f.object ? f.object.kind : "" }] }],
      })),
    })),
  };
}

export function findingsTable(findings, root) {
  const columns = [
    { key: "severity", label: "Severity", value: (f) => rank(f.severity) },
    { key: "rule_id", label: "Rule", value: (f) => f.rule_id || "" },
    { key: "file", label: "Where", value: (f) => `${where(f)}`.padEnd(200) + String(f.line || 0).padStart(8, "0") },
    { key: "line", label: "Line", value: (f) => Number(f.line) || 0 },
    { key: "message", label: "Message", value: (f) => f.message || "" },
    { key: "tool", label: "Tool", value: (f) => f.tool || "" },
  ];
  let sortKey = "severity";
  let ascending = true;
  const search = h("input", { type: "search", id: "findings-filter", placeholder: "Filter: rule, file, message…", "aria-label": "Filter findings" });
  const severity = h("select", { id: "findings-severity", "aria-label": "Minimum severity" },
    h("option", { value: "", text: "all severities" }), SEVERITIES.map((s) => h("option", { value: s, text: `${s} and above` })));
  const count = h("span.muted", { role: "status" });
  const body = h("tbody");
  const head = h("tr");
  const draw = () => {
    const text = search.value.trim().toLowerCase();
    const floor = severity.value ? SEVERITIES.indexOf(severity.value) : SEVERITIES.length;
    const column = columns.find((c) => c.key === sortKey);
    const shown = findings
      .filter((f) => rank(f.severity) <= floor)
      .filter((f) => !text || [f.rule_id, where(f), f.message, f.tool, f.category].join(" ").toLowerCase().includes(text))
      .sort((a, b) => {
        const x = column.value(a);
        const y = column.value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
    count.textContent = `${shown.length} of ${findings.length} findings`;
    clear(head, columns.map((c) => h("th", { scope: "col", "aria-sort": c.key === sortKey ? (ascending ? "ascending" : "descending") : "none" },
      h("button.sort", { type: "button", onclick: () => { ascending = sortKey === c.key ? !ascending : true; sortKey = c.key; draw(); } },
        c.label, c.key === sortKey ? (ascending ? " ▲" : " ▼") : ""))));
    clear(body, shown.length ? shown.flatMap((f) => {
      const detail = h("tr.detail", { hidden: true }, h("td", { colspan: columns.length },
        f.snippet ? h("pre.snippet", {}, h("code", { text: f.snippet })) : null,
        f.fix_hint ? h("p", {}, h("b", { text: "Fix: " }), f.fix_hint) : null,
        h("p.muted", { text: [f.category && `category ${f.category}`, f.cwe && `CWE-${f.cwe}`, f.confidence && stateName(f.confidence).replace("confidence_", "confidence "), f.source && `from ${f.source}`].filter(Boolean).join(" · ") })));
      const toggle = h("button.link", { type: "button", "aria-expanded": "false", text: f.rule_id, title: "Show the snippet" });
      toggle.addEventListener("click", () => {
        detail.hidden = !detail.hidden;
        toggle.setAttribute("aria-expanded", String(!detail.hidden));
      });
      return [h("tr.finding", { "data-rule": f.rule_id, "data-file": f.file || "", "data-line": f.line || "" },
        h("td", {}, badge(`SEVERITY_${stateName(f.severity).toUpperCase()}`)), h("td", {}, toggle), h("td.path", { text: f.file || where(f) }),
        h("td.num", { text: f.line || "" }), h("td", { text: f.message }), h("td.muted", { text: f.tool || "" })), detail];
    }) : h("tr", {}, h("td.muted", { colspan: columns.length, text: "No findings match." })));
  };
  search.addEventListener("input", draw);
  severity.addEventListener("change", draw);
  draw();
  const sarif = h("button", { type: "button", text: "Download SARIF", onclick: () => download("findings.sarif", JSON.stringify(toSarif(findings, root), null, 2), "application/sarif+json") });
  return h("div.findings", {}, h("div.filters", {}, search, severity, count, sarif),
    h("div.table-wrap", {}, h("table.list.findings-table", {}, h("thead", {}, head), body)));
}

async function runArtifacts(part) {
  if (!part || !part.agent_run) return [];
  const { run } = await api(`/v1/agent-runs/${part.agent_run}`);
  return run.artifacts || [];
}

function countsLine(counts) {
  if (!counts) return null;
  return h("p.counts", {}, SEVERITIES.filter((s) => Number(counts[s])).map((s) => h(`span.badge.b-${s}`, { text: `${counts[s]} ${s}` })));
}

async function databasePanel(el, part) {
  clear(el, h("p", { text: part.summary }), countsLine(part.finding_counts), h("h3", { text: "ER diagram" }), h("div.er.loading", { text: "Drawing…" }));
  try {
    const artifacts = await runArtifacts(part);
    const er = artifacts.find((a) => a.name.endsWith(".mmd"));
    const diagram = el.querySelector(".er");
    if (er) await drawMermaid(diagram, er.content); else diagram.textContent = "No tables found, so no diagram.";
    diagram.classList.remove("loading");
    const fixes = artifacts.find((a) => a.name.endsWith(".sql"));
    if (fixes && fixes.content.trim()) el.append(h("h3", { text: "Suggested DDL" }), h("pre.snippet", {}, h("code", { text: fixes.content })));
    const report = artifacts.find((a) => a.name === "report.md");
    if (report) {
      const holder = h("div");
      el.append(h("details", {}, h("summary", { text: "Full report" }), holder));
      await renderMarkdown(holder, report.content);
    }
  } catch (error) {
    el.append(errorBox(error));
  }
}

function decode(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

async function docsPanel(el, part) {
  const files = ((part.metrics && part.metrics.files) || []).filter((f) => f.endsWith(".md"));
  const prefix = (part.metrics && part.metrics.artifact_prefix) || "";
  const page = h("article.doc");
  const nav = h("nav.doc-nav", { "aria-label": "Documentation pages" });
  clear(el, h("p", { text: part.summary }), h("div.docs", {}, nav, page));
  const open = async (name) => {
    for (const link of nav.querySelectorAll("button")) link.setAttribute("aria-current", String(link.dataset.name === name));
    clear(page, h("p.muted", { text: "Loading…" }));
    try {
      const { content } = await api(`/v1/artifacts/${name.split("/").map(encodeURIComponent).join("/")}`);
      await renderMarkdown(page, decode(content));
      // Links between the generated pages stay inside the viewer.
      for (const a of page.querySelectorAll("a[href]")) {
        const href = a.getAttribute("href");
        if (/^[a-z]+:/i.test(href) || href.startsWith("#")) continue;
        const target = new URL(href, `https://x/${name}`).pathname.slice(1).replace(/\/$/, "/index.md");
        const candidate = files.find((f) => f === target || f === `${target}.md`);
        a.addEventListener("click", (event) => { event.preventDefault(); if (candidate) open(candidate); });
      }
    } catch (error) {
      clear(page, errorBox(error));
    }
  };
  clear(nav, files.map((name) => h("button.link", { type: "button", "data-name": name, text: name.slice(prefix.length).replace(/^docs\//, ""), onclick: () => open(name) })));
  const first = files.find((f) => f.endsWith("/index.md")) || files[0];
  if (first) await open(first); else page.textContent = "No pages were written.";
}

async function graphPanel(el, part) {
  const name = part.metrics && part.metrics.graph;
  clear(el, h("p", { text: part.summary }));
  if (name) await drawGraph(el, name); else el.append(h("p.muted", { text: "No graph name in the result." }));
}

function summaryPanel(el, result) {
  const found = parts(result);
  const inventory = result.inventory;
  clear(el,
    result.summary ? h("p.lead", { text: result.summary }) : null,
    countsLine(result.finding_counts),
    Object.entries(found).map(([key, part]) => h("div.part", {}, h("h3", { text: key }), h("p", { text: part.summary || "" }),
      part.llm_status ? h("p.muted", { text: `Model review: ${stateName(part.llm_status).replace("llm_status_", "").replace(/_/g, " ")}` }) : null)),
    inventory ? h("div.part", {}, h("h3", { text: "Files" }), h("p", { text: `${inventory.total_files} files, ${inventory.total_lines} lines` }),
      h("ul.inline", {}, (inventory.languages || []).map((l) => h("li", { text: `${l.language}: ${l.files} files, ${l.lines} lines` })))) : null);
}

/** Tabs for the parts a result has; each panel is drawn the first time it is opened. */
export function renderResults(root, workflow) {
  const result = workflow.result || {};
  const found = parts(result);
  const tabs = [{ id: "summary", label: "Summary", draw: (el) => summaryPanel(el, result) }];
  const findings = allFindings(result);
  if (found.code || findings.length) tabs.push({ id: "findings", label: `Findings (${findings.length})`, draw: (el) => clear(el, findingsTable(findings, workflow.parameters && workflow.parameters.path)) });
  if (found.database) tabs.push({ id: "database", label: "Database", draw: (el) => databasePanel(el, found.database) });
  if (found.knowledge) tabs.push({ id: "graph", label: "Knowledge graph", draw: (el) => graphPanel(el, found.knowledge) });
  if (found.documentation) tabs.push({ id: "docs", label: "Documentation", draw: (el) => docsPanel(el, found.documentation) });
  const list = h("div.tabs", { role: "tablist", "aria-label": "Results" });
  const panels = h("div");
  const select = (tab, focus) => {
    for (const t of tabs) {
      t.button.setAttribute("aria-selected", String(t === tab));
      t.button.tabIndex = t === tab ? 0 : -1;
      t.panel.hidden = t !== tab;
    }
    if (!tab.drawn) { tab.drawn = true; tab.draw(tab.panel); }
    if (focus) tab.button.focus();
  };
  for (const [i, tab] of tabs.entries()) {
    tab.panel = h("div.panel", { role: "tabpanel", id: `panel-${tab.id}`, "aria-labelledby": `tab-${tab.id}`, hidden: true });
    tab.button = h("button", { type: "button", role: "tab", id: `tab-${tab.id}`, "aria-controls": `panel-${tab.id}`, text: tab.label });
    tab.button.addEventListener("click", () => select(tab));
    // Arrow keys move between tabs, as in the WAI-ARIA tabs pattern.
    tab.button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) select(tabs[(i + step + tabs.length) % tabs.length], true);
    });
    list.append(tab.button);
    panels.append(tab.panel);
  }
  clear(root, h("h2", { text: "Results" }), list, panels);
  select(tabs[0]);
  return (id) => { const tab = tabs.find((t) => t.id === id); if (tab) select(tab); };
}
