// The protocol client (web/parley-client.js) in Node, against a fake WebSocket and fake time:
// backoff, which close codes end the connection, recovery with since/epoch, resend with the
// original cid, the offline queue, dedup and the gap event; signing in with a token (close codes
// 4401, 4403, 4408, refresh) and moderation. No server and no browser needed.

import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { ParleyClient, backoffDelay, drainDelay, DEFAULTS, utf8Length } from "../../web/parley-client.js";
import { FakeClock, FakeWebSocket, scriptedRandom, messageFrame, joinedFrame, settle } from "./lib/fakes.mjs";

const URL_ = "ws://chat.test/ws";

beforeEach(() => FakeWebSocket.reset());

/** A client on fake time and sockets, plus a record of every event it emitted. */
function harness({ random = scriptedRandom([], 0.5), ...options } = {}) {
  const clock = new FakeClock();
  const client = new ParleyClient({ WebSocket: FakeWebSocket, clock, random, ...options });
  const events = [];
  for (const type of ["status", "welcome", "joined", "gap", "message", "presence", "members", "typing", "left", "error",
    "outbox", "token", "banned", "moderation", "deleted"]) {
    client.on(type, (detail) => events.push({ type, ...detail }));
  }
  const of = (type) => events.filter((e) => e.type === type);
  return { client, clock, events, of };
}

/** Connects and completes the handshake on the first socket. */
async function connected(h, user = "alice") {
  const ready = h.client.connect(URL_, user);
  FakeWebSocket.latest.accept(user);
  await ready;
  return FakeWebSocket.latest;
}

/** Joins `room` on the current socket and answers with `joined`. */
async function joinRoom(h, room, epoch, lastId, extra = {}) {
  const joining = h.client.join(room);
  const ws = FakeWebSocket.latest;
  const join = ws.sentOf("join").at(-1);
  assert.equal(join.room, room);
  ws.receive(joinedFrame(room, epoch, lastId, { ref: join.ref, ...extra }));
  return joining;
}

/** Drops the current socket and lets the backoff timer run until a new socket exists. */
function dropAndReconnect(h, code = 1006) {
  const before = FakeWebSocket.instances.length;
  FakeWebSocket.latest.drop(code);
  h.clock.advance(DEFAULTS.backoffCapMs);
  assert.equal(FakeWebSocket.instances.length, before + 1, "a new socket after the backoff");
  return FakeWebSocket.latest;
}

// -- backoff --------------------------------------------------------------------------------------

test("backoff: the ceiling doubles from 0.5 s and is capped at 20 s", () => {
  const top = () => 1; // the upper end of random() shows the ceiling itself
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 12, 40].map((a) => backoffDelay(a, top));
  assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000, 20000]);
});

test("backoff: full jitter spreads delays over the whole range [0, ceiling)", () => {
  for (const attempt of [0, 3, 10]) {
    const ceiling = Math.min(20000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, () => 0), 0, "a delay of zero is possible");
    const samples = Array.from({ length: 2000 }, () => backoffDelay(attempt, Math.random));
    assert.ok(samples.every((d) => d >= 0 && d < ceiling), "every delay lies in [0, ceiling)");
    assert.ok(Math.min(...samples) < ceiling * 0.1, "some delays are near 0 (full, not equal, jitter)");
    assert.ok(Math.max(...samples) > ceiling * 0.9, "some delays are near the ceiling");
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.06, `mean ${mean} is about half of ${ceiling}`);
  }
});

test("reconnect waits exactly random() × ceiling, growing per failed attempt", async () => {
  const h = harness({ random: scriptedRandom([0.123 /* cid prefix */, 0.5, 0.25, 1, 0.9]) });
  await connected(h);
  const expected = [0.5 * 500, 0.25 * 1000, 1 * 2000, 0.9 * 4000];
  for (const delay of expected) {
    const count = FakeWebSocket.instances.length;
    FakeWebSocket.latest.drop(1006); // fails again before any welcome
    const status = h.of("status").at(-1);
    assert.equal(status.state, "offline");
    assert.equal(status.retryInMs, delay);
    h.clock.advance(delay - 1);
    assert.equal(FakeWebSocket.instances.length, count, `no attempt before ${delay} ms`);
    h.clock.advance(1);
    assert.equal(FakeWebSocket.instances.length, count + 1, `an attempt at ${delay} ms`);
    assert.equal(h.of("status").at(-1).state, "reconnecting");
  }
});

test("backoff resets after a connection was stable for 10 s, not after a short one", async () => {
  const h = harness({ random: () => 1 }); // delays equal the ceilings
  await connected(h);
  // Three quick failures: ceilings 500, 1000, 2000.
  for (const ceiling of [500, 1000, 2000]) {
    FakeWebSocket.latest.drop();
    assert.equal(h.of("status").at(-1).retryInMs, ceiling);
    h.clock.advance(ceiling);
  }
  // A connection that lives only 2 s does not reset: the next ceiling is 4000.
  FakeWebSocket.latest.accept();
  h.clock.advance(2000);
  FakeWebSocket.latest.drop();
  assert.equal(h.of("status").at(-1).retryInMs, 4000);
  h.clock.advance(4000);
  // One that lives 10 s does: back to 500.
  FakeWebSocket.latest.accept();
  h.clock.advance(10_000);
  FakeWebSocket.latest.drop();
  assert.equal(h.of("status").at(-1).retryInMs, 500);
});

// -- close codes ----------------------------------------------------------------------------------

for (const [code, reason] of [[4001, "invalid_name"], [4002, "abuse"], [1009, "frame_too_big"], [1000, "normal"]]) {
  test(`no reconnect after close code ${code} (${reason})`, async () => {
    const h = harness();
    const ready = h.client.connect(URL_, "alice");
    if (code === 4001) {
      // The server explains before it closes; the connect() promise rejects with the reason.
      FakeWebSocket.latest.receive({ type: "error", code: "invalid_name", message: "bad name", ref: null });
      FakeWebSocket.latest.drop(code);
      await assert.rejects(ready, { code: reason });
      assert.equal(h.of("error")[0].code, "invalid_name");
    } else {
      FakeWebSocket.latest.accept();
      await ready;
      FakeWebSocket.latest.drop(code);
    }
    h.clock.advance(10 * 60_000);
    assert.equal(FakeWebSocket.instances.length, 1, "no second socket");
    assert.equal(h.clock.pendingTimers, 0, "no timer left running");
    const status = h.of("status").at(-1);
    assert.equal(status.state, "closed");
    assert.equal(status.reason, reason);
    assert.equal(status.code, code);
  });
}

for (const code of [1001, 1006, 1011, 4000]) {
  test(`reconnect after close code ${code}`, async () => {
    const h = harness();
    await connected(h);
    FakeWebSocket.latest.drop(code);
    assert.equal(h.of("status").at(-1).state, "offline");
    h.clock.advance(DEFAULTS.backoffBaseMs);
    assert.equal(FakeWebSocket.instances.length, 2);
  });
}

test("a draining server's 1001 close sets the reconnect delay it hints", async () => {
  const h = harness();
  await connected(h);
  FakeWebSocket.latest.drop(1001, "server draining; reconnect_after_ms=7000");
  assert.equal(h.of("status").at(-1).retryInMs, 7000);
  h.clock.advance(6999);
  assert.equal(FakeWebSocket.instances.length, 1, "not before the hinted delay");
  h.clock.advance(1);
  assert.equal(FakeWebSocket.instances.length, 2, "reconnects once the hinted delay passed");
});

test("drain hints: only on 1001, parsed from the reason, capped", () => {
  assert.equal(drainDelay(1001, "server draining; reconnect_after_ms=250"), 250);
  assert.equal(drainDelay(1001, "server shutting down"), null, "no hint: the usual backoff");
  assert.equal(drainDelay(4000, "reconnect_after_ms=250"), null, "other codes keep the backoff");
  assert.equal(drainDelay(1001, "reconnect_after_ms=99999999"), DEFAULTS.drainHintCapMs);
});

test("close() ends for good and cancels a scheduled reconnect", async () => {
  const h = harness();
  await connected(h);
  FakeWebSocket.latest.drop(1006);
  h.client.close();
  h.clock.advance(60_000);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(h.client.state, "closed");
});

test("a guest keeps the name the server gave it when it reconnects", async () => {
  const h = harness();
  const ready = h.client.connect(URL_);
  assert.equal(new URL(FakeWebSocket.latest.url).searchParams.has("name"), false);
  FakeWebSocket.latest.accept("guest-3f2a");
  await ready;
  const ws = dropAndReconnect(h);
  assert.equal(new URL(ws.url).searchParams.get("name"), "guest-3f2a");
});

// -- recovery -------------------------------------------------------------------------------------

test("rejoin sends since = last id seen and the epoch it was seen in, for every room", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 77, 2, { history: [messageFrame("general", 1, "bob", "a"), messageFrame("general", 2, "bob", "b")] });
  ws.receive(messageFrame("general", 3, "bob", "c"));
  await joinRoom(h, "empty", 99, 0);
  assert.equal(ws.sentOf("join")[0].since, undefined, "a first join carries no since");
  assert.equal(ws.sentOf("join")[0].epoch, undefined);

  const next = dropAndReconnect(h);
  assert.equal(next.sent.length, 0, "nothing is sent before welcome");
  next.accept();
  const joins = next.sentOf("join").map(({ room, since, epoch }) => ({ room, since, epoch }));
  assert.deepEqual(joins, [
    { room: "general", since: 3, epoch: 77 },
    { room: "empty", since: 0, epoch: 99 },
  ]);
});

test("joined reports recovered; recovered history is delivered once and replays are dropped", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 2, { history: [messageFrame("general", 1, "bob", "a"), messageFrame("general", 2, "bob", "b")] });
  ws.receive(messageFrame("general", 2, "bob", "b")); // a duplicate broadcast
  const next = dropAndReconnect(h);
  next.accept();
  const join = next.sentOf("join")[0];
  // The server replays id 2 (already seen) and the missed 3 and 4.
  next.receive(joinedFrame("general", 7, 4, {
    ref: join.ref, recovered: true,
    history: [messageFrame("general", 2, "bob", "b"), messageFrame("general", 3, "bob", "c"), messageFrame("general", 4, "bob", "d")],
  }));
  next.receive(messageFrame("general", 4, "bob", "d")); // and a live duplicate
  next.receive(messageFrame("general", 5, "bob", "e"));
  const joined = h.of("joined").at(-1);
  assert.equal(joined.recovered, true);
  assert.equal(joined.rejoin, true);
  assert.deepEqual(joined.history.map((m) => m.id), [3, 4], "only the missed messages");
  assert.deepEqual(h.of("message").map((m) => m.id), [5], "live duplicates are dropped");
  assert.equal(h.of("gap").length, 0, "no gap when recovered");
  assert.equal(h.client.room("general").lastId, 5);
});

test("gap event when a rejoin answers recovered:false (same epoch: since too old)", async () => {
  const h = harness();
  await connected(h);
  await joinRoom(h, "general", 7, 3);
  const next = dropAndReconnect(h);
  next.accept();
  next.receive(joinedFrame("general", 7, 900, {
    ref: next.sentOf("join")[0].ref, recovered: false, history: [messageFrame("general", 900, "bob", "new")],
  }));
  const gaps = h.of("gap");
  assert.equal(gaps.length, 1);
  assert.deepEqual(gaps[0], { type: "gap", room: "general", epoch: 7, previousEpoch: 7, epochChanged: false });
  assert.ok(h.events.indexOf(gaps[0]) < h.events.indexOf(h.of("joined").at(-1)),
    "gap comes first, so that a page can mark the break before it shows the new history");
  assert.equal(h.of("joined").at(-1).recovered, false);
  assert.equal(h.of("joined").at(-1).reset, false);
});

test("gap with a new epoch resets ids, so the new epoch's id 1 is not taken for a duplicate", async () => {
  const h = harness();
  await connected(h);
  await joinRoom(h, "general", 7, 1, { history: [messageFrame("general", 1, "bob", "old one")] });
  const next = dropAndReconnect(h);
  next.accept();
  next.receive(joinedFrame("general", 8, 1, {
    ref: next.sentOf("join")[0].ref, recovered: false, history: [messageFrame("general", 1, "carol", "new one")],
  }));
  const gap = h.of("gap")[0];
  assert.equal(gap.epochChanged, true);
  assert.equal(gap.previousEpoch, 7);
  const joined = h.of("joined").at(-1);
  assert.equal(joined.reset, true);
  assert.deepEqual(joined.history.map((m) => m.text), ["new one"]);
  // The next rejoin uses the new epoch.
  const third = dropAndReconnect(h);
  third.accept();
  assert.deepEqual({ since: third.sentOf("join")[0].since, epoch: third.sentOf("join")[0].epoch }, { since: 1, epoch: 8 });
});

test("no gap event on a first join, even of a room with history", async () => {
  const h = harness();
  await connected(h);
  const joined = await joinRoom(h, "general", 7, 1, { history: [messageFrame("general", 1, "bob", "x")] });
  assert.equal(joined.recovered, undefined);
  assert.equal(joined.rejoin, false);
  assert.equal(joined.hasOlder, false, "message 1 is the first there is");
  assert.equal(h.of("gap").length, 0);
});

// -- sending --------------------------------------------------------------------------------------

test("send resolves with the server's echo, matched by cid", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  const sending = h.client.send("general", "hello");
  const frame = ws.sentOf("send")[0];
  assert.equal(frame.text, "hello");
  assert.match(frame.cid, /^[0-9a-z]{8}-1$/);
  ws.receive(messageFrame("general", 1, "bob", "not mine", "other-cid"));
  ws.receive(messageFrame("general", 2, "alice", "hello", frame.cid));
  const echoed = await sending;
  assert.equal(echoed.id, 2);
  assert.equal(echoed.own, true);
  assert.deepEqual(h.client.pending(), []);
});

test("unacknowledged messages are resent after reconnect with their original cids, exactly once", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  const a = h.client.send("general", "a");
  const b = h.client.send("general", "b");
  const c = h.client.send("general", "c");
  const [ca, cb, cc] = ws.sentOf("send").map((f) => f.cid);
  ws.receive(messageFrame("general", 1, "alice", "a", ca)); // only a was echoed before the drop
  assert.equal((await a).id, 1);

  const next = dropAndReconnect(h);
  next.accept();
  assert.equal(next.sentOf("send").length, 0, "sends wait for joined (else not_member)");
  // The server got b before the drop: the recovered history holds its echo.
  next.receive(joinedFrame("general", 7, 2, {
    ref: next.sentOf("join")[0].ref, recovered: true, history: [messageFrame("general", 2, "alice", "b", cb)],
  }));
  assert.equal((await b).id, 2, "b is acknowledged by the replay");
  assert.deepEqual(next.sentOf("send").map((f) => [f.text, f.cid]), [["c", cc]], "only c is resent, with its cid");
  // More frames on the same connection never repeat it.
  next.receive(messageFrame("general", 3, "bob", "hi"));
  h.clock.advance(60_000);
  assert.equal(next.sentOf("send").length, 1);
  next.receive(messageFrame("general", 4, "alice", "c", cc));
  assert.equal((await c).id, 4);
  assert.equal(h.of("message").filter((m) => m.text === "c").length, 1);
});

test("a message still unacknowledged after two drops is sent once on each connection", async () => {
  const h = harness();
  const ws1 = await connected(h);
  await joinRoom(h, "general", 7, 0);
  h.client.send("general", "stubborn");
  const cid = ws1.sentOf("send")[0].cid;
  for (let i = 0; i < 2; i++) {
    const ws = dropAndReconnect(h);
    ws.accept();
    ws.receive(joinedFrame("general", 7, 0, { ref: ws.sentOf("join")[0].ref, recovered: true }));
    assert.deepEqual(ws.sentOf("send").map((f) => f.cid), [cid]);
  }
});

test("messages written while offline are queued and sent after reconnect, exactly once, in order", async () => {
  const h = harness();
  await connected(h);
  await joinRoom(h, "general", 7, 0);
  FakeWebSocket.latest.drop(1006);
  const queued = ["one", "two", "three"].map((t) => h.client.send("general", t));
  assert.deepEqual(h.client.pending("general").map((p) => p.text), ["one", "two", "three"]);
  assert.deepEqual(h.of("outbox").map((e) => e.state), ["queued", "queued", "queued"]);
  h.clock.advance(DEFAULTS.backoffCapMs);
  const ws = FakeWebSocket.latest;
  ws.accept();
  ws.receive(joinedFrame("general", 7, 0, { ref: ws.sentOf("join")[0].ref, recovered: true }));
  const sent = ws.sentOf("send");
  assert.deepEqual(sent.map((f) => f.text), ["one", "two", "three"]);
  assert.equal(new Set(sent.map((f) => f.cid)).size, 3);
  sent.forEach((f, i) => ws.receive(messageFrame("general", i + 1, "alice", f.text, f.cid)));
  assert.deepEqual((await Promise.all(queued)).map((m) => m.id), [1, 2, 3]);
  h.clock.advance(60_000);
  assert.equal(ws.sentOf("send").length, 3, "nothing sent twice");
});

test("a message sent right after join() waits for joined", async () => {
  const h = harness();
  const ws = await connected(h);
  const joining = h.client.join("general");
  const sending = h.client.send("general", "early");
  assert.equal(ws.sentOf("send").length, 0);
  ws.receive(joinedFrame("general", 7, 0, { ref: ws.sentOf("join")[0].ref }));
  await joining;
  assert.equal(ws.sentOf("send").length, 1);
  ws.receive(messageFrame("general", 1, "alice", "early", ws.sentOf("send")[0].cid));
  await sending;
});

for (const code of ["room_unavailable", "store_unavailable"]) {
  test(`${code}: the send is retried after a pause with the same cid`, async () => {
    const h = harness();
    const ws = await connected(h);
    await joinRoom(h, "general", 7, 0);
    const sending = h.client.send("general", "retry me");
    const first = ws.sentOf("send")[0];
    ws.receive({ type: "error", code, message: "not now", ref: first.ref });
    assert.equal(ws.sentOf("send").length, 1);
    h.clock.advance(DEFAULTS.retryAfterErrorMs);
    const second = ws.sentOf("send")[1];
    assert.equal(second.cid, first.cid);
    ws.receive(messageFrame("general", 1, "alice", "retry me", first.cid));
    assert.equal((await sending).id, 1);
    assert.equal(h.of("error").length, 0, "a retried error is not reported");
  });
}

test("a send the server refuses for good rejects, and is not resent", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  const sending = h.client.send("general", "x");
  ws.receive({ type: "error", code: "text_too_long", message: "too long", ref: ws.sentOf("send")[0].ref });
  await assert.rejects(sending, { code: "text_too_long" });
  const next = dropAndReconnect(h);
  next.accept();
  next.receive(joinedFrame("general", 7, 0, { ref: next.sentOf("join")[0].ref, recovered: true }));
  assert.equal(next.sentOf("send").length, 0);
});

test("text over max_text_bytes (in UTF-8 bytes) is refused locally, never sent", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  assert.equal(utf8Length("é€😀"), 2 + 3 + 4);
  await assert.rejects(h.client.send("general", "€".repeat(1366)), { code: "text_too_long" }); // 4098 bytes
  await assert.rejects(h.client.send("general", ""), { code: "bad_field" });
  await assert.rejects(h.client.send("nowhere", "hi"), { code: "not_member" });
  assert.equal(ws.sentOf("send").length, 0);
});

test("a long offline queue is paced under the server's rate limit", async () => {
  const h = harness();
  await connected(h);
  await joinRoom(h, "general", 7, 0);
  FakeWebSocket.latest.drop(1006);
  for (let i = 0; i < 80; i++) h.client.send("general", `m${i}`);
  h.clock.advance(DEFAULTS.backoffCapMs);
  const ws = FakeWebSocket.latest;
  ws.accept();
  ws.receive(joinedFrame("general", 7, 0, { ref: ws.sentOf("join")[0].ref, recovered: true }));
  const burst = ws.sentOf("send").length;
  assert.ok(burst <= 40, `at most the server's burst at once (sent ${burst})`);
  h.clock.advance(10_000);
  const sends = ws.sentOf("send");
  assert.equal(sends.length, 80, "all of them, in the end");
  assert.deepEqual(sends.map((f) => f.text), Array.from({ length: 80 }, (_, i) => `m${i}`), "in order");
});

// -- presence: the member list (docs/protocol.md, "Presence") ------------------------------------

/** Answers the client's latest `who` with a page. */
function answerWho(ws, members, { count, more = false } = {}) {
  const ask = ws.sentOf("who").at(-1);
  ws.receive({ type: "who", room: ask.room, members, count, more, ref: ask.ref });
  return ask;
}

/** The member list the last `members` event of `room` showed, without the event's type. */
function lastMembers(h, room) {
  const { type, ...rest } = h.of("members").filter((e) => e.room === room).at(-1);
  return rest;
}

test("joined replaces the member list: count, mode and the first page, and asks for no more when it is complete", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["bob", "alice"], count: 2 });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "bob"], count: 2, mode: "users" });
  assert.deepEqual(h.client.room("general").members, ["alice", "bob"]);
  assert.equal(h.client.room("general").count, 2);
  assert.equal(ws.sentOf("who").length, 0, "a complete first page needs no who");

  // After a reconnect the rejoin's list replaces the old one: bob is gone, carol is there.
  const next = dropAndReconnect(h);
  next.accept();
  next.receive(joinedFrame("general", 7, 0, { ref: next.sentOf("join")[0].ref, recovered: true, members: ["alice", "carol"], count: 2 }));
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "carol"], count: 2, mode: "users" });
  assert.equal(h.of("presence").length, 0, "a replaced list is not announced as comings and goings");
});

test("a first page shorter than count is completed with who, after = the last name of each page, until more is false", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 6 });
  assert.deepEqual(lastMembers(h, "general").members, ["alice", "bob"], "the first page is shown at once");

  const first = answerWho(ws, ["carol", "dave"], { count: 6, more: true });
  assert.equal(first.after, "bob");
  assert.equal(first.limit, undefined, "the server's page size");
  assert.deepEqual(lastMembers(h, "general").members, ["alice", "bob", "carol", "dave"], "each page adds its names");

  // Someone joined meanwhile (their diff is still to come): the page's count is the newest.
  const second = answerWho(ws, ["erin"], { count: 7, more: false });
  assert.equal(second.after, "dave");
  // more:false ends the paging even though count (7) is larger than the names held (5).
  h.clock.advance(60_000);
  assert.equal(ws.sentOf("who").length, 2);
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "bob", "carol", "dave", "erin"], count: 7, mode: "users" });
  assert.equal(h.of("presence").length, 0, "pages are not announced as arrivals");
});

test("presence_diff adds joins, removes leaves and sets count; applying it twice changes nothing", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 2 });
  const diff = { type: "presence_diff", room: "general", joins: ["carol"], leaves: ["bob"], count: 2 };
  ws.receive(diff);
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "carol"], count: 2, mode: "users" });
  assert.deepEqual(h.of("presence").map(({ room, joins, leaves }) => ({ room, joins, leaves })),
    [{ room: "general", joins: ["carol"], leaves: ["bob"] }]);

  const eventsBefore = h.events.length;
  ws.receive(diff);
  ws.receive({ type: "presence_diff", room: "general", joins: ["alice"], leaves: ["dave"], count: 2 });
  assert.equal(h.events.length, eventsBefore, "a repeated diff, or one the list already shows, emits nothing");
  assert.deepEqual(h.client.room("general").members, ["alice", "carol"]);

  // A diff whose names are all known still carries a new count (e.g. someone still paging).
  ws.receive({ type: "presence_diff", room: "general", joins: [], leaves: [], count: 3 });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "carol"], count: 3, mode: "users" });
  assert.equal(h.of("presence").length, 1);
  ws.receive({ type: "presence_diff", room: "elsewhere", joins: ["zed"], leaves: [], count: 1 });
  assert.equal(h.of("presence").length, 1, "diffs of rooms we are not in are ignored");
});

test("a diff during paging is kept, and the next page still starts after the previous page, not after the last name held", async () => {
  const h = harness();
  const ws = await connected(h);
  // Present: alice bob carol dave erin; the server's page size is 2.
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 5 });
  // zoe arrives and alice goes while the second page is on its way.
  ws.receive({ type: "presence_diff", room: "general", joins: ["zoe"], leaves: ["alice"], count: 5 });
  assert.deepEqual(h.client.room("general").members, ["bob", "zoe"]);
  answerWho(ws, ["carol", "dave"], { count: 5, more: true });
  const next = ws.sentOf("who").at(-1);
  assert.equal(next.after, "dave", "zoe is held, but paging after her would skip erin");
  // erin leaves before her page comes: the page no longer names her, and the diff changes nothing.
  ws.receive({ type: "presence_diff", room: "general", joins: [], leaves: ["erin"], count: 4 });
  answerWho(ws, ["zoe"], { count: 4, more: false });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["bob", "carol", "dave", "zoe"], count: 4, mode: "users" });
  assert.equal(ws.sentOf("who").length, 2);
});

test("presence_state starts the list over, and a page asked for the old list is not added to it", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 3 });
  assert.equal(ws.sentOf("who").length, 1, "paging has begun");
  ws.receive({ type: "presence_state", room: "general", count: 2, presence: "users", members: ["alice", "carol"] });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "carol"], count: 2, mode: "users" });
  answerWho(ws, ["dave"], { count: 3, more: false }); // the reply to the page asked before
  assert.deepEqual(h.client.room("general").members, ["alice", "carol"]);
  assert.equal(h.client.room("general").count, 2);
  assert.equal(ws.sentOf("who").length, 1, "a complete new list needs no page");
  assert.equal(h.of("presence").length, 0);
});

test("counts mode: no names and no paging, only the count, which diffs keep current", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "lobby", 7, 0, { presence: "counts", count: 1500, members: undefined });
  assert.deepEqual(lastMembers(h, "lobby"), { room: "lobby", members: [], count: 1500, mode: "counts" });
  ws.receive({ type: "presence_diff", room: "lobby", count: 1501 });
  assert.deepEqual(lastMembers(h, "lobby"), { room: "lobby", members: [], count: 1501, mode: "counts" });
  // A users-mode diff can only reach us if the presence_state that switched modes was dropped:
  // its count is good, its names are not enough for a list.
  ws.receive({ type: "presence_diff", room: "lobby", joins: ["zed"], leaves: [], count: 1502 });
  assert.deepEqual(lastMembers(h, "lobby"), { room: "lobby", members: [], count: 1502, mode: "counts" });
  assert.equal(ws.sentOf("who").length, 0);
  assert.equal(h.of("presence").length, 0);
  assert.deepEqual({ count: h.client.room("lobby").count, mode: h.client.room("lobby").mode }, { count: 1502, mode: "counts" });
});

test("a mode switch via presence_state: to counts drops the names, back to users takes the first page and pages the rest", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 2 });
  ws.receive({ type: "presence_state", room: "general", count: 1001, presence: "counts" });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: [], count: 1001, mode: "counts" });
  ws.receive({ type: "presence_diff", room: "general", count: 900 });
  ws.receive({ type: "presence_state", room: "general", count: 3, presence: "users", members: ["alice", "bob"] });
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "bob"], count: 3, mode: "users" });
  const ask = answerWho(ws, ["carol"], { count: 3, more: false });
  assert.equal(ask.after, "bob");
  assert.deepEqual(lastMembers(h, "general"), { room: "general", members: ["alice", "bob", "carol"], count: 3, mode: "users" });
});

test("a page refused with a retryable error is asked for again after a pause; one lost with the connection is not", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"], count: 3 });
  const refused = ws.sentOf("who")[0];
  ws.receive({ type: "error", code: "rate_limited", message: "slow down", ref: refused.ref });
  h.clock.advance(DEFAULTS.retryAfterErrorMs - 1);
  assert.equal(ws.sentOf("who").length, 1);
  h.clock.advance(1);
  assert.equal(ws.sentOf("who").length, 2);
  assert.equal(ws.sentOf("who")[1].after, "bob");

  // Refused again, and the connection drops before the pause is over.
  ws.receive({ type: "error", code: "room_unavailable", message: "restarting", ref: ws.sentOf("who")[1].ref });
  ws.drop(1006);
  h.clock.advance(DEFAULTS.backoffBaseMs / 2); // the backoff with random() = 0.5
  const next = FakeWebSocket.latest;
  assert.notEqual(next, ws);
  next.accept();
  h.clock.advance(60_000);
  assert.equal(ws.sentOf("who").length, 2, "nothing more on the old socket");
  assert.equal(next.sentOf("who").length, 0, "no page before the rejoin's joined (it would get not_member)");
  next.receive(joinedFrame("general", 7, 0, { ref: next.sentOf("join")[0].ref, recovered: true, members: ["alice", "bob"], count: 3 }));
  answerWho(next, ["carol"], { count: 3 });
  assert.deepEqual(h.client.room("general").members, ["alice", "bob", "carol"]);
  assert.equal(next.sentOf("who").length, 1);
  await settle();
});

// -- status ---------------------------------------------------------------------------------------

test("status asks about users anywhere on the server and resolves with one entry per name, in order", async () => {
  const h = harness();
  const ws = await connected(h);
  let answer;
  h.client.status(["bob", "carol"]).then((users) => { answer = users; });
  const frame = ws.sentOf("status")[0];
  assert.deepEqual(frame.users, ["bob", "carol"]);
  assert.equal(frame.room, undefined, "status needs no room");
  ws.receive({ type: "status", ref: frame.ref, users: [
    { user: "bob", online: true, sessions: 2 }, { user: "carol", online: false, sessions: 0 },
  ] });
  await settle();
  assert.deepEqual(answer, [{ user: "bob", online: true, sessions: 2 }, { user: "carol", online: false, sessions: 0 }]);
  assert.equal(h.client.state, "open", "the reply is not taken for a connection status");

  const failing = h.client.status(["dave"]);
  ws.receive({ type: "error", code: "internal", message: "oops", ref: ws.sentOf("status")[1].ref });
  await assert.rejects(failing, { code: "internal" });
});

test("status refuses locally what the server would refuse: no names, more than 100, an invalid name", async () => {
  const h = harness();
  const ws = await connected(h);
  const refusals = [
    [h.client.status([]), "bad_field"],
    [h.client.status(Array.from({ length: 101 }, (_, i) => `u${i}`)), "bad_field"],
    [h.client.status(["bob", "not valid"]), "invalid_name"],
    [h.client.status(["x".repeat(33)]), "invalid_name"],
  ];
  assert.equal(ws.sentOf("status").length, 0, "none of them reaches the server");
  for (const [refused, code] of refusals) await assert.rejects(refused, { code });
  const hundred = h.client.status(Array.from({ length: 100 }, (_, i) => `u${i}`));
  assert.equal(ws.sentOf("status")[0].users.length, 100, "exactly 100 is fine");
  ws.drop(1006);
  await assert.rejects(hundred, { code: "disconnected" });
  await assert.rejects(h.client.status(["bob"]), { code: "offline" });
});

// -- other commands -------------------------------------------------------------------------------

test("typing is throttled to one frame per 1.5 s per room", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  for (let t = 0; t < 4000; t += 100) {
    h.client.typing("general");
    h.clock.advance(100);
  }
  assert.equal(ws.sentOf("typing").length, 3); // at 0, 1500 and 3000 ms
});

test("sending a message resets the typing throttle, as the server resets its interval", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  assert.equal(h.client.typing("general"), true);
  h.client.send("general", "done typing");
  h.clock.advance(100);
  assert.equal(h.client.typing("general"), true, "the next message's first keystroke is announced");
  assert.equal(ws.sentOf("typing").length, 2);
});

test("who(room, {after, limit}) asks for one page and leaves the member list alone", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0, { members: ["alice", "bob"] });
  const asking = h.client.who("general", { after: "bob", limit: 10 });
  const frame = ws.sentOf("who")[0];
  assert.deepEqual({ room: frame.room, after: frame.after, limit: frame.limit }, { room: "general", after: "bob", limit: 10 });
  ws.receive({ type: "who", room: "general", members: ["carol"], count: 3, more: false, ref: frame.ref });
  assert.deepEqual(await asking, { room: "general", members: ["carol"], count: 3, more: false });
  assert.deepEqual(h.client.room("general").members, ["alice", "bob"]);
});

test("join refuses an invalid room name locally", async () => {
  const h = harness();
  const ws = await connected(h);
  for (const name of ["", "has space", "x".repeat(65), "<b>"]) {
    await assert.rejects(h.client.join(name), { code: "invalid_name" });
  }
  assert.equal(ws.sentOf("join").length, 0);
  assert.deepEqual(h.client.rooms, []);
});

test("join errors reject the join; room_failed forgets the room", async () => {
  const h = harness();
  const ws = await connected(h);
  const full = h.client.join("busy");
  ws.receive({ type: "error", code: "room_full", message: "full", ref: ws.sentOf("join")[0].ref });
  await assert.rejects(full, { code: "room_full" });
  assert.deepEqual(h.client.rooms, []);
  await joinRoom(h, "fragile", 7, 0);
  ws.receive({ type: "left", room: "fragile", reason: "room_failed" });
  assert.deepEqual(h.client.rooms, []);
  assert.equal(h.of("left").at(-1).reason, "room_failed");
  const next = dropAndReconnect(h);
  next.accept();
  assert.equal(next.sentOf("join").length, 0, "a failed room is not rejoined");
});

test("loadOlder pages below the oldest message and drops ones already delivered", async () => {
  const h = harness();
  const ws = await connected(h);
  const joined = await joinRoom(h, "general", 7, 12, { history: [10, 11, 12].map((id) => messageFrame("general", id, "bob", `m${id}`)) });
  assert.equal(joined.hasOlder, true);
  assert.equal(h.client.room("general").hasOlder, true);
  const loading = h.client.loadOlder("general", 5);
  const req = ws.sentOf("history")[0];
  assert.deepEqual({ before: req.before, limit: req.limit }, { before: 10, limit: 5 });
  ws.receive({ type: "history", room: "general", ref: req.ref, more: true,
    messages: [5, 6, 7, 8, 9, 10].map((id) => messageFrame("general", id, "bob", `m${id}`)) });
  const page = await loading;
  assert.deepEqual(page.messages.map((m) => m.id), [5, 6, 7, 8, 9]);
  assert.equal(page.more, true);
  assert.equal(h.client.room("general").oldestId, 5);
});

test("heartbeat: a connection that does not answer a ping is dropped and reconnected", async () => {
  const h = harness();
  const ws = await connected(h);
  ws.autoPong = false;
  h.clock.advance(DEFAULTS.heartbeatMs);
  const ping = ws.sentOf("ping")[0];
  assert.ok(ping, "a ping after the heartbeat interval");
  ws.receive({ type: "pong", ref: ping.ref });
  h.clock.advance(DEFAULTS.heartbeatMs);
  assert.equal(ws.sentOf("ping").length, 2, "answered pings keep the heartbeat going");
  h.clock.advance(DEFAULTS.heartbeatTimeoutMs);
  assert.ok(ws.closedByClient, "the silent socket is closed");
  assert.equal(h.client.state, "offline");
  h.clock.advance(DEFAULTS.backoffCapMs);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("requests pending when the connection drops reject with 'disconnected'", async () => {
  const h = harness();
  await connected(h);
  await joinRoom(h, "general", 7, 0);
  const asking = h.client.who("general");
  FakeWebSocket.latest.drop(1006);
  await assert.rejects(asking, { code: "disconnected" });
  await assert.rejects(h.client.who("general"), { code: "offline" });
  await settle();
});

// -- signing in with a token (jwt mode) -----------------------------------------------------------

/** A getToken that hands out "<prefix>-1", "<prefix>-2", ... and counts its calls. */
function tokenSource(prefix = "jwt") {
  let calls = 0;
  const getToken = async () => `${prefix}-${++calls}`;
  Object.defineProperty(getToken, "calls", { get: () => calls });
  return getToken;
}

/** An hour from the fake clock's now, as a welcome's expires_at. */
const inAnHour = (h) => h.clock.now() + 3_600_000;

/** connect() with a getToken: the socket exists only once the token is there. */
async function connectWithToken(h) {
  const ready = h.client.connect(URL_);
  ready.catch(() => {}); // some tests expect it to reject; they await it themselves
  await settle();
  return { ready, ws: FakeWebSocket.latest };
}

/** Signs in: welcome with roles and expires_at, as the server sends in jwt mode. */
async function signedIn(h, { user = "alice", roles = ["member"], expiresAt = inAnHour(h), name } = {}) {
  const { ready, ws } = await connectWithToken(h);
  ws.accept(user, "s1", { roles, expires_at: expiresAt, ...(name ? { name } : {}) });
  await ready;
  return ws;
}

/** Drops the socket with `code` and waits out the backoff and getToken for the next one. */
async function dropAndReconnectWithToken(h, code = 1006) {
  const before = FakeWebSocket.instances.length;
  FakeWebSocket.latest.drop(code);
  h.clock.advance(DEFAULTS.backoffCapMs);
  await settle();
  assert.equal(FakeWebSocket.instances.length, before + 1, "a new socket after the backoff");
  return FakeWebSocket.latest;
}

const tokenStates = (h) => h.of("token").map((e) => e.state);

test("token via protocol: parley.v1 and parley.token.<jwt> are offered, the token is not in the URL", async () => {
  const getToken = tokenSource();
  const h = harness({ getToken });
  const { ready, ws } = await connectWithToken(h);
  assert.deepEqual(ws.protocols, ["parley.v1", "parley.token.jwt-1"]);
  assert.equal(new URL(ws.url).search, "", "no token and no name in the URL");
  ws.open();
  assert.equal(ws.protocol, "parley.v1", "the server selects parley.v1 and never echoes the token");
  assert.deepEqual(ws.sent, [], "no auth frame when the token went with the handshake");
  ws.receive({ type: "welcome", user: "alice", session: "s1", name: "Alice", roles: ["moderator"], expires_at: inAnHour(h) });
  const who = await ready;
  assert.deepEqual(who, { user: "alice", session: "s1", name: "Alice", roles: ["moderator"], expiresAt: inAnHour(h) });
  assert.deepEqual({ name: h.client.name, roles: h.client.roles, expiresAt: h.client.expiresAt },
    { name: "Alice", roles: ["moderator"], expiresAt: inAnHour(h) });
  assert.equal(getToken.calls, 1);
});

test("open mode (no getToken): no subprotocol, the name in the URL, a welcome without roles", async () => {
  const h = harness();
  const ws = await connected(h, "bob");
  assert.deepEqual(ws.protocols, []);
  assert.equal(new URL(ws.url).searchParams.get("name"), "bob");
  assert.deepEqual(h.of("welcome")[0], { type: "welcome", user: "bob", session: "s1" });
  assert.deepEqual(h.client.roles, []);
  assert.equal(h.client.expiresAt, null);
});

test("token via frame: the auth frame goes first and alone; commands wait for welcome", async () => {
  const h = harness({ getToken: tokenSource(), tokenVia: "frame" });
  const { ready, ws } = await connectWithToken(h);
  assert.deepEqual(ws.protocols, [], "nothing offered in the handshake");
  const joining = h.client.join("general");
  ws.open();
  assert.equal(ws.sent.length, 1);
  assert.equal(ws.sent[0].type, "auth");
  assert.equal(ws.sent[0].token, "jwt-1");
  assert.ok(ws.sent[0].ref !== undefined, "with a ref, so that an unauthenticated error names it");
  ws.receive({ type: "welcome", user: "alice", session: "s1", roles: ["member"], expires_at: inAnHour(h) });
  await ready;
  assert.deepEqual(ws.sent.map((f) => f.type), ["auth", "join"], "the join only after welcome");
  ws.receive(joinedFrame("general", 7, 0, { ref: ws.sentOf("join")[0].ref }));
  await joining;
});

test("getToken is asked before every reconnect, and the new token is the one offered", async () => {
  const getToken = tokenSource();
  const h = harness({ getToken });
  await signedIn(h);
  for (const expected of ["jwt-2", "jwt-3"]) {
    const ws = await dropAndReconnectWithToken(h, 1006);
    assert.deepEqual(ws.protocols, ["parley.v1", `parley.token.${expected}`]);
    ws.accept("alice", "s2", { roles: ["member"], expires_at: inAnHour(h) });
  }
  assert.equal(getToken.calls, 3);
  assert.equal(new URL(FakeWebSocket.latest.url).searchParams.has("name"), false,
    "a user id from a token is not turned into ?name= (it need not be a valid name)");
});

test("a getToken that fails is a failed attempt: reported, then retried with backoff", async () => {
  let calls = 0;
  const h = harness({ getToken: async () => { if (++calls === 1) throw new Error("no session"); return "jwt-ok"; } });
  h.client.connect(URL_).catch(() => {});
  await settle();
  assert.equal(FakeWebSocket.instances.length, 0);
  assert.equal(h.of("error")[0].code, "token_unavailable");
  assert.equal(h.client.state, "offline");
  h.clock.advance(DEFAULTS.backoffCapMs);
  await settle();
  assert.deepEqual(FakeWebSocket.latest.protocols, ["parley.v1", "parley.token.jwt-ok"]);
});

test("4401: a new token and a reconnect with backoff; after three refusals in a row it stops with an error", async () => {
  const getToken = tokenSource();
  const h = harness({ getToken });
  const { ready, ws } = await connectWithToken(h);
  ws.open();
  ws.receive({ type: "error", code: "unauthenticated", message: "bad signature", ref: null });
  ws.drop(4401);
  assert.equal(h.client.state, "offline", "the first refusal is retried");
  h.clock.advance(DEFAULTS.backoffCapMs);
  await settle();
  const second = FakeWebSocket.latest;
  assert.deepEqual(second.protocols, ["parley.v1", "parley.token.jwt-2"], "with a new token");
  second.open(); // the handshake went through, so the token may stay in it
  second.drop(4401);
  assert.equal(h.client.state, "offline");
  h.clock.advance(DEFAULTS.backoffCapMs);
  await settle();
  const third = FakeWebSocket.latest;
  assert.deepEqual(third.protocols, ["parley.v1", "parley.token.jwt-3"]);
  third.open();
  third.drop(4401);
  await assert.rejects(ready, { code: "unauthenticated" });
  h.clock.advance(10 * 60_000);
  await settle();
  assert.equal(FakeWebSocket.instances.length, 3, "no fourth attempt");
  assert.equal(getToken.calls, 3);
  assert.equal(h.clock.pendingTimers, 0);
  assert.deepEqual(h.of("token").map(({ failures, final }) => [failures, final]), [[1, false], [2, false], [3, true]]);
  assert.equal(h.of("error").at(-1).code, "unauthenticated");
  const status = h.of("status").at(-1);
  assert.deepEqual([status.state, status.reason, status.code], ["closed", "unauthenticated", 4401]);
});

test("4401: a welcome in between starts the count over", async () => {
  const h = harness({ getToken: tokenSource() });
  await signedIn(h);
  await dropAndReconnectWithToken(h, 4401);
  await dropAndReconnectWithToken(h, 4401);
  FakeWebSocket.latest.accept("alice", "s2", { roles: [], expires_at: inAnHour(h) });
  await dropAndReconnectWithToken(h, 4401);
  await dropAndReconnectWithToken(h, 4401);
  assert.equal(h.client.state, "reconnecting");
});

test("4401 without getToken (a jwt server, no token) is final: there is nothing else to try", async () => {
  const h = harness();
  const ready = h.client.connect(URL_, "alice");
  FakeWebSocket.latest.open();
  FakeWebSocket.latest.receive({ type: "error", code: "unauthenticated", message: "sign in first", ref: null });
  FakeWebSocket.latest.drop(4401);
  await assert.rejects(ready, { code: "unauthenticated" });
  h.clock.advance(10 * 60_000);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(h.client.state, "closed");
});

test("a token handshake that fails before opening (a browser's 1006 for HTTP 401) is retried with an auth frame", async () => {
  const h = harness({ getToken: tokenSource() });
  const { ws } = await connectWithToken(h);
  ws.drop(1006); // never opened
  h.clock.advance(DEFAULTS.backoffCapMs);
  await settle();
  const second = FakeWebSocket.latest;
  assert.deepEqual(second.protocols, [], "the token goes in a frame this time");
  second.open();
  assert.deepEqual(second.sent.map((f) => [f.type, f.token]), [["auth", "jwt-2"]]);
  // The frame tells a bad token apart: 4401 is counted like any other refusal ...
  second.receive({ type: "welcome", user: "alice", session: "s2", roles: [], expires_at: inAnHour(h) });
  // ... and once signed in, the handshake carries the token again.
  const third = await dropAndReconnectWithToken(h, 1006);
  assert.deepEqual(third.protocols, ["parley.v1", "parley.token.jwt-3"]);
});

test("4403: banned from the server, a banned event with until, and no reconnect", async () => {
  const h = harness({ getToken: tokenSource() });
  const ws = await signedIn(h);
  await joinRoom(h, "general", 7, 0);
  const until = h.clock.now() + 86_400_000;
  ws.receive({ type: "error", code: "banned", message: "banned from the server", until, ref: null });
  ws.drop(4403);
  assert.deepEqual(h.of("banned"), [{ type: "banned", until, message: "banned from the server" }]);
  const status = h.of("status").at(-1);
  assert.deepEqual([status.state, status.reason, status.code], ["closed", "banned", 4403]);
  h.clock.advance(10 * 60_000);
  await settle();
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(h.clock.pendingTimers, 0);
});

test("4408: reconnect with a fresh token and recover every room with since/epoch", async () => {
  const getToken = tokenSource();
  const h = harness({ getToken });
  const ws = await signedIn(h);
  await joinRoom(h, "general", 7, 3);
  ws.receive({ type: "error", code: "token_expired", message: "token expired", ref: null });
  await settle();
  assert.equal(ws.sentOf("refresh")[0].token, "jwt-2", "a refresh was tried");
  const next = await dropAndReconnectWithToken(h, 4408); // but it came too late
  assert.ok(tokenStates(h).includes("reauthenticate"));
  assert.deepEqual(next.protocols, ["parley.v1", "parley.token.jwt-3"]);
  next.accept("alice", "s2", { roles: ["member"], expires_at: inAnHour(h) });
  assert.deepEqual(next.sentOf("join").map(({ room, since, epoch }) => ({ room, since, epoch })),
    [{ room: "general", since: 3, epoch: 7 }]);
});

test("token_expired: getToken, then refresh with the new token; commands wait and resume after refreshed", async () => {
  const h = harness({ getToken: tokenSource() });
  const ws = await signedIn(h);
  await joinRoom(h, "general", 7, 0);
  ws.receive({ type: "error", code: "token_expired", message: "token expired", ref: null });
  assert.deepEqual(tokenStates(h), ["expired", "refreshing"]);
  assert.equal(h.of("error").length, 0, "reported as a token event, not as an error");
  const sending = h.client.send("general", "while expired");
  assert.equal(h.client.typing("general"), false, "typing would only earn an error now");
  await assert.rejects(h.client.who("general"), { code: "token_expired" });
  await settle();
  const refresh = ws.sentOf("refresh");
  assert.equal(refresh.length, 1);
  assert.equal(refresh[0].token, "jwt-2");
  assert.equal(ws.sentOf("send").length, 0, "the send waits for the refresh");
  // The heartbeat does not ping meanwhile (it would earn token_expired) and does not give up.
  h.clock.advance(DEFAULTS.heartbeatMs + DEFAULTS.heartbeatTimeoutMs);
  assert.equal(ws.sentOf("ping").length, 0);
  assert.equal(ws.closedByClient, null);

  const expiresAt = inAnHour(h);
  ws.receive({ type: "refreshed", roles: ["member", "moderator"], expires_at: expiresAt, ref: refresh[0].ref });
  assert.deepEqual(h.of("token").at(-1), { type: "token", state: "refreshed", roles: ["member", "moderator"], expiresAt });
  assert.deepEqual(h.client.roles, ["member", "moderator"]);
  assert.equal(h.client.expiresAt, expiresAt);
  const send = ws.sentOf("send");
  assert.equal(send.length, 1, "the held-back send goes out");
  ws.receive(messageFrame("general", 1, "alice", "while expired", send[0].cid));
  assert.equal((await sending).id, 1);
});

test("a send or join refused with token_expired is kept and goes out again after the refresh", async () => {
  const h = harness({ getToken: tokenSource() });
  const ws = await signedIn(h);
  await joinRoom(h, "general", 7, 0);
  const sending = h.client.send("general", "raced the expiry");
  const joining = h.client.join("other");
  const first = ws.sentOf("send")[0];
  ws.receive({ type: "error", code: "token_expired", message: "expired", ref: first.ref });
  ws.receive({ type: "error", code: "token_expired", message: "expired", ref: ws.sentOf("join").at(-1).ref });
  await settle();
  assert.deepEqual(h.client.rooms, ["general", "other"], "the join is not given up");
  ws.receive({ type: "refreshed", roles: ["member"], expires_at: inAnHour(h), ref: ws.sentOf("refresh")[0].ref });
  const again = ws.sentOf("send");
  assert.equal(again.length, 2);
  assert.equal(again[1].cid, first.cid, "the same cid: the server drops it if the first did land");
  const rejoin = ws.sentOf("join").at(-1);
  assert.equal(rejoin.room, "other");
  ws.receive(joinedFrame("other", 9, 0, { ref: rejoin.ref }));
  await joining;
  ws.receive(messageFrame("general", 1, "alice", "raced the expiry", first.cid));
  assert.equal((await sending).id, 1);
  assert.equal(h.of("outbox").filter((e) => e.state === "failed").length, 0);
});

test("proactive refresh: refreshBeforeMs before expires_at, and again before the new expiry", async () => {
  const getToken = tokenSource();
  const h = harness({ getToken, refreshBeforeMs: 20_000 });
  const ws = await signedIn(h, { expiresAt: h.clock.now() + 120_000 });
  h.clock.advance(99_999);
  await settle();
  assert.equal(ws.sentOf("refresh").length, 0);
  h.clock.advance(1);
  await settle();
  assert.deepEqual(ws.sentOf("refresh").map((f) => f.token), ["jwt-2"]);
  assert.equal(h.of("token").at(-1).reason, "scheduled");
  const next = h.clock.now() + 60_000;
  ws.receive({ type: "refreshed", roles: ["member"], expires_at: next, ref: ws.sentOf("refresh")[0].ref });
  h.clock.advance(40_000);
  await settle();
  assert.deepEqual(ws.sentOf("refresh").map((f) => f.token), ["jwt-2", "jwt-3"]);
  assert.equal(h.of("token").filter((e) => e.state === "expired").length, 0, "never expired");
});

test("a refused refresh is reported and the connection keeps its token; getToken's same token is not sent", async () => {
  let token = "jwt-a";
  const h = harness({ getToken: async () => token });
  const ws = await signedIn(h, { expiresAt: h.clock.now() + 60_000 });
  token = "jwt-of-bob";
  h.clock.advance(30_000);
  await settle();
  const refresh = ws.sentOf("refresh")[0];
  ws.receive({ type: "error", code: "forbidden", message: "token of another user", ref: refresh.ref });
  assert.deepEqual(h.of("token").at(-1), { type: "token", state: "refresh_failed", code: "forbidden", message: "token of another user" });
  assert.equal(h.client.state, "open");
  token = "jwt-a";
  assert.equal(h.client.refreshToken(), true);
  await settle();
  assert.equal(ws.sentOf("refresh").length, 1, "the token in use is not sent again");
  assert.equal(h.of("token").at(-1).code, "same_token");
});

// -- moderation ---------------------------------------------------------------------------------

for (const reason of ["kicked", "banned"]) {
  test(`left with reason ${reason}: the room is forgotten, its unsent messages fail, and a reconnect does not rejoin it`, async () => {
    const h = harness();
    const ws = await connected(h);
    await joinRoom(h, "general", 7, 0);
    await joinRoom(h, "other", 8, 0);
    ws.drop(1006); // offline, so that the message waits in the outbox
    h.clock.advance(DEFAULTS.backoffCapMs);
    const mid = FakeWebSocket.latest;
    mid.accept();
    mid.receive(joinedFrame("other", 8, 0, { ref: mid.sentOf("join")[1].ref, recovered: true }));
    const sending = h.client.send("general", "never");
    mid.receive({ type: "left", room: "general", reason });
    await assert.rejects(sending, { code: reason });
    assert.deepEqual(h.client.rooms, ["other"]);
    assert.deepEqual(h.of("left").at(-1), { type: "left", room: "general", reason });
    const next = dropAndReconnect(h);
    next.accept();
    assert.deepEqual(next.sentOf("join").map((f) => f.room), ["other"]);
  });
}

test("a join refused with banned rejects with until, and the room is not kept", async () => {
  const h = harness();
  const ws = await connected(h);
  const until = h.clock.now() + 3_600_000;
  const joining = h.client.join("general");
  ws.receive({ type: "error", code: "banned", message: "banned from general", until, ref: ws.sentOf("join")[0].ref });
  await assert.rejects(joining, (err) => err.code === "banned" && err.until === until);
  assert.deepEqual(h.client.rooms, []);
  assert.equal(h.of("error").at(-1).until, until);
  assert.equal(h.of("banned").length, 0, "a room ban is not a server ban");
});

test("a send refused with muted fails with until in the outbox event", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  const until = h.clock.now() + 600_000;
  const sending = h.client.send("general", "hush");
  ws.receive({ type: "error", code: "muted", message: "muted", until, ref: ws.sentOf("send")[0].ref });
  await assert.rejects(sending, { code: "muted" });
  const failed = h.of("outbox").at(-1);
  assert.deepEqual([failed.state, failed.reason, failed.until], ["failed", "muted", until]);
});

test("moderation delete: a deleted event for a delivered message, once; tombstones arrive as deleted messages", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 2, { history: [
    messageFrame("general", 1, "bob", "spam"),
    { ...messageFrame("general", 2, "bob", ""), deleted: true },
  ] });
  const joined = h.of("joined").at(-1);
  assert.equal(joined.history[1].deleted, true, "a tombstone in history is a deleted message");
  ws.receive({ type: "moderation", action: "delete", room: "general", id: 1, by: "carol", reason: "spam" });
  ws.receive({ type: "moderation", action: "delete", room: "general", id: 1, by: "carol", reason: "spam" });
  assert.deepEqual(h.of("deleted"), [{ type: "deleted", room: "general", id: 1, by: "carol", reason: "spam" }]);
  assert.equal(h.of("moderation").length, 2, "each broadcast is still reported");
  assert.deepEqual(h.of("moderation")[0],
    { type: "moderation", action: "delete", room: "general", by: "carol", id: 1, reason: "spam" });

  // Deleted while we were away: the rejoin's replay holds a tombstone of a message we showed.
  ws.receive(messageFrame("general", 3, "bob", "more spam"));
  const next = dropAndReconnect(h);
  next.accept();
  next.receive(joinedFrame("general", 7, 3, {
    ref: next.sentOf("join")[0].ref, recovered: true,
    history: [{ ...messageFrame("general", 3, "bob", ""), deleted: true }],
  }));
  assert.deepEqual(h.of("deleted").map((d) => d.id), [1, 3]);
  assert.deepEqual(h.of("joined").at(-1).history, [], "the tombstone is not a new message");
});

test("moderation broadcasts carry their fields; a server-wide one has room null; other rooms' are ignored", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  const until = h.clock.now() + 600_000;
  ws.receive({ type: "moderation", action: "mute", room: "general", user: "bob", by: "carol", until, reason: "calm down" });
  ws.receive({ type: "moderation", action: "ban", user: "mallory", by: "root" });
  ws.receive({ type: "moderation", action: "kick", room: "elsewhere", user: "bob", by: "carol" });
  assert.deepEqual(h.of("moderation").map(({ type, ...m }) => m), [
    { action: "mute", room: "general", by: "carol", user: "bob", until, reason: "calm down" },
    { action: "ban", room: null, by: "root", user: "mallory" },
  ]);
});

test("display names: messages carry name when the sender's token has one", async () => {
  const h = harness();
  const ws = await connected(h);
  await joinRoom(h, "general", 7, 0);
  ws.receive({ ...messageFrame("general", 1, "u-17", "hi"), name: "Bob Builder" });
  ws.receive(messageFrame("general", 2, "u-18", "hey"));
  assert.deepEqual(h.of("message").map((m) => [m.from, m.name]), [["u-17", "Bob Builder"], ["u-18", undefined]]);
});

test("moderator methods send their commands and resolve on moderated, or reject with the error of that ref", async () => {
  const h = harness();
  const ws = await connected(h);
  const answer = (extra = {}) => {
    const f = ws.sent.at(-1);
    const reply = { type: "moderated", action: f.type, ref: f.ref, ...extra };
    if (f.room) reply.room = f.room;
    if (f.user) reply.user = f.user;
    if (f.id) reply.id = f.id;
    ws.receive(reply);
    const { ref, ...frame } = f;
    return frame;
  };
  const cases = [
    [() => h.client.kick("general", "bob", "be nice"), { type: "kick", room: "general", user: "bob", reason: "be nice" }],
    [() => h.client.ban("general", "bob", { duration: 3600, reason: "spam" }), { type: "ban", room: "general", user: "bob", duration: 3600, reason: "spam" }],
    [() => h.client.ban(null, "mallory"), { type: "ban", user: "mallory" }],
    [() => h.client.unban("general", "bob"), { type: "unban", room: "general", user: "bob" }],
    [() => h.client.unban(null, "mallory"), { type: "unban", user: "mallory" }],
    [() => h.client.mute("general", "bob", { duration: 600 }), { type: "mute", room: "general", user: "bob", duration: 600 }],
    [() => h.client.unmute("general", "bob"), { type: "unmute", room: "general", user: "bob" }],
    [() => h.client.deleteMessage("general", 42, "off topic"), { type: "delete", room: "general", id: 42, reason: "off topic" }],
  ];
  for (const [call, expected] of cases) {
    const pending = call();
    await settle();
    assert.deepEqual(answer(), expected);
    const result = await pending;
    assert.equal(result.action, expected.type);
    assert.equal(result.room, expected.room ?? null);
  }

  const refused = h.client.ban("general", "carol");
  await settle();
  ws.receive({ type: "error", code: "forbidden", message: "not a moderator here", ref: ws.sentOf("ban").at(-1).ref });
  await assert.rejects(refused, { code: "forbidden" });
  const missing = h.client.deleteMessage("general", 9999);
  await settle();
  ws.receive({ type: "error", code: "not_found", message: "no message 9999", ref: ws.sentOf("delete").at(-1).ref });
  await assert.rejects(missing, { code: "not_found" });

  // Refused locally, as the server would refuse them (and count the errors).
  const before = ws.sent.length;
  await assert.rejects(h.client.mute(null, "bob"), { code: "bad_field" });
  await assert.rejects(h.client.kick("general", ""), { code: "bad_field" });
  await assert.rejects(h.client.ban("general", "bob", { duration: 1.5 }), { code: "bad_field" });
  await assert.rejects(h.client.deleteMessage("general", 0), { code: "bad_field" });
  await assert.rejects(h.client.kick("bad room", "bob"), { code: "invalid_name" });
  assert.equal(ws.sent.length, before);
});

test("heartbeat: a ping answered with an error counts as answered; one lost with the connection starts nothing", async () => {
  const h = harness();
  const ws = await connected(h);
  ws.autoPong = false;
  h.clock.advance(DEFAULTS.heartbeatMs);
  ws.receive({ type: "error", code: "internal", message: "oops", ref: ws.sentOf("ping")[0].ref });
  h.clock.advance(DEFAULTS.heartbeatTimeoutMs);
  assert.equal(ws.closedByClient, null, "an error is an answer: the connection is alive");
  h.clock.advance(DEFAULTS.heartbeatMs - DEFAULTS.heartbeatTimeoutMs); // the next ping, unanswered
  assert.equal(ws.sentOf("ping").length, 2);
  assert.equal(h.client.state, "open");
  h.client.close(); // the second ping is rejected as disconnected
  h.clock.advance(10 * 60_000);
  assert.equal(FakeWebSocket.instances.length, 1, "no reconnect from a stray heartbeat after close()");
  assert.equal(h.client.state, "closed");
  assert.equal(h.clock.pendingTimers, 0);
});
