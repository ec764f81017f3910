// The HTTP API for backends, seen from the stock socket.io-client: a backend POSTs with fetch (as
// curl would) and the browser-side client receives the event, or answers it with an ack.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, nextEvent, transportCases, waitUpgrade } from "./helpers.js";

const KEY = "js-test-key";
let server;
before(async () => {
  // Recovery off: with it on, the session-aware adapter appends an offset argument to stored
  // broadcasts (as Node's Socket.IO does) and listeners would see it.
  server = await startServer(["--api-keys", `other,${KEY}`, "--recovery-window", "0"]);
});
after(async () => {
  assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
});

/** api sends one API request and resolves with { status, body }. */
async function api(method, path, body, { key = KEY, contentType = "application/json" } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = contentType;
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  assert.equal(res.headers.get("content-type"), "application/json");
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function subscribe(socket, rooms) {
  const res = await socket.timeout(5000).emitWithAck("subscribe", { rooms });
  assert.ok(res.data, JSON.stringify(res));
}

for (const [i, tc] of transportCases.entries()) {
  test(`an emitted event arrives with its arguments over ${tc.name}`, async (t) => {
    const socket = await connect(server.url, tc.opts);
    t.after(() => socket.disconnect());
    if (tc.upgrade) await waitUpgrade(socket);
    const room = `feed-${i}`;
    await subscribe(socket, [room]);

    const one = nextEvent(socket, "tick");
    const res = await api("POST", "/emit", { rooms: [room], event: "tick", data: { price: 1.0842, sym: "EURUSD" } });
    assert.deepEqual(res, { status: 202, headers: res.headers, body: { ok: true } });
    assert.deepEqual(await one, { price: 1.0842, sym: "EURUSD" });

    const many = new Promise((resolve) => socket.once("multi", (...args) => resolve(args)));
    assert.equal((await api("POST", "/emit", { rooms: [room], event: "multi", args: ["a", 2, null, [true]] })).status, 202);
    assert.deepEqual(await many, ["a", 2, null, [true]]);
  });

  test(`acks are collected over ${tc.name}`, async (t) => {
    const answering = await connect(server.url, tc.opts);
    const silent = await connect(server.url, tc.opts);
    t.after(() => {
      answering.disconnect();
      silent.disconnect();
    });
    if (tc.upgrade) await Promise.all([waitUpgrade(answering), waitUpgrade(silent)]);
    const room = `ask-${i}`;
    await subscribe(answering, [room]);
    await subscribe(silent, [room]);
    answering.on("question", (q, ack) => ack({ answer: `re: ${q}` }));
    const silentAsked = new Promise((resolve) => silent.once("question", (q) => resolve(q)));

    let res = await api("POST", "/emit", {
      rooms: [room],
      except: [`user:${silent.id}`],
      event: "question",
      data: "q1",
      ackTimeoutMs: 10000,
    });
    assert.deepEqual(res.body, { acks: [{ answer: "re: q1" }], timedOut: false });
    assert.equal(res.status, 200);

    res = await api("POST", "/emit", { rooms: [room], event: "question", data: "q2", ackTimeoutMs: 500 });
    assert.deepEqual(res.body, { acks: [{ answer: "re: q2" }], timedOut: true });
    assert.equal(await silentAsked, "q2");
  });
}

test("join, presence, leave and disconnect act on the client", async (t) => {
  const socket = await connect(server.url, { transports: ["websocket"], auth: { name: "ada" } });
  t.after(() => socket.disconnect());

  assert.equal((await api("POST", "/sockets/join", { rooms: [socket.id], join: ["vip"] })).status, 200);
  const presence = await api("GET", "/sockets?room=vip");
  assert.deepEqual(presence.body, {
    sockets: [{ id: socket.id, user: { id: socket.id, name: "ada" }, rooms: [`user:${socket.id}`, "vip"] }],
  });
  const vip = nextEvent(socket, "vip");
  await api("POST", "/emit", { rooms: ["vip"], event: "vip", data: 1 });
  assert.equal(await vip, 1);

  assert.equal((await api("POST", "/sockets/leave", { rooms: [socket.id], leave: ["vip"] })).status, 200);
  assert.deepEqual((await api("GET", "/sockets?room=vip")).body, { sockets: [] });

  const stats = await api("GET", "/stats");
  assert.equal(stats.status, 200);
  assert.equal(stats.body.nodes, 1);
  assert.ok(stats.body.namespaces["/"].sockets >= 1);

  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  assert.equal((await api("POST", "/sockets/disconnect", { rooms: [`user:${socket.id}`] })).status, 200);
  assert.equal(await gone, "io server disconnect");
  assert.equal(socket.active, false, "a server-side disconnect is not retried");
});

test("disconnect with close drops the connection", async (t) => {
  const socket = await connect(server.url, { transports: ["websocket"] });
  t.after(() => socket.disconnect());
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  assert.equal((await api("POST", "/sockets/disconnect", { rooms: [socket.id], close: true })).status, 200);
  // Node's Socket.IO delivers the disconnect packet before closing ("io server disconnect"); the
  // Go library's websocket transport closes before its queued write, so the client may only see
  // the connection close.
  assert.match(await gone, /^(io server disconnect|transport close)$/);
  assert.deepEqual((await api("GET", `/sockets?room=${socket.id}`)).body, { sockets: [] });
});

test("errors are coded JSON and reach no client", async (t) => {
  const socket = await connect(server.url, { transports: ["websocket"] });
  t.after(() => socket.disconnect());
  await subscribe(socket, ["guarded"]);
  const seen = [];
  socket.onAny((event, ...args) => seen.push([event, ...args]));

  const cases = [
    [["POST", "/emit", { rooms: ["guarded"], event: "e" }, { key: "" }], 401, "unauthorized"],
    [["POST", "/emit", { rooms: ["guarded"], event: "e" }, { key: "wrong" }], 401, "unauthorized"],
    [["POST", "/emit", { rooms: ["guarded"], event: "disconnect" }], 400, "bad_request"],
    [["POST", "/emit", { rooms: ["guarded"], event: "e", namespace: "/nope" }], 400, "bad_request"],
    [["POST", "/emit", { rooms: ["guarded"], event: "e", nope: 1 }], 400, "bad_request"],
    [["POST", "/emit", JSON.stringify({ rooms: ["guarded"], event: "e" }), { contentType: "text/plain" }], 415, "unsupported_media_type"],
    [["GET", "/nope"], 404, "not_found"],
  ];
  for (const [args, status, code] of cases) {
    const res = await api(...args);
    assert.equal(res.status, status, JSON.stringify(args));
    assert.equal(res.body.error.code, code);
    if (status === 401) assert.match(res.headers.get("www-authenticate"), /^Bearer/);
  }
  const good = nextEvent(socket, "good");
  await api("POST", "/emit", { rooms: ["guarded"], event: "good", data: "ok" });
  assert.equal(await good, "ok");
  assert.deepEqual(seen, [["good", "ok"]]);
});

test("without --api-keys the API is disabled but openapi.json is served", async () => {
  const bare = await startServer();
  try {
    const res = await fetch(`${bare.url}/api/v1/stats`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "api_disabled");
    const doc = await fetch(`${bare.url}/api/v1/openapi.json`);
    assert.equal(doc.status, 200);
    assert.match((await doc.json()).openapi, /^3\./);
  } finally {
    assert.equal(await bare.stop(), 0);
  }
});
