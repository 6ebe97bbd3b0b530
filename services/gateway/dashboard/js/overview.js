// Overview: services and instances with their health (live from service_health), system metrics with small charts.

import { api } from "./api.js";
import { live } from "./live.js";
import { badge, clear, errorBox, h, stateName } from "./ui.js";

const WINDOW_MS = 10 * 60 * 1000;  // charts show the last ten minutes
const CHARTS = [
  { title: "Active workflows", metric: "ActiveWorkflows" },
  { title: "Workflow queue", metric: "WorkflowQueueDepth" },
  { title: "Active agent executions", metric: "ActiveAgentExecutions" },
  { title: "Tool execution queue", metric: "ToolExecutionQueue" },
  { title: "Requests / s (all services)", rate: "envoy.upstream_rq_total" },
  { title: "5xx / s (all services)", rate: "envoy.upstream_rq_5xx" },
];

// Kept across page changes while signed in, so the charts have a history when the page opens.
const history = [];
let services = null;
let detail = new Map();
const redraws = new Set();

function record(metrics, time) {
  history.push({ time: Date.parse(time) || Date.now(), metrics });
  while (history.length && history[0].time < Date.now() - WINDOW_MS) history.shift();
  for (const fn of redraws) fn();
}

function applyHealth(data) {
  services = data.services.map((s) => ({ ...s, status: stateName(s.status) }));
  for (const fn of redraws) fn();
}

/** Starts collecting once signed in (metrics and health events come over the shared socket). */
export function collect() {
  live.on("system_metrics", (data, event) => record(data.metrics || [], event.time));
  live.on("service_health", (data) => applyHealth(data));
}

export async function seed() {
  const [health, metrics] = await Promise.all([api("/v1/system/health"), api("/v1/system/metrics")]);
  detail = new Map(health.services.map((s) => [s.service, s]));
  applyHealth({ services: health.services.map((s) => ({ service: s.service, status: s.status,
    instances: (s.instances || []).map((i) => ({ address: i.address, mesh_status: i.meshStatus })) })) });
  record(metrics.metrics || [], metrics.reportTime);
}

function seriesOf(chart) {
  const points = [];
  for (let i = 0; i < history.length; i++) {
    const { time, metrics } = history[i];
    const sum = (name) => metrics.filter((m) => m.name === name).reduce((total, m) => total + Number(m.value || 0), 0);
    if (chart.metric) points.push([time, sum(chart.metric)]);
    else if (i > 0 && time > history[i - 1].time) {
      const before = history[i - 1];
      const previous = before.metrics.filter((m) => m.name === chart.rate).reduce((t, m) => t + Number(m.value || 0), 0);
      points.push([time, Math.max(0, (sum(chart.rate) - previous) / ((time - before.time) / 1000))]);
    }
  }
  return points;
}

function sparkline(points) {
  const width = 240;
  const height = 56;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("aria-hidden", "true");
  if (points.length < 2) {
    // One snapshot arrives every 10 s over the WebSocket: say so rather than draw an empty box.
    const wait = document.createElementNS(svg.namespaceURI, "text");
    wait.setAttribute("x", "0");
    wait.setAttribute("y", String(height / 2));
    wait.setAttribute("class", "wait");
    wait.textContent = "collecting…";
    svg.append(wait);
    return svg;
  }
  // The time axis grows with the history (at least a minute) up to the window, so a fresh page is not a sliver.
  const now = Date.now();
  const span = Math.min(WINDOW_MS, Math.max(60_000, now - points[0][0]));
  const max = Math.max(1, ...points.map((p) => p[1]));
  const x = (t) => ((t - (now - span)) / span) * width;
  const y = (v) => height - 4 - (v / max) * (height - 10);
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
  const area = document.createElementNS(svg.namespaceURI, "path");
  area.setAttribute("d", `${line} L${x(points.at(-1)[0]).toFixed(1)},${height} L${x(points[0][0]).toFixed(1)},${height} Z`);
  area.setAttribute("class", "area");
  const path = document.createElementNS(svg.namespaceURI, "path");
  path.setAttribute("d", line);
  path.setAttribute("class", "line");
  svg.append(area, path);
  return svg;
}

function serviceCard(service) {
  const report = detail.get(service.service);
  const instanceReports = new Map(((report && report.instances) || []).map((i) => [i.address, i.report]));
  return h(`article.card.service.s-${service.status}`, { "data-service": service.service, "aria-label": `${service.service}: ${service.status}` },
    h("header", {}, h("h3", { text: service.service }), badge(service.status)),
    h("ul.instances", {}, (service.instances || []).map((instance) => {
      const r = instanceReports.get(instance.address);
      const healthy = instance.mesh_status === "healthy";
      return h("li", { "data-instance": instance.address },
        h(`span.dot.${healthy ? "ok" : "bad"}`, { "aria-hidden": "true" }),
        h("code", { text: instance.address }),
        h("span.muted", { text: healthy ? (r ? `v${r.version} · up ${Math.round(parseFloat(r.uptime))} s` : "healthy") : instance.mesh_status.replace(/_/g, " ") }));
    })),
    report && report.instances && report.instances[0] && report.instances[0].report
      ? h("details", {}, h("summary", { text: "Checks" }),
        h("ul.checks", {}, report.instances[0].report.checks.map((c) => h("li", {}, badge(c.status), h("b", { text: ` ${c.name} ` }), h("span.muted", { text: c.detail })))))
      : null);
}

export async function render(root) {
  const grid = h("div.grid.services");
  const charts = h("div.grid.charts");
  clear(root, h("h1", { text: "Overview" }),
    h("section", { "aria-labelledby": "svc-h" }, h("h2", { id: "svc-h", text: "Services" }), grid),
    h("section", { "aria-labelledby": "met-h" }, h("h2", { id: "met-h", text: "System metrics (last 10 minutes)" }), charts));
  const draw = () => {
    if (services) clear(grid, services.map(serviceCard));
    clear(charts, CHARTS.map((chart) => {
      const points = seriesOf(chart);
      const last = points.length ? points.at(-1)[1] : 0;
      return h("figure.card.chart", { "data-metric": chart.metric || chart.rate },
        h("figcaption", {}, h("span", { text: chart.title }), h("b.value", { text: Number.isInteger(last) ? String(last) : last.toFixed(2) })),
        sparkline(points));
    }));
  };
  redraws.add(draw);
  draw();
  try {
    await seed();
  } catch (error) {
    root.append(errorBox(error));
  }
  const tick = setInterval(draw, 5000);
  return () => { redraws.delete(draw); clearInterval(tick); };
}
