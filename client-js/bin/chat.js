#!/usr/bin/env node
// A terminal chat on Switchboard's /chat namespace with the stock socket.io-client.
//
//   pnpm --filter client-js chat -- --url http://localhost:3000 --room lobby --name ada [--token JWT]
//
// Type a line to send it; /quit leaves. It prints the members and history on join, every message,
// who joins, leaves and types, and every connection state change, including whether a reconnect
// recovered the session (then the server replays what was missed and the rooms are kept).
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const argv = process.argv.slice(2);
if (argv[0] === "--") argv.shift(); // `pnpm chat -- --room x` passes the "--" through
const { values: opts } = parseArgs({
  args: argv,
  options: {
    url: { type: "string", default: "http://localhost:3000" },
    room: { type: "string", default: "lobby" },
    name: { type: "string", default: "" },
    token: { type: "string", default: "" },
  },
});

const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: process.stdout.isTTY ? "> " : "" });

/** say prints a line above the prompt without losing what is being typed. */
function say(line) {
  process.stdout.write(process.stdout.isTTY ? `\r\x1b[K${line}\n` : `${line}\n`);
  rl.prompt(true);
}

const time = (ts) => new Date(ts).toLocaleTimeString();
const show = (m) => say(`[${time(m.ts)}] ${m.user.name}: ${m.text}`);

// The handshake's auth: a JWT when the server checks them (SPEC §5), else the name we go by.
const auth = opts.token ? { token: opts.token } : opts.name ? { name: opts.name } : {};
const socket = io(`${opts.url.replace(/\/$/, "")}/chat`, { auth });
const room = opts.room;
let everConnected = false;

socket.on("connect", async () => {
  const transport = socket.io.engine.transport.name;
  if (!everConnected) say(`connected as ${socket.id} over ${transport}`);
  else say(`reconnected (recovered: ${socket.recovered})`);
  everConnected = true;
  if (socket.recovered) return; // still in the room; missed messages are replayed
  const res = await socket.timeout(10000).emitWithAck("chat:join", { room }).catch((err) => ({ error: { code: "timeout", message: err.message } }));
  if (res.error) return say(`cannot join ${room}: ${res.error.code} (${res.error.message})`);
  const { members, history } = res.data;
  say(`joined ${room}; members: ${members.map((u) => u.name).join(", ")}`);
  history.forEach(show);
});
// Each (re)connection opens a new Engine.IO transport, long-polling first, upgraded to websocket.
socket.io.on("open", () => socket.io.engine.on("upgrade", (t) => say(`transport: ${t.name}`)));
socket.on("disconnect", (reason) => say(`disconnected (${reason})${socket.active ? "; reconnecting…" : ""}`));
socket.io.on("reconnect_attempt", (n) => say(`reconnecting (attempt ${n})…`));
socket.on("connect_error", (err) => {
  say(`connect error: ${err.message}${err.data?.code ? ` (${err.data.code})` : ""}`);
  if (!socket.active) quit(1); // refused by the server (e.g. a bad token): retrying will not help
});

socket.on("chat:message", show);
socket.on("chat:user-joined", ({ user }) => say(`* ${user.name} joined`));
socket.on("chat:user-left", ({ user }) => say(`* ${user.name} left`));
socket.on("chat:typing", ({ user, typing }) => typing && say(`* ${user.name} is typing…`));
socket.on("auth:expired", () => say("token expired: the server closed the connection"));

// Typing indicator: true on the first key press, false after 2s without one or on send.
let typingTimer;
let typingNow = false;
function typing(on) {
  clearTimeout(typingTimer);
  if (on) typingTimer = setTimeout(() => typing(false), 2000);
  if (on !== typingNow) socket.emit("chat:typing", { room, typing: on });
  typingNow = on;
}
process.stdin.on("keypress", (_, key) => key?.name !== "return" && socket.connected && typing(true));

rl.on("line", async (line) => {
  const text = line.trim();
  if (text === "/quit") return quit(0);
  if (text) {
    typing(false);
    const res = await socket.timeout(10000).emitWithAck("chat:send", { room, text }).catch((err) => ({ error: { code: "timeout", message: err.message } }));
    if (res.error) say(`not sent: ${res.error.code} (${res.error.message})`);
  }
  rl.prompt();
});
rl.on("close", () => quit(0)); // Ctrl-D or the end of piped input

let quitting = false;
function quit(code) {
  if (quitting) return;
  quitting = true;
  clearTimeout(typingTimer);
  socket.disconnect();
  rl.close();
  process.exit(code);
}

say(`connecting to ${opts.url}/chat, room ${room}… (type a message, /quit to leave)`);
