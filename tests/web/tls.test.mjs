// The chat page over https in Debian's Chromium: the page switches to wss:// by itself, and two
// people chat through a TLS server. The certificate is made here with the openssl CLI.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startParley } from "./lib/server.mjs";
import { launchBrowser } from "./lib/browser.mjs";

const WAIT = 20_000;

let certDir;
let server;
let browser;

before(async () => {
  certDir = mkdtempSync(join(tmpdir(), "parley-web-tls-"));
  const tls = { certificate: join(certDir, "cert.pem"), key: join(certDir, "key.pem") };
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", tls.key, "-out", tls.certificate,
  ], { stdio: "ignore" });
  server = await startParley({ tls });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

/** A page in its own context that accepts the throw-away certificate; records its sockets. */
async function openPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.sockets = [];
  page.problems = [];
  page.on("websocket", (ws) => page.sockets.push(ws.url()));
  page.on("pageerror", (err) => page.problems.push(err.message));
  await page.goto(server.url);
  return page;
}

async function signIn(page, name, room) {
  await page.fill("#sign-in-name", name);
  await page.fill("#sign-in-room", room);
  await page.click("#sign-in-submit");
  await page.waitForSelector('#connection[data-state="open"]');
}

test("the chat page works over https: it connects with wss and two people chat", async () => {
  assert.match(server.url, /^https:/);
  const alice = await openPage();
  const bob = await openPage();
  await signIn(alice, "alice", "secure");
  await signIn(bob, "bob", "secure");
  assert.equal(await alice.evaluate(() => location.protocol), "https:");
  assert.ok(alice.sockets.length > 0 && alice.sockets.every((url) => url.startsWith("wss://")),
    `sockets opened: ${alice.sockets.join(", ")}`);

  await bob.fill("#compose-text", "hello over tls");
  await bob.press("#compose-text", "Enter");
  await alice.waitForFunction(() =>
    [...document.querySelectorAll('.room-view[data-room="secure"] ol.messages li.message .text')]
      .some((el) => el.textContent === "hello over tls"));
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.context().close();
  await bob.context().close();
});
