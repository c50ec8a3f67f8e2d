// The chat page in chromium against the real parley binary in jwt mode ([auth] mode = "jwt"):
// signing in with a token from the sign-in form, a moderator deleting a member's message with
// /delete so that both pages show the tombstone, a refused token and one about to expire replaced
// through the page's banner, and a page without a token told that the server requires sign-in.
// Tokens are minted by the binary (`parley token`) with the server's own config.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startParley, mintToken } from "./lib/server.mjs";
import { launchBrowser } from "./lib/browser.mjs";

const WAIT = 20_000; // generous: the machine is shared and small
// HS256 wants at least 32 bytes; a test secret, used for nothing else.
const SECRET = "parley-web-auth-test-secret-0123456789abcdef";

let server;
let browser;
const openContexts = new Set();

before(async () => {
  server = await startParley({
    // A short auth_timeout: the page without a token is told sooner (the default is 5 s).
    config: `[auth]\nmode="jwt"\nalgorithm="HS256"\nsecret="${SECRET}"\nauth_timeout=2s\n`,
  });
  browser = await launchBrowser();
});

after(async () => {
  for (const context of openContexts) await context.close().catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** A page in a context of its own; script errors and dialogs are collected, none is expected. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  openContexts.add(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.problems = [];
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on("dialog", (dialog) => {
    page.problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.sockets = [];
  page.on("websocket", (ws) => page.sockets.push(ws.url()));
  await page.goto(server.url);
  return page;
}

async function signInWithToken(page, token, room) {
  await page.fill("#sign-in-token", token);
  await page.fill("#sign-in-room", room);
  await page.click("#sign-in-submit");
  await page.waitForSelector('#connection[data-state="open"]');
  await page.waitForSelector(`.room-button[aria-current="true"]`);
}

async function say(page, text) {
  await page.fill("#compose-text", text);
  await page.press("#compose-text", "Enter");
}

const messageSelector = (room) => `.room-view[data-room="${room}"] ol.messages:not(.outbox) li.message`;

/** Waits for a delivered message with `text` in `room` and returns its id. */
async function messageId(page, room, text) {
  const handle = await page.waitForFunction(({ selector, text }) => {
    const li = [...document.querySelectorAll(selector)].find((n) => n.querySelector(".text")?.textContent === text);
    return li?.dataset.id;
  }, { selector: messageSelector(room), text });
  return Number(await handle.jsonValue());
}

test("alice (moderator) and bob (member) sign in with tokens, chat, and alice's /delete leaves a tombstone on both pages", async () => {
  const room = "moderated";
  const aliceToken = mintToken(server.configPath, { sub: "alice", roles: ["moderator"], ttl: "1h" });
  const bobToken = mintToken(server.configPath, { sub: "bob", roles: ["member"], ttl: "1h" });
  const alice = await openPage();
  const bob = await openPage();
  await signInWithToken(alice, aliceToken, room);
  await signInWithToken(bob, bobToken, room);

  // The server named each user from the token, and the token never went into a URL.
  assert.equal(await alice.textContent("#whoami"), "alice");
  assert.equal(await bob.textContent("#whoami"), "bob");
  for (const page of [alice, bob]) {
    assert.ok(page.sockets.length >= 1);
    for (const url of page.sockets) assert.ok(!url.includes(aliceToken) && !url.includes(bobToken), `no token in ${url}`);
  }

  await say(alice, "welcome, bob");
  await messageId(bob, room, "welcome, bob");
  await say(bob, "buy cheap watches at example.test");
  const id = await messageId(alice, room, "buy cheap watches at example.test");
  assert.equal(await messageId(bob, room, "buy cheap watches at example.test"), id, "the same id on both pages");

  // A moderator sees message ids (for /delete); a member does not.
  await alice.waitForSelector(`${messageSelector(room)}[data-id="${id}"] .msg-id`);
  assert.equal(await bob.$(`${messageSelector(room)}[data-id="${id}"] .msg-id`), null);

  await say(alice, `/delete ${id}`);
  for (const page of [alice, bob]) {
    const tombstone = `${messageSelector(room)}.deleted[data-id="${id}"] .text`;
    await page.waitForSelector(tombstone);
    assert.equal(await page.textContent(tombstone), "message deleted by alice");
  }
  // The command was not sent as a message, and the other messages are untouched.
  const texts = await bob.$$eval(`${messageSelector(room)} .text`, (nodes) => nodes.map((n) => n.textContent));
  assert.deepEqual(texts, ["welcome, bob", "message deleted by alice"]);

  // bob is no moderator: the server refuses his /delete, and the page says so.
  await say(bob, `/delete ${await messageId(bob, room, "welcome, bob")}`);
  await bob.waitForSelector(`.room-view[data-room="${room}"] .notice.error`);
  assert.match(await bob.textContent(`.room-view[data-room="${room}"] .notice.error`), /not allowed/);
  assert.equal(await alice.textContent(`${messageSelector(room)}:first-child .text`), "welcome, bob");

  // After a reload the tombstone comes from the server's history.
  await bob.reload();
  await bob.waitForSelector('#connection[data-state="open"]');
  await bob.waitForSelector(`${messageSelector(room)}.deleted[data-id="${id}"]`);

  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
});

test("a refused token and one about to expire: the banner asks for a new one, and the connection refreshes without reconnecting", async () => {
  const page = await openPage();
  const frames = [];
  page.on("websocket", (ws) => ws.on("framesent", ({ payload }) => frames.push(JSON.parse(payload))));
  await page.fill("#sign-in-token", "not.a.token");
  await page.fill("#sign-in-room", "refreshing");
  await page.click("#sign-in-submit");
  // The browser sees the handshake's 401 as a failed connection; the client then sends the token
  // in a frame, learns that it is refused (4401), and the page asks for another one.
  await page.waitForSelector("#token-banner:not([hidden])");
  assert.match(await page.textContent("#token-banner-text"), /did not accept the token/);

  // A token that expires within the client's refresh lead: signed in, it is refreshed at once,
  // which asks the user again.
  await page.fill("#token-input", mintToken(server.configPath, { sub: "carol", roles: ["member"], ttl: "20s" }));
  await page.press("#token-input", "Enter");
  await page.waitForSelector('#connection[data-state="open"]');
  assert.equal(await page.textContent("#whoami"), "carol");
  await page.waitForFunction(() => /expires at/.test(document.querySelector("#token-banner-text").textContent)
    && !document.querySelector("#token-banner").hidden);
  const sockets = page.sockets.length;

  const fresh = mintToken(server.configPath, { sub: "carol", roles: ["member", "moderator"], ttl: "1h" });
  await page.fill("#token-input", fresh);
  await page.press("#token-input", "Enter");
  await page.waitForFunction(() => /moderator/.test(document.querySelector("#whoami").title));
  assert.equal(await page.isHidden("#token-banner"), true);
  assert.equal(page.sockets.length, sockets, "refreshed on the same connection");
  assert.deepEqual(frames.filter((f) => f.type === "refresh").map((f) => f.token), [fresh]);
  assert.equal(await page.getAttribute("#connection", "data-state"), "open");
  assert.deepEqual(page.problems, []);
});

test("a page without a token on a jwt server is told that the server requires sign-in", async () => {
  const page = await openPage();
  await page.fill("#sign-in-name", "mallory");
  await page.fill("#sign-in-room", "general");
  await page.click("#sign-in-submit");
  await page.waitForFunction(() => /requires sign-in/.test(document.querySelector("#sign-in-error").textContent));
  assert.equal(await page.isVisible("#sign-in"), true, "back on the sign-in form");
  assert.equal(await page.isVisible("#sign-in-token"), true, "with the token field to fill in");
  assert.deepEqual(page.problems, []);
});
