// Small DOM helpers shared by the pages: element builder, formatting, toasts, lazy library loading.

/** h("tag.class", {attrs}, ...children): strings become text nodes (never HTML). */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function age(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function duration(start, end) {
  if (!start) return "";
  const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export const stateName = (s) => String(s || "").replace(/^WORKFLOW_STATE_|^HEALTH_STATUS_|^ROLE_|^SEVERITY_/, "").toLowerCase();

export function badge(value) {
  const name = stateName(value) || "unknown";
  return h(`span.badge.b-${name}`, { text: name.replace(/_/g, " ") });
}

export function progress(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return h("div.progress", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": p, "aria-label": label || "Progress" },
    h("div.bar", { style: `width:${p}%` }), h("span.pct", { text: `${p} %` }));
}

export function toast(message, kind = "info") {
  const el = h(`div.toast.t-${kind}`, { text: message });
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

export function errorBox(error) {
  return h("p.error", { role: "alert", text: error && error.message ? error.message : String(error) });
}

export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const loading = new Map();

/** Loads one of the pinned libraries (served from the dashboard's node_modules) once, on first use. */
export function library(file, global) {
  if (window[global]) return Promise.resolve(window[global]);
  if (!loading.has(file)) {
    loading.set(file, new Promise((resolve, reject) => {
      const script = h("script", { src: `/dashboard/vendor/${file}` });
      script.addEventListener("load", () => resolve(window[global]));
      script.addEventListener("error", () => reject(new Error(`could not load ${file}`)));
      document.head.append(script);
    }));
  }
  return loading.get(file);
}

let mermaidReady = null;
let diagramCount = 0;

/** Renders Mermaid text into an element as SVG (strict security level: no scripts or clicks in diagrams). */
export async function drawMermaid(el, text) {
  const mermaid = await library("mermaid.min.js", "mermaid");
  if (!mermaidReady) {
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral", er: { useMaxWidth: true }, flowchart: { useMaxWidth: true } });
    mermaidReady = true;
  }
  diagramCount += 1;
  try {
    const { svg } = await mermaid.render(`diagram-${diagramCount}`, text);
    el.innerHTML = svg;  // Mermaid's own output, sanitised by it at the strict level
    el.classList.add("diagram");
  } catch (error) {
    clear(el, h("p.error", { text: `Diagram could not be drawn: ${error.message || error}` }), h("pre", { text }));
  }
}

/** Markdown to safe HTML (marked, then DOMPurify); ```mermaid fences become drawn diagrams. */
export async function renderMarkdown(el, markdown) {
  const [marked, purify] = await Promise.all([library("marked.umd.js", "marked"), library("purify.min.js", "DOMPurify")]);
  el.innerHTML = purify.sanitize(marked.parse(markdown));
  el.classList.add("markdown");
  const fences = [...el.querySelectorAll("pre > code.language-mermaid")];
  for (const code of fences) {
    const holder = h("div.mermaid-holder");
    code.parentElement.replaceWith(holder);
    await drawMermaid(holder, code.textContent);
  }
}
