// Test doubles for the protocol client: a clock whose time only moves when a test says so, a
// scripted random source, and a WebSocket whose "server side" the test plays by hand.

/** Timers that fire only inside advance(), in due-time order, with `now()` moving along. */
export class FakeClock {
  #now = 1_000_000;
  #timers = new Map();
  #nextId = 1;

  now = () => this.#now;

  setTimeout = (fn, ms = 0) => {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn, id });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers.delete(id);
  };

  /** Moves time forward by `ms`, running every timer that comes due (also ones set meanwhile). */
  advance(ms) {
    const end = this.#now + ms;
    for (;;) {
      let next = null;
      for (const t of this.#timers.values()) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }

  get pendingTimers() {
    return this.#timers.size;
  }
}

/** random() returning the given values in turn, then `fallback` forever. */
export function scriptedRandom(values = [], fallback = 0.5) {
  const queue = [...values];
  return () => (queue.length ? queue.shift() : fallback);
}

/**
 * A WebSocket stand-in. Every instance lands in `FakeWebSocket.instances`; tests open it, feed it
 * server frames and read what the client sent (parsed) from `sent`.
 */
export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static instances = [];

  constructor(url, protocols) {
    this.url = url;
    // What the client offered as subprotocols (the constructor's second argument), always as an
    // array, and what the server chose (set by open()), as the browser's ws.protocol would say.
    this.protocols = protocols === undefined ? [] : [].concat(protocols);
    this.protocol = "";
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    this.closedByClient = null;
    // Like the real server, answer application pings, so that tests advancing time by minutes
    // do not trip the client's heartbeat. Tests of the heartbeat turn this off.
    this.autoPong = true;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.instances.push(this);
  }

  send(data) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error("send on a socket that is not open");
    const frame = JSON.parse(data);
    this.sent.push(frame);
    if (frame.type === "ping" && this.autoPong) this.receive({ type: "pong", ref: frame.ref });
  }

  close(code = 1000, reason = "") {
    this.closedByClient = { code, reason };
    this.readyState = FakeWebSocket.CLOSED;
  }

  // -- the server's side -------------------------------------------------------------------------

  /**
   * Completes the handshake without a welcome yet (jwt mode waits for a token first). Like the
   * server, it selects parley.v1 when offered and never echoes the token protocol.
   */
  open() {
    this.protocol = this.protocols.includes("parley.v1") ? "parley.v1" : "";
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.({});
  }

  /**
   * Opens the socket and sends `welcome`, as the server does first on every connection (after
   * the token, in jwt mode). `extra` adds welcome fields: name, roles, expires_at.
   */
  accept(user = "alice", session = "s1", extra = {}) {
    if (this.readyState !== FakeWebSocket.OPEN) this.open();
    this.receive({ type: "welcome", user, session, ...extra });
  }

  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The connection ends with `code` (1006: dropped without a close frame). */
  drop(code = 1006, reason = "") {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }

  /** Sent frames of one type. */
  sentOf(type) {
    return this.sent.filter((f) => f.type === type);
  }

  static reset() {
    FakeWebSocket.instances = [];
  }

  static get latest() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }
}

/** A message frame as the server would broadcast it. */
export function messageFrame(room, id, from, text, cid) {
  const m = { type: "message", room, id, from, text, ts: 1_700_000_000_000 + id };
  if (cid) m.cid = cid;
  return m;
}

/**
 * A joined frame; `extra` may set history, recovered, members, count, presence, ref. By default
 * the member list is complete: count is the number of members.
 */
export function joinedFrame(room, epoch, lastId, extra = {}) {
  const members = extra.members ?? ["alice"];
  return {
    type: "joined", room, epoch, last_id: lastId, count: members.length, presence: "users", members,
    history: [], ...extra,
  };
}

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
