// Test helpers: start a Switchboard binary on a free port and connect stock socket.io-clients.
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
let builtBinary;

/** binary returns the server binary: $SWITCHBOARD_BIN, or one built from this checkout once. */
export function binary() {
  if (process.env.SWITCHBOARD_BIN) return process.env.SWITCHBOARD_BIN;
  if (!builtBinary) {
    builtBinary = join(mkdtempSync(join(tmpdir(), "switchboard-")), "switchboard");
    execFileSync("go", ["build", "-o", builtBinary, "."], { cwd: repoRoot, stdio: "inherit" });
  }
  return builtBinary;
}

/**
 * startServer runs the server on 127.0.0.1:0 and resolves once it logs "listening".
 * Returns { url, proc, logs, stop() }; stop() sends SIGTERM and resolves with the exit code.
 */
export async function startServer(args = [], env = {}) {
  const proc = spawn(binary(), ["--addr", "127.0.0.1:0", "--log-format", "json", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const logs = [];
  const lines = createInterface({ input: proc.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 15000);
    proc.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    lines.on("line", (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.message === "listening") {
        clearTimeout(timer);
        resolve(`http://${entry.addr}`);
      }
    });
  });
  let exited = null;
  proc.once("exit", (code, signal) => (exited = code ?? signal));
  return {
    url,
    proc,
    logs,
    async stop() {
      if (exited !== null) return exited;
      proc.kill("SIGTERM");
      const [code, signal] = await once(proc, "exit");
      return code ?? signal;
    },
  };
}

/** waitLimit bounds every wait of these helpers: a server that never answers fails the test
 * instead of hanging the run. */
const waitLimit = 15000;

/** connect opens a socket.io-client socket and resolves once it is connected. */
export async function connect(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connect or connect_error within ${waitLimit} ms`));
    }, waitLimit);
    socket.once("connect", () => (clearTimeout(timer), resolve()));
    socket.once("connect_error", (err) => (clearTimeout(timer), reject(err)));
  });
  return socket;
}

/** nextEvent resolves with the arguments of the next `event` on socket (first one alone). */
export function nextEvent(socket, event, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args.length <= 1 ? args[0] : args);
    });
  });
}

/** The transport choices every behaviour is checked over. */
export const transportCases = [
  { name: "websocket", opts: { transports: ["websocket"] } },
  { name: "polling", opts: { transports: ["polling"] } },
  { name: "polling→websocket", opts: { transports: ["polling", "websocket"] }, upgrade: true },
];

/** waitUpgrade resolves once the client's engine runs on websocket. */
export async function waitUpgrade(socket) {
  if (socket.io.engine.transport.name === "websocket") return;
  await once(socket.io.engine, "upgrade", { signal: AbortSignal.timeout(waitLimit) });
}
