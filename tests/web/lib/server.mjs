// Starts the real parley binary on a loopback port for the browser tests, and always stops it.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LISTENING = /parley listening on ([0-9.]+):(\d+)/;
const ADMIN_LISTENING = /parley admin listening on ([0-9.]+):(\d+)/;
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
 * Starts parley and resolves once it prints "parley listening on <address>:<port>" and its admin
 * listening line. The admin listener gets a free port too (--admin.port=0; many servers run at
 * once): `adminPort` and `adminUrl` name it.
 * `port` 0 lets the server pick one; pass a port to restart on the same one.
 * Without `dataDir`, each start gets a fresh message database in a temporary directory, removed
 * when it stops. With `dataDir` (the caller's, kept), a restart finds the history it left.
 * With `tls` ({certificate, key}: PEM files) the server speaks https and wss only.
 * With `config` (INI text, e.g. "[auth]\nmode=\"jwt\"\nsecret=\"...\"") the server reads the
 * repository's config.ini with those sections replaced by the given ones, from a file of its own
 * whose path is `configPath` (mintToken needs it: the token must be signed with that secret).
 */
export function startParley({ port = 0, dataDir = null, extraArgs = [], tls = null, config = null } = {}) {
  const { binary, repo } = paths();
  const ownDataDir = dataDir === null;
  if (ownDataDir) dataDir = mkdtempSync(join(tmpdir(), "parley-web-"));
  const configDir = config === null ? null : mkdtempSync(join(tmpdir(), "parley-web-config-"));
  const configPath = config === null ? join(repo, "config.ini") : join(configDir, "parley.ini");
  if (config !== null) writeFileSync(configPath, withSections(readFileSync(join(repo, "config.ini"), "utf8"), config));
  const args = [
    `--config=${configPath}`,
    `--store.path=${join(dataDir, "parley.db")}`,
    `--server.port=${port}`,
    "--server.address=127.0.0.1",
    `--server.web_root=${join(repo, "web")}`,
    "--presence.grace=500ms",
    // Small pages make "load older" testable with a handful of messages.
    "--rooms.history_on_join=10",
    "--admin.port=0",
    `--admin.web_root=${join(repo, "web-admin")}`,
    ...(tls ? [`--tls.certificate=${tls.certificate}`, `--tls.key=${tls.key}`] : []),
    ...extraArgs,
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => {
    running.delete(child);
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    if (configDir) rmSync(configDir, { recursive: true, force: true });
    resolve({ code, signal });
  }));

  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley did not start within 20 s:\n${output}`)), 20_000);
    const onData = (chunk) => {
      output += chunk;
      const match = LISTENING.exec(output);
      const admin = ADMIN_LISTENING.exec(output);
      if (match && admin) {
        clearTimeout(timer);
        resolve([Number(match[2]), Number(admin[2])]);
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`parley exited (${code ?? signal}) before listening:\n${output}`));
    });
  });

  return ready.then(([actualPort, adminPort]) => ({
    port: actualPort,
    url: `${tls ? "https" : "http"}://127.0.0.1:${actualPort}/`,
    adminPort,
    adminUrl: `http://127.0.0.1:${adminPort}/`,
    configPath,
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

/**
 * INI text `base` with every section that `extra` names dropped and `extra` appended: a section
 * given twice would leave it to the parser which one wins.
 */
function withSections(base, extra) {
  const replaced = new Set([...extra.matchAll(/^\s*\[([^\]]+)\]/gm)].map((m) => m[1].trim()));
  let skipping = false;
  const kept = base.split("\n").filter((line) => {
    const header = /^\s*\[([^\]]+)\]/.exec(line);
    if (header) skipping = replaced.has(header[1].trim());
    return !skipping;
  });
  return `${kept.join("\n")}\n${extra}\n`;
}

/**
 * A token signed with the [auth] settings of `configPath`, minted by the binary itself:
 * `parley token --config <file> --sub <user> --role <role>... --ttl <duration>` prints it.
 */
export function mintToken(configPath, { sub, roles = [], ttl = "1h" }) {
  const { binary } = paths();
  const args = ["token", "--config", configPath, "--sub", sub, ...roles.flatMap((r) => ["--role", r]), "--ttl", ttl];
  // A binary without the subcommand would start a server instead: never wait for it long.
  const out = execFileSync(binary, args, { encoding: "utf8", timeout: 15_000, killSignal: "SIGKILL", stdio: ["ignore", "pipe", "pipe"] });
  const token = out.trim().split("\n").at(-1).trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`parley token printed no token:\n${out}`);
  return token;
}
