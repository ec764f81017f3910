// A driver of stock socket.io-client connections for the connect-polling benchmark case: it opens
// --n sockets to --url with the client's defaults (long-polling first, then the websocket upgrade),
// --concurrency at a time, each subscribing to --room with an ack, and keeps them open and idle
// until it reads "stop" on stdin (or stdin closes). The load generator (bench/loadgen, scenario
// connect-polling) starts one or more of these on the load generator's core.
//
//   node bench/node/clients.js --url http://127.0.0.1:3100 --n 2500 --concurrency 25 --sources 127.0.1.3,127.0.1.4
//
// The sockets are spread over the loopback source addresses of --sources (an http.Agent per
// address, used by the polling requests and the websocket alike) so that ephemeral ports suffice.
// The agents keep no connection alive, as the client's own default (no agent) does: each polling
// request is its own TCP connection. forceNew gives every socket its own Manager and Engine.IO
// connection, as separate browser tabs have.
//
// stdout, one JSON object a line:
//   {"type":"ready", "firstDialMs", "lastReadyMs", "connected", "failed", "transports": {name: count},
//    "handshakeMs": […], "upgradeMs": […], "errors": {message: count}}
//     once every socket is connected, acked and upgraded, or failed (times are Unix ms with
//     fractions; handshakeMs = dial → the namespace CONNECT, upgradeMs = dial → the upgrade);
//   {"type":"closed", "transports": {…}} after "stop", once every socket is disconnected.
//
// socket.io-client is the one client-js depends on (the same 4.8.4; the workspace installs it
// there), so that bench/'s own dependencies stay the servers'.
import { createRequire } from "node:module";
import http from "node:http";
import { createInterface } from "node:readline";

function flag(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const url = flag("url", "http://127.0.0.1:3100");
const n = Number(flag("n", "1000"));
const concurrency = Math.max(1, Number(flag("concurrency", "50")));
const sources = flag("sources", "").split(",").map((a) => a.trim()).filter(Boolean);
const room = flag("room", "bench");
const timeoutMs = Number(flag("timeout-ms", "30000"));
const clientFrom = flag("client-from", new URL("../../client-js/package.json", import.meta.url).pathname);

const { io } = createRequire(clientFrom)("socket.io-client");

const now = () => performance.timeOrigin + performance.now();

const agents = sources.map((localAddress) => ({ localAddress, agent: new http.Agent({ keepAlive: false, localAddress }) }));

const sockets = [];
const handshakeMs = [];
const upgradeMs = [];
const errors = {};
let connected = 0;
let failed = 0;
let firstDial = 0;
let lastReady = 0;

function countError(msg) {
  errors[msg] = (errors[msg] || 0) + 1;
}

// open starts socket i and resolves once it is connected, subscribed and upgraded (true) or failed
// (false). A socket that connected but did not upgrade within the timeout stays open and counts as
// connected: the transports count shows it.
function open(i) {
  return new Promise((resolve) => {
    const src = agents.length ? agents[i % agents.length] : null;
    const opts = { forceNew: true, reconnection: false, timeout: timeoutMs };
    if (src) Object.assign(opts, { agent: src.agent, localAddress: src.localAddress });
    const t0 = now();
    if (!firstDial) firstDial = t0;
    const socket = io(url, opts);
    sockets.push(socket);
    let acked = false;
    let upgraded = false;
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) {
        connected++;
        lastReady = Math.max(lastReady, now());
      } else {
        failed++;
        countError(why);
        socket.disconnect();
      }
      resolve(ok);
    };
    const timer = setTimeout(() => {
      if (acked) finish(true); // connected but not upgraded: still polling
      else finish(false, "timeout");
    }, timeoutMs);
    const maybeReady = () => {
      if (acked && upgraded) finish(true);
    };
    socket.io.engine.on("upgrade", () => {
      upgraded = true;
      upgradeMs.push(now() - t0);
      maybeReady();
    });
    socket.io.engine.on("upgradeError", (err) => countError(`upgradeError: ${err.message}`));
    socket.on("connect_error", (err) => finish(false, `connect_error: ${err.message}`));
    socket.on("disconnect", (reason) => {
      if (!done) finish(false, `disconnect: ${reason}`);
    });
    socket.once("connect", () => {
      handshakeMs.push(now() - t0);
      socket.emit("subscribe", { rooms: [room] }, (reply) => {
        if (!reply || !reply.data) return finish(false, `subscribe answered ${JSON.stringify(reply).slice(0, 80)}`);
        acked = true;
        maybeReady();
      });
    });
  });
}

function transports() {
  const t = {};
  for (const s of sockets) {
    if (!s.connected) continue;
    const name = s.io.engine?.transport?.name ?? "none";
    t[name] = (t[name] || 0) + 1;
  }
  return t;
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

let next = 0;
async function worker() {
  while (next < n) {
    const i = next++;
    await open(i);
  }
}

await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
print({
  type: "ready", firstDialMs: firstDial, lastReadyMs: lastReady, connected, failed,
  transports: transports(), handshakeMs, upgradeMs, errors,
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  const t = transports();
  for (const s of sockets) s.disconnect();
  // disconnect() writes the packets and closes the transports; give them a moment to leave.
  setTimeout(() => {
    print({ type: "closed", transports: t });
    process.exit(0);
  }, 500);
}
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() === "stop") stop();
});
rl.on("close", stop);
