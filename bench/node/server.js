// The Node reference for Switchboard's benchmark: socket.io 4.8 with the subset of Switchboard's
// contract (SPEC §2–§4, §6) that the load generator exercises, with the same settings (ping
// 25s/20s, 1 MB payloads, any origin, connection state recovery for 2 minutes) and the same ack
// shapes, so both servers do the same work per event.
//
//   node bench/node/server.js --addr 127.0.0.1:3100 --api-keys benchkey [--redis redis://127.0.0.1:6379/0] [--parser msgpack]
//
// With --parser msgpack, clients speak socket.io-msgpack-parser (Node serves one parser per
// server: default-parser clients are then refused), as Switchboard serves them under --parser.
//
// With --redis, rooms are shared with the other nodes on that Redis through @socket.io/redis-adapter
// (pub/sub, default "socket.io" channel prefix), as Switchboard's --adapter redis does.
//
// Namespace "/":   subscribe / unsubscribe {rooms}       → {data: {rooms}}
// Namespace /chat: chat:join {room} → {data: {room, members, history}}, chat:user-joined to others
//                  chat:leave {room} → {data: {room}}, chat:user-left
//                  chat:send {room, text} → {data: {id, ts}}, chat:message to every member
// Namespace /relay: relay:join {room} → {data: {room, members, state: {}}}, relay:user-joined
//                  relay:leave {room} → {data: {room}}, relay:user-left
//                  relay:publish {room, event, data, key?} → {data: {}}, relay:message to the others
//                  The naive relay a Node developer writes: socket.to(room).emit for every
//                  publish, keyed or not (no state, no coalescing).
// HTTP:            POST /api/v1/emit {namespace, rooms, except, event, data | args, volatile} → 202
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

function flag(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const env = process.env[`SWITCHBOARD_${name.toUpperCase().replaceAll("-", "_")}`];
  return env || def;
}

const addr = flag("addr", "127.0.0.1:3100");
const redisURL = flag("redis", "");
const parserName = flag("parser", "default");
const apiKeys = flag("api-keys", "").split(",").map((k) => k.trim()).filter(Boolean);
const maxPayload = 1_000_000;
const chatHistory = 100;
const [host, port] = [addr.slice(0, addr.lastIndexOf(":")) || "0.0.0.0", Number(addr.slice(addr.lastIndexOf(":") + 1))];

const roomRe = /^[A-Za-z0-9_\-.:@]{1,128}$/;
const reserved = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

class ClientError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// handle is the Node twin of namespaces.handle: one object payload in, exactly one ack out.
function handle(socket, event, fn) {
  socket.on(event, (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    let reply;
    try {
      const req = args[0];
      if (req === null || typeof req !== "object" || Array.isArray(req)) {
        throw new ClientError("bad_request", "payload must be a JSON object");
      }
      reply = { data: fn(req) };
    } catch (err) {
      const code = err instanceof ClientError ? err.code : "internal";
      reply = { error: { code, message: code === "internal" ? "internal error" : err.message } };
    }
    if (ack) ack(reply);
  });
}

function identify(socket) {
  const name = socket.handshake.auth?.name;
  const valid = typeof name === "string" && [...name].length >= 1 && [...name].length <= 64;
  socket.data.user = { id: socket.id, name: valid ? name : `guest-${socket.id.slice(0, 4)}` };
  socket.join(`user:${socket.data.user.id}`);
}

function checkRooms(rooms) {
  if (!Array.isArray(rooms) || rooms.length < 1 || rooms.length > 50) {
    throw new ClientError("bad_request", "rooms must hold 1-50 rooms");
  }
  for (const r of rooms) {
    if (typeof r !== "string" || !roomRe.test(r)) {
      throw new ClientError("bad_request", "rooms must be 1-128 characters of A-Z a-z 0-9 _ - . : @");
    }
  }
}

function checkRoom(room) {
  if (typeof room !== "string" || !roomRe.test(room)) {
    throw new ClientError("bad_request", "room must be 1-128 characters of A-Z a-z 0-9 _ - . : @");
  }
}

function mayJoin(socket, room) {
  return !room.startsWith("user:") || room === `user:${socket.data.user.id}`;
}

function socketRooms(socket) {
  return [...socket.rooms].filter((r) => r !== socket.id).sort();
}

// Presence, as /chat and /relay keep it: a room's members map each user id to {user, sockets},
// so that a user with several sockets in a room joins it once and leaves it with the last.

// joinMembers puts socket in room and among its members; the others hear `${prefix}:user-joined`
// when its user is new there. joined is the socket's own set of rooms.
function joinMembers(socket, joined, room, members, prefix) {
  let m = members.get(socket.data.user.id);
  const first = !m;
  if (!m) {
    m = { user: socket.data.user, sockets: new Set() };
    members.set(socket.data.user.id, m);
  }
  m.sockets.add(socket.id);
  socket.join(room);
  joined.add(room);
  if (first) socket.to(room).emit(`${prefix}:user-joined`, { room, user: socket.data.user });
}

// leftMembers takes socket out of members and reports whether that was its user's last socket
// there (the user has left; it is no longer a member).
function leftMembers(socket, members) {
  const m = members?.get(socket.data.user.id);
  if (!m || !m.sockets.delete(socket.id)) return false;
  if (m.sockets.size > 0) return false;
  members.delete(socket.data.user.id);
  return true;
}

if (!["default", "msgpack"].includes(parserName)) {
  console.error(`server.js: --parser ${parserName}: want default or msgpack`);
  process.exit(2);
}
const parser = parserName === "msgpack" ? (await import("socket.io-msgpack-parser")).default : undefined;

const httpServer = createServer(api);
const io = new Server(httpServer, {
  serveClient: false,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxHttpBufferSize: maxPayload,
  cors: { origin: "*" },
  connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
  ...(parser ? { parser } : {}),
});

io.of("/").on("connection", (socket) => {
  identify(socket);
  handle(socket, "subscribe", (req) => {
    checkRooms(req.rooms);
    for (const r of req.rooms) {
      if (!mayJoin(socket, r)) throw new ClientError("forbidden", `not allowed to subscribe to "${r}"`);
    }
    socket.join(req.rooms);
    return { rooms: socketRooms(socket) };
  });
  handle(socket, "unsubscribe", (req) => {
    checkRooms(req.rooms);
    const own = `user:${socket.data.user.id}`;
    if (req.rooms.includes(own)) throw new ClientError("forbidden", `the user room "${own}" cannot be left`);
    for (const r of req.rooms) socket.leave(r);
    return { rooms: socketRooms(socket) };
  });
});

// Chat rooms: members per room (user id → socket count) and the newest messages. Members come from
// this presence map, kept as sockets join and leave, not from fetchSockets() on every join: the
// idiomatic way on one node, and what a Node developer would write (the join's answer and the
// chat:user-joined it sends are computed in one turn of the event loop, so every member hears of
// every other exactly once). With --redis the map is per node (not cluster-wide, unlike
// Switchboard's); no benchmark case joins chat rooms across two nodes.
const chat = io.of("/chat");
const rooms = new Map(); // room → {members: Map<userId, {user, sockets}>, history: [], seq}

function chatRoom(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { members: new Map(), history: [], seq: 0 };
    rooms.set(name, r);
  }
  return r;
}

function leaveChat(socket, name) {
  if (leftMembers(socket, rooms.get(name)?.members)) {
    socket.to(name).emit("chat:user-left", { room: name, user: socket.data.user });
  }
}

chat.on("connection", (socket) => {
  identify(socket);
  const joined = new Set();
  handle(socket, "chat:join", (req) => {
    checkRoom(req.room);
    if (!mayJoin(socket, req.room)) throw new ClientError("forbidden", `not allowed to join "${req.room}"`);
    const r = chatRoom(req.room);
    joinMembers(socket, joined, req.room, r.members, "chat");
    return { room: req.room, members: [...r.members.values()].map((x) => x.user), history: r.history.slice(-50) };
  });
  handle(socket, "chat:leave", (req) => {
    checkRoom(req.room);
    if (!joined.has(req.room)) throw new ClientError("forbidden", `not a member of "${req.room}"`);
    socket.leave(req.room);
    joined.delete(req.room);
    leaveChat(socket, req.room);
    return { room: req.room };
  });
  handle(socket, "chat:send", (req) => {
    checkRoom(req.room);
    const n = typeof req.text === "string" ? [...req.text].length : 0;
    if (n < 1 || n > 4000) throw new ClientError("bad_request", "text must be 1-4000 characters");
    if (!joined.has(req.room)) throw new ClientError("forbidden", `not a member of "${req.room}"`);
    const r = chatRoom(req.room);
    r.seq += 1;
    const msg = { id: String(r.seq), room: req.room, user: socket.data.user, text: req.text, ts: Date.now() };
    r.history.push(msg);
    if (r.history.length > chatHistory) r.history.shift();
    chat.to(req.room).emit("chat:message", msg);
    return { id: msg.id, ts: msg.ts };
  });
  socket.on("disconnect", () => {
    for (const room of joined) leaveChat(socket, room);
  });
});

// The relay: members per room as in /chat, and every publish sent on at once with
// socket.to(room).emit — what Socket.IO offers; SPEC §9's state and per-tick coalescing are
// Switchboard's own.
const relay = io.of("/relay");
const relayRooms = new Map(); // room → Map<userId, {user, sockets}>
const eventRe = /^[A-Za-z0-9_\-.:@]{1,64}$/;

function leaveRelay(socket, name) {
  const members = relayRooms.get(name);
  if (!leftMembers(socket, members)) return;
  if (members.size === 0) relayRooms.delete(name);
  socket.to(name).emit("relay:user-left", { room: name, user: socket.data.user });
}

relay.on("connection", (socket) => {
  identify(socket);
  const joined = new Set();
  handle(socket, "relay:join", (req) => {
    checkRoom(req.room);
    if (!mayJoin(socket, req.room)) throw new ClientError("forbidden", `not allowed to join "${req.room}"`);
    let members = relayRooms.get(req.room);
    if (!members) {
      members = new Map();
      relayRooms.set(req.room, members);
    }
    joinMembers(socket, joined, req.room, members, "relay");
    return { room: req.room, members: [...members.values()].map((x) => x.user), state: {} };
  });
  handle(socket, "relay:leave", (req) => {
    checkRoom(req.room);
    socket.leave(req.room);
    if (joined.delete(req.room)) leaveRelay(socket, req.room);
    return { room: req.room };
  });
  handle(socket, "relay:publish", (req) => {
    checkRoom(req.room);
    if (typeof req.event !== "string" || !eventRe.test(req.event)) throw new ClientError("bad_request", "event must be 1-64 characters of A-Z a-z 0-9 _ - . : @");
    if (req.data === undefined) throw new ClientError("bad_request", "data is required");
    if (!joined.has(req.room)) throw new ClientError("forbidden", `not a member of "${req.room}"`);
    const msg = { room: req.room, user: socket.data.user, event: req.event, data: req.data };
    if (typeof req.key === "string") msg.key = req.key;
    socket.to(req.room).emit("relay:message", msg);
    return {};
  });
  socket.on("disconnect", () => {
    for (const room of joined) leaveRelay(socket, room);
  });
});

// api serves POST /api/v1/emit; every other path is 404, as on Switchboard.
function api(req, res) {
  const reply = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const fail = (status, code, message) => reply(status, { error: { code, message } });
  if (req.url !== "/api/v1/emit" || req.method !== "POST") return fail(404, "not_found", "no such route");
  if (apiKeys.length === 0) return fail(403, "api_disabled", "the HTTP API is disabled");
  const auth = req.headers.authorization || "";
  if (!auth.startsWith("Bearer ") || !apiKeys.includes(auth.slice(7))) return fail(401, "unauthorized", "bad API key");
  if (!(req.headers["content-type"] || "").startsWith("application/json")) {
    return fail(415, "unsupported_media_type", "body must be application/json");
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size <= maxPayload) chunks.push(c);
  });
  req.on("end", () => {
    if (size > maxPayload) return fail(413, "payload_too_large", "body is too large");
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return fail(400, "bad_request", "body is not JSON");
    }
    const nsp = body.namespace ?? "/";
    if (typeof body.event !== "string" || body.event === "" || reserved.has(body.event)) {
      return fail(400, "bad_request", "event must be a non-reserved event name");
    }
    if (!io._nsps.has(nsp)) return fail(400, "bad_request", "namespace is unknown");
    let op = io.of(nsp);
    if (Array.isArray(body.rooms) && body.rooms.length > 0) op = op.to(body.rooms);
    if (Array.isArray(body.except) && body.except.length > 0) op = op.except(body.except);
    if (body.volatile) op = op.volatile;
    const args = Array.isArray(body.args) ? body.args : [body.data];
    op.emit(body.event, ...args);
    reply(202, { ok: true });
  });
}

// The adapter is in place before the server listens, so no socket starts on the in-memory one.
let redisClients = [];
if (redisURL) {
  const pub = createClient({ url: redisURL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) {
    c.on("error", (err) => console.log(JSON.stringify({ level: "error", message: "redis", error: String(err) })));
  }
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
  redisClients = [pub, sub];
}

httpServer.listen(port, host, () => {
  console.log(JSON.stringify({ level: "info", message: "listening", addr, node: process.version, redis: Boolean(redisURL), parser: parserName }));
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close(() => Promise.allSettled(redisClients.map((c) => c.quit())).then(() => process.exit(0)));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
