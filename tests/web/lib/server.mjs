// Starts the real parley binary on a loopback port for the browser tests, and always stops it.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LISTENING = /parley listening on ([0-9.]+):(\d+)/;
const running = new Set();

// If the test process dies unexpectedly, do not leave servers behind.
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** The binary and repository given to run.sh (or the environment). */
export function paths() {
  const binary = process.env.PARLEY_BINARY;
  const repo = process.env.PARLEY_REPO;
  if (!binary || !repo) {
    throw new Error("set PARLEY_BINARY and PARLEY_REPO (tests/web/run.sh <binary> <repo> does)");
  }
  return { binary, repo };
}

/**
 * Starts parley and resolves once it prints "parley listening on <address>:<port>".
 * `port` 0 lets the server pick one; pass a port to restart on the same one.
 * Without `dataDir`, each start gets a fresh message database in a temporary directory, removed
 * when it stops. With `dataDir` (the caller's, kept), a restart finds the history it left.
 * With `tls` ({certificate, key}: PEM files) the server speaks https and wss only.
 */
export function startParley({ port = 0, dataDir = null, extraArgs = [], tls = null } = {}) {
  const { binary, repo } = paths();
  const ownDataDir = dataDir === null;
  if (ownDataDir) dataDir = mkdtempSync(join(tmpdir(), "parley-web-"));
  const args = [
    `--config=${join(repo, "config.ini")}`,
    `--store.path=${join(dataDir, "parley.db")}`,
    `--server.port=${port}`,
    "--server.address=127.0.0.1",
    `--server.web_root=${join(repo, "web")}`,
    "--presence.grace=500ms",
    // Small pages make "load older" testable with a handful of messages.
    "--rooms.history_on_join=10",
    ...(tls ? [`--tls.certificate=${tls.certificate}`, `--tls.key=${tls.key}`] : []),
    ...extraArgs,
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => {
    running.delete(child);
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    resolve({ code, signal });
  }));

  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley did not start within 20 s:\n${output}`)), 20_000);
    const onData = (chunk) => {
      output += chunk;
      const match = LISTENING.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[2]));
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`parley exited (${code ?? signal}) before listening:\n${output}`));
    });
  });

  return ready.then((actualPort) => ({
    port: actualPort,
    url: `${tls ? "https" : "http"}://127.0.0.1:${actualPort}/`,
    get output() { return output; },
    /** SIGTERM, then SIGKILL if it has not exited after 5 s. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  }));
}
