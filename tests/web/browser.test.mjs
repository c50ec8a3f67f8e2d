// The chat page in Debian's chromium against the real parley binary: two people chatting,
// presence (diffs, member pages, counts mode) and typing, asking who is online, history after a
// reload, recovery after a cut connection, safe rendering, a phone-sized screen and the keyboard,
// and server restarts with and without the stored history. Screenshots go to artifacts/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startParley } from "./lib/server.mjs";
import { launchBrowser } from "./lib/browser.mjs";

const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const WAIT = 20_000; // generous: the machine is shared and small

let server;
let browser;
const openContexts = new Set();

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startParley();
  browser = await launchBrowser();
});

after(async () => {
  for (const context of openContexts) await context.close().catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
});

// -- helpers ------------------------------------------------------------------------------------

/**
 * A page in a browser context of its own (own storage, like another person's browser). Collects
 * script errors and dialogs, which no test expects.
 */
async function openPage({ debug = false, viewport = { width: 1280, height: 800 }, url = server.url } = {}) {
  const context = await browser.newContext({ viewport });
  openContexts.add(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.problems = [];
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on("dialog", (dialog) => {
    page.problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await page.goto(url + (debug ? "?debug" : ""));
  return page;
}

async function closePage(page) {
  const context = page.context();
  openContexts.delete(context);
  await context.close();
}

async function signIn(page, name, room) {
  await page.fill("#sign-in-name", name);
  await page.fill("#sign-in-room", room);
  await page.click("#sign-in-submit");
  await waitConnected(page);
  await page.waitForSelector(`.room-button[aria-current="true"]`);
}

async function waitConnected(page) {
  await page.waitForSelector('#connection[data-state="open"]');
}

async function say(page, text) {
  await page.fill("#compose-text", text);
  await page.press("#compose-text", "Enter");
}

/** Texts of the delivered messages shown for `room`, in page order. */
function shownTexts(page, room) {
  return page.$$eval(`.room-view[data-room="${room}"] ol.messages:not(.outbox) li.message .text`,
    (nodes) => nodes.map((n) => n.textContent));
}

/** Waits until the delivered messages of `room` include every one of `texts`. */
async function waitForTexts(page, room, texts) {
  await page.waitForFunction(({ room, texts }) => {
    const shown = [...document.querySelectorAll(`.room-view[data-room="${room}"] ol.messages:not(.outbox) li.message .text`)]
      .map((n) => n.textContent);
    return texts.every((t) => shown.includes(t));
  }, { room, texts });
}

async function waitOutboxEmpty(page, room) {
  await page.waitForFunction((room) =>
    document.querySelectorAll(`.room-view[data-room="${room}"] ol.outbox li`).length === 0, room);
}

async function memberNames(page) {
  return page.$$eval("#member-list .member-name", (nodes) => nodes.map((n) => n.textContent));
}

async function waitMembers(page, predicate, arg) {
  await page.waitForFunction(`(${predicate})([...document.querySelectorAll("#member-list .member-name")].map((n) => n.textContent), ${JSON.stringify(arg)})`);
}

async function memberCount(page) {
  return page.textContent("#member-count");
}

/** Waits until the member panel shows exactly `names` and the count `count`. */
async function waitMemberPanel(page, names, count) {
  await page.waitForFunction(({ names, count }) =>
    JSON.stringify([...document.querySelectorAll("#member-list .member-name")].map((n) => n.textContent)) === JSON.stringify(names)
      && document.querySelector("#member-count").textContent === count, { names, count });
}

/** Every frame `page` sends on its WebSockets from now on, parsed. */
function recordSentFrames(page) {
  const frames = [];
  page.on("websocket", (ws) => ws.on("framesent", ({ payload }) => {
    try {
      frames.push(JSON.parse(payload));
    } catch {
      // not ours
    }
  }));
  return frames;
}

/**
 * Raw protocol connections, more users than browser contexts would be. They live in a page of
 * the server's own origin because the server only upgrades same-origin browser requests.
 */
async function openBots(url = server.url) {
  const context = await browser.newContext();
  openContexts.add(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(url);
  await page.evaluate(() => {
    const bots = new Map();
    let nextRef = 1;
    globalThis.bots = {
      connect: (name) => new Promise((resolve, reject) => {
        const socket = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws?name=${name}`);
        const waiting = new Map();
        bots.set(name, { socket, waiting });
        socket.onmessage = (ev) => {
          const frame = JSON.parse(ev.data);
          if (frame.type === "welcome") resolve(frame.user);
          const answer = waiting.get(frame.ref);
          waiting.delete(frame.ref);
          answer?.(frame);
        };
        socket.onclose = (ev) => reject(new Error(`${name} closed with ${ev.code}`));
      }),
      request: (name, frame) => new Promise((resolve) => {
        const bot = bots.get(name);
        const ref = `bot-${nextRef++}`;
        bot.waiting.set(ref, resolve);
        bot.socket.send(JSON.stringify({ ...frame, ref }));
      }),
      close: (name) => {
        bots.get(name)?.socket.close();
        bots.delete(name);
      },
    };
  });
  const expect = (frame, type) => {
    assert.equal(frame.type, type, `a bot expected ${type}, got ${JSON.stringify(frame)}`);
    return frame;
  };
  return {
    connect: (name) => page.evaluate((name) => globalThis.bots.connect(name), name),
    join: async (name, room) => expect(await page.evaluate(([name, room]) => globalThis.bots.request(name, { type: "join", room }), [name, room]), "joined"),
    leave: async (name, room) => expect(await page.evaluate(([name, room]) => globalThis.bots.request(name, { type: "leave", room }), [name, room]), "left"),
    close: (name) => page.evaluate((name) => globalThis.bots.close(name), name),
    done: () => closePage(page),
  };
}

function assertNoProblems(...pages) {
  for (const page of pages) assert.deepEqual(page.problems, [], "no script errors or dialogs");
}

// -- tests --------------------------------------------------------------------------------------

test("two browser contexts chat: messages both ways, own ones marked, presence and typing appear", async () => {
  const room = "lobby";
  const alice = await openPage();
  const bob = await openPage();
  await signIn(alice, "alice", room);
  await signIn(bob, "bob", room);

  // Presence: alice sees bob come online (a presence_diff), with the count and an announcement.
  await waitMembers(alice, (names) => names.includes("bob"));
  assert.deepEqual(await memberNames(alice), ["alice", "bob"]);
  assert.equal(await memberCount(alice), "2");
  assert.equal(await alice.textContent("#presence-news"), "bob joined.");
  assert.equal(await alice.isHidden("#member-summary"), true, "a complete list needs no summary");
  assert.equal(await alice.textContent("#whoami"), "alice");

  // Typing: bob types, alice sees the indicator.
  await bob.click("#compose-text");
  await bob.keyboard.type("hello al", { delay: 20 });
  await alice.waitForFunction(() => document.querySelector("#typing").textContent === "bob is typing…");

  // Enter sends; the message reaches alice and clears bob's typing indicator there.
  await bob.keyboard.type("ice");
  await bob.keyboard.press("Enter");
  await waitForTexts(alice, room, ["hello alice"]);
  await alice.waitForFunction(() => document.querySelector("#typing").textContent === "");
  assert.equal(await bob.inputValue("#compose-text"), "", "the composer is cleared after sending");

  await say(alice, "hi bob");
  await waitForTexts(bob, room, ["hello alice", "hi bob"]);
  await waitOutboxEmpty(alice, room);

  // Sender, time and "own" marking.
  const aliceView = await alice.$$eval(`.room-view[data-room="${room}"] ol.messages li.message`, (items) =>
    items.map((li) => ({
      from: li.querySelector(".from").textContent,
      own: li.classList.contains("own"),
      hasTime: Boolean(li.querySelector("time[datetime]")?.textContent),
      text: li.querySelector(".text").textContent,
    })));
  assert.deepEqual(aliceView, [
    { from: "bob", own: false, hasTime: true, text: "hello alice" },
    { from: "alice", own: true, hasTime: true, text: "hi bob" },
  ]);

  // A second room: unread count while alice is elsewhere.
  await alice.fill("#join-room", "side");
  await alice.press("#join-room", "Enter");
  await alice.waitForSelector('.room-button[aria-current="true"] >> text=#side');
  await say(bob, "are you there?");
  await alice.waitForFunction(() =>
    [...document.querySelectorAll(".room-button")].some((b) => b.textContent.includes("#lobby") && b.querySelector(".badge:not([hidden])")?.textContent === "1"));

  // Presence again: bob leaves for good (grace is 500 ms in these tests), alice sees him go.
  await alice.click(".room-button >> text=#lobby");
  await closePage(bob);
  await waitMemberPanel(alice, ["alice"], "1");
  assert.equal(await alice.textContent("#presence-news"), "bob left.");
  assertNoProblems(alice);
  await closePage(alice);
});

test("a crowded room: the member list is paged with who, turns into a count past the user limit and back into names", async () => {
  // Pages of two names and counts mode above four users make every rule visible with five bots.
  const crowd = await startParley({ extraArgs: ["--presence.page_size=2", "--presence.user_limit=4"] });
  try {
    const room = "crowd";
    const bots = await openBots(crowd.url);
    for (const name of ["u1", "u2", "u3"]) {
      await bots.connect(name);
      await bots.join(name, room);
    }
    const alice = await openPage({ url: crowd.url });
    const sent = recordSentFrames(alice);
    await signIn(alice, "alice", room);

    // joined holds [alice, u1] of 4; the page asks for the rest after u1 and shows everyone.
    await waitMemberPanel(alice, ["alice", "u1", "u2", "u3"], "4");
    const pages = sent.filter((f) => f.type === "who");
    assert.equal(pages[0]?.after, "u1", `paged after the first page: ${JSON.stringify(pages)}`);
    assert.equal(pages.length, 1, "one more page was enough");
    assert.equal(await alice.isHidden("#member-summary"), true);

    // A fifth user: past the limit the room only counts.
    await bots.connect("u4");
    await bots.join("u4", room);
    await alice.waitForFunction(() => document.querySelector("#member-summary").textContent === "5 online");
    assert.deepEqual(await memberNames(alice), [], "no names in counts mode");
    assert.equal(await memberCount(alice), "", "the summary alone says the number");
    assert.equal(await alice.isVisible("#member-summary"), true);

    // Two leave: at 3 (90 % of 4 or less) names come back, all of them in presence_state, so the
    // page needs no further who (every member paging at once is what that rule avoids).
    const whoBefore = sent.filter((f) => f.type === "who").length;
    await bots.leave("u4", room);
    await bots.leave("u3", room);
    await waitMemberPanel(alice, ["alice", "u1", "u2"], "3");
    assert.equal(await alice.isHidden("#member-summary"), true);
    assert.equal(sent.filter((f) => f.type === "who").length, whoBefore, "no who after a full presence_state");

    // Back in users mode, diffs name people again.
    await bots.connect("u5");
    await bots.join("u5", room);
    await waitMemberPanel(alice, ["alice", "u1", "u2", "u5"], "4");
    assert.equal(await alice.textContent("#presence-news"), "u5 joined.");
    assertNoProblems(alice);
    await closePage(alice);
    await bots.done();
  } finally {
    await crowd.stop();
  }
});

test("clicking an author's name tells whether they are online anywhere, and on how many connections", async () => {
  const room = "status";
  const alice = await openPage();
  const bob = await openPage();
  await signIn(alice, "alice4", room);
  await signIn(bob, "bob4", room);
  await say(bob, "ask about me");
  await waitForTexts(alice, room, ["ask about me"]);
  const author = `.room-view[data-room="${room}"] li.message[data-from="bob4"] button.from`;
  const answer = `.room-view[data-room="${room}"] li.message[data-from="bob4"] .author-status`;
  const ask = async () => {
    await alice.click(author);
    await alice.waitForFunction((sel) => {
      const text = document.querySelector(sel)?.textContent;
      return text && text !== "checking…";
    }, answer);
    return alice.textContent(answer);
  };
  assert.equal(await alice.textContent(author), "bob4", "the button reads as the name");
  assert.equal(await ask(), "online · 1 connection");

  // A second connection of bob's, in no room at all: status counts it all the same.
  const bots = await openBots();
  await bots.connect("bob4");
  assert.equal(await ask(), "online · 2 connections");
  assert.equal(await alice.getAttribute(answer, "role"), "status", "screen readers hear the answer");

  // bob goes away entirely; after the grace period (500 ms here) he is offline.
  await closePage(bob);
  await bots.close("bob4");
  const deadline = Date.now() + WAIT;
  let said = await ask();
  while (said !== "offline" && Date.now() < deadline) {
    assert.match(said, /^online/);
    await new Promise((resolve) => setTimeout(resolve, 250));
    said = await ask();
  }
  assert.equal(said, "offline");
  assertNoProblems(alice);
  await closePage(alice);
  await bots.done();
});

test("a reload shows the room's history, and 'Load older messages' pages back to the first one", async () => {
  const room = "history";
  const page = await openPage();
  await signIn(page, "carol", room);
  const texts = Array.from({ length: 15 }, (_, i) => `note ${i + 1}`);
  for (const text of texts) await say(page, text);
  await waitForTexts(page, room, texts);
  await waitOutboxEmpty(page, room);

  await page.reload();
  await waitConnected(page); // the tab remembers its name and rooms
  // The server sends the newest 10 on join (history_on_join=10 in these tests).
  await waitForTexts(page, room, texts.slice(5));
  assert.deepEqual(await shownTexts(page, room), texts.slice(5));
  const older = `.room-view[data-room="${room}"] .load-older`;
  await page.waitForSelector(older, { state: "visible" });
  await page.click(older);
  await waitForTexts(page, room, texts);
  assert.deepEqual(await shownTexts(page, room), texts, "all of them, once, oldest first");
  await page.waitForSelector(older, { state: "hidden" });
  assertNoProblems(page);
  await closePage(page);
});

test("after the connection is cut while the other user keeps sending, every missed message appears exactly once and in order", async () => {
  const room = "recovery";
  const alice = await openPage({ debug: true });
  const bob = await openPage();
  await signIn(alice, "alice2", room);
  await signIn(bob, "bob2", room);
  await say(bob, "before the cut");
  await waitForTexts(alice, room, ["before the cut"]);

  // A message in flight when the network goes: it may or may not have reached the server.
  await alice.evaluate((room) => {
    globalThis.parleyDebug.client.send(room, "in flight").catch(() => {});
    globalThis.parleyDebug.network.cut();
  }, room);
  await alice.waitForSelector('#connection[data-state="offline"]');

  const missed = Array.from({ length: 6 }, (_, i) => `missed ${i + 1}`);
  for (const text of missed) await say(bob, text);
  await waitForTexts(bob, room, missed);
  await waitOutboxEmpty(bob, room);

  // Written while offline: shown as waiting, sent after the reconnect.
  await say(alice, "written offline");
  await alice.waitForSelector(`.room-view[data-room="${room}"] ol.outbox li >> text=written offline`);
  assert.match(await alice.textContent(`.room-view[data-room="${room}"] ol.outbox li .delivery`), /Waiting for the connection/);
  assert.deepEqual(await shownTexts(alice, room), ["before the cut"], "nothing arrives while cut");

  await alice.evaluate(() => globalThis.parleyDebug.network.restore());
  await waitConnected(alice);
  await waitForTexts(alice, room, [...missed, "in flight", "written offline"]);
  await waitOutboxEmpty(alice, room);

  // A last message from bob: everything sent before it has arrived once it shows.
  await say(bob, "sentinel");
  await waitForTexts(alice, room, ["sentinel"]);
  await waitForTexts(bob, room, ["in flight", "written offline", "sentinel"]);

  const seenByAlice = await shownTexts(alice, room);
  const seenByBob = await shownTexts(bob, room);
  for (const seen of [seenByAlice, seenByBob]) {
    assert.equal(new Set(seen).size, seen.length, `no duplicates in ${JSON.stringify(seen)}`);
  }
  // bob's messages are in the order he sent them, with nothing missing.
  const bobsOrder = seenByAlice.filter((t) => t === "before the cut" || t.startsWith("missed") || t === "sentinel");
  assert.deepEqual(bobsOrder, ["before the cut", ...missed, "sentinel"]);
  // Both views agree on the order of the room.
  assert.deepEqual(seenByAlice, seenByBob);
  // The page saw the gap-free recovery: no gap notice.
  assert.equal(await alice.locator(`.room-view[data-room="${room}"] .notice.gap`).count(), 0);
  assertNoProblems(alice, bob);
  await closePage(alice);
  await closePage(bob);
});

test("HTML and script payloads show as literal text and run nothing", async () => {
  const room = "payloads";
  const alice = await openPage();
  const mallory = await openPage();
  await signIn(alice, "alice3", room);
  await signIn(mallory, "mallory", room);
  const payloads = [
    `<img src=x onerror="window.__pwned = 'img'; alert(1)">`,
    `<script>window.__pwned = 'script'; alert(2)</script>`,
    `<b>bold?</b> &amp; <a href="javascript:alert(3)">link</a>`,
    `"><svg onload="window.__pwned='svg'">`,
  ];
  for (const text of payloads) await say(mallory, text);
  await waitForTexts(alice, room, payloads);

  assert.deepEqual(await shownTexts(alice, room), payloads, "exactly the characters that were sent");
  for (const page of [alice, mallory]) {
    const view = `.room-view[data-room="${room}"]`;
    assert.equal(await page.locator(`${view} img, ${view} script, ${view} b, ${view} a, ${view} svg`).count(), 0,
      "no element was created from message text");
    assert.equal(await page.evaluate(() => globalThis.__pwned), undefined, "no payload ran");
  }
  assertNoProblems(alice, mallory);
  await closePage(alice);
  await closePage(mallory);
});

test("the keyboard alone gets through sign-in, joining and sending, in a sensible focus order", async () => {
  const page = await openPage();
  // The name field has focus on arrival.
  assert.equal(await page.evaluate(() => document.activeElement.id), "sign-in-name");
  await page.keyboard.type("dave");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "sign-in-room");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("keys");
  await page.keyboard.press("Enter");
  await waitConnected(page);
  // After connecting, focus is in the composer: type and press Enter.
  assert.equal(await page.evaluate(() => document.activeElement.id), "compose-text");
  await page.keyboard.type("typed without a mouse");
  await page.keyboard.press("Enter");
  await waitForTexts(page, "keys", ["typed without a mouse"]);

  // Tab order from the top of the page: header, rooms, conversation, composer. Tab through more
  // than one full cycle, then read the cycle from the skip link, the first stop on the page.
  const cycle = [];
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press("Tab");
    cycle.push(await page.evaluate(() => {
      const a = document.activeElement;
      return a.id || a.className || a.tagName;
    }));
  }
  const start = cycle.indexOf("skip-link");
  assert.ok(start >= 0, `the skip link is reachable: ${JSON.stringify(cycle)}`);
  const order = cycle.slice(start);
  const position = (name) => order.findIndex((x) => x.includes(name));
  const expected = ["skip-link", "sign-out", "room-button", "join-room", "leave-room", "room-view", "compose-text", "compose-send"];
  const positions = expected.map(position);
  assert.ok(positions.every((p) => p >= 0), `all reachable by Tab: ${JSON.stringify(order)}`);
  assert.deepEqual([...positions].sort((a, b) => a - b), positions, `in this order: ${JSON.stringify(order)}`);

  // Every input has a label.
  const unlabelled = await page.$$eval("input, textarea", (inputs) =>
    inputs.filter((i) => !i.labels?.length && !i.getAttribute("aria-label")).map((i) => i.id));
  assert.deepEqual(unlabelled, []);
  assertNoProblems(page);
  await closePage(page);
});

test("the page fits a phone-sized screen and a desktop; screenshots saved in artifacts/", async () => {
  const room = "showcase";
  const desktop = await openPage();
  const phone = await openPage({ viewport: { width: 390, height: 740 } });
  await signIn(desktop, "erin", room);
  await signIn(phone, "frank", room);
  await say(desktop, "Morning! Did the deploy go out?");
  await say(phone, "Yes, 10 minutes ago. Looks good so far — no errors. ✓");
  await say(desktop, "Great, thanks. Shipping the <chat> page next.");
  await waitForTexts(phone, room, ["Great, thanks. Shipping the <chat> page next."]);
  await waitForTexts(desktop, room, ["Great, thanks. Shipping the <chat> page next."]);
  await waitOutboxEmpty(desktop, room);
  await phone.click("#compose-text");
  await phone.keyboard.type("typing");
  await desktop.waitForFunction(() => document.querySelector("#typing").textContent === "frank is typing…");

  for (const [page, width, height] of [[desktop, 1280, 800], [phone, 390, 740]]) {
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      composer: document.querySelector("#compose").getBoundingClientRect().bottom,
      messages: document.querySelector(".room-view:not([hidden])").getBoundingClientRect().height,
    }));
    assert.ok(layout.scrollWidth <= width, `no sideways scrolling at ${width}px (${layout.scrollWidth})`);
    assert.ok(layout.composer <= height + 1, `the composer is on screen at ${width}x${height}`);
    assert.ok(layout.messages >= 200, `the message list keeps room at ${width}x${height} (${layout.messages}px)`);
  }

  const shots = [["chat.png", desktop], ["chat-phone.png", phone]];
  for (const [file, page] of shots) {
    await page.screenshot({ path: `${ARTIFACTS}${file}` });
    assert.ok(statSync(`${ARTIFACTS}${file}`).size > 5_000, `${file} was written`);
  }
  assertNoProblems(desktop, phone);
  await closePage(desktop);
  await closePage(phone);
});

test("after a server restart on a new database (history lost, new epoch) the page reconnects and says the gap could not be recovered", async () => {
  const room = "restart";
  const page = await openPage();
  await signIn(page, "grace", room);
  await say(page, "before the restart");
  await waitForTexts(page, room, ["before the restart"]);

  const port = server.port;
  await server.stop();
  await page.waitForFunction(() => ["offline", "reconnecting"].includes(document.querySelector("#connection").dataset.state));
  server = await startParley({ port });
  await waitConnected(page);
  const notice = await page.waitForSelector(`.room-view[data-room="${room}"] .notice.gap`);
  assert.match(await notice.textContent(), /history/);

  // Chat goes on in the new epoch.
  const other = await openPage();
  await signIn(other, "heidi", room);
  await say(other, "after the restart");
  await waitForTexts(page, room, ["after the restart"]);
  assertNoProblems(page, other);
  await closePage(page);
  await closePage(other);
});

test("after a server restart on the same database the page reconnects and recovers without a gap", async () => {
  const room = "durable";
  const dataDir = mkdtempSync(join(tmpdir(), "parley-web-durable-"));
  const port = server.port;
  await server.stop();
  server = await startParley({ port, dataDir });
  const page = await openPage();
  await signIn(page, "ivan", room);
  await say(page, "before the restart");
  await waitForTexts(page, room, ["before the restart"]);

  await server.stop();
  await page.waitForFunction(() => ["offline", "reconnecting"].includes(document.querySelector("#connection").dataset.state));
  server = await startParley({ port, dataDir });
  await waitConnected(page);

  // A newcomer sees the stored history; the page that was there gets the new message once.
  const other = await openPage();
  await signIn(other, "judy", room);
  await waitForTexts(other, room, ["before the restart"]);
  await say(other, "after the restart");
  await waitForTexts(page, room, ["after the restart"]);
  assert.deepEqual(await shownTexts(page, room), ["before the restart", "after the restart"]);
  assert.equal(await page.locator(`.room-view[data-room="${room}"] .notice.gap`).count(), 0);
  assertNoProblems(page, other);
  await closePage(page);
  await closePage(other);
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
