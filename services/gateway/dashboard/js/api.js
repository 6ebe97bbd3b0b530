// The REST client: the API key (this tab only) is exchanged for a short-lived token, refreshed before it expires.

const KEY = "mcpmesh.apiKey";
const CLIENT_HEADERS = { "X-Client-Type": "dashboard", "X-Client-Version": "1" };

export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

let token = "";
let expires = 0;
let refreshTimer = 0;
let exchanging = null;
const listeners = new Set();

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  get token() { return token; },
  onChange(fn) { listeners.add(fn); },
};

function notify() { for (const fn of listeners) fn(token); }

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let reason = "";
  try {
    const body = await response.json();
    message = body.message || message;
    const info = (body.details || []).find((d) => d.reason);
    reason = info ? info.reason : "";
    const violations = (body.details || []).flatMap((d) => d.fieldViolations || []);
    if (violations.length) message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, message, reason);
}

async function exchange(key) {
  const response = await fetch("/v1/tokens", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", ...CLIENT_HEADERS },
    body: "{}",
  });
  if (!response.ok) throw await errorOf(response);
  const body = await response.json();
  token = body.token;
  expires = Date.parse(body.expireTime);
  // Refresh at 80 % of the lifetime (at least 5 s ahead), so no call ever carries an expired token.
  const ttl = Math.max(expires - Date.now(), 10_000);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(ttl * 0.8, ttl - 60_000, 5_000));
  notify();
  return token;
}

export async function refresh() {
  const key = session.key;
  if (!key) throw new ApiError(401, "not signed in", "NOT_SIGNED_IN");
  exchanging = exchanging || exchange(key).finally(() => { exchanging = null; });
  return exchanging;
}

export async function signIn(key) {
  sessionStorage.setItem(KEY, key.trim());
  try {
    await refresh();
  } catch (error) {
    sessionStorage.removeItem(KEY);
    throw error;
  }
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  token = "";
  expires = 0;
  clearTimeout(refreshTimer);
  notify();
}

async function currentToken() {
  if (!token || Date.now() > expires - 5_000) await refresh();
  return token;
}

/** A REST call with the token; a 401 re-exchanges the key once (the token may have been rotated). */
export async function api(path, { method = "GET", body, query, signal, raw = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${await currentToken()}`, ...CLIENT_HEADERS };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401 && attempt === 0) {
      token = "";
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return raw ? response : response.json();
  }
}

/** Every item of a paginated list (bounded: at most `limit` items). */
export async function listAll(path, field, query = {}, limit = 1000) {
  const items = [];
  let pageToken = "";
  do {
    const page = await api(path, { query: { ...query, pageSize: 100, pageToken } });
    items.push(...(page[field] || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken && items.length < limit);
  return items;
}
