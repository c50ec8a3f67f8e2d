// Checks on the source of web/ that need neither a server nor a browser: nothing in the page can
// turn text into markup, and the protocol client stays free of the DOM so that Node can use it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const webRoot = fileURLToPath(new URL("../../web/", import.meta.url));

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

// Every API that parses a string as HTML. Built from pieces so that this file does not match
// itself if it is ever copied under web/.
const HTML_SINKS = ["inner" + "HTML", "outer" + "HTML", "insertAdjacent" + "HTML", "document" + ".write", "createContextual" + "Fragment", "parseFrom" + "String", "srcdoc"];

test("no API under web/ parses strings as HTML (innerHTML, outerHTML, insertAdjacentHTML, document.write, ...)", () => {
  const files = filesUnder(webRoot);
  assert.ok(files.some((f) => f.endsWith("app.js")), "the page's files are found");
  const hits = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, i) => {
      for (const sink of HTML_SINKS) {
        if (line.includes(sink)) hits.push(`${relative(webRoot, file)}:${i + 1}: ${sink}`);
      }
    });
  }
  assert.deepEqual(hits, []);
});

test("no inline scripts or event-handler attributes in web/index.html", () => {
  const html = readFileSync(join(webRoot, "index.html"), "utf8");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "every script is an external file");
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i, "no onclick= and the like");
});

test("the protocol client module uses no DOM", () => {
  const source = readFileSync(join(webRoot, "parley-client.js"), "utf8");
  // Uses, not mentions: `window.x`, `document[...]`; comments may talk about windows.
  for (const word of ["document", "window", "localStorage", "sessionStorage", "navigator", "location"]) {
    assert.doesNotMatch(source, new RegExp(`\\b${word}\\s*[.[]`), `parley-client.js uses ${word}`);
  }
  assert.doesNotMatch(source, /\bHTML[A-Za-z]*Element\b/);
});

test("the protocol client module loads in Node and needs a WebSocket only when constructed", async () => {
  const mod = await import("../../web/parley-client.js");
  assert.equal(typeof mod.ParleyClient, "function");
  if (typeof globalThis.WebSocket !== "function") {
    assert.throws(() => new mod.ParleyClient(), /WebSocket/);
  }
});
