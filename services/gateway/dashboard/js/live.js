// The live feed over /ws: one socket per tab, reconnected with back-off; pages resume their own state on reconnect.

import { refresh, session } from "./api.js";

const TYPES = ["workflow_update", "service_health", "system_metrics"];
const handlers = new Map(TYPES.map((t) => [t, new Set()]));
const stateListeners = new Set();
let socket = null;
let attempts = 0;
let timer = 0;
let stopped = true;
let state = "offline";

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(next);
}

export const live = {
  get state() { return state; },
  on(type, fn) { handlers.get(type).add(fn); return () => handlers.get(type).delete(fn); },
  onState(fn) { stateListeners.add(fn); fn(state); return () => stateListeners.delete(fn); },
  start() { stopped = false; attempts = 0; connect(); },
  stop() {
    stopped = true;
    clearTimeout(timer);
    if (socket) socket.close(1000, "signed out");
    socket = null;
    setState("offline");
  },
  /** Test hook and manual retry: drop the socket as a network failure would. */
  drop() { if (socket) socket.close(4000, "dropped"); },
};

function schedule() {
  if (stopped) return;
  // 0.5 s, 1 s, 2 s ... up to 15 s, with jitter so many tabs do not reconnect at once.
  const delay = Math.min(15_000, 500 * 2 ** attempts) * (0.75 + Math.random() * 0.5);
  attempts += 1;
  setState("reconnecting");
  clearTimeout(timer);
  timer = setTimeout(connect, delay);
}

async function connect() {
  if (stopped) return;
  let token = session.token;
  try {
    if (!token || attempts > 0) token = await refresh();
  } catch {
    schedule();
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket = ws;
  setState("connecting");
  ws.addEventListener("open", () => ws.send(JSON.stringify({ action: "subscribe", types: TYPES })));
  ws.addEventListener("message", (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.type === "subscribed") {
      const resumed = attempts > 0;
      attempts = 0;
      setState("live");
      if (resumed) for (const fn of handlers.get("workflow_update")) fn(null, { resumed: true });
      return;
    }
    for (const fn of handlers.get(event.type) || []) fn(event.data, event);
  });
  ws.addEventListener("close", () => {
    if (socket === ws) {
      socket = null;
      schedule();
    }
  });
}
