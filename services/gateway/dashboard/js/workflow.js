// One workflow: live step-by-step progress over the WebSocket, the event log (resumed after a dropped connection), results.

import { api } from "./api.js";
import { live } from "./live.js";
import { renderResults } from "./results.js";
import { age, badge, clear, duration, errorBox, h, progress, stateName, toast } from "./ui.js";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

/** The workflow's events after `after` up to `upTo`, read from the REST watch stream (NDJSON) and then closed. */
async function eventsBetween(id, after, upTo) {
  if (upTo <= after) return [];
  const controller = new AbortController();
  const events = [];
  try {
    const response = await api(`/v1/workflows/${id}:watch`, { query: { afterSequence: after }, signal: controller.signal, raw: true });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines.filter((l) => l.trim())) {
        const { event } = JSON.parse(line);
        events.push(event);
        if (Number(event.sequence) >= upTo) {
          controller.abort();
          return events;
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
  return events;
}

const camel = (e) => ({ sequence: Number(e.sequence), type: e.type, step: e.step, state: e.state, progress: e.progress_percent ?? e.progressPercent, message: e.message, time: e.create_time || e.createTime });

export async function render(root, params, id) {
  const header = h("div.wf-head");
  const steps = h("ol.steps");
  const log = h("ol.events", { "aria-label": "Events" });
  const results = h("section.results");
  clear(root, h("p", {}, h("a", { href: "#/workflows", text: "← Workflows" })), header,
    h("div.split.wide", {}, h("section.card", { "aria-labelledby": "steps-h" }, h("h2", { id: "steps-h", text: "Steps" }), steps),
      h("section.card", { "aria-labelledby": "events-h" }, h("h2", { id: "events-h", text: "Events" }), h("div.scroll", {}, log))), results);
  let workflow = null;
  let last = 0;
  let refreshing = null;
  let resultsShown = false;
  const seen = new Set();

  const drawHeader = () => {
    const state = stateName(workflow.state);
    clear(header, h("h1", {}, `${workflow.type} `, h("code.id", { text: workflow.id })),
      h("div.meta", {}, badge(workflow.state),
        h("span.muted", { title: workflow.createTime, text: `created ${age(workflow.createTime)}${workflow.creator ? ` by ${workflow.creator}` : ""}` }),
        h("span.muted", { text: `folder ${(workflow.parameters && workflow.parameters.path) || "—"}` }),
        !FINAL.has(state) ? h("button", { type: "button", text: "Cancel", onclick: cancel }) : null),
      progress(workflow.progressPercent, "Workflow progress"),
      workflow.error && workflow.error.message ? h("p.error", { role: "alert", text: workflow.error.message }) : null);
  };
  const drawSteps = () => clear(steps, workflow.steps.map((s) => h(`li.step.s-${stateName(s.state)}`, { "data-step": s.name },
    h("span.icon", { "aria-hidden": "true", text: { succeeded: "✓", running: "…", failed: "✗", cancelled: "–" }[stateName(s.state)] || "○" }),
    h("b", { text: s.name }), badge(s.state), h("span.muted", { text: duration(s.startTime, s.endTime) }),
    s.error ? h("p.error", { text: s.error }) : null)));
  const addEvents = (events) => {
    for (const e of events.map(camel).sort((a, b) => a.sequence - b.sequence)) {
      if (seen.has(e.sequence)) continue;
      seen.add(e.sequence);
      last = Math.max(last, e.sequence);
      const item = h("li", { "data-seq": e.sequence }, h("span.seq", { text: `#${e.sequence}` }),
        h("span", { text: e.type.replace("WORKFLOW_EVENT_TYPE_", "").toLowerCase().replace(/_/g, " ") }),
        e.step ? h("code", { text: e.step }) : null, h("span.muted", { text: e.message || "" }), h("span.pct", { text: `${e.progress} %` }));
      const next = [...log.children].find((li) => Number(li.dataset.seq) > e.sequence);
      log.insertBefore(item, next || null);
    }
    log.parentElement.scrollTop = log.parentElement.scrollHeight;
  };
  let again = false;
  const reload = () => {
    // One read at a time; an event that arrives during a read asks for one more, so the last state always lands.
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          again = false;
          await readOnce();
        } while (again);
      } catch (error) {
        toast(error.message, "error");
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  };
  const readOnce = async () => {
    workflow = (await api(`/v1/workflows/${id}`)).workflow;
    drawHeader();
    drawSteps();
    // Fill any gap (events missed while the socket was down) from the event log.
    addEvents(await eventsBetween(id, last, Number(workflow.lastSequence)));
    if (stateName(workflow.state) === "succeeded" && !resultsShown) {
      resultsShown = true;
      renderResults(results, workflow);
    }
  };
  async function cancel() {
    try {
      await api(`/v1/workflows/${id}:cancel`, { method: "POST", body: {} });
      reload();
    } catch (error) {
      toast(error.message, "error");
    }
  }
  // Listen before the first read, so events that happen during it are not lost.
  const off = live.on("workflow_update", (event) => {
    if (!event) return reload();  // reconnected: resume from the last event seen
    if (event.workflow_id !== id) return undefined;
    if (!workflow) return reload();  // still reading: one more read once this one is done
    const e = camel(event);
    if (e.sequence > last + 1) return reload();  // a gap: fetch what was missed
    addEvents([event]);
    workflow.progressPercent = e.progress;
    workflow.state = e.state;
    drawHeader();
    // Step states and timings come from the stored workflow; reads coalesce over a burst of events.
    setTimeout(reload, 150);
    return undefined;
  });
  await reload();
  if (!workflow) {
    root.append(errorBox(`Workflow ${id} could not be read.`));
    return off;
  }
  const tick = setInterval(() => { if (workflow && !FINAL.has(stateName(workflow.state))) drawSteps(); }, 1000);
  return () => { off(); clearInterval(tick); };
}
