// A Node.js Socket.IO 4.8 server that joins a Switchboard cluster through Redis, driven from Go
// tests (internal/nodepeer) over stdin/stdout, one JSON object per line.
//
//   node test/peers/cluster-peer.js '<options JSON>'      (cwd client-js, so node_modules resolve)
//
// Options: { adapter: "redis" | "sharded" | "streams", redisUrl: "redis://..." (one server) or
// clusterNodes: ["host:port", ...] (a Redis Cluster, node-redis createCluster), prefix (the key /
// channelPrefix / streamName, default "socket.io"), adapterOptions: {...} (passed to the adapter,
// e.g. subscriptionMode, publishOnSpecificResponseChannel), namespaces: ["/", ...] (created at
// start), recovery: bool (connectionStateRecovery), reconnectDelayMs: n (the Redis clients wait
// n ms before each reconnect) }.
//
// Its first line is {"event":"ready","port":N,"uids":{"/":uid}}. Then each command line
// {"id":n,"cmd":...,"nsp":"/",...} gets one answer line {"id":n,"ok":true,"result":...} or
// {"id":n,"ok":false,"error":"..."}. Other lines are events: {"event":"sse"|"connection"|
// "disconnect"|"redisError",...}. Binary travels as {"$bin":"<base64>"} both ways.
//
// Commands (rooms, except: arrays; default every socket):
//   of                                   create the namespace (and its adapter); result: uid
//   emit {rooms,except,volatile,event,args}
//   emitWithAck {rooms,except,event,args,timeout}   result: {err, responses}
//   fetchSockets {rooms,except}          result: [{id, rooms, data, handshake}]
//   socketsJoin {rooms,except,join} / socketsLeave {rooms,except,leave} / disconnectSockets {rooms,except,close}
//   serverSideEmit {event,args} / serverSideEmitWithAck {event,args}   result: {err, responses}
//   serverCount                          result: n
//   sockets                              this server's sockets: [{id, rooms}]
//   join {sid, rooms} / leave {sid, room} a local socket joins or leaves
//   emitter {rooms,except,volatile,event,args} and emitterJoin {rooms,except,join},
//   emitterLeave {...,leave}, emitterDisconnect {...,close}, emitterSSE {event,args}:
//                                        the same through @socket.io/redis-emitter (one server only)
//   close                                stop and exit
// A serverSideEmit with ack reaching this server is answered {"from":"node","port":N,"args":[...]}.
import { createServer } from "node:http";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient, createCluster } from "redis";

const opts = JSON.parse(process.argv[2] || "{}");
// node-redis's cluster client rejects the adapter's pending SUNSUBSCRIBEs when it is closed
// (socket.io does not wait for them): report, do not crash.
process.on("unhandledRejection", (err) => out({ event: "unhandledRejection", message: String(err && err.message) }));
const prefix = opts.prefix || "socket.io";

function out(obj) {
  process.stdout.write(JSON.stringify(toWire(obj)) + "\n");
}

// toWire turns Buffers (and typed arrays) into {"$bin": base64}; fromWire turns them back.
function toWire(v) {
  if (v === null || v === undefined) return v;
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toWire);
  if (typeof v === "object") {
    const o = {};
    for (const [k, e] of Object.entries(v)) o[k] = toWire(e);
    return o;
  }
  return v;
}

function fromWire(v) {
  if (v === null || v === undefined) return v;
  if (Array.isArray(v)) return v.map(fromWire);
  if (typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
    const o = {};
    for (const [k, e] of Object.entries(v)) o[k] = fromWire(e);
    return o;
  }
  return v;
}

function redisError(who) {
  return (err) => out({ event: "redisError", who, message: String(err && err.message) });
}

async function connect() {
  let pub;
  // reconnectDelayMs makes the Redis clients wait that long before each reconnect (a slow
  // node, for outage tests).
  const socket = opts.reconnectDelayMs ? { reconnectStrategy: () => opts.reconnectDelayMs } : undefined;
  if (opts.clusterNodes && opts.clusterNodes.length > 0) {
    pub = createCluster({
      rootNodes: opts.clusterNodes.map((a) => ({ url: `redis://${a}` })),
      ...(socket ? { defaults: { socket } } : {}),
    });
  } else {
    pub = createClient({ url: opts.redisUrl, ...(socket ? { socket } : {}) });
  }
  pub.on("error", redisError("pub"));
  await pub.connect();
  const sub = pub.duplicate();
  sub.on("error", redisError("sub"));
  return { pub, sub };
}

const clients = [];
let adapterCtor;
const { pub, sub } = await connect();
clients.push(pub);
switch (opts.adapter) {
  case "redis":
    await sub.connect();
    clients.push(sub);
    adapterCtor = createAdapter(pub, sub, { key: prefix, ...(opts.adapterOptions || {}) });
    break;
  case "sharded":
    await sub.connect();
    clients.push(sub);
    adapterCtor = createShardedAdapter(pub, sub, { channelPrefix: prefix, ...(opts.adapterOptions || {}) });
    break;
  case "streams":
    adapterCtor = createStreamsAdapter(pub, { streamName: prefix, channelPrefix: prefix, ...(opts.adapterOptions || {}) });
    break;
  default:
    throw new Error(`unknown adapter ${opts.adapter}`);
}

let emitter;
async function getEmitter() {
  if (!emitter) {
    if (!opts.redisUrl) throw new Error("the emitter needs redisUrl (one server)");
    const c = createClient({ url: opts.redisUrl });
    c.on("error", redisError("emitter"));
    await c.connect();
    clients.push(c);
    emitter = new Emitter(c, { key: prefix });
  }
  return emitter;
}

const http = createServer();
const io = new Server(http, {
  adapter: adapterCtor,
  ...(opts.recovery ? { connectionStateRecovery: {} } : {}),
});
let port = 0;

const known = new Set();
function setup(nsp) {
  if (known.has(nsp.name)) return nsp;
  known.add(nsp.name);
  nsp.on("connection", (socket) => {
    socket.data = { who: "node", ...(socket.handshake.auth && socket.handshake.auth.data) };
    out({ event: "connection", nsp: nsp.name, sid: socket.id });
    socket.on("disconnect", (reason) => out({ event: "disconnect", nsp: nsp.name, sid: socket.id, reason }));
  });
  // Every serverSideEmit reaching this server is reported, whatever its name, and one with
  // an ack is answered.
  nsp._onServerSideEmit = (args) => {
    const [name, ...rest] = args;
    const ack = typeof rest[rest.length - 1] === "function" ? rest.pop() : null;
    out({ event: "sse", nsp: nsp.name, name, args: rest, withAck: !!ack });
    if (ack) ack({ from: "node", port, args: rest });
  };
  return nsp;
}
function ns(name) {
  return setup(io.of(name || "/"));
}

function op(nsp, c) {
  let o = nsp;
  if (c.rooms && c.rooms.length) o = o.to(c.rooms);
  if (c.except && c.except.length) o = o.except(c.except);
  if (c.volatile) o = o.volatile;
  return o;
}

function emitterOp(e, c) {
  let o = e.of(c.nsp || "/");
  if (c.rooms && c.rooms.length) o = o.to(c.rooms);
  if (c.except && c.except.length) o = o.except(c.except);
  if (c.volatile) o = o.volatile;
  return o;
}

const commands = {
  async of(c) {
    return ns(c.nsp).adapter.uid;
  },
  async emit(c) {
    op(ns(c.nsp), c).emit(c.event, ...fromWire(c.args || []));
    return null;
  },
  async emitWithAck(c) {
    const o = op(ns(c.nsp), c).timeout(c.timeout || 2000);
    return new Promise((resolve) => {
      o.emit(c.event, ...fromWire(c.args || []), (err, responses) => resolve({ err: err ? String(err.message) : null, responses }));
    });
  },
  async fetchSockets(c) {
    const sockets = await op(ns(c.nsp), c).fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, handshake: s.handshake }));
  },
  async socketsJoin(c) {
    op(ns(c.nsp), c).socketsJoin(c.join);
    return null;
  },
  async socketsLeave(c) {
    op(ns(c.nsp), c).socketsLeave(c.leave);
    return null;
  },
  async disconnectSockets(c) {
    op(ns(c.nsp), c).disconnectSockets(!!c.close);
    return null;
  },
  async serverSideEmit(c) {
    ns(c.nsp).serverSideEmit(c.event, ...fromWire(c.args || []));
    return null;
  },
  async serverSideEmitWithAck(c) {
    const nsp = ns(c.nsp);
    return new Promise((resolve) => {
      nsp.serverSideEmit(c.event, ...fromWire(c.args || []), (err, responses) => resolve({ err: err ? String(err.message) : null, responses }));
    });
  },
  async serverCount(c) {
    return ns(c.nsp).adapter.serverCount();
  },
  async sockets(c) {
    return [...ns(c.nsp).sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] }));
  },
  async join(c) {
    const s = ns(c.nsp).sockets.get(c.sid);
    if (!s) throw new Error(`no socket ${c.sid}`);
    s.join(c.rooms);
    return null;
  },
  async leave(c) {
    const s = ns(c.nsp).sockets.get(c.sid);
    if (!s) throw new Error(`no socket ${c.sid}`);
    s.leave(c.room);
    return null;
  },
  async emitter(c) {
    emitterOp(await getEmitter(), c).emit(c.event, ...fromWire(c.args || []));
    return null;
  },
  async emitterJoin(c) {
    emitterOp(await getEmitter(), c).socketsJoin(c.join);
    return null;
  },
  async emitterLeave(c) {
    emitterOp(await getEmitter(), c).socketsLeave(c.leave);
    return null;
  },
  async emitterDisconnect(c) {
    emitterOp(await getEmitter(), c).disconnectSockets(!!c.close);
    return null;
  },
  async emitterSSE(c) {
    (await getEmitter()).of(c.nsp || "/").serverSideEmit(c.event, ...fromWire(c.args || []));
    return null;
  },
  async close() {
    await new Promise((resolve) => io.close(() => resolve()));
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    setImmediate(() => process.exit(0));
    return null;
  },
};

http.listen(0, "127.0.0.1");
await once(http, "listening");
port = http.address().port;
const uids = {};
for (const name of opts.namespaces || ["/"]) uids[name] = ns(name).adapter.uid;
out({ event: "ready", port, uids });

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    out({ event: "badCommand", message: String(e.message) });
    return;
  }
  const fn = commands[c.cmd];
  if (!fn) {
    out({ id: c.id, ok: false, error: `unknown command ${c.cmd}` });
    return;
  }
  try {
    out({ id: c.id, ok: true, result: await fn(c) });
  } catch (e) {
    out({ id: c.id, ok: false, error: String(e && e.message) });
  }
});
rl.on("close", () => commands.close());
