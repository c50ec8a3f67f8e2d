// The chat page: a view of the protocol client (parley-client.js), which owns the connection,
// reconnects and recovers. This module only turns its events into DOM and user input into calls.
// Everything that came from the server is put in the page as text (see dom.js), never as markup.

import { ParleyClient, isValidUserName, isValidRoomName } from "./parley-client.js";
import { el, byId } from "./dom.js";

const TYPING_VISIBLE_MS = 4_000;      // about two of the server's typing intervals
const AUTHOR_STATUS_VISIBLE_MS = 10_000; // an answer about who is online goes stale quickly
const GROUP_WITHIN_MS = 5 * 60_000;   // consecutive messages of one sender share a header
const STORAGE_KEY = "parley.session"; // per tab: a reload comes back to the same rooms
// A token this close to its expiry is not worth handing to the server: ask for a new one. More
// than the client's refreshBeforeMs, so that its scheduled refresh asks the user in time.
const TOKEN_FRESH_FOR_MS = 60_000;
const DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

const params = new URLSearchParams(location.search);
const debug = params.has("debug");

/** Everything the page shows, per room: its view, unread count and who is typing. */
const ui = {
  client: null,
  socketImpl: globalThis.WebSocket,
  name: "",
  token: "",          // the sign-in token, or "" in open mode
  tokenStale: "",     // why the token will not do any more ("" while it will)
  tokenAsk: null,     // {promise, resolve} while getToken waits for the user to paste a token
  banMessage: "",
  active: null,
  rooms: new Map(),
  countdown: null,
};

// -- storage -----------------------------------------------------------------------------------

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
  } catch {
    return null;
  }
}

function saveSession() {
  if (!ui.client) {
    sessionStorage.removeItem(STORAGE_KEY);
    return;
  }
  // Rooms we were removed from are not rejoined after a reload either.
  const rooms = [...ui.rooms.values()].filter((r) => !r.removed).map((r) => r.name);
  // The token is kept per tab, like the rest, so that a reload stays signed in; it goes when the
  // tab closes or on sign-out.
  const session = { name: ui.name, token: ui.token, rooms, active: ui.active };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

// -- formatting --------------------------------------------------------------------------------

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const wholeNumber = new Intl.NumberFormat();

function formatTime(ts) {
  const date = new Date(ts);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeOnly.format(date) : dayAndTime.format(date);
}

function presenceNewsText({ joins, leaves }) {
  const parts = [];
  if (joins.length) parts.push(`${joins.join(", ")} joined.`);
  if (leaves.length) parts.push(`${leaves.join(", ")} left.`);
  return parts.join(" ");
}

function authorStatusText({ online, sessions }) {
  if (!online) return "offline";
  if (sessions === 0) return "online · just disconnected";
  return `online · ${sessions} ${sessions === 1 ? "connection" : "connections"}`;
}

function untilText(until) {
  return until === undefined || until === null ? "" : ` until ${formatTime(until)}`;
}

/** A system line for a moderator's action, or null for a deletion (the tombstone says it). */
function moderationText({ action, room, user, by, until, reason }) {
  const why = reason ? `: ${reason}` : "";
  const forHowLong = untilText(until) || " for good";
  switch (action) {
    case "kick": return `${user} was removed by ${by}${why}`;
    case "ban": return `${user} was banned${room === null ? " from the server" : ""} by ${by}${forHowLong}${why}`;
    case "unban": return `${user} was unbanned${room === null ? " on the server" : ""} by ${by}`;
    case "mute": return `${user} was muted by ${by}${forHowLong}${why}`;
    case "unmute": return `${user} may post again (unmuted by ${by})`;
    default: return null;
  }
}

function tombstoneText({ by, reason } = {}) {
  return `message deleted${by ? ` by ${by}` : ""}${reason ? `: ${reason}` : ""}`;
}

/** "10m", "1h", "2d", "30s", "1w" in seconds, or null. */
function parseDuration(word) {
  const match = /^(\d{1,6})([smhdw])$/.exec(word ?? "");
  return match ? Number(match[1]) * DURATION_UNITS[match[2]] : null;
}

function typingText(users) {
  if (users.length === 0) return "";
  if (users.length === 1) return `${users[0]} is typing…`;
  if (users.length === 2) return `${users[0]} and ${users[1]} are typing…`;
  return `${users.length} people are typing…`;
}

// -- connection status ---------------------------------------------------------------------------

const CLOSED_REASONS = {
  invalid_name: "The server refused that name. Pick another one.",
  abuse: "The server closed the connection after too many errors.",
  frame_too_big: "The server closed the connection: a message was too large.",
  normal: "The server closed the connection.",
  client: "Signed out.",
  unauthenticated: "This server requires sign-in: paste a token.",
  banned: "You are banned from this server.",
};

function showStatus(detail) {
  const box = byId("connection");
  const text = byId("connection-text");
  box.dataset.state = detail.state;
  clearInterval(ui.countdown);
  ui.countdown = null;
  byId("retry-now").hidden = detail.state !== "offline";
  switch (detail.state) {
    case "connecting":
      text.textContent = "Connecting…";
      break;
    case "open":
      text.textContent = "Connected";
      break;
    case "reconnecting":
      text.textContent = "Reconnecting…";
      break;
    case "offline": {
      // Count down to the next attempt so that "offline" never looks like "stuck".
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((ui.client.retryAt - Date.now()) / 1000));
        text.textContent = seconds > 0 ? `Offline. Retrying in ${seconds} s` : "Offline. Retrying…";
      };
      tick();
      ui.countdown = setInterval(tick, 1000);
      break;
    }
    case "closed":
      text.textContent = CLOSED_REASONS[detail.reason] ?? `Disconnected (${detail.reason})`;
      break;
    default:
      text.textContent = "Not connected";
  }
  refreshOutboxLabels();
}

// -- rooms -------------------------------------------------------------------------------------

/** Creates the view of a room: its entry in the room list and its scrolling message list. */
function createRoomView(name) {
  const badge = el("span", { className: "badge", hidden: true });
  const button = el("button", {
    className: "room-button", attrs: { type: "button" }, on: { click: () => activate(name) },
  }, el("span", { className: "room-name", text: `#${name}` }), badge);
  const item = el("li", {}, button);
  byId("room-list").append(item);

  const older = el("button", {
    className: "load-older", text: "Load older messages", hidden: true,
    attrs: { type: "button" }, on: { click: () => loadOlder(name) },
  });
  // A polite live region: screen readers announce new messages without interrupting.
  const list = el("ol", {
    className: "messages", attrs: { "aria-label": `Messages in ${name}`, "aria-live": "polite", "aria-relevant": "additions" },
  });
  const outbox = el("ol", { className: "messages outbox", attrs: { "aria-label": "Not yet delivered" } });
  const view = el("section", {
    className: "room-view", hidden: true, dataset: { room: name },
    attrs: { tabindex: "0", "aria-label": `Conversation in ${name}` },
  }, older, list, outbox);
  byId("room-views").append(view);

  // presence: the client's last `members` event for this room, null until the join completes.
  const room = { name, item, button, badge, view, list, outbox, older, unread: 0, typing: new Map(), presence: null };
  ui.rooms.set(name, room);
  return room;
}

function openRoom(name) {
  let room = ui.rooms.get(name);
  if (room && !room.removed) {
    activate(name);
    return;
  }
  if (room) {
    // Removed by a moderator: joining again is allowed after a kick (a ban refuses it).
    room.removed = false;
  } else {
    room = createRoomView(name);
  }
  activate(name);
  ui.client.join(name).catch((err) => {
    if (err.code === "left") return; // the user left before the join completed
    removeRoomView(room);
    byId("join-error").textContent = `Could not join ${name}: ${describeError(err)}`;
  });
}

function removeRoomView(room) {
  for (const timer of room.typing.values()) clearTimeout(timer);
  room.item.remove();
  room.view.remove();
  ui.rooms.delete(room.name);
  if (ui.active === room.name) {
    ui.active = null;
    const next = ui.rooms.keys().next();
    if (!next.done) activate(next.value);
    else renderActive();
  }
  saveSession();
}

function activate(name) {
  const room = ui.rooms.get(name);
  if (!room) return;
  ui.active = name;
  room.unread = 0;
  for (const other of ui.rooms.values()) {
    const current = other === room;
    other.view.hidden = !current;
    if (current) other.button.setAttribute("aria-current", "true");
    else other.button.removeAttribute("aria-current");
  }
  renderActive();
  scrollToEnd(room);
  saveSession();
}

/** Redraws what depends on the active room: title, members, typing, unread badges. */
function renderActive() {
  const room = ui.rooms.get(ui.active);
  byId("room-title").textContent = room ? `#${room.name}` : "No room";
  byId("leave-room").hidden = !room;
  byId("no-room").hidden = Boolean(room);
  const compose = byId("compose-text");
  const usable = room && !room.removed;
  compose.disabled = !usable;
  byId("compose-send").disabled = !usable;
  compose.placeholder = !room ? "Join a room first"
    : room.removed ? `You are no longer in #${room.name}` : `Message #${room.name}`;
  byId("presence-news").textContent = "";
  renderMembers();
  renderTyping();
  renderUnread();
}

function renderUnread() {
  let total = 0;
  for (const room of ui.rooms.values()) {
    total += room.unread;
    room.badge.hidden = room.unread === 0;
    room.badge.textContent = String(room.unread);
    room.badge.setAttribute("aria-label", `${room.unread} unread`);
  }
  document.title = total ? `(${total}) Parley` : "Parley";
}

function renderMembers() {
  const room = ui.rooms.get(ui.active);
  const presence = room?.presence;
  const members = presence?.mode === "users" ? presence.members : [];
  // In counts mode the summary says the number; the heading would only repeat it.
  byId("member-count").textContent = presence?.mode === "users" ? wholeNumber.format(presence.count) : "";
  byId("member-list").replaceChildren(...members.map((member) => {
    const me = member === ui.client.user;
    return el("li", { className: me ? "member me" : "member" },
      el("span", { className: "presence-dot", attrs: { "aria-hidden": "true" } }),
      el("span", { className: "member-name", text: member }),
      me ? el("span", { className: "you", text: " (you)" }) : null);
  }));
  const summary = byId("member-summary");
  summary.dataset.mode = presence?.mode ?? "";
  if (presence?.mode === "counts") {
    // The server stops naming people in big rooms; the count is all there is.
    summary.textContent = `${wholeNumber.format(presence.count)} online`;
  } else if (presence && presence.count > members.length) {
    summary.textContent = `and ${wholeNumber.format(presence.count - members.length)} more…`;
  } else {
    summary.textContent = "";
  }
  summary.hidden = summary.textContent === "";
}

function renderTyping() {
  const room = ui.rooms.get(ui.active);
  byId("typing").textContent = room ? typingText([...room.typing.keys()].sort()) : "";
}

function showTyping(roomName, user) {
  const room = ui.rooms.get(roomName);
  if (!room) return;
  clearTimeout(room.typing.get(user));
  room.typing.set(user, setTimeout(() => stopTyping(roomName, user), TYPING_VISIBLE_MS));
  if (roomName === ui.active) renderTyping();
}

function stopTyping(roomName, user) {
  const room = ui.rooms.get(roomName);
  if (!room || !room.typing.has(user)) return;
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
  if (roomName === ui.active) renderTyping();
}

// -- messages ----------------------------------------------------------------------------------

/** True when the token gives moderating roles: the page then shows message ids for /delete. */
function canModerate() {
  return ui.client?.roles.some((role) => role === "moderator" || role === "admin") ?? false;
}

function messageItem(m) {
  const time = el("time", { text: formatTime(m.ts), attrs: { datetime: new Date(m.ts).toISOString(), title: fullDate.format(m.ts) } });
  const meta = el("div", { className: "meta" });
  // The display name when the sender's token has one; the user id stays the stable handle.
  const shown = m.name ?? m.from;
  const author = el("button", {
    className: "from", text: shown,
    attrs: { type: "button", title: `Is ${m.from} online?` },
    on: { click: () => showAuthorStatus(meta, m.from) },
  });
  meta.append(author);
  if (m.name && m.name !== m.from) meta.append(el("span", { className: "display-id", text: `@${m.from}` }));
  meta.append(time);
  if (canModerate()) meta.append(el("span", { className: "msg-id", text: `#${m.id}`, attrs: { title: `/delete ${m.id}` } }));
  const li = el("li", {
    className: m.own ? "message own" : "message",
    dataset: { id: String(m.id), from: m.from, ts: String(m.ts) },
  }, meta, el("p", { className: "text", text: m.text }));
  if (m.deleted) bury(li, {});
  return li;
}

/** Shows a message as deleted, in place. */
function bury(li, detail) {
  li.classList.add("deleted");
  li.querySelector(".text").textContent = tombstoneText(detail);
}

/** Asks the server whether `user` is online anywhere and says so next to their name. */
async function showAuthorStatus(meta, user) {
  meta.querySelector(".author-status")?.remove();
  // The live region exists before its answer arrives, so that screen readers announce the answer.
  const answer = el("span", { className: "author-status", attrs: { role: "status" } });
  meta.append(answer);
  answer.textContent = "checking…";
  try {
    const [status] = await ui.client.status([user]);
    answer.textContent = authorStatusText(status);
    answer.dataset.online = String(status.online);
  } catch (err) {
    answer.textContent = `unknown: ${describeError(err)}`;
  }
  setTimeout(() => answer.remove(), AUTHOR_STATUS_VISIBLE_MS);
}

/** Hides the header of a message that follows one from the same sender shortly before. */
function applyGrouping(li) {
  if (!li?.classList.contains("message")) return;
  const prev = li.previousElementSibling;
  const continued = prev?.classList.contains("message") && prev.dataset.from === li.dataset.from
    && Number(li.dataset.ts) - Number(prev.dataset.ts) < GROUP_WITHIN_MS;
  li.classList.toggle("continued", Boolean(continued));
}

function isNearEnd(room) {
  const v = room.view;
  return v.scrollHeight - v.scrollTop - v.clientHeight < 80;
}

function scrollToEnd(room) {
  room.view.scrollTop = room.view.scrollHeight;
}

function appendMessages(room, messages, { countUnread }) {
  if (!messages.length) return;
  const follow = isNearEnd(room) || messages.some((m) => m.own);
  for (const m of messages) {
    const li = messageItem(m);
    room.list.append(li);
    applyGrouping(li);
    stopTyping(room.name, m.from);
    if (countUnread && !m.own && (room.name !== ui.active || document.hidden)) room.unread++;
  }
  if (follow && room.name === ui.active) scrollToEnd(room);
  renderUnread();
}

function appendNotice(room, text, kind = "info") {
  if (!room) return;
  const li = el("li", { className: `notice ${kind}`, attrs: { role: kind === "info" ? null : "status" } }, text);
  room.list.append(li);
  if (room.name === ui.active) scrollToEnd(room);
}

async function loadOlder(name) {
  const room = ui.rooms.get(name);
  if (!room) return;
  room.older.disabled = true;
  room.older.textContent = "Loading…";
  try {
    const page = await ui.client.loadOlder(name, 50);
    const heightBefore = room.view.scrollHeight;
    const first = room.list.firstElementChild;
    const items = page.messages.map(messageItem);
    room.list.prepend(...items);
    items.forEach(applyGrouping);
    applyGrouping(first);
    // Keep the message the user was looking at in place.
    room.view.scrollTop += room.view.scrollHeight - heightBefore;
    room.older.hidden = !page.more;
  } catch (err) {
    appendNotice(room, `Could not load older messages: ${describeError(err)}`, "error");
  } finally {
    room.older.disabled = false;
    room.older.textContent = "Load older messages";
  }
}

// -- the outbox: own messages not yet echoed by the server ---------------------------------------

function outboxLabel() {
  return ui.client?.state === "open" ? "Sending…" : "Waiting for the connection…";
}

function onOutbox(e) {
  const room = ui.rooms.get(e.room);
  if (!room) return;
  let li = room.outbox.querySelector(`li[data-cid="${CSS.escape(e.cid)}"]`);
  if (e.state === "acked") {
    li?.remove();
    return;
  }
  if (!li) {
    li = el("li", { className: "message own pending", dataset: { cid: e.cid } },
      el("div", { className: "meta" },
        el("span", { className: "from", text: ui.client.name ?? ui.client.user ?? ui.name }),
        el("span", { className: "delivery", text: outboxLabel() })),
      el("p", { className: "text", text: e.text }));
    room.outbox.append(li);
    if (room.name === ui.active) scrollToEnd(room);
  }
  const delivery = li.querySelector(".delivery");
  if (e.state === "failed") {
    li.classList.add("failed");
    delivery.textContent = `Not sent: ${describeError({ code: e.reason, until: e.until })}`;
  } else {
    delivery.textContent = outboxLabel();
  }
}

function refreshOutboxLabels() {
  for (const room of ui.rooms.values()) {
    for (const span of room.outbox.querySelectorAll("li:not(.failed) .delivery")) span.textContent = outboxLabel();
  }
}

// -- errors ------------------------------------------------------------------------------------

const ERROR_TEXT = {
  room_full: "the room is full",
  too_many_rooms: "you are in too many rooms; leave one first",
  invalid_name: "that name is not allowed",
  text_too_long: "the message is too long",
  frame_too_big: "the message is too large",
  rate_limited: "slow down a little",
  room_limit: "the server cannot hold more rooms; join an existing one",
  room_failed: "the room failed on the server",
  offline: "not connected",
  disconnected: "the connection was lost",
  forbidden: "you are not allowed to do that here",
  muted: "you are muted in this room",
  banned: "you are banned",
  kicked: "you were removed from the room",
  not_found: "there is no such message",
  unauthenticated: "the server requires sign-in",
  token_expired: "your sign-in expired",
  token_unavailable: "no token to sign in with",
};

function describeError(err) {
  const text = ERROR_TEXT[err?.code] ?? err?.message ?? String(err);
  // Muted and banned say for how long; without an end they are for good.
  return text + untilText(err?.until);
}

// -- the token: asked from the user when the server wants a new one ------------------------------

/** The token's exp in ms, read without checking it (the server checks), or null if unreadable. */
function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null; // not a JWT we can read: trust it until the server says otherwise
  }
}

/**
 * The client's getToken: the token given, unless the server refused it, let it expire or it is
 * about to; then the user is asked for a new one, and the client waits (reconnecting shows).
 */
function getToken() {
  const expiry = tokenExpiry(ui.token);
  if (!ui.tokenStale && expiry !== null && expiry - Date.now() < TOKEN_FRESH_FOR_MS) {
    ui.tokenStale = expiry <= Date.now() ? "Your sign-in expired." : `Your sign-in expires at ${formatTime(expiry)}.`;
  }
  if (ui.token && !ui.tokenStale) return Promise.resolve(ui.token);
  if (!ui.tokenAsk) {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    ui.tokenAsk = { promise, resolve };
  }
  showTokenBanner(`${ui.tokenStale} Paste a new token to stay signed in.`);
  return ui.tokenAsk.promise;
}

function showTokenBanner(text) {
  byId("token-banner-text").textContent = text;
  const wasHidden = byId("token-banner").hidden;
  byId("token-banner").hidden = false;
  if (wasHidden) byId("token-input").focus();
}

function hideTokenBanner() {
  byId("token-banner").hidden = true;
  byId("token-input").value = "";
}

/** The user pasted a token: hand it to whoever waits for one, or refresh with it. */
function useNewToken(token) {
  ui.token = token;
  ui.tokenStale = "";
  saveSession();
  hideTokenBanner();
  const ask = ui.tokenAsk;
  ui.tokenAsk = null;
  if (ask) ask.resolve(token);
  else ui.client?.refreshToken();
}

function onTokenEvent(e) {
  switch (e.state) {
    case "expired":
      ui.tokenStale ||= "Your sign-in expired.";
      break;
    case "reauthenticate":
      ui.tokenStale ||= "Your sign-in expired.";
      break;
    case "refused":
      if (!e.final) ui.tokenStale = "The server did not accept the token.";
      break;
    case "refresh_failed":
      if (e.code === "offline" || e.code === "same_token") break;
      ui.tokenStale = `The new token was not accepted (${describeError(e)}).`;
      showTokenBanner(`${ui.tokenStale} Paste another one.`);
      break;
    case "refreshed":
      ui.tokenStale = "";
      hideTokenBanner();
      renderWhoami();
      break;
    default:
      break;
  }
}

function renderWhoami() {
  const who = byId("whoami");
  const client = ui.client;
  if (!client?.user) return;
  who.hidden = false;
  who.textContent = client.name ?? client.user;
  const parts = [client.user];
  if (client.roles.length) parts.push(client.roles.join(", "));
  if (client.expiresAt) parts.push(`signed in until ${formatTime(client.expiresAt)}`);
  who.title = parts.join(" · ");
}

// -- slash commands for moderators ---------------------------------------------------------------

const COMMAND_HELP = "Commands: /kick user [reason], /ban user [10m|1h|1d] [reason], /unban user, "
  + "/mute user [duration] [reason], /unmute user, /delete id [reason], /serverban user [duration] [reason], "
  + "/serverunban user. Start a message with // to send it with one /.";

/**
 * Runs a moderation command typed in the composer. Success shows up as the room's moderation
 * line (or, server-wide, as a notice here); a refusal is said in the room.
 */
function runCommand(roomName, line) {
  const room = ui.rooms.get(roomName);
  const [command, ...words] = line.slice(1).split(/\s+/).filter(Boolean);
  const target = words[0];
  const afterTarget = words.slice(1);
  const withDuration = () => {
    const seconds = parseDuration(afterTarget[0]);
    return seconds === null
      ? { reason: afterTarget.join(" ") }
      : { duration: seconds, reason: afterTarget.slice(1).join(" ") };
  };
  const c = ui.client;
  let action;
  switch (command) {
    case "kick": action = target && c.kick(roomName, target, afterTarget.join(" ")); break;
    case "ban": action = target && c.ban(roomName, target, withDuration()); break;
    case "unban": action = target && c.unban(roomName, target); break;
    case "mute": action = target && c.mute(roomName, target, withDuration()); break;
    case "unmute": action = target && c.unmute(roomName, target); break;
    case "serverban": action = target && c.ban(null, target, withDuration()); break;
    case "serverunban": action = target && c.unban(null, target); break;
    case "delete": {
      const id = Number(target);
      action = /^\d+$/.test(target ?? "") && c.deleteMessage(roomName, id, afterTarget.join(" "));
      break;
    }
    case "help":
      appendNotice(room, COMMAND_HELP);
      return;
    default:
      appendNotice(room, `Unknown command /${command ?? ""}. ${COMMAND_HELP}`, "error");
      return;
  }
  if (!action) {
    appendNotice(room, `/${command} needs ${command === "delete" ? "a message id" : "a user"}. ${COMMAND_HELP}`, "error");
    return;
  }
  action.then((done) => {
    if (done.room === null) {
      // A server-wide action has no room to broadcast it in.
      appendNotice(ui.rooms.get(roomName), `${done.user} is ${done.action === "ban" ? "banned from" : "no longer banned on"} the server.`, "moderation");
    }
  }, (err) => {
    appendNotice(ui.rooms.get(roomName), `/${command} ${target}: ${describeError(err)}`, "error");
  });
}

// -- the client's events -------------------------------------------------------------------------

function wireClient(client) {
  client.on("status", (detail) => {
    showStatus(detail);
    if (detail.state === "closed" && detail.reason !== "client") {
      if (detail.reason === "invalid_name") signOut(CLOSED_REASONS.invalid_name);
      else if (detail.reason === "unauthenticated") {
        signOut(ui.token ? "The server did not accept the token. Paste another one." : CLOSED_REASONS.unauthenticated);
      } else if (detail.reason === "banned") signOut(ui.banMessage || CLOSED_REASONS.banned);
      else disableChat();
    }
  });
  client.on("welcome", () => {
    renderWhoami();
    renderMembers();
  });
  client.on("token", onTokenEvent);
  client.on("banned", ({ until }) => {
    ui.banMessage = `You are banned from this server${untilText(until) || " for good"}.`;
  });
  client.on("moderation", (m) => {
    const text = moderationText(m);
    if (!text) return;
    // Server-wide actions belong to no room; the one in view shows them.
    appendNotice(ui.rooms.get(m.room ?? ui.active), text, "moderation");
  });
  client.on("notice", ({ room, text }) => {
    appendNotice(ui.rooms.get(room), `Notice from the server: ${text}`, "server-notice");
  });
  client.on("deleted", ({ room: name, id, by, reason }) => {
    const room = ui.rooms.get(name);
    const li = room?.list.querySelector(`li.message[data-id="${id}"]`);
    if (li) bury(li, { by, reason });
  });
  client.on("gap", ({ room: name, epochChanged }) => {
    const room = ui.rooms.get(name);
    if (!room) return;
    if (epochChanged) {
      // What we showed belongs to a history the server no longer has.
      room.list.replaceChildren();
      appendNotice(room, "The server lost this room's earlier history (it restarted). Showing what it has now.", "gap");
    } else {
      appendNotice(room, "You were away too long: some messages could not be recovered.", "gap");
    }
  });
  client.on("joined", (d) => {
    const room = ui.rooms.get(d.room);
    if (!room) return;
    appendMessages(room, d.history, { countUnread: d.rejoin });
    room.older.hidden = !d.hasOlder;
  });
  client.on("message", (m) => {
    const room = ui.rooms.get(m.room);
    if (room) appendMessages(room, [m], { countUnread: true });
  });
  client.on("members", (presence) => {
    const room = ui.rooms.get(presence.room);
    if (!room) return;
    room.presence = presence;
    if (presence.room === ui.active) renderMembers();
  });
  client.on("presence", (change) => {
    // Only the room in view: announcing every room's comings and goings would drown the reader.
    if (change.room === ui.active) byId("presence-news").textContent = presenceNewsText(change);
  });
  client.on("typing", ({ room, user }) => showTyping(room, user));
  client.on("outbox", onOutbox);
  client.on("left", ({ room: name, reason }) => {
    const room = ui.rooms.get(name);
    if (room && reason === "room_failed") {
      appendNotice(room, "This room failed on the server. Join it again to continue.", "error");
    }
    if (room && (reason === "kicked" || reason === "banned")) {
      // Keep what was said on screen, but the room is closed to us (and not rejoined).
      room.removed = true;
      appendNotice(room, reason === "kicked"
        ? "You were removed from this room. You may join it again."
        : "You were banned from this room.", "error");
      if (name === ui.active) renderActive();
      saveSession();
    }
  });
  client.on("error", (e) => {
    // Errors tied to a join or a send are shown where they happened; the rest go to the room.
    // Sign-in trouble shows in the token banner or on the sign-in form.
    if (e.room || e.code === "invalid_name") return;
    if (["unauthenticated", "token_expired", "token_unavailable"].includes(e.code)) return;
    if (e.code === "banned") return; // the server-wide ban: the `banned` event says it
    const room = ui.rooms.get(ui.active);
    if (room) appendNotice(room, `Server error: ${describeError(e)}`, "error");
  });
}

// -- user actions --------------------------------------------------------------------------------

function wsUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

async function start(name, rooms, active, token = "") {
  ui.token = token;
  ui.tokenStale = "";
  ui.banMessage = "";
  // Without a token the client connects as in open mode; with one, it asks getToken every time.
  ui.client = new ParleyClient({ WebSocket: ui.socketImpl, ...(token ? { getToken } : {}) });
  ui.name = name;
  wireClient(ui.client);
  byId("sign-in").hidden = true;
  byId("chat").hidden = false;
  byId("sign-out").hidden = false;
  byId("chat").classList.remove("disabled");
  for (const room of rooms) openRoom(room);
  if (active && ui.rooms.has(active)) activate(active);
  saveSession();
  if (debug) globalThis.parleyDebug.client = ui.client;
  byId("compose-text").focus();
  try {
    await ui.client.connect(wsUrl(), name);
  } catch {
    // The status event has already said why; nothing else to do.
  }
}

function signOut(message = "") {
  ui.client?.close();
  ui.client = null;
  ui.token = "";
  ui.tokenStale = "";
  ui.tokenAsk = null; // a connect that waited for a token is gone with its client
  hideTokenBanner();
  for (const room of [...ui.rooms.values()]) removeRoomView(room);
  sessionStorage.removeItem(STORAGE_KEY);
  byId("chat").hidden = true;
  byId("sign-out").hidden = true;
  byId("whoami").hidden = true;
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message;
  byId("sign-in-name").focus();
}

function disableChat() {
  byId("chat").classList.add("disabled");
  byId("compose-text").disabled = true;
  byId("compose-send").disabled = true;
}

function sendFromComposer() {
  const box = byId("compose-text");
  let text = box.value;
  if (!ui.active || text.trim() === "") return;
  box.value = "";
  autoGrow(box);
  if (text.startsWith("/") && !text.startsWith("//")) {
    runCommand(ui.active, text.trim());
    return;
  }
  if (text.startsWith("//")) text = text.slice(1); // "//shrug" sends "/shrug"
  ui.client.send(ui.active, text).catch(() => {
    // Failures are shown on the pending message itself (outbox event "failed").
  });
}

function autoGrow(box) {
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
}

function bindForms() {
  byId("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = byId("sign-in-name").value.trim();
    const room = byId("sign-in-room").value.trim();
    const error = byId("sign-in-error");
    if (name && !isValidUserName(name)) {
      error.textContent = "Names use letters, digits and _ . - (at most 32).";
      byId("sign-in-name").focus();
      return;
    }
    if (!isValidRoomName(room)) {
      error.textContent = "Room names use letters, digits and _ . - (at most 64).";
      byId("sign-in-room").focus();
      return;
    }
    error.textContent = "";
    start(name, [room], room, byId("sign-in-token").value.trim());
  });

  byId("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = byId("token-input").value.trim();
    if (token) useNewToken(token);
  });

  byId("join-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = byId("join-room");
    const name = input.value.trim().replace(/^#/, "");
    const error = byId("join-error");
    if (!isValidRoomName(name)) {
      error.textContent = "Room names use letters, digits and _ . - (at most 64).";
      return;
    }
    error.textContent = "";
    input.value = "";
    openRoom(name);
    byId("compose-text").focus();
  });

  byId("leave-room").addEventListener("click", () => {
    const room = ui.rooms.get(ui.active);
    if (!room) return;
    ui.client.leave(room.name);
    removeRoomView(room);
    (ui.active ? byId("compose-text") : byId("join-room")).focus();
  });

  const box = byId("compose-text");
  byId("compose").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendFromComposer();
  });
  box.addEventListener("keydown", (ev) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition is neither.
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendFromComposer();
    }
  });
  box.addEventListener("input", () => {
    autoGrow(box);
    if (ui.active && box.value.trim() !== "") ui.client.typing(ui.active);
  });

  byId("retry-now").addEventListener("click", () => ui.client?.reconnectNow());
  byId("sign-out").addEventListener("click", () => signOut());
  // The browser knows before our backoff does when the network is back.
  window.addEventListener("online", () => ui.client?.reconnectNow());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && ui.active) {
      ui.rooms.get(ui.active).unread = 0;
      renderUnread();
    }
  });
}

async function main() {
  if (debug) {
    // Tests cut the page's network through this; it never loads without ?debug.
    const { createNetworkSwitch } = await import("./debug-network.js");
    const network = createNetworkSwitch(globalThis.WebSocket);
    ui.socketImpl = network.WebSocket;
    globalThis.parleyDebug = { network, client: null };
  }
  bindForms();
  const saved = loadSession();
  if (saved && Array.isArray(saved.rooms)) {
    start(saved.name ?? "", saved.rooms.filter(isValidRoomName), saved.active, typeof saved.token === "string" ? saved.token : "");
  } else {
    byId("sign-in-name").focus();
  }
}

main();
