// The page's frame in Debian's chromium against the real binary: the first load asks for nothing
// that is missing (no 404, e.g. for a favicon) and logs no console error, and on a phone the top
// bar stays one row with "Sign out" beside the brand, even for a long name.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startParley } from "./lib/server.mjs";
import { launchBrowser } from "./lib/browser.mjs";

const WAIT = 20_000;

let server;
let browser;

before(async () => {
  server = await startParley();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

test("the first load gets no 404 (the favicon is there) and logs no console error", async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    const failed = [];
    const errors = [];
    const icons = [];
    page.on("response", (response) => {
      if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
      if (/favicon/.test(response.url())) icons.push(`${response.status()} ${response.url()}`);
    });
    page.on("requestfailed", (request) => failed.push(`failed ${request.url()}`));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(server.url, { waitUntil: "load" });
    // Chromium asks for the icon after the load: wait until it has been answered.
    await page.waitForResponse((response) => /favicon/.test(response.url()), { timeout: WAIT })
      .catch(() => {});
    await page.waitForTimeout(500);
    assert.deepEqual(failed, []);
    assert.deepEqual(errors, []);
    assert.ok(icons.some((line) => line.startsWith("200 ") && line.endsWith("/favicon.svg")),
      `the icon was loaded: ${icons.join(", ")}`);
  } finally {
    await context.close();
  }
});

test("on a 360x740 phone the top bar is one row with Sign out beside the brand", async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(server.url);
    // 32 characters: the longest name the server accepts.
    await page.fill("#sign-in-name", "margaret_hamilton_apollo_guidanc");
    await page.fill("#sign-in-room", "general");
    await page.click("#sign-in-submit");
    await page.waitForSelector('#connection[data-state="open"]');
    await page.waitForSelector("#sign-out:not([hidden])");

    const box = (selector) => page.locator(selector).boundingBox();
    const bar = await box(".topbar");
    const brand = await box(".brand");
    const signOut = await box("#sign-out");
    const whoami = await box("#whoami");
    const row = (b) => b.y + b.height / 2;
    // Same row: the vertical centres of brand, name and button lie within the brand's height.
    assert.ok(Math.abs(row(signOut) - row(brand)) < brand.height / 2,
      `Sign out (${JSON.stringify(signOut)}) is on the brand's row (${JSON.stringify(brand)})`);
    assert.ok(Math.abs(row(whoami) - row(brand)) < brand.height / 2, "the name is on that row too");
    // One line: the bar is no taller than its tallest item plus its padding, and nothing sticks out.
    assert.ok(bar.height < Math.max(brand.height, signOut.height) * 2, `bar height ${bar.height}`);
    assert.ok(signOut.x + signOut.width <= bar.x + bar.width + 0.5, "Sign out stays inside the bar");
    assert.ok(signOut.x >= whoami.x + whoami.width, "Sign out comes after the name");
    // The button's label itself is on one line.
    const lineHeight = await page.$eval("#sign-out", (el) => parseFloat(getComputedStyle(el).lineHeight) || 20);
    assert.ok(signOut.height < lineHeight * 2 + 16, `Sign out is one line (${signOut.height}px)`);
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= 360, `no horizontal scrolling (${scrollWidth}px)`);
  } finally {
    await context.close();
  }
});
