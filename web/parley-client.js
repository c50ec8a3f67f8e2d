// Parley protocol v1 client (docs/protocol.md). No DOM: it runs in browsers and in Node 20 alike.
// Everything that touches the outside world (WebSocket, clock, randomness) is injectable, so the
// reconnect and recovery logic can be tested with fakes and fake time.
//
// What it does for its user:
// - keeps one WebSocket open, reconnecting with exponential backoff and full jitter, except after
//   the close codes that say "do not reconnect";
// - remembers every joined room with the last message id and epoch seen, and rejoins with
//   `since`/`epoch` after a reconnect, so missed messages are replayed by the server;
// - gives every sent message a unique `cid`, keeps it until the server echoes it back, and resends
//   it with the same cid after a reconnect (the server deduplicates by user + cid);
// - queues messages written while offline and sends them once connected, exactly once;
// - drops messages it has already delivered (same room, epoch and id), so replays never show twice;
// - keeps each room's member list by the rules of "Presence": `joined` and `presence_state` start
//   it over, `who` pages complete it, `presence_diff` keeps it current. The page renders the
//   `members` events and never asks for the list itself.
// - signs in with a token when the server wants one (`getToken`): offered as a WebSocket
//   subprotocol or sent as a first `auth` frame, refreshed before it expires and after the server
//   says it has, and fetched again before every reconnect;
// - forgets rooms it was kicked or banned from, so that a reconnect does not rejoin them, and
//   turns moderators' deletions into tombstone events.

/** Close codes after which reconnecting would only repeat the failure (docs/protocol.md). */
export const FINAL_CLOSE_CODES = new Map([
  [1000, "normal"],        // the server closed on purpose
  [1009, "frame_too_big"], // resending the same frame would be refused again
  [4001, "invalid_name"],  // the same name would be refused again
  [4002, "abuse"],         // the server asked us to stop
  [4403, "banned"],        // banned from the server: every reconnect would be refused
]);

/** The subprotocol of protocol v1; a token rides along as a second one (docs/protocol.md). */
export const SUBPROTOCOL = "parley.v1";
const TOKEN_PROTOCOL_PREFIX = "parley.token.";

/** `left` reasons after which the connection is no longer in the room and must not rejoin it. */
const REMOVED_REASONS = new Set(["room_failed", "kicked", "banned"]);

/** User and room names as the server accepts them (docs/protocol.md, "Connecting", "Decoding"). */
const NAME_CHARACTERS = /^[A-Za-z0-9_.-]+$/;

/** True if the server would accept `name` as a user name (`?name=`, `status`). */
export function isValidUserName(name) {
  return typeof name === "string" && name.length >= 1 && name.length <= 32 && NAME_CHARACTERS.test(name);
}

/** True if the server would accept `name` as a room name. */
export function isValidRoomName(name) {
  return typeof name === "string" && name.length >= 1 && name.length <= 64 && NAME_CHARACTERS.test(name);
}

/** The most names one `status` command may ask about. */
export const MAX_STATUS_USERS = 100;

/** Errors after which the same frame may simply be sent again a little later. */
const RETRYABLE_ERRORS = new Set(["room_unavailable", "store_unavailable", "rate_limited", "internal"]);

export const DEFAULTS = Object.freeze({
  backoffBaseMs: 500,        // first retry waits up to 0.5 s ...
  backoffCapMs: 20_000,      // ... doubling up to at most 20 s
  stableAfterMs: 10_000,     // a connection that lived this long resets the backoff
  drainHintCapMs: 120_000,   // a draining server's reconnect hint is followed up to this long
  retryAfterErrorMs: 1_000,  // wait before resending a frame the server could not take right now
  typingThrottleMs: 1_500,   // the server relays one typing per 2 s anyway
  heartbeatMs: 25_000,       // application ping to notice half-open connections ...
  heartbeatTimeoutMs: 10_000, // ... which are dropped when no pong comes back in time
  maxTextBytes: 4096,        // [protocol] max_text_bytes: refuse locally what the server refuses
  maxFrameBytes: 65_536,     // [connection] max_frame_bytes: a larger frame would close with 1009
  rateBurst: 30,             // stay under the server's token bucket (40 burst, 20/s) so that a
  ratePerSecond: 15,         // flush of a long offline queue never earns rate_limited errors
  refreshBeforeMs: 30_000,   // refresh the token this long before it expires ...
  maxAuthFailures: 3,        // ... and give up after this many refusals (4401) in a row
});

/**
 * The backoff delay before reconnect attempt `attempt` (0-based): full jitter, i.e. uniformly
 * random between 0 and the capped exponential. Spreading retries over the whole range keeps a
 * crowd of clients from reconnecting in lockstep after a server restart.
 */
/**
 * The reconnect delay a draining server asked for, or null. A server that drains closes its
 * connections with 1001 spread over its drain period, each with the reason
 * "... reconnect_after_ms=<n>" (docs/protocol.md), so that its clients come back spread out
 * instead of all in the same second. Capped, so that a bad hint cannot park a client for long.
 */
export function drainDelay(code, reason, { drainHintCapMs } = DEFAULTS) {
  if (code !== 1001) return null;
  const hint = /reconnect_after_ms=(\d+)/.exec(reason ?? "");
  return hint ? Math.min(Number(hint[1]), drainHintCapMs) : null;
}

export function backoffDelay(attempt, random, { backoffBaseMs, backoffCapMs } = DEFAULTS) {
  const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** attempt);
  return random() * ceiling;
}

/** Byte length of a string in UTF-8, which is what the server's limits count. */
export function utf8Length(text) {
  let bytes = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** An Error with a stable `code`, like the server's error codes. */
export class ParleyError extends Error {
  /** `until`: for banned and muted, when it ends (ms since the epoch); absent: for good. */
  constructor(code, message, { until } = {}) {
    super(message ?? code);
    this.name = "ParleyError";
    this.code = code;
    if (until !== undefined) this.until = until;
  }
}

/** A moderation duration in whole seconds, as the server takes it; undefined means for good. */
function checkDuration(duration) {
  if (duration === undefined || duration === null) return undefined;
  if (!Number.isInteger(duration) || duration < 1) {
    throw new ParleyError("bad_field", "duration is a whole number of seconds, at least 1");
  }
  return duration;
}

/** The smallest event emitter that works the same in browsers and Node. */
class Emitter {
  #listeners = new Map();

  /** Calls `listener(detail)` for every `type` event. Returns a function that unsubscribes. */
  on(type, listener) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  emit(type, detail) {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) {
      try {
        listener(detail);
      } catch (err) {
        // One broken listener must not break the protocol state machine.
        queueMicrotask(() => { throw err; });
      }
    }
  }
}

/**
 * A token bucket in front of the socket. The server drops frames beyond its own bucket and counts
 * each refusal toward its abuse limit, so a client that flushes a long offline queue at once could
 * get itself disconnected. Pacing here is cheaper than learning it from errors.
 */
class RateGate {
  constructor(burst, perSecond, now) {
    this.burst = burst;
    this.perMs = perSecond / 1000;
    this.now = now;
    this.tokens = burst;
    this.updatedAt = now();
  }

  #refill() {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.updatedAt) * this.perMs);
    this.updatedAt = t;
  }

  trySpend() {
    this.#refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token. */
  wait() {
    this.#refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.perMs);
  }
}

const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
};

const OPEN = 1; // WebSocket.OPEN, without relying on the constructor having the static

/**
 * Client events (subscribe with `client.on(type, listener)`):
 * - `status`   {state, reason?, code?, attempt?, retryInMs?}; state is one of
 *              connecting | open | reconnecting | offline | closed
 * - `welcome`  {user, session, name?, roles?, expiresAt?}: name is the display name from the
 *              token; roles and expiresAt (ms since the epoch) only when signed in with a token
 * - `gap`      {room, epoch, previousEpoch, epochChanged}: a rejoin answered recovered:false, so
 *              what follows does not connect to what was delivered before; comes just before
 *              that rejoin's `joined`. epochChanged: the server lost the room's history, ids
 *              start over and what the page shows of the room is stale
 * - `joined`   {room, epoch, lastId, history, recovered, rejoin, reset, hasOlder}: history holds
 *              only messages not delivered before; hasOlder says whether loadOlder() can find more
 * - `message`  {room, id, from, text, ts, cid?, name?, deleted?, own}: a new message, never one
 *              delivered before. name: the sender's display name; deleted: a tombstone (text "")
 * - `members`  {room, members, count, mode}: the room's presence as this client now holds it,
 *              after every change. mode is "users" or "counts"; members is sorted by name and
 *              empty in counts mode; count (present users) may exceed members.length while
 *              further pages are still being fetched
 * - `presence` {room, joins, leaves}: names that came or went (users mode only), for
 *              announcing; a diff that changes nothing (a repeat) emits none, and neither does
 *              a list that is started over or completed by a page
 * - `typing`   {room, user}
 * - `left`     {room, reason}: "left", "room_failed", "kicked" or "banned"; after the last three
 *              the room is forgotten (not rejoined) and its unsent messages fail
 * - `outbox`   {room, cid, text, state, reason?, until?}: state queued | sent | acked | failed
 * - `moderation` {action, room, user?, id?, by, until?, reason?}: a moderator's action, as the
 *              room was told (room null: server-wide); action kick | ban | unban | mute | unmute | delete
 * - `deleted`  {room, id, by?, reason?}: a message delivered before is now a tombstone; replace it
 * - `notice`   {room, text, ts}: a notice from the server's operators to everyone in the room
 *              (not a chat message: no id, no author, not in history)
 * - `token`    {state, ...}: the sign-in token's life. state is one of
 *              refreshing {reason: "scheduled" | "expired" | "manual"} (getToken was called),
 *              refreshed {roles, expiresAt}, refresh_failed {code, message},
 *              expired (the server says so; commands wait until a refresh succeeds),
 *              reauthenticate (closed with 4408: reconnecting with a fresh token),
 *              refused {failures, final} (closed with 4401)
 * - `banned`   {until?, message?}: banned from the server; the connection is closed for good
 * - `error`    {code, message, ref?, room?, until?}
 */
export class ParleyClient extends Emitter {
  #WebSocket;
  #clock;
  #random;
  #opts;

  #baseUrl = null;
  #socket = null;
  #serial = 0;            // increments per socket; frames transmitted on older sockets are void
  #state = "idle";
  #attempt = 0;           // reconnect attempts since the last stable connection
  #openedAt = 0;
  #retryTimer = null;
  #retryAt = 0;
  #heartbeatTimer = null;
  #pumpTimer = null;
  #gate;
  #wire = [];             // frames waiting for the rate gate, on the current socket only
  #nextRef = 1;
  #requests = new Map();  // ref -> {kind, room, resolve, reject, entry?}
  #rooms = new Map();     // name -> room record (see #roomRecord)
  #outbox = [];           // unacknowledged sends, oldest first
  #cidPrefix;
  #cidCounter = 0;
  #lastTyping = new Map(); // room -> time the last typing frame went out
  #welcomeWaiters = [];
  #getToken;
  #tokenVia;
  #token = null;          // the token the current connection runs on
  #tokenByFrame = false;  // send the token in an auth frame even though tokenVia is "protocol"
  #authFailures = 0;      // 4401 closes since the last welcome
  #expired = false;       // the server said token_expired and no refresh has succeeded yet
  #refreshing = null;     // the refresh in progress (an object unique to it), or null
  #refreshTimer = null;
  #serverBan = null;      // the server-wide `banned` error that precedes a 4403 close

  /** The user id the server gave this connection (from `welcome`), or null before that. */
  user = null;
  /** The display name from the token, or null when it has none. */
  name = null;
  /** The user's roles from the token (empty without one). */
  roles = [];
  /** When the token expires, ms since the epoch, or null without one. */
  expiresAt = null;
  /** The opaque id of the current connection, useful in bug reports. */
  session = null;

  /**
   * @param {object} [options]
   * @param {Function} [options.WebSocket] constructor; defaults to globalThis.WebSocket
   * @param {{now(): number, setTimeout: Function, clearTimeout: Function}} [options.clock]
   * @param {() => number} [options.random] uniform in [0, 1)
   * @param {() => (string | Promise<string>)} [options.getToken] the sign-in token; called before
   *   every connect and reconnect and for every refresh. Without it the client connects as in
   *   open mode (a `?name=` and no token).
   * @param {"protocol" | "frame"} [options.tokenVia] how the token travels: as the subprotocol
   *   "parley.token.<jwt>" (default) or as a first {"type":"auth"} frame
   * plus any key of DEFAULTS.
   */
  constructor({ WebSocket, clock, random, getToken, tokenVia = "protocol", ...tuning } = {}) {
    super();
    if (getToken !== undefined && typeof getToken !== "function") throw new TypeError("getToken must be a function");
    if (tokenVia !== "protocol" && tokenVia !== "frame") throw new TypeError('tokenVia is "protocol" or "frame"');
    this.#getToken = getToken ?? null;
    this.#tokenVia = tokenVia;
    this.#WebSocket = WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError("ParleyClient needs a WebSocket implementation (options.WebSocket)");
    }
    this.#clock = clock ?? systemClock;
    this.#random = random ?? Math.random;
    this.#opts = { ...DEFAULTS, ...tuning };
    this.#gate = new RateGate(this.#opts.rateBurst, this.#opts.ratePerSecond, () => this.#clock.now());
    // A random prefix makes cids unique across tabs and page loads of the same user, which matters
    // because the server deduplicates by (user, cid) for as long as the room holds the message.
    this.#cidPrefix = Math.floor(this.#random() * 36 ** 8).toString(36).padStart(8, "0");
  }

  // -- public state ------------------------------------------------------------------------------

  /** connecting | open | reconnecting | offline | closed (or idle before connect()) */
  get state() { return this.#state; }

  /** Names of the rooms this client is in (or will rejoin), in join order. */
  get rooms() { return [...this.#rooms.keys()]; }

  /** A snapshot of what the client knows about a room, or undefined. */
  room(name) {
    const r = this.#rooms.get(name);
    if (!r) return undefined;
    return {
      name, joined: r.joined, epoch: r.epoch, lastId: r.lastId, oldestId: r.oldestId,
      hasOlder: r.hasOlder, ...this.#presenceOf(r),
    };
  }

  /** Messages sent but not yet echoed by the server, oldest first. */
  pending(room) {
    return this.#outbox.filter((e) => room === undefined || e.room === room)
      .map(({ room: r, cid, text }) => ({ room: r, cid, text }));
  }

  /** When the next reconnect attempt is due (clock time), or 0 when none is scheduled. */
  get retryAt() { return this.#retryTimer ? this.#retryAt : 0; }

  // -- connection --------------------------------------------------------------------------------

  /**
   * Connects to `url` (e.g. "ws://host:8080/ws") as `name` (omit it for a guest name). Resolves
   * with {user, session} at the first `welcome`; rejects if the server refuses for good (for
   * example 4001 invalid_name). Reconnects on its own after that.
   */
  connect(url, name) {
    if (this.#baseUrl) throw new Error("already connected; call close() first");
    const u = new URL(url);
    if (name) u.searchParams.set("name", name);
    this.#baseUrl = u;
    const ready = new Promise((resolve, reject) => this.#welcomeWaiters.push({ resolve, reject }));
    this.#setState("connecting");
    this.#open();
    return ready;
  }

  /** Closes for good: no reconnect. Unsent messages are dropped (their promises reject). */
  close() {
    this.#finish("client", 1000);
  }

  /** Skips the wait of a scheduled reconnect (e.g. when the browser says it is online again). */
  reconnectNow() {
    if (!this.#retryTimer) return;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#reconnect();
  }

  #open() {
    const serial = ++this.#serial;
    if (!this.#getToken) {
      this.#openSocket(serial, null);
      return;
    }
    // A fresh token for every attempt: the last one may be what the server refused or let expire.
    Promise.resolve().then(() => this.#getToken()).then((token) => {
      if (serial !== this.#serial || !this.#baseUrl) return; // closed or superseded meanwhile
      if (typeof token !== "string" || token === "") throw new Error("getToken gave no token");
      this.#openSocket(serial, token);
    }).catch((err) => {
      if (serial !== this.#serial || !this.#baseUrl) return;
      this.emit("error", { code: "token_unavailable", message: String(err?.message ?? err) });
      this.#scheduleReconnect();
    });
  }

  #openSocket(serial, token) {
    const byFrame = token !== null && (this.#tokenVia === "frame" || this.#tokenByFrame);
    let ws;
    try {
      // Tokens never go in the URL, where proxies and logs would keep them.
      ws = token === null || byFrame
        ? new this.#WebSocket(this.#baseUrl.toString())
        : new this.#WebSocket(this.#baseUrl.toString(), [SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX + token]);
    } catch (err) {
      // A malformed URL or a blocked port throws synchronously; treat it as a failed attempt. So
      // does a token with characters a subprotocol may not hold: the next attempt uses a frame.
      if (token !== null && !byFrame) this.#tokenByFrame = true;
      this.emit("error", { code: "connect_failed", message: String(err?.message ?? err) });
      this.#scheduleReconnect();
      return;
    }
    this.#socket = ws;
    this.#token = token;
    let opened = false;
    const mine = () => this.#socket === ws && this.#serial === serial;
    ws.onmessage = (ev) => { if (mine()) this.#onFrame(ev.data); };
    ws.onclose = (ev) => {
      if (!mine()) return;
      // A browser reports a handshake refused with HTTP 401 (a bad token) as a plain failed
      // connection (1006), which looks like a network problem and would be retried forever. Sent
      // as a frame, the same token is refused with a readable error and 4401, which is counted.
      if (!opened && token !== null && !byFrame) this.#tokenByFrame = true;
      this.#onClose(ev.code, ev.reason);
    };
    // Errors are always followed by close; nothing to do here but keep the default from logging.
    ws.onerror = () => {};
    ws.onopen = () => {
      opened = true;
      if (!mine() || !byFrame) return;
      // Before anything else: the server accepts no other frame until it has a token. This frame
      // passes the rate gate's queue, which only opens after welcome.
      try {
        ws.send(JSON.stringify({ type: "auth", token, ref: this.#ref() }));
      } catch { /* closing already; onclose follows */ }
    };
  }

  #onClose(code, reason) {
    this.#detach(false);
    if (code === 4403) {
      const ban = this.#serverBan ?? {};
      this.emit("banned", { until: ban.until, message: ban.message ?? reason });
    }
    this.#serverBan = null;
    const final = FINAL_CLOSE_CODES.get(code);
    if (final) {
      this.#finish(final, code, reason);
      return;
    }
    if (code === 4401) {
      // No token, or one the server refuses: without getToken there is nothing else to try, and
      // a token refused again and again would otherwise loop forever.
      this.#authFailures++;
      const giveUp = !this.#getToken || this.#authFailures >= this.#opts.maxAuthFailures;
      this.emit("token", { state: "refused", failures: this.#authFailures, final: giveUp });
      if (giveUp) {
        this.emit("error", {
          code: "unauthenticated",
          message: this.#getToken ? `the server refused the token ${this.#authFailures} times` : "the server requires a token",
          ref: null,
        });
        this.#finish("unauthenticated", code, reason);
        return;
      }
    }
    if (code === 4408) this.emit("token", { state: "reauthenticate" });
    if (this.#openedAt && this.#clock.now() - this.#openedAt >= this.#opts.stableAfterMs) {
      this.#attempt = 0;
    }
    this.#openedAt = 0;
    this.#scheduleReconnect(code, reason);
  }

  /** Forgets the current socket and everything that was in flight on it. */
  #detach(closeIt, code = 1000, reason = "") {
    const ws = this.#socket;
    this.#socket = null;
    this.#serial++;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
      if (closeIt) {
        try { ws.close(code, reason); } catch { /* already closing */ }
      }
    }
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
    this.#clock.clearTimeout(this.#pumpTimer);
    this.#pumpTimer = null;
    this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#refreshing = null;
    this.#expired = false;
    this.#wire = [];
    for (const r of this.#rooms.values()) r.joined = false;
    // Replies to these refs can never arrive now. Joins are not lost: they are repeated on the
    // next connection and their waiters stay with the room.
    for (const [ref, req] of this.#requests) {
      if (req.kind !== "join" && req.kind !== "send") req.reject(new ParleyError("disconnected", "connection lost"));
      this.#requests.delete(ref);
    }
  }

  #scheduleReconnect(code, reason) {
    const delay = drainDelay(code, reason, this.#opts) ?? backoffDelay(this.#attempt, this.#random, this.#opts);
    this.#attempt++;
    this.#retryAt = this.#clock.now() + delay;
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = null;
      this.#reconnect();
    }, delay);
    this.#setState("offline", { code, reason, attempt: this.#attempt, retryInMs: delay });
  }

  #reconnect() {
    this.#setState("reconnecting", { attempt: this.#attempt });
    this.#open();
  }

  #finish(reason, code, message) {
    if (this.#state === "closed") return;
    this.#detach(true, 1000, "bye");
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const err = new ParleyError(reason, `connection closed: ${reason}${message ? ` (${message})` : ""}`);
    for (const w of this.#welcomeWaiters.splice(0)) w.reject(err);
    for (const r of this.#rooms.values()) for (const w of r.waiters.splice(0)) w.reject(err);
    this.#dropOutbox(() => true, err);
    // Closed means done: forget rooms and the URL so that connect() starts afresh (for example
    // with another name after invalid_name).
    this.#rooms.clear();
    this.#baseUrl = null;
    this.#attempt = 0;
    this.#authFailures = 0;
    this.#tokenByFrame = false;
    this.#token = null;
    this.#setState("closed", { reason, code });
  }

  #setState(state, extra = {}) {
    this.#state = state;
    this.emit("status", { state, ...extra });
  }

  #armHeartbeat() {
    this.#clock.clearTimeout(this.#heartbeatTimer);
    const serial = this.#serial;
    this.#heartbeatTimer = this.#clock.setTimeout(() => {
      if (serial !== this.#serial) return;
      // While the token is expired a ping would only earn an error; the refresh (or the server's
      // 4408 when none comes) says enough about the connection.
      if (this.#expired) {
        this.#armHeartbeat();
        return;
      }
      const ref = this.#ref();
      let answered = false;
      this.#requests.set(ref, {
        kind: "ping",
        resolve: () => { answered = true; this.#armHeartbeat(); },
        // An error is an answer too: the connection is alive. Not so the rejection of a lost
        // connection (the serial moved on), which must not start a heartbeat with no socket.
        reject: () => {
          if (serial !== this.#serial) return;
          answered = true;
          this.#armHeartbeat();
        },
      });
      this.#transmit({ type: "ping", ref });
      this.#heartbeatTimer = this.#clock.setTimeout(() => {
        if (answered || serial !== this.#serial) return;
        // No pong: the connection is half-open (e.g. a laptop woke up on another network).
        // Waiting for the browser to notice can take minutes; drop it and reconnect now.
        this.#detach(true, 4000, "heartbeat timeout");
        this.#openedAt = 0;
        this.#scheduleReconnect(1006, "heartbeat timeout");
      }, this.#opts.heartbeatTimeoutMs);
    }, this.#opts.heartbeatMs);
  }

  // -- the token's life: refresh before it expires, and after the server says it has -------------

  /**
   * Schedules a refresh refreshBeforeMs before the token expires. `previous` is the expiry of the
   * token before a refresh: a refresh that did not move it (getToken gave an equally old token)
   * schedules none, or it would repeat at once, forever; the server's token_expired still comes.
   */
  #scheduleRefresh(previous) {
    this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (!this.#getToken || this.expiresAt === null) return;
    if (previous !== null && this.expiresAt <= previous) return;
    const serial = this.#serial;
    const delay = Math.max(0, this.expiresAt - this.#opts.refreshBeforeMs - this.#clock.now());
    this.#refreshTimer = this.#clock.setTimeout(() => {
      this.#refreshTimer = null;
      if (serial === this.#serial) this.#refresh("scheduled");
    }, delay);
  }

  /**
   * Asks getToken for a token and hands it to the server with `refresh`; `reason` says why
   * (scheduled, expired, manual). One at a time: the next is started only after this one ended.
   */
  #refresh(reason) {
    if (!this.#getToken || this.#refreshing || this.#state !== "open") return false;
    const run = {};
    this.#refreshing = run;
    const serial = this.#serial;
    const current = () => this.#refreshing === run && serial === this.#serial;
    const fail = (code, message) => {
      if (!current()) return;
      this.#refreshing = null;
      this.emit("token", { state: "refresh_failed", code, message });
    };
    this.emit("token", { state: "refreshing", reason });
    Promise.resolve().then(() => this.#getToken()).then((token) => {
      if (!current()) return; // the connection is gone; the reconnect asks for a token itself
      if (typeof token !== "string" || token === "") {
        fail("token_unavailable", "getToken gave no token");
        return;
      }
      if (token === this.#token) {
        // The server would answer the token it already has with the same expiry (or refuse it,
        // expired): nothing gained, and an error counted toward abuse.
        fail("same_token", "getToken gave the token in use");
        return;
      }
      const previous = this.expiresAt;
      const sent = this.#ask({ type: "refresh", token }, (reply) => {
        if (!current()) return;
        this.#refreshing = null;
        this.#token = token;
        if (Array.isArray(reply.roles)) this.roles = [...reply.roles];
        if (Number.isFinite(reply.expires_at)) this.expiresAt = reply.expires_at;
        const wasExpired = this.#expired;
        this.#expired = false;
        this.emit("token", { state: "refreshed", roles: [...this.roles], expiresAt: this.expiresAt });
        this.#scheduleRefresh(previous);
        if (wasExpired) this.#resume();
      }, (err) => fail(err.code, err.message));
      if (!sent) fail("offline", "not connected");
    }, (err) => fail("token_unavailable", String(err?.message ?? err)));
    return true;
  }

  /** The server refused a command, or told us unasked, because the token expired. */
  #onTokenExpired(req, err) {
    if (!this.#expired) {
      this.#expired = true;
      this.emit("token", { state: "expired" });
    }
    if (req?.kind === "send") {
      // Kept in the outbox, with its cid: it goes out again after the refresh.
      req.entry.sentOn = -1;
    } else if (req?.kind === "join") {
      const r = this.#rooms.get(req.room);
      if (r) r.joining = false; // joined again after the refresh; its waiters keep waiting
    } else if (req) {
      req.reject(err);
    }
    this.#refresh("expired");
  }

  /** After a refresh that ended the expired state: the joins and sends it held back. */
  #resume() {
    for (const [name, r] of this.#rooms) {
      if (!r.joined && !r.joining) this.#sendJoin(name, r);
      else this.#flushOutbox(name);
    }
  }

  /**
   * Refreshes the token now (getToken is asked for it), for example after the user pasted a new
   * one. Returns false when there is nothing to refresh: no getToken, not connected, or a refresh
   * already running. The outcome comes as a `token` event.
   */
  refreshToken() {
    return this.#refresh("manual");
  }

  // -- sending frames ----------------------------------------------------------------------------

  #ref() { return this.#nextRef++; }

  /**
   * Queues a frame for the current socket; returns false when there is no open connection, or
   * when the token has expired: until a refresh the server refuses every other command, and each
   * refusal would count toward its abuse limit.
   */
  #transmit(frame) {
    if (this.#state !== "open" || !this.#socket) return false;
    if (this.#expired && frame.type !== "refresh") return false;
    this.#wire.push(JSON.stringify(frame));
    this.#pump();
    return true;
  }

  #pump() {
    this.#pumpTimer = null;
    while (this.#wire.length && this.#socket?.readyState === OPEN) {
      if (!this.#gate.trySpend()) {
        this.#pumpTimer = this.#clock.setTimeout(() => this.#pump(), this.#gate.wait());
        return;
      }
      this.#socket.send(this.#wire.shift());
    }
  }

  // -- commands ----------------------------------------------------------------------------------

  /**
   * Joins `room` (or just waits for it, if already joining). Resolves with the `joined` detail.
   * The room is remembered: it is rejoined after every reconnect until leave().
   */
  join(room) {
    // The server would answer invalid_name, and every error counts toward its abuse limit.
    if (!isValidRoomName(room)) return Promise.reject(new ParleyError("invalid_name", `invalid room name: ${room}`));
    let r = this.#rooms.get(room);
    if (r?.joined) return Promise.resolve(r.lastJoined);
    if (!r) {
      r = this.#roomRecord();
      this.#rooms.set(room, r);
    }
    const done = new Promise((resolve, reject) => r.waiters.push({ resolve, reject }));
    if (!r.joining) this.#sendJoin(room, r);
    return done;
  }

  #roomRecord() {
    return {
      joined: false, joining: false, epoch: undefined, lastId: 0, oldestId: 0, hasOlder: false,
      seen: new Set(), waiters: [], lastJoined: null,
      tombstones: new Set(), // ids known deleted, so that each is announced once
      mode: "users", count: 0, members: new Set(),
      // Bumped whenever the list starts over, so that a page asked for the old list is not
      // added to the new one.
      listVersion: 0,
    };
  }

  #sendJoin(room, r) {
    const frame = { type: "join", room, ref: this.#ref() };
    // `since` only means something together with the epoch it was seen in.
    if (r.epoch !== undefined) {
      frame.since = r.lastId;
      frame.epoch = r.epoch;
    }
    if (this.#transmit(frame)) {
      r.joining = true;
      this.#requests.set(frame.ref, { kind: "join", room });
    }
  }

  /** Leaves `room` and forgets it; its unsent messages are dropped. */
  async leave(room) {
    const r = this.#rooms.get(room);
    if (!r) return;
    this.#rooms.delete(room);
    const err = new ParleyError("left", `left ${room}`);
    for (const w of r.waiters.splice(0)) w.reject(err);
    this.#dropOutbox((e) => e.room === room, err);
    // A join still in flight will complete on the server first (frames are handled in order), so
    // it needs the leave as much as a completed one.
    if (!r.joined && !r.joining) return;
    // Not waiting for the reply would race a quick re-join of the same room.
    await this.#request({ type: "leave", room }).catch(() => {});
  }

  /**
   * Sends `text` to `room`. Resolves with the message once the server has broadcast it (its echo,
   * matched by cid). While offline, the message waits and goes out after the reconnect.
   */
  send(room, text) {
    if (typeof text !== "string" || text.length === 0) {
      return Promise.reject(new ParleyError("bad_field", "text must be a non-empty string"));
    }
    if (utf8Length(text) > this.#opts.maxTextBytes) {
      return Promise.reject(new ParleyError("text_too_long", `text is longer than ${this.#opts.maxTextBytes} bytes`));
    }
    if (!this.#rooms.has(room)) {
      return Promise.reject(new ParleyError("not_member", `join ${room} first`));
    }
    // The server resets the typing interval on a message; so do we, or the indicator would stay
    // hidden for the first keystrokes of the next message.
    this.#lastTyping.delete(room);
    const cid = `${this.#cidPrefix}-${++this.#cidCounter}`;
    const probe = JSON.stringify({ type: "send", room, text, cid, ref: 2 ** 53 });
    if (utf8Length(probe) > this.#opts.maxFrameBytes) {
      // The server would close the connection with 1009 and we must not send it again.
      return Promise.reject(new ParleyError("frame_too_big", "message is too large for one frame"));
    }
    return new Promise((resolve, reject) => {
      const entry = { room, text, cid, resolve, reject, sentOn: -1, retryTimer: null };
      this.#outbox.push(entry);
      this.emit("outbox", { room, cid, text, state: "queued" });
      this.#flushOutbox(room);
    });
  }

  /** Transmits every waiting message of `room` that has not gone out on the current socket. */
  #flushOutbox(room) {
    const r = this.#rooms.get(room);
    if (!r?.joined) return;
    for (const e of this.#outbox) {
      if (e.room !== room || e.sentOn === this.#serial || e.retryTimer) continue;
      const ref = this.#ref();
      if (!this.#transmit({ type: "send", room, text: e.text, cid: e.cid, ref })) return;
      e.sentOn = this.#serial;
      this.#requests.set(ref, { kind: "send", room, entry: e });
      this.emit("outbox", { room, cid: e.cid, text: e.text, state: "sent" });
    }
  }

  #dropOutbox(predicate, err) {
    this.#outbox = this.#outbox.filter((e) => {
      if (!predicate(e)) return true;
      this.#clock.clearTimeout(e.retryTimer);
      e.reject(err);
      const detail = { room: e.room, cid: e.cid, text: e.text, state: "failed", reason: err.code };
      if (err.until !== undefined) detail.until = err.until; // muted until then
      this.emit("outbox", detail);
      return false;
    });
  }

  /** Raw `history` request: messages with id < before (newest when omitted), oldest first. */
  history(room, before, limit) {
    const frame = { type: "history", room };
    if (before !== undefined) frame.before = before;
    if (limit !== undefined) frame.limit = limit;
    return this.#request(frame).then((reply) => ({
      room, more: reply.more, messages: reply.messages.map((m) => this.#toMessage(m)),
    }));
  }

  /**
   * The page of messages older than the oldest one this client has for `room`. Returns only
   * messages not delivered before, oldest first, and whether even older ones exist.
   */
  async loadOlder(room, limit = 50) {
    const r = this.#rooms.get(room);
    if (!r) throw new ParleyError("not_member", `join ${room} first`);
    // With an empty history on join (history_on_join=0) page below the newest id instead.
    const before = r.oldestId || (r.lastId ? r.lastId + 1 : 0);
    if (before <= 1) return { room, messages: [], more: false };
    const epoch = r.epoch;
    const page = await this.history(room, before, limit);
    if (r.epoch !== epoch) return { room, messages: [], more: r.hasOlder }; // reset meanwhile
    const fresh = page.messages.filter((m) => this.#rememberOrBury(r, m));
    r.hasOlder = page.more;
    return { room, messages: fresh, more: page.more };
  }

  /**
   * One page of the users present in `room`, in name order, starting after the name `after`.
   * Resolves with {room, members, count, more}. The client keeps the member list by itself (see
   * the `members` event); this is for callers that want a page of their own.
   */
  async who(room, { after, limit } = {}) {
    const frame = { type: "who", room };
    if (after !== undefined) frame.after = after;
    if (limit !== undefined) frame.limit = limit;
    const reply = await this.#request(frame);
    return { room, members: reply.members, count: reply.count, more: reply.more };
  }

  /**
   * Whether `users` (1 to 100 names) are online anywhere on this server. Resolves with one
   * {user, online, sessions} per name, in the order asked; sessions is the number of open
   * connections, and online stays true for the server's grace period after the last one closed.
   */
  async status(users) {
    // Refused locally for the same reason as an invalid room name: errors count toward abuse.
    if (!Array.isArray(users) || users.length === 0 || users.length > MAX_STATUS_USERS) {
      throw new ParleyError("bad_field", `status takes 1 to ${MAX_STATUS_USERS} user names`);
    }
    const invalid = users.find((u) => !isValidUserName(u));
    if (invalid !== undefined) throw new ParleyError("invalid_name", `invalid user name: ${invalid}`);
    const reply = await this.#request({ type: "status", users: [...users] });
    return reply.users.map(({ user, online, sessions }) => ({ user, online, sessions }));
  }

  /** Tells the room this user is typing; throttled, so call it on every keystroke. */
  typing(room) {
    const r = this.#rooms.get(room);
    if (!r?.joined) return false;
    const now = this.#clock.now();
    const last = this.#lastTyping.get(room);
    if (last !== undefined && now - last < this.#opts.typingThrottleMs) return false;
    // A typing indicator is worth nothing late: never queue it behind the rate gate.
    if (this.#wire.length) return false;
    this.#lastTyping.set(room, now);
    return this.#transmit({ type: "typing", room });
  }

  /** Measures the round trip to the server in milliseconds. */
  async ping() {
    const start = this.#clock.now();
    await this.#request({ type: "ping" });
    return this.#clock.now() - start;
  }

  // -- moderation (moderators in rooms they may moderate; server-wide ban and unban: admins) ------

  /** Removes `user` from `room`; they may join again. Resolves with the server's `moderated`. */
  kick(room, user, reason) {
    return this.#moderate({ type: "kick", room, user }, { reason });
  }

  /**
   * Bans `user` from `room`, or from the whole server when `room` is null (admins only), for
   * `duration` seconds or, without one, for good. Resolves with the server's `moderated`.
   */
  ban(room, user, { duration, reason } = {}) {
    return this.#moderate({ type: "ban", room, user }, { duration, reason });
  }

  /** Lifts a ban in `room`, or server-wide when `room` is null. */
  unban(room, user) {
    return this.#moderate({ type: "unban", room, user });
  }

  /** Refuses `user`'s messages in `room` for `duration` seconds or, without one, for good. */
  mute(room, user, { duration, reason } = {}) {
    return this.#moderate({ type: "mute", room, user }, { duration, reason });
  }

  unmute(room, user) {
    return this.#moderate({ type: "unmute", room, user });
  }

  /** Turns message `id` of `room` into a tombstone for everyone. */
  deleteMessage(room, id, reason) {
    if (!Number.isInteger(id) || id < 1) return Promise.reject(new ParleyError("bad_field", "a message id is a whole number from 1"));
    return this.#moderate({ type: "delete", room, id }, { reason });
  }

  /**
   * Sends a moderation command and resolves with {action, room, user?, id?} once the server says
   * it is in force (`moderated`), or rejects with the server's error (forbidden, not_found, ...).
   * What the server would refuse as malformed is refused here: each error counts toward abuse.
   */
  async #moderate(frame, { duration, reason } = {}) {
    const serverWide = frame.room === null || frame.room === undefined;
    if (serverWide) {
      if (frame.type !== "ban" && frame.type !== "unban") throw new ParleyError("bad_field", `${frame.type} needs a room`);
      delete frame.room;
    } else if (!isValidRoomName(frame.room)) {
      throw new ParleyError("invalid_name", `invalid room name: ${frame.room}`);
    }
    if (frame.type !== "delete" && (typeof frame.user !== "string" || frame.user === "")) {
      throw new ParleyError("bad_field", "name the user");
    }
    const seconds = checkDuration(duration);
    if (seconds !== undefined) frame.duration = seconds;
    if (typeof reason === "string" && reason.trim() !== "") frame.reason = reason.trim();
    const reply = await this.#request(frame);
    const result = { action: reply.action ?? (frame.type === "delete" ? "delete" : frame.type), room: reply.room ?? null };
    if (reply.user !== undefined) result.user = reply.user;
    if (reply.id !== undefined) result.id = reply.id;
    return result;
  }

  #request(frame) {
    return new Promise((resolve, reject) => {
      if (this.#ask(frame, resolve, reject)) return;
      reject(this.#expired && this.#socket
        ? new ParleyError("token_expired", "the sign-in token expired; waiting for a new one")
        : new ParleyError("offline", "not connected"));
    });
  }

  /**
   * Sends a command whose reply (or error) is handed to the callbacks while its frame is being
   * handled, before any later frame: what the reply says is only true in that place of the
   * stream. Returns false when there is no connection to send it on.
   */
  #ask(frame, onReply, onError) {
    const ref = this.#ref();
    if (!this.#transmit({ ...frame, ref })) return false;
    this.#requests.set(ref, { kind: frame.type, room: frame.room, resolve: onReply, reject: onError });
    return true;
  }

  // -- receiving frames --------------------------------------------------------------------------

  #onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.emit("error", { code: "bad_frame", message: "the server sent something that is not JSON" });
      return;
    }
    switch (frame.type) {
      case "welcome": return this.#onWelcome(frame);
      case "joined": return this.#onJoined(frame);
      case "message": return this.#onMessage(frame);
      case "presence_diff": return this.#onPresenceDiff(frame);
      case "presence_state": return this.#onPresenceState(frame);
      case "typing": return this.#rooms.has(frame.room) && this.emit("typing", { room: frame.room, user: frame.user });
      case "left": return this.#onLeft(frame);
      case "error": return this.#onError(frame);
      case "moderation": return this.#onModeration(frame);
      case "notice": return this.#rooms.has(frame.room) && this.emit("notice", { room: frame.room, text: frame.text, ts: frame.ts });
      case "refreshed":
      case "moderated":
      case "history":
      case "who":
      case "status":
      case "pong": {
        const req = this.#requests.get(frame.ref);
        if (req) {
          this.#requests.delete(frame.ref);
          req.resolve(frame);
        }
        return;
      }
      default:
        return; // newer server, unknown broadcast: ignore, as the protocol asks of both sides
    }
  }

  #onWelcome(frame) {
    this.user = frame.user;
    this.session = frame.session;
    this.name = typeof frame.name === "string" && frame.name !== "" ? frame.name : null;
    this.roles = Array.isArray(frame.roles) ? [...frame.roles] : [];
    this.expiresAt = Number.isFinite(frame.expires_at) ? frame.expires_at : null;
    this.#authFailures = 0;
    this.#tokenByFrame = false;
    if (this.expiresAt === null) {
      // Open mode: keep the same name on reconnect, even a generated guest name: presence and
      // cid dedup are per user name. With a token the token names the user, and a user id
      // need not be a valid ?name=.
      this.#baseUrl.searchParams.set("name", frame.user);
    }
    this.#openedAt = this.#clock.now();
    const who = { user: frame.user, session: frame.session };
    if (this.name !== null) who.name = this.name;
    if (this.expiresAt !== null) {
      who.roles = [...this.roles];
      who.expiresAt = this.expiresAt;
    }
    this.#setState("open", { user: frame.user, session: frame.session });
    this.emit("welcome", who);
    for (const w of this.#welcomeWaiters.splice(0)) w.resolve(who);
    this.#scheduleRefresh(null);
    for (const [name, r] of this.#rooms) {
      r.joining = false;
      this.#sendJoin(name, r);
    }
    this.#armHeartbeat();
  }

  #onJoined(frame) {
    const room = frame.room;
    if (frame.ref !== undefined) this.#requests.delete(frame.ref);
    const r = this.#rooms.get(room);
    if (!r) return; // left meanwhile
    const rejoin = r.epoch !== undefined;
    const previousEpoch = r.epoch;
    const epochChanged = rejoin && previousEpoch !== frame.epoch;
    if (epochChanged) {
      // A new epoch restarts ids: what we saw before cannot be compared with what comes now.
      r.seen.clear();
      r.tombstones.clear();
      r.lastId = 0;
      r.oldestId = 0;
    }
    r.epoch = frame.epoch;
    r.joined = true;
    r.joining = false;
    const history = frame.history.map((m) => this.#toMessage(m)).filter((m) => this.#rememberOrBury(r, m));
    if (frame.last_id > r.lastId) r.lastId = frame.last_id;
    if (!rejoin || epochChanged || frame.recovered === false) {
      r.hasOlder = r.oldestId > 1;
    }
    const detail = {
      room, epoch: frame.epoch, lastId: frame.last_id, history,
      recovered: frame.recovered, rejoin, reset: epochChanged, hasOlder: r.hasOlder,
    };
    r.lastJoined = detail;
    if (frame.recovered === false) {
      this.emit("gap", { room, epoch: frame.epoch, previousEpoch, epochChanged });
    }
    this.emit("joined", detail);
    this.#startMemberList(room, r, frame);
    for (const w of r.waiters.splice(0)) w.resolve(detail);
    this.#flushOutbox(room);
  }

  /**
   * Marks a message as delivered; returns false if it was delivered before. Also settles our own
   * unacknowledged send with the same cid, wherever the echo came from (live, replayed on rejoin,
   * or a history page).
   */
  #remember(r, m) {
    if (m.own && m.cid) this.#acknowledge(m);
    if (r.seen.has(m.id)) return false;
    r.seen.add(m.id);
    if (r.oldestId === 0 || m.id < r.oldestId) r.oldestId = m.id;
    return true;
  }

  #acknowledge(m) {
    const i = this.#outbox.findIndex((e) => e.cid === m.cid && e.room === m.room);
    if (i < 0) return;
    const [e] = this.#outbox.splice(i, 1);
    this.#clock.clearTimeout(e.retryTimer);
    e.resolve(m);
    this.emit("outbox", { room: e.room, cid: e.cid, text: e.text, state: "acked", id: m.id });
  }

  #toMessage(m) {
    const msg = { room: m.room, id: m.id, from: m.from, text: m.text, ts: m.ts, own: m.from === this.user };
    if (m.cid) msg.cid = m.cid;
    if (typeof m.name === "string" && m.name !== "") msg.name = m.name;
    if (m.deleted === true) {
      msg.deleted = true;
      msg.text = "";
    }
    return msg;
  }

  /**
   * Like #remember, and a tombstone of a message delivered before (the moderator deleted it while
   * we were away, and the rejoin replays it) becomes a `deleted` event instead of nothing.
   */
  #rememberOrBury(r, m) {
    if (this.#remember(r, m)) {
      if (m.deleted) r.tombstones.add(m.id);
      return true;
    }
    if (m.deleted) this.#bury(m.room, r, m.id, {});
    return false;
  }

  /** Emits `deleted` once per message. */
  #bury(room, r, id, { by, reason }) {
    if (r.tombstones.has(id)) return;
    r.tombstones.add(id);
    // A message never delivered needs no tombstone now: if it is ever fetched, it comes as one.
    if (!r.seen.has(id)) return;
    const detail = { room, id };
    if (by !== undefined) detail.by = by;
    if (reason !== undefined && reason !== "") detail.reason = reason;
    this.emit("deleted", detail);
  }

  #onMessage(frame) {
    const r = this.#rooms.get(frame.room);
    if (!r) return;
    const m = this.#toMessage(frame);
    if (!this.#rememberOrBury(r, m)) return;
    if (m.id > r.lastId) r.lastId = m.id;
    this.emit("message", m);
  }

  #onModeration(frame) {
    const room = typeof frame.room === "string" ? frame.room : null;
    const r = room === null ? undefined : this.#rooms.get(room);
    // A room we left may still have had a broadcast on its way.
    if (room !== null && !r) return;
    const detail = { action: frame.action, room, by: frame.by };
    for (const key of ["user", "id", "until", "reason"]) if (frame[key] !== undefined) detail[key] = frame[key];
    this.emit("moderation", detail);
    if (frame.action === "delete" && r && Number.isInteger(frame.id)) {
      this.#bury(room, r, frame.id, { by: frame.by, reason: frame.reason });
    }
  }

  // -- presence (docs/protocol.md, "Presence") ----------------------------------------------------

  #presenceOf(r) {
    return { members: [...r.members].sort(), count: r.count, mode: r.mode };
  }

  #emitMembers(room, r) {
    this.emit("members", { room, ...this.#presenceOf(r) });
  }

  /** `joined` and `presence_state`: replace count, mode and names, then fetch the other pages. */
  #startMemberList(room, r, frame) {
    r.mode = frame.presence === "counts" ? "counts" : "users";
    const firstPage = r.mode === "users" && Array.isArray(frame.members) ? frame.members : [];
    r.members = new Set(firstPage);
    r.count = Number.isInteger(frame.count) ? frame.count : r.members.size;
    r.listVersion++;
    this.#emitMembers(room, r);
    if (r.mode === "users" && r.count > r.members.size) this.#fetchMemberPage(room, r, firstPage.at(-1));
  }

  /**
   * Adds the page of names after `after` and goes on until the server says there is no more.
   * The cursor is the last name of the previous page, not the last name held: a diff may have
   * added a name further down the alphabet, and paging after it would skip everyone between.
   */
  #fetchMemberPage(room, r, after) {
    const version = r.listVersion;
    const current = () => this.#rooms.get(room) === r && r.listVersion === version;
    const frame = { type: "who", room };
    if (after !== undefined) frame.after = after;
    this.#ask(frame, (page) => {
      if (!current()) return;
      const names = Array.isArray(page.members) ? page.members : [];
      for (const name of names) r.members.add(name);
      // The room writes `who` in order with its diffs, so this count is as fresh as any.
      if (Number.isInteger(page.count)) r.count = page.count;
      this.#emitMembers(room, r);
      // An empty page that claims more would have us ask for the same page forever.
      if (page.more === true && names.length) this.#fetchMemberPage(room, r, names.at(-1));
    }, (err) => {
      // A lost connection needs nothing: the rejoin's `joined` starts the list over.
      if (!RETRYABLE_ERRORS.has(err.code)) return;
      const serial = this.#serial;
      this.#clock.setTimeout(() => {
        if (serial === this.#serial && current()) this.#fetchMemberPage(room, r, after);
      }, this.#opts.retryAfterErrorMs);
    });
  }

  #onPresenceState(frame) {
    const r = this.#rooms.get(frame.room);
    if (r) this.#startMemberList(frame.room, r, frame);
  }

  /** Adds joins, removes leaves, sets count. Names the list already agrees with change nothing. */
  #onPresenceDiff(frame) {
    const r = this.#rooms.get(frame.room);
    if (!r) return;
    const joins = [];
    const leaves = [];
    // A counts-mode list holds no names; a users-mode diff reaching it means a presence_state
    // was dropped, and the server sends a fresh one as soon as it can.
    if (r.mode === "users") {
      for (const name of frame.joins ?? []) {
        if (!r.members.has(name)) {
          r.members.add(name);
          joins.push(name);
        }
      }
      for (const name of frame.leaves ?? []) {
        if (r.members.delete(name)) leaves.push(name);
      }
    }
    const countChanged = Number.isInteger(frame.count) && frame.count !== r.count;
    if (countChanged) r.count = frame.count;
    if (joins.length || leaves.length) this.emit("presence", { room: frame.room, joins: joins.sort(), leaves: leaves.sort() });
    if (joins.length || leaves.length || countChanged) this.#emitMembers(frame.room, r);
  }

  #onLeft(frame) {
    const req = frame.ref !== undefined ? this.#requests.get(frame.ref) : undefined;
    if (req) {
      this.#requests.delete(frame.ref);
      req.resolve(frame);
    }
    if (REMOVED_REASONS.has(frame.reason) && this.#rooms.has(frame.room)) {
      // The server gave up on the room, or a moderator removed us; either way we are no longer
      // in it. Forget it so that a reconnect does not rejoin it (in a loop, or against the
      // moderator's will); the user may join again, which a ban refuses.
      const r = this.#rooms.get(frame.room);
      this.#rooms.delete(frame.room);
      this.#lastTyping.delete(frame.room);
      const err = new ParleyError(frame.reason,
        frame.reason === "room_failed" ? `room ${frame.room} failed` : `${frame.reason} from ${frame.room}`);
      for (const w of r.waiters.splice(0)) w.reject(err);
      this.#dropOutbox((e) => e.room === frame.room, err);
    }
    this.emit("left", { room: frame.room, reason: frame.reason });
  }

  #onError(frame) {
    const req = frame.ref === null || frame.ref === undefined ? undefined : this.#requests.get(frame.ref);
    if (req) this.#requests.delete(frame.ref);
    const detail = { code: frame.code, message: frame.message, ref: frame.ref ?? null, room: req?.room };
    if (frame.until !== undefined) detail.until = frame.until;
    const err = new ParleyError(frame.code, frame.message, { until: frame.until });
    if (frame.code === "token_expired") {
      this.#onTokenExpired(req, err);
      return;
    }
    if (!req) {
      // Not about a command: a server-wide ban, announced just before the 4403 close.
      if (frame.code === "banned") this.#serverBan = { until: frame.until, message: frame.message };
      this.emit("error", detail);
      return;
    }
    if (req.kind === "refresh") {
      req.reject(err); // reported as a `token` event by #refresh
      return;
    }
    if (req.kind === "send") {
      const e = req.entry;
      if (!this.#outbox.includes(e)) return;
      if (RETRYABLE_ERRORS.has(frame.code)) {
        // Same cid on purpose: if the first attempt did land, the server drops the repeat.
        e.sentOn = -1;
        e.retryTimer = this.#clock.setTimeout(() => {
          e.retryTimer = null;
          this.#flushOutbox(e.room);
        }, this.#opts.retryAfterErrorMs);
        return;
      }
      this.#dropOutbox((x) => x === e, err);
      this.emit("error", detail);
      return;
    }
    if (req.kind === "join") {
      const r = this.#rooms.get(req.room);
      if (!r) return;
      r.joining = false;
      if (RETRYABLE_ERRORS.has(frame.code)) {
        const serial = this.#serial;
        this.#clock.setTimeout(() => {
          if (serial === this.#serial && this.#rooms.get(req.room) === r && !r.joined && !r.joining) {
            this.#sendJoin(req.room, r);
          }
        }, this.#opts.retryAfterErrorMs);
        return;
      }
      this.#rooms.delete(req.room);
      for (const w of r.waiters.splice(0)) w.reject(err);
      this.#dropOutbox((e) => e.room === req.room, err);
      this.emit("error", detail);
      return;
    }
    req.reject(err);
    this.emit("error", detail);
  }
}
