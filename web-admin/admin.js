// The admin page: live numbers and charts from /metrics (no token needed), and with the admin
// token the rooms, a user lookup, notices, kick/ban and drain through the /admin JSON API. Plain
// DOM calls, no HTML parsing: everything shown is text the server or an operator supplied.

import { Series, counterRate, parseMetrics } from "./metrics.js";

const POLL_MS = 2_000;
const HISTORY_POINTS = 150; // 5 minutes at one point per 2 s
const TOKEN_KEY = "parley-admin-token";

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  previous: null, // {time, totals} of the last scrape
  selectedRoom: null,
  series: {
    connections: new Series(HISTORY_POINTS),
    messages: new Series(HISTORY_POINTS),
    deliveries: new Series(HISTORY_POINTS),
    restarts: new Series(HISTORY_POINTS),
  },
};

// -- talking to the admin listener ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the /admin API with the token; resolves with the parsed JSON or throws ApiError. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: keep null
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.error ?? "http_" + res.status, data?.message ?? res.statusText);
  }
  return data;
}

function show(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function explain(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) {
      signOut("The token was refused; sign in again.");
      return "The token was refused.";
    }
    return `${err.message} (${err.code})`;
  }
  return `The server cannot be reached: ${err.message}`;
}

// -- signing in ---------------------------------------------------------------------------------------

function setSignedIn(signedIn) {
  $("sign-in").hidden = signedIn;
  $("admin-area").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
}

function signOut(reason) {
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  setSignedIn(false);
  const error = $("token-error");
  error.hidden = !reason;
  error.textContent = reason ?? "";
}

async function signIn(token) {
  state.token = token;
  try {
    await api("GET", "/admin/rooms");
  } catch (err) {
    state.token = "";
    const error = $("token-error");
    error.hidden = false;
    if (err instanceof ApiError && err.status === 401) error.textContent = "Wrong token.";
    else if (err instanceof ApiError && err.status === 403) error.textContent = err.message;
    else error.textContent = explain(err);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-error").hidden = true;
  setSignedIn(true);
  await refreshRooms();
  return true;
}

// -- numbers and charts ------------------------------------------------------------------------------

function formatNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function formatBytes(bytes) {
  if (bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const accent = styles.getPropertyValue("--accent").trim() || "#3b5bdb";
  const muted = styles.getPropertyValue("--muted").trim() || "#5d6675";
  const max = Math.max(series.max(), 1);
  ctx.fillStyle = muted;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(formatNumber(max, max < 10 ? 1 : 0), 2, 11);
  const points = series.points;
  if (points.length < 2) return;
  const step = width / (HISTORY_POINTS - 1);
  const offset = HISTORY_POINTS - points.length;
  ctx.strokeStyle = accent;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let started = false;
  points.forEach((p, i) => {
    if (p.value === null) {
      started = false;
      return;
    }
    const x = (offset + i) * step;
    const y = height - 2 - (p.value / max) * (height - 16);
    if (started) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    started = true;
  });
  ctx.stroke();
}

async function pollMetrics() {
  const time = performance.now() / 1000;
  let totals;
  try {
    const res = await fetch("/metrics", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    totals = parseMetrics(await res.text());
  } catch (err) {
    setReadiness("down", "unreachable");
    show(`The server cannot be reached: ${err.message}`, true);
    state.previous = null;
    return;
  }
  const previous = state.previous;
  const seconds = previous ? time - previous.time : 0;
  const rate = (name) => counterRate(previous?.totals.get(name), totals.get(name), seconds);
  const connections = totals.get("parley_connections_open");
  const messages = rate("parley_messages_accepted_total");
  const deliveries = rate("parley_deliveries_total");
  const restarts = totals.get("parley_supervisor_restarts_total");
  state.previous = { time, totals };

  $("n-connections").textContent = formatNumber(connections);
  $("n-messages").textContent = formatNumber(messages, 1);
  $("n-deliveries").textContent = formatNumber(deliveries, 1);
  $("n-restarts").textContent = formatNumber(restarts);
  $("n-rooms").textContent = formatNumber(totals.get("parley_rooms"));
  $("n-rss").textContent = formatBytes(totals.get("process_resident_memory_bytes"));
  const points = { connections: connections ?? null, messages, deliveries, restarts: restarts ?? null };
  for (const [key, series] of Object.entries(state.series)) {
    series.push(time, points[key]);
    drawChart($(`c-${key}`), series);
  }
  $("last-update").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function setReadiness(kind, text) {
  const badge = $("readiness");
  badge.dataset.state = kind;
  badge.textContent = text;
}

async function pollReadiness() {
  try {
    const res = await fetch("/readyz", { cache: "no-store" });
    const text = (await res.text()).trim();
    setReadiness(res.ok ? "ready" : "not-ready", res.ok ? "ready" : `not ready: ${text.split("\n").join(", ")}`);
  } catch {
    setReadiness("down", "unreachable");
  }
}

// -- rooms -------------------------------------------------------------------------------------------

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function refreshRooms() {
  if (!state.token) return;
  let data;
  try {
    data = await api("GET", "/admin/rooms");
  } catch (err) {
    show(explain(err), true);
    return;
  }
  const body = $("rooms-body");
  body.replaceChildren();
  for (const room of data.rooms) {
    const tr = document.createElement("tr");
    tr.dataset.room = room.name;
    tr.append(cell(room.name));
    if (room.answered === false) {
      tr.append(cell("(no answer)"), cell(""), cell(""), cell(""));
    } else {
      tr.append(cell(String(room.members)), cell(String(room.connections)), cell(String(room.last_id)),
        cell(formatNumber(room.message_rate, 2)));
    }
    const actions = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "Manage";
    open.addEventListener("click", () => selectRoom(room.name));
    actions.append(open);
    tr.append(actions);
    body.append(tr);
  }
  $("rooms-empty").hidden = data.rooms.length > 0;
  if (state.selectedRoom) await refreshMembers();
}

async function selectRoom(name) {
  state.selectedRoom = name;
  $("room-name").textContent = name;
  $("room-panel").hidden = false;
  await refreshMembers();
}

async function refreshMembers() {
  const list = $("room-members");
  try {
    const data = await api("GET", `/admin/rooms/${encodeURIComponent(state.selectedRoom)}`);
    list.replaceChildren(...data.members.map((m) => {
      const li = document.createElement("li");
      li.textContent = m.connections > 1 ? `${m.user} (${m.connections})` : m.user;
      return li;
    }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      list.replaceChildren();
      show(`Room ${state.selectedRoom} is no longer in memory.`);
    } else {
      show(explain(err), true);
    }
  }
}

async function sendNotice(event) {
  event.preventDefault();
  const input = $("notice-text");
  const text = input.value.trim();
  if (!text || !state.selectedRoom) return;
  try {
    const done = await api("POST", `/admin/rooms/${encodeURIComponent(state.selectedRoom)}/notice`, { text });
    input.value = "";
    show(`Notice sent to ${done.delivered} connection(s) in ${done.room}.`);
  } catch (err) {
    show(explain(err), true);
  }
}

async function moderate(event) {
  event.preventDefault();
  const action = event.submitter?.value ?? "kick";
  const user = $("moderate-user").value.trim();
  if (!user || !state.selectedRoom) return;
  const body = { user };
  const reason = $("moderate-reason").value.trim();
  if (reason) body.reason = reason;
  const minutes = Number($("moderate-minutes").value);
  if (action === "ban" && minutes > 0) body.duration = Math.round(minutes * 60);
  try {
    await api("POST", `/admin/rooms/${encodeURIComponent(state.selectedRoom)}/${action}`, body);
    show(`${action}: ${user} in ${state.selectedRoom} done.`);
    await refreshRooms();
  } catch (err) {
    show(explain(err), true);
  }
}

// -- users -------------------------------------------------------------------------------------------

async function lookUp(event) {
  event.preventDefault();
  const user = $("user-input").value.trim();
  if (!user) return;
  let data;
  try {
    data = await api("GET", `/admin/users/${encodeURIComponent(user)}`);
  } catch (err) {
    show(explain(err), true);
    return;
  }
  const parts = [data.online ? (data.in_grace ? "online (in grace, no connection)" : "online") : "offline"];
  if (data.banned) parts.push(data.banned_until ? `banned until ${new Date(data.banned_until).toLocaleString()}` : "banned for good");
  $("user-summary").textContent = `${data.user}: ${parts.join(", ")}; ${data.sessions.length} session(s)`;
  $("user-sessions").replaceChildren(...data.sessions.map((s) => {
    const tr = document.createElement("tr");
    tr.append(cell(s.session), cell(s.address ?? "?"), cell(s.rooms.join(", ")),
      cell(new Date(s.connected_since).toLocaleString()), cell(s.roles.join(", ")));
    return tr;
  }));
  $("user-result").hidden = false;
}

async function serverBan(action) {
  const user = $("user-input").value.trim();
  if (!user) return;
  if (action === "ban" && !confirm(`Ban ${user} from the whole server? Their connections close now.`)) return;
  try {
    await api("POST", `/admin/${action}`, { user });
    show(`${action} from the server: ${user} done.`);
  } catch (err) {
    show(explain(err), true);
  }
}

// -- drain -------------------------------------------------------------------------------------------

async function drain(event) {
  event.preventDefault();
  const seconds = $("drain-seconds").value;
  const body = seconds === "" ? {} : { period_ms: Math.round(Number(seconds) * 1000) };
  const over = seconds === "" ? "the configured period" : `${seconds} s`;
  if (!confirm(`Drain this node? /readyz turns 503 and every client is disconnected over ${over}.`)) return;
  try {
    const done = await api("POST", "/admin/drain", body);
    show(`Draining over ${done.period_ms / 1000} s.`);
    await pollReadiness();
  } catch (err) {
    show(explain(err), true);
  }
}

// -- start -------------------------------------------------------------------------------------------

async function tick() {
  await Promise.all([pollMetrics(), pollReadiness(), refreshRooms()]);
}

function start() {
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("token-input");
    const token = input.value.trim();
    if (!token) return;
    if (await signIn(token)) input.value = "";
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("notice-form").addEventListener("submit", sendNotice);
  $("moderate-form").addEventListener("submit", moderate);
  $("user-form").addEventListener("submit", lookUp);
  $("server-ban").addEventListener("click", () => serverBan("ban"));
  $("server-unban").addEventListener("click", () => serverBan("unban"));
  $("drain-form").addEventListener("submit", drain);
  setSignedIn(false);
  if (state.token) signIn(state.token);
  tick();
  setInterval(tick, POLL_MS);
}

start();
