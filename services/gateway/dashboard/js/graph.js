// The knowledge graph drawn with cytoscape: zoom, pan, select a node (click or keyboard) to see its neighbours.

import { api } from "./api.js";
import { clear, errorBox, h, library } from "./ui.js";

const MAX_NODES = 400;  // beyond this the layout is unreadable and slow; the best-connected nodes are drawn
const COLORS = {
  repository: "#334155", package: "#7c3aed", module: "#2457c5", file: "#64748b", class: "#0f9d58", function: "#e37400",
  method: "#f4a300", test: "#9aa0a6", table: "#c5221f", entity: "#00897b", document: "#5e35b1", section: "#8e24aa",
};
const color = (kind) => COLORS[kind] || "#5f6368";

function trim(nodes, edges) {
  if (nodes.length <= MAX_NODES) return { nodes, edges, trimmed: false };
  const degree = new Map();
  for (const e of edges) for (const id of [e.source, e.target]) degree.set(id, (degree.get(id) || 0) + 1);
  const kept = new Set(nodes.map((n) => n.id).sort((a, b) => (degree.get(b) || 0) - (degree.get(a) || 0)).slice(0, MAX_NODES));
  return { nodes: nodes.filter((n) => kept.has(n.id)), edges: edges.filter((e) => kept.has(e.source) && kept.has(e.target)), trimmed: true };
}

export async function drawGraph(root, name) {
  const canvas = h("div.graph-canvas", { role: "img", "aria-label": `Knowledge graph ${name}` });
  const side = h("aside.graph-side", { "aria-live": "polite" }, h("p.muted", { text: "Select a node to see its neighbours." }));
  const picker = h("input", { type: "search", list: "graph-nodes", id: "graph-pick", placeholder: "Find a node…", "aria-label": "Find a node" });
  const options = h("datalist", { id: "graph-nodes" });
  const status = h("span.muted", { role: "status" });
  const zoom = (factor) => () => { if (cy) cy.zoom({ level: cy.zoom() * factor, renderedPosition: { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 } }); };
  const tools = h("div.filters.graph-tools", {}, picker, options,
    h("button", { type: "button", text: "+", "aria-label": "Zoom in", onclick: zoom(1.25) }),
    h("button", { type: "button", text: "−", "aria-label": "Zoom out", onclick: zoom(0.8) }),
    h("button", { type: "button", text: "Fit", onclick: () => cy && cy.fit(undefined, 20) }), status);
  const legend = h("ul.legend");
  root.append(tools, h("div.graph", {}, canvas, side), legend);
  let cy = null;
  try {
    const [cytoscape, exported] = await Promise.all([library("cytoscape.min.js", "cytoscape"), api(`/v1/graphs/${encodeURIComponent(name)}:export`, { query: { format: "json" } })]);
    const graph = JSON.parse(exported.content);
    const { nodes, edges, trimmed } = trim(graph.nodes || [], graph.edges || []);
    status.textContent = `${nodes.length} nodes, ${edges.length} edges${trimmed ? ` (the ${MAX_NODES} best connected of ${graph.nodes.length})` : ""}`;
    const kinds = [...new Set(nodes.map((n) => n.kind))].sort();
    clear(legend, kinds.map((k) => h("li", {}, h("span.swatch", { style: `background:${color(k)}` }), k)));
    clear(options, nodes.map((n) => h("option", { value: n.qualified_name || n.id })));
    cy = cytoscape({
      container: canvas,
      elements: [
        ...nodes.map((n) => ({ data: { id: n.id, label: n.name || n.id, kind: n.kind, color: color(n.kind) } })),
        ...edges.map((e, i) => ({ data: { id: `e${i}`, source: e.source, target: e.target, kind: e.kind } })),
      ],
      style: [
        { selector: "node", style: { "background-color": "data(color)", label: "data(label)", "font-size": 9, color: "#1f2937", "text-valign": "bottom", "text-margin-y": 3, width: 14, height: 14 } },
        { selector: "edge", style: { width: 1, "line-color": "#cbd5e1", "target-arrow-color": "#cbd5e1", "target-arrow-shape": "triangle", "arrow-scale": 0.6, "curve-style": "bezier" } },
        { selector: ".faded", style: { opacity: 0.15 } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#111827", width: 20, height: 20 } },
        { selector: "edge.near", style: { "line-color": "#2457c5", "target-arrow-color": "#2457c5", width: 2, label: "data(kind)", "font-size": 8, color: "#2457c5" } },
      ],
      layout: { name: "cose", animate: false, nodeRepulsion: () => 8000, idealEdgeLength: () => 60, randomize: false },
      minZoom: 0.1,
      maxZoom: 4,
    });
    const show = async (id) => {
      const node = cy.getElementById(id);
      cy.elements().removeClass("faded near");
      cy.elements().unselect();
      if (node.empty()) return;
      node.select();
      const hood = node.closedNeighborhood();
      cy.elements().not(hood).addClass("faded");
      hood.edges().addClass("near");
      cy.animate({ center: { eles: node }, duration: 200 });
      clear(side, h("h3", { text: node.data("label") }), h("p.muted", { text: `${node.data("kind")} · ${id}` }), h("p.muted", { text: "Loading neighbours…" }));
      try {
        const [detail, near] = await Promise.all([
          api(`/v1/graphs/${encodeURIComponent(name)}/nodes/${id.split("/").map(encodeURIComponent).join("/")}`),
          api(`/v1/graphs/${encodeURIComponent(name)}/neighbors`, { query: { node: id, pageSize: 100 } }),
        ]);
        const n = detail.node;
        const attrs = n.attributes || {};
        clear(side, h("h3", { text: n.name }), h("p.muted", { text: `${n.kind} · ${n.qualifiedName || n.id}` }),
          n.span && n.span.file ? h("p", {}, h("code", { text: `${n.span.file}:${n.span.startLine}` })) : null,
          attrs.docstring ? h("p", { text: attrs.docstring }) : null,
          attrs.signature ? h("p", {}, h("code", { text: `${n.name}${attrs.signature}` })) : null,
          h("h4", { text: `Neighbours (${near.totalSize || (near.neighbors || []).length})` }),
          h("ul.neighbours", {}, (near.neighbors || []).map((x) => h("li", {},
            h("span.muted", { text: `${x.edge.source === id ? "→" : "←"} ${x.edge.kind} ` }),
            h("button.link", { type: "button", text: x.node.name, title: x.node.id, onclick: () => show(x.node.id) }),
            h("span.muted", { text: ` ${x.node.kind}` })))));
      } catch (error) {
        side.append(errorBox(error));
      }
    };
    cy.on("tap", "node", (event) => show(event.target.id()));
    cy.on("tap", (event) => { if (event.target === cy) cy.elements().removeClass("faded near"); });
    const pick = () => {
      const value = picker.value.trim();
      const match = nodes.find((n) => (n.qualified_name || n.id) === value || n.id === value) || nodes.find((n) => n.name === value);
      if (match) show(match.id); else if (value) status.textContent = `No node named ${value}`;
    };
    picker.addEventListener("change", pick);
    picker.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); pick(); } });
    root.dataset.graphReady = "true";
    return { cy, show };
  } catch (error) {
    root.append(errorBox(error));
    return null;
  }
}

/** Graphs page: every graph the Knowledge Builder stored, and one drawn. */
export async function render(root, params, rest) {
  const list = h("ul.graph-list");
  const view = h("section.graph-view");
  clear(root, h("h1", { text: "Knowledge graphs" }), h("div.card", {}, list), view);
  try {
    const { graphs = [] } = await api("/v1/graphs", { query: { pageSize: 100 } });
    const current = rest || (graphs[0] && graphs[0].name);
    clear(list, graphs.length ? graphs.map((g) => h("li", {}, h("a", { href: `#/graphs/${encodeURIComponent(g.name)}`, "aria-current": String(g.name === current), text: g.name }),
      h("span.muted", { text: ` ${g.nodeCount} nodes, ${g.edgeCount} edges · ${g.root}` }))) : h("li.muted", { text: "No graphs yet: run a knowledge_build workflow." }));
    if (current) {
      clear(view, h("h2", { text: decodeURIComponent(current) }));
      await drawGraph(view, decodeURIComponent(current));
    }
  } catch (error) {
    root.append(errorBox(error));
  }
}
