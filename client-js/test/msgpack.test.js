// socket.io-msgpack-parser clients (SPEC §1 --parser, §10): every round trip a default-parser
// client makes, made again with the msgpack parser over websocket-only, polling-only and
// polling→websocket; both parsers in one room; binary both ways; connection state recovery;
// --parser default and msgpack refusing the other parser; bad msgpack closing only its own
// connection.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import msgpack from "socket.io-msgpack-parser";
import { io, Manager } from "socket.io-client";
import { startServer, connect, nextEvent as nextArgs, transportCases, waitUpgrade } from "./helpers.js";
import { startRedis } from "./peers/redis.js";

const KEY = "msgpack-test-key";

/** The two parsers every round trip is made with. */
const parsers = [
  { name: "msgpack", opts: { parser: msgpack } },
  { name: "default", opts: {} },
];

const secret = "a-test-secret-of-at-least-32-bytes!!";

/** mint signs claims as an HS256 JWT. */
function mint(claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

let server; // --parser auto (the default), recovery on
let reference; // --conformance: echoes events and acks as they came, binary included
let secured; // --jwt-secret
before(async () => {
  [server, reference, secured] = await Promise.all([
    startServer(["--api-keys", KEY]),
    startServer(["--conformance"]),
    startServer(["--jwt-secret", secret]),
  ]);
});
after(async () => {
  const codes = await Promise.all([server.stop(), reference.stop(), secured.stop()]);
  assert.deepEqual(codes, [0, 0, 0], "the servers exit 0 on SIGTERM");
});

/** api sends one HTTP API request to srv and resolves with { status, body }. */
async function api(srv, method, path, body) {
  const res = await fetch(`${srv.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** protocolErrors reads how many connections srv closed for breaking the protocol. */
async function protocolErrors(srv) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = text.match(/^switchboard_limit_rejections_total\{limit="protocol_error"\} (\d+)$/m);
  return m ? Number(m[1]) : 0;
}

/** client connects a socket with transport case tc and parser p, closed when the test ends. */
async function client(t, url, tc, p, opts = {}) {
  const socket = await connect(url, { ...tc.opts, ...p.opts, ...opts });
  t.after(() => socket.disconnect());
  if (tc.upgrade) {
    await waitUpgrade(socket);
  } else {
    assert.equal(socket.io.engine.transport.name, tc.opts.transports[0]);
  }
  return socket;
}

/** nextEvent resolves with the first argument of the next `event` (recovery appends an offset). */
async function nextEvent(socket, event) {
  const args = await nextArgs(socket, event);
  return Array.isArray(args) ? args[0] : args;
}

const ack = (socket, event, payload) => socket.timeout(5000).emitWithAck(event, payload);
const tag = (...parts) => parts.join("-").replace(/[^a-z-]/g, "");

/** closedWithoutConnect resolves once socket's connection closes before any namespace connect. */
function closedWithoutConnect(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("neither connect_error nor a closed connection")), 10000);
    socket.once("connect", () => (clearTimeout(timer), reject(new Error("connected"))));
    socket.once("connect_error", (err) => (clearTimeout(timer), resolve(`connect_error: ${err.message}`)));
    socket.once("disconnect", (reason) => (clearTimeout(timer), resolve(reason)));
  });
}

for (const tc of transportCases) {
  for (const p of parsers) {
    const over = `${p.name} parser over ${tc.name}`;

    test(`${over}: / subscribe and unsubscribe`, async (t) => {
      const socket = await client(t, server.url, tc, p);
      const own = `user:${socket.id}`;
      assert.deepEqual(await ack(socket, "subscribe", { rooms: ["b", "a"] }), { data: { rooms: ["a", "b", own] } });
      assert.deepEqual(await ack(socket, "unsubscribe", { rooms: ["b"] }), { data: { rooms: ["a", own] } });
      assert.equal((await ack(socket, "subscribe", { rooms: ["user:someone-else"] })).error.code, "forbidden");
      assert.equal((await ack(socket, "unsubscribe", { rooms: [own] })).error.code, "forbidden");
      assert.equal((await ack(socket, "subscribe", { rooms: [] })).error.code, "bad_request");
      assert.equal((await ack(socket, "subscribe", { rooms: "a" })).error.code, "bad_request");
      assert.equal((await ack(socket, "subscribe", null)).error.code, "bad_request");
      // A request is JSON: binary anywhere in it is refused, whichever parser carried it.
      assert.equal((await ack(socket, "subscribe", { rooms: ["a"], x: Buffer.from([1]) })).error.code, "bad_request");
    });

    test(`${over}: /chat join, send, history, typing, leave`, async (t) => {
      const room = tag("chat", p.name, tc.name);
      const alice = await client(t, `${server.url}/chat`, tc, p, { auth: { name: "alice" } });
      const bob = await client(t, `${server.url}/chat`, tc, p, { auth: { name: "bob" } });
      let res = await ack(alice, "chat:join", { room });
      assert.deepEqual(res, { data: { room, members: [{ id: alice.id, name: "alice" }], history: [] } });
      const joined = nextEvent(alice, "chat:user-joined");
      res = await ack(bob, "chat:join", { room });
      assert.deepEqual(res.data.members.map((m) => m.name), ["alice", "bob"]);
      assert.deepEqual(await joined, { room, user: { id: bob.id, name: "bob" } });

      const toAlice = nextEvent(alice, "chat:message");
      const toBob = nextEvent(bob, "chat:message");
      const sent = await ack(bob, "chat:send", { room, text: "hello ☃ 𝄞" });
      assert.equal(sent.data.id, "1");
      assert.equal(typeof sent.data.ts, "number");
      const want = { id: "1", room, user: { id: bob.id, name: "bob" }, text: "hello ☃ 𝄞", ts: sent.data.ts };
      assert.deepEqual(await toAlice, want);
      assert.deepEqual(await toBob, want);

      const typing = nextEvent(alice, "chat:typing");
      let got;
      typing.then((v) => (got = v));
      for (let i = 0; i < 20 && !got; i++) {
        bob.emit("chat:typing", { room, typing: true });
        await ack(bob, "chat:history", { room, limit: 1 }); // a round trip between tries (volatile)
      }
      assert.deepEqual(await typing, { room, user: { id: bob.id, name: "bob" }, typing: true });

      await ack(alice, "chat:send", { room, text: "x".repeat(40) }); // str8 on msgpack's wire
      res = await ack(alice, "chat:history", { room });
      assert.deepEqual(res.data.messages.map((m) => m.id), ["1", "2"]);
      res = await ack(alice, "chat:history", { room, before: "2", limit: 1 });
      assert.deepEqual(res.data.messages.map((m) => m.text), ["hello ☃ 𝄞"]);

      const left = nextEvent(alice, "chat:user-left");
      assert.deepEqual(await ack(bob, "chat:leave", { room }), { data: { room } });
      assert.deepEqual(await left, { room, user: { id: bob.id, name: "bob" } });
      assert.equal((await ack(bob, "chat:send", { room, text: "gone" })).error.code, "forbidden");
    });

    test(`${over}: API emits arrive; binary in the client's ack comes back as Buffer JSON`, async (t) => {
      const socket = await client(t, server.url, tc, p);
      const room = tag("api", p.name, tc.name);
      await ack(socket, "subscribe", { rooms: [room] });

      const one = nextEvent(socket, "tick");
      assert.equal((await api(server, "POST", "/emit", { rooms: [room], event: "tick", data: { price: 1.0842, n: 300, big: 2 ** 40, neg: -1 } })).status, 202);
      assert.deepEqual(await one, { price: 1.0842, n: 300, big: 2 ** 40, neg: -1 });
      const many = nextArgs(socket, "multi");
      await api(server, "POST", "/emit", { rooms: [room], event: "multi", args: ["a", 2, null, [true], {}] });
      assert.deepEqual((await many).slice(0, 5), ["a", 2, null, [true], {}]);

      // The client answers each question with the value at its index.
      const big = Buffer.alloc(70000, 7); // past bin16
      const answers = [
        [Buffer.from([0, 1, 127, 128, 255]), { type: "Buffer", data: [0, 1, 127, 128, 255] }],
        [{ nested: [Buffer.from([7])], n: 1.5, s: "é" }, { nested: [{ type: "Buffer", data: [7] }], n: 1.5, s: "é" }],
        [new Uint8Array([9, 8]), { type: "Buffer", data: [9, 8] }], // msgpack: notepack's ext type 0
        [Buffer.alloc(0), { type: "Buffer", data: [] }],
        [big, { type: "Buffer", data: [...big] }],
        ["plain", "plain"],
      ];
      socket.on("question", (i, reply) => reply(answers[i][0]));
      for (const [i, [, want]] of answers.entries()) {
        const res = await api(server, "POST", "/emit", { rooms: [room], event: "question", data: i, ackTimeoutMs: 5000 });
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 200));
        assert.deepEqual(res.body, { acks: [want], timedOut: false }, `answer ${i}`);
      }
    });

    test(`${over}: binary both ways (the reference server echoes it)`, async (t) => {
      const socket = await client(t, reference.url, tc, p);
      const args = [Buffer.from([1, 2, 3]), { b: Buffer.from([255, 0]), list: [Buffer.alloc(0), "s", 1] }, "text", new Uint8Array([4, 5])];
      const back = nextArgs(socket, "message-back");
      socket.emit("message", ...args);
      const got = await back;
      // A Uint8Array comes back as the Buffer it travelled as.
      assert.deepEqual(got, [args[0], args[1], "text", Buffer.from([4, 5])]);
      assert.ok(Buffer.isBuffer(got[0]) && Buffer.isBuffer(got[1].b));
      const acked = await socket.timeout(5000).emitWithAck("message-with-ack", Buffer.from("ack ☃"), 42);
      assert.deepEqual(acked, Buffer.from("ack ☃")); // emitWithAck resolves with the first argument
    });

    test(`${over}: connection state recovery`, async (t) => {
      const room = tag("recover", p.name, tc.name);
      const socket = await client(t, server.url, tc, p, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
      await ack(socket, "subscribe", { rooms: [room] });
      // Recovery needs an offset, which rides on broadcast events: receive one first.
      const first = nextEvent(socket, "tick");
      await api(server, "POST", "/emit", { rooms: [room], event: "tick", data: "before the drop" });
      assert.equal(await first, "before the drop");

      const id = socket.id;
      const disconnected = nextArgs(socket, "disconnect");
      socket.io.engine.close();
      await disconnected;
      const reconnected = nextArgs(socket, "connect");
      const missed = nextEvent(socket, "tick");
      await api(server, "POST", "/emit", { rooms: [room], event: "tick", data: "while away" });
      await reconnected;
      assert.equal(socket.recovered, true);
      assert.equal(socket.id, id);
      assert.equal(await missed, "while away");
      // Its rooms came back with it.
      const after = nextEvent(socket, "tick");
      await api(server, "POST", "/emit", { rooms: [room], event: "tick", data: "after" });
      assert.equal(await after, "after");
    });
    test(`${over}: namespaces on one connection, refusals, a server disconnect`, async (t) => {
      await assert.rejects(connect(`${server.url}/nope`, { ...tc.opts, ...p.opts }), /Invalid namespace/);

      const manager = new Manager(server.url, { ...tc.opts, ...p.opts, reconnection: false });
      t.after(() => manager.engine?.close());
      const root = manager.socket("/");
      const chat = manager.socket("/chat", { auth: { name: "multi" } });
      await Promise.all([nextArgs(root, "connect"), nextArgs(chat, "connect")]);
      if (tc.upgrade) await waitUpgrade(root);
      assert.equal((await ack(chat, "chat:join", { room: tag("multi", p.name, tc.name) })).data.members[0].name, "multi");
      // Leaving one namespace leaves the other and the connection alone.
      chat.disconnect();
      assert.ok((await ack(root, "subscribe", { rooms: ["still"] })).data);
      const gone = nextEvent(root, "disconnect");
      assert.equal((await api(server, "POST", "/sockets/disconnect", { rooms: [root.id] })).status, 200);
      assert.equal(await gone, "io server disconnect");
    });

    test(`${over}: a refused token is connect_error with its code`, async (t) => {
      const err = await new Promise((resolve, reject) => {
        const socket = io(secured.url, { forceNew: true, reconnection: false, ...tc.opts, ...p.opts, auth: { token: "not.a.jwt" } });
        t.after(() => socket.close());
        socket.once("connect", () => reject(new Error("connected")));
        socket.once("connect_error", resolve);
      });
      assert.equal(err.message, "unauthorized");
      assert.equal(err.data?.code, "token_invalid");
      const socket = await client(t, secured.url, tc, p, { auth: { token: mint({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 60 }) } });
      assert.deepEqual(await ack(socket, "subscribe", { rooms: ["news"] }), { data: { rooms: ["news", "user:alice"] } });
    });
  }

  test(`msgpack and default clients share a /relay room over ${tc.name}`, async (t) => {
    const [mp, json] = parsers;
    const room = tag("relay", tc.name);
    const m = await client(t, `${server.url}/relay`, tc, mp, { auth: { name: "mp" } });
    const d = await client(t, `${server.url}/relay`, tc, json, { auth: { name: "js" } });
    await ack(m, "relay:join", { room });
    await ack(d, "relay:join", { room });
    const data = { x: 1.5, s: "é", list: [1, null, true], deep: { a: { b: [] } } };
    for (const [from, to, name] of [
      [m, d, "mp"],
      [d, m, "js"],
    ]) {
      const heard = nextEvent(to, "relay:message");
      from.emit("relay:publish", { room, event: "move", data });
      assert.deepEqual(await heard, { room, user: { id: from.id, name }, event: "move", data });
      const keyed = nextEvent(to, "relay:message");
      assert.deepEqual(await ack(from, "relay:publish", { room, event: "cursor", key: "pos", data: { name } }), { data: {} });
      assert.deepEqual(await keyed, { room, user: { id: from.id, name }, event: "cursor", data: { name }, key: "pos" });
    }
    // A late joiner of the other parser gets both users' state.
    const late = await client(t, `${server.url}/relay`, tc, mp, { auth: { name: "late" } });
    const res = await ack(late, "relay:join", { room });
    assert.deepEqual(res.data.state, { [m.id]: { pos: { name: "mp" } }, [d.id]: { pos: { name: "js" } } });
  });

  test(`msgpack and default clients share rooms over ${tc.name}`, async (t) => {
    const [mp, json] = parsers;
    const room = tag("mixed", tc.name);
    // "/": one API emit reaches both; one API emit with an ack collects both answers.
    const m = await client(t, server.url, tc, mp);
    const d = await client(t, server.url, tc, json);
    await Promise.all([ack(m, "subscribe", { rooms: [room] }), ack(d, "subscribe", { rooms: [room] })]);
    const heard = [nextEvent(m, "tick"), nextEvent(d, "tick")];
    const data = { s: "é", n: [1, 2.5, -3], o: { deep: null } };
    assert.equal((await api(server, "POST", "/emit", { rooms: [room], event: "tick", data })).status, 202);
    assert.deepEqual(await Promise.all(heard), [data, data]);
    m.on("question", (q, reply) => reply({ from: "msgpack", q, bin: Buffer.from([1]) }));
    d.on("question", (q, reply) => reply({ from: "default", q, bin: Buffer.from([2]) }));
    const res = await api(server, "POST", "/emit", { rooms: [room], event: "question", data: "who", ackTimeoutMs: 5000 });
    assert.equal(res.body.timedOut, false);
    assert.deepEqual(
      res.body.acks.sort((a, b) => a.from.localeCompare(b.from)),
      [
        { from: "default", q: "who", bin: { type: "Buffer", data: [2] } },
        { from: "msgpack", q: "who", bin: { type: "Buffer", data: [1] } },
      ],
    );

    // "/chat": presence, messages and typing cross parsers both ways.
    const mc = await client(t, `${server.url}/chat`, tc, mp, { auth: { name: "mp" } });
    const dc = await client(t, `${server.url}/chat`, tc, json, { auth: { name: "js" } });
    await ack(mc, "chat:join", { room });
    const joined = nextEvent(mc, "chat:user-joined");
    const res2 = await ack(dc, "chat:join", { room });
    assert.deepEqual(res2.data.members.map((u) => u.name), ["js", "mp"]); // by name
    assert.deepEqual(await joined, { room, user: { id: dc.id, name: "js" } });
    for (const [from, name] of [
      [mc, "mp"],
      [dc, "js"],
    ]) {
      const both = [nextEvent(mc, "chat:message"), nextEvent(dc, "chat:message")];
      const sent = await ack(from, "chat:send", { room, text: `from ${name}` });
      const [a, b] = await Promise.all(both);
      assert.deepEqual(a, b);
      assert.deepEqual(a, { id: sent.data.id, room, user: { id: from.id, name }, text: `from ${name}`, ts: sent.data.ts });
    }
    for (const [from, to, name] of [
      [mc, dc, "mp"],
      [dc, mc, "js"],
    ]) {
      const typing = nextEvent(to, "chat:typing");
      let got;
      typing.then((v) => (got = v));
      for (let i = 0; i < 20 && !got; i++) {
        from.emit("chat:typing", { room, typing: true });
        await ack(from, "chat:history", { room, limit: 1 });
      }
      assert.deepEqual(await typing, { room, user: { id: from.id, name }, typing: true });
    }
    const history = await ack(dc, "chat:history", { room });
    assert.deepEqual(history.data.messages.map((x) => x.text), ["from mp", "from js"]);
  });
}

test("many msgpack and default clients in one room each get every message once, in order", async (t) => {
  const room = "crowd";
  const clients = await Promise.all(
    Array.from({ length: 8 }, (_, i) => client(t, `${server.url}/chat`, transportCases[i % 3], parsers[i % 2], { auth: { name: `c${i}` } })),
  );
  await Promise.all(clients.map((c) => ack(c, "chat:join", { room })));
  const total = clients.length * 5;
  const received = clients.map(
    (c) =>
      new Promise((resolve) => {
        const ids = [];
        c.on("chat:message", (m) => {
          ids.push(Number(m.id));
          if (ids.length === total) resolve(ids);
        });
      }),
  );
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = 0; k < 5; k++) await ack(c, "chat:send", { room, text: `${i}-${k}` });
    }),
  );
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  for (const ids of await Promise.all(received)) assert.deepEqual(ids, expected);
});

for (const adapter of ["redis", "redis-streams"]) {
  test(`${adapter}: msgpack and default clients on two nodes share rooms, acks and binary`, async (t) => {
    const redis = await startRedis();
    const args = ["--adapter", adapter, "--redis-url", redis.url, "--api-keys", KEY];
    const [a, b] = await Promise.all([startServer(args), startServer(args)]);
    t.after(async () => {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    });
    for (const node of [a, b]) {
      const deadline = Date.now() + 10000;
      while ((await api(node, "GET", "/stats")).body.nodes !== 2) {
        assert.ok(Date.now() < deadline, "both nodes in stats");
        await new Promise((r) => setTimeout(r, 25)); // polling with a deadline
      }
    }
    const ws = transportCases[0];
    const [mp, json] = parsers;
    // A msgpack and a default client on each node, in one room of "/" and one of "/chat".
    const clients = [];
    for (const [node, p] of [
      [a, mp],
      [a, json],
      [b, mp],
      [b, json],
    ]) {
      const name = `${node === a ? "a" : "b"}-${p.name}`;
      const root = await client(t, node.url, ws, p);
      const chat = await client(t, `${node.url}/chat`, ws, p, { auth: { name } });
      await ack(root, "subscribe", { rooms: ["shared"] });
      await ack(chat, "chat:join", { room: "shared" });
      root.on("question", (q, reply) => reply({ name, q, bin: Buffer.from(name) }));
      clients.push({ name, root, chat });
    }

    const heard = clients.map((c) => nextEvent(c.root, "tick"));
    assert.equal((await api(a, "POST", "/emit", { rooms: ["shared"], event: "tick", data: { n: 1, s: "é" } })).status, 202);
    assert.deepEqual(await Promise.all(heard), clients.map(() => ({ n: 1, s: "é" })));

    const res = await api(a, "POST", "/emit", { rooms: ["shared"], event: "question", data: "q", ackTimeoutMs: 5000 });
    assert.equal(res.body.timedOut, false);
    assert.deepEqual(
      res.body.acks.sort((x, y) => x.name.localeCompare(y.name)),
      clients.map((c) => ({ name: c.name, q: "q", bin: { type: "Buffer", data: [...Buffer.from(c.name)] } })).sort((x, y) => x.name.localeCompare(y.name)),
    );

    for (const from of clients) {
      const got = clients.map((c) => nextEvent(c.chat, "chat:message"));
      const sent = await ack(from.chat, "chat:send", { room: "shared", text: `from ${from.name}` });
      for (const m of await Promise.all(got)) {
        assert.deepEqual(m, { id: sent.data.id, room: "shared", user: { id: from.chat.id, name: from.name }, text: `from ${from.name}`, ts: sent.data.ts });
      }
    }
  });
}

// --parser default and --parser msgpack: the other parser's client is closed before it has a
// socket, and the server's own parser still works.
for (const [mode, refused, accepted] of [
  ["default", parsers[0], parsers[1]],
  ["msgpack", parsers[1], parsers[0]],
]) {
  test(`--parser ${mode} refuses a ${refused.name}-parser client over every transport`, async (t) => {
    const srv = await startServer(["--parser", mode, "--api-keys", KEY]);
    t.after(() => srv.stop());
    for (const tc of transportCases) {
      const before = await protocolErrors(srv);
      const socket = io(srv.url, { forceNew: true, reconnection: false, ...tc.opts, ...refused.opts });
      t.after(() => socket.close());
      await closedWithoutConnect(socket);
      assert.equal(await protocolErrors(srv), before + 1, `${tc.name}: counted as a protocol error`);
      const stats = await api(srv, "GET", "/stats");
      assert.equal(stats.body.connections, 0, `${tc.name}: no socket kept`);

      const ok = await client(t, srv.url, tc, accepted);
      assert.ok((await ack(ok, "subscribe", { rooms: ["r"] })).data, `${tc.name}: the ${accepted.name} parser is served`);
      ok.disconnect();
    }
  });
}

/** encode is what socket.io-msgpack-parser puts on the wire for packet. */
const encode = (packet) => Buffer.from(new msgpack.Encoder().encode(packet)[0]);

/** Messages that are not a msgpack packet the server can take. */
const badMessages = [
  ["a byte msgpack never uses", Buffer.from([0xc1])],
  ["msgpack nil", Buffer.from([0xc0])],
  ["a truncated map", Buffer.from("83a474797065", "hex")],
  ["an array, not a map", Buffer.from("93010203", "hex")],
  ["packet type 9", encode({ type: 9, nsp: "/" })],
  ["packet type 5 (BINARY_EVENT has no place in msgpack)", encode({ type: 5, data: ["e"], nsp: "/" })],
  ["no namespace", encode({ type: 0 })],
  ["an event whose data is a map", encode({ type: 2, data: { e: 1 }, nsp: "/" })],
  ["an ack id that is not an integer", encode({ type: 2, data: ["subscribe", { rooms: ["a"] }], id: 1.5, nsp: "/" })],
  ["a string past the end of the message", Buffer.from("dbffffffff61", "hex")],
  ["nesting past any sane depth", Buffer.concat([Buffer.from("83a47479706502a36e7370a12fa464617461", "hex"), Buffer.alloc(200, 0x91), Buffer.from([0xc0])])],
  ["trailing bytes after a packet", Buffer.concat([encode({ type: 2, data: ["subscribe", { rooms: ["a"] }], nsp: "/" }), Buffer.from([0])])],
];

/** badFirst is a msgpack parser whose CONNECT is replaced by bytes. */
const badFirst = (bytes) => ({
  Encoder: class {
    encode(packet) {
      return packet.type === 0 ? [bytes] : new msgpack.Encoder().encode(packet);
    }
  },
  Decoder: msgpack.Decoder,
});

for (const tc of transportCases) {
  test(`bad msgpack over ${tc.name} closes only its own connection`, async (t) => {
    // Bystanders of both parsers, on other transports.
    const m = await client(t, server.url, transportCases[0], parsers[0]);
    const d = await client(t, server.url, transportCases[1], parsers[1]);
    const bystanders = async (what) => {
      for (const b of [m, d]) assert.ok((await ack(b, "subscribe", { rooms: ["still-here"] })).data, `after ${what}`);
    };
    const errors0 = await protocolErrors(server);
    let closed = 0;
    for (const [what, bytes] of badMessages) {
      // As the first packet: the connection never gets a socket.
      const first = io(server.url, { forceNew: true, reconnection: false, ...tc.opts, parser: badFirst(bytes) });
      t.after(() => first.close());
      await closedWithoutConnect(first);
      closed++;
      await bystanders(`${what} first`);

      // After the CONNECT: the socket's connection closes.
      const later = await client(t, server.url, tc, parsers[0]);
      assert.ok((await ack(later, "subscribe", { rooms: ["x"] })).data);
      const gone = nextEvent(later, "disconnect");
      later.io.engine.write(bytes);
      assert.match(await gone, /^transport (close|error)$/, what);
      closed++;
      await bystanders(`${what} later`);
    }
    // A text message on a msgpack connection is the default parser's: refused too.
    const text = await client(t, server.url, tc, parsers[0]);
    const gone = nextEvent(text, "disconnect");
    text.io.engine.write('2["subscribe",{"rooms":["a"]}]');
    assert.match(await gone, /^transport (close|error)$/);
    closed++;
    await bystanders("a text message");
    assert.equal(await protocolErrors(server), errors0 + closed, "each bad connection is one protocol error");
  });
}
