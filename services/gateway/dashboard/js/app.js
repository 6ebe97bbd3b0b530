// The dashboard's shell: sign-in, navigation by the URL's hash, the live connection indicator.

import { api, session, signIn, signOut } from "./api.js";
import { live } from "./live.js";
import * as overview from "./overview.js";
import * as graphs from "./graph.js";
import * as keys from "./keys.js";
import * as tools from "./tools.js";
import * as workflow from "./workflow.js";
import * as workflows from "./workflows.js";
import { clear, errorBox, h, stateName } from "./ui.js";

const $ = (selector) => document.querySelector(selector);
const PAGES = { overview, workflows, graphs, tools, keys };
let leave = null;
let who = null;

function showSignedIn(signedIn) {
  $(".sign-in").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $(".session").hidden = !signedIn;
  $(".menu-toggle").hidden = !signedIn;
  if (!signedIn) clear($("#page"));
}

async function route() {
  if (!session.key) return;
  if (leave) { try { leave(); } catch { /* the old page is gone anyway */ } leave = null; }
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  const params = new URLSearchParams(query || "");
  const page = $("#page");
  let module = PAGES[name] || overview;
  let arg = rest.join("/");
  if (name === "workflows" && arg) module = workflow;
  if (name === "keys" && who && who.role !== "ROLE_ADMIN") module = overview;
  const current = PAGES[name] ? name : "overview";
  for (const link of document.querySelectorAll("#nav a")) link.setAttribute("aria-current", String(link.dataset.page === current ? "page" : false));
  document.title = `${current[0].toUpperCase()}${current.slice(1)} · mcpmesh`;
  const target = h("div.page");
  clear(page, target);
  try {
    const cleanup = await module.render(target, params, arg ? decodeURIComponent(arg) : "");
    if (page.firstChild === target) leave = cleanup || null; else if (cleanup) cleanup();
  } catch (error) {
    target.append(errorBox(error));
  }
}

async function start() {
  who = await api("/v1/whoami");
  $(".who").textContent = `${who.displayName || who.principal} · ${stateName(who.role)}`;
  for (const el of document.querySelectorAll("[data-admin]")) el.hidden = who.role !== "ROLE_ADMIN";
  document.body.dataset.role = who.role;  // pages leave out what this role may not do (the server still decides)
  showSignedIn(true);
  live.start();
  await route();
}

function init() {
  // The browser tests drop the socket through this, as a network failure would.
  window.mcpmeshLive = live;
  overview.collect();
  live.onState((state) => {
    $(".live").dataset.state = state;
    $(".live-text").textContent = state;
  });
  $(".sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $(".sign-in .error");
    const button = event.target.querySelector("button");
    error.textContent = "";
    button.disabled = true;
    try {
      await signIn(new FormData(event.target).get("key"));
      event.target.reset();
      await start();
      $("#main").focus();
    } catch (e) {
      error.textContent = e.status === 401 || e.status === 403 ? `That key was not accepted: ${e.message}` : e.message;
    } finally {
      button.disabled = false;
    }
  });
  $(".sign-out").addEventListener("click", () => {
    live.stop();
    signOut();
    showSignedIn(false);
    $("#api-key").focus();
  });
  const toggle = $(".menu-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    $("#nav").classList.toggle("open", open);
  });
  $("#nav").addEventListener("click", () => { toggle.setAttribute("aria-expanded", "false"); $("#nav").classList.remove("open"); });
  window.addEventListener("hashchange", route);
  if (session.key) {
    start().catch(() => { signOut(); showSignedIn(false); });
  } else {
    showSignedIn(false);
    $("#api-key").focus();
  }
}

init();
