// Backend hooks (SPEC §8) with the stock socket.io-client over websocket-only, polling-only and
// polling→websocket: the example backend of examples/hook-backend.js (a shared counter and a
// poll), and a scripted backend for every kind of answer and failure. Both verify every request's
// signature.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { startServer, connect, nextEvent, transportCases, waitUpgrade } from "./helpers.js";
import { createHookBackend, verify, sign } from "../examples/hook-backend.js";

const secret = randomBytes(16).toString("hex");
const wait = 10000;

/** listen starts an http.Server on 127.0.0.1:0 and returns its base URL. */
async function listen(server) {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${server.address().port}`;
}

// The scripted backend: script.connect/event/events answer [status, body] (body null: none;
// "hang": never answer); every request is verified and recorded.
const script = {};
const seen = { bad: 0, requests: [], events: [] };
const scripted = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const raw = Buffer.concat(chunks);
    const hook = req.url.split("/").pop();
    if (!verify(secret, req.headers["x-switchboard-timestamp"], raw, req.headers["x-switchboard-signature"])) {
      seen.bad++;
      res.writeHead(401).end();
      return;
    }
    if (raw.includes("secret-token") || req.headers.authorization) seen.bad++;
    const body = JSON.parse(raw);
    seen.requests.push({ hook, body });
    const fn = script[hook];
    const answer = fn ? await fn(body) : [200, {}];
    if (answer === "hang") return; // Switchboard gives up at --hook-timeout
    const [status, out] = answer;
    if (hook === "events" && status < 300) seen.events.push(...body.events);
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(out === null ? undefined : typeof out === "string" ? out : JSON.stringify(out));
  });
});

let example, exampleURL, scriptedURL, onExample, onScripted;
before(async () => {
  example = createHookBackend({ secret });
  exampleURL = await listen(example);
  scriptedURL = await listen(scripted);
  onExample = await startServer(["--hook-url", `${exampleURL}/hooks`, "--hook-secret", secret, "--hook-connect", "--namespaces", "/game"]);
  onScripted = await startServer([
    "--hook-url", `${scriptedURL}/hooks`, "--hook-secret", secret, "--hook-connect", "--hook-headers", "cookie",
    "--hook-timeout", "500ms", "--namespaces", "/game",
  ]);
});
after(async () => {
  assert.equal(await onExample.stop(), 0);
  assert.equal(await onScripted.stop(), 0);
  example.close();
  scripted.close();
  assert.equal(seen.bad, 0, "every request to the scripted backend was signed and carried no token");
});

const ack = (socket, event, payload) => socket.timeout(wait).emitWithAck(event, payload);

/** client connects to url with a transport case; the socket is closed when the test ends. */
async function client(t, tc, url, opts = {}) {
  const socket = await connect(url, { ...tc.opts, ...opts });
  t.after(() => socket.disconnect());
  if (tc.upgrade) await waitUpgrade(socket);
  return socket;
}

/** refusal connects and resolves with the connect_error. */
async function refusal(url, tc, opts = {}) {
  try {
    const socket = await connect(url, { ...tc.opts, ...opts });
    socket.disconnect();
  } catch (err) {
    return err;
  }
  assert.fail("connected, want a connect_error");
}

test("the example backend refuses forged and stale requests", async () => {
  const body = JSON.stringify({ events: [{ type: "room.occupied", ts: 1, namespace: "/", room: "x" }] });
  const post = (headers) => fetch(`${exampleURL}/hooks/events`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
  const now = String(Math.floor(Date.now() / 1000));
  assert.equal((await post({})).status, 401, "unsigned");
  assert.equal((await post({ "X-Switchboard-Timestamp": now, "X-Switchboard-Signature": sign("wrong", now, body) })).status, 401, "another secret");
  const old = String(Math.floor(Date.now() / 1000) - 3600);
  assert.equal((await post({ "X-Switchboard-Timestamp": old, "X-Switchboard-Signature": sign(secret, old, body) })).status, 401, "an hour old");
  assert.equal((await post({ "X-Switchboard-Timestamp": now, "X-Switchboard-Signature": sign(secret, now, body) })).status, 204, "signed now");
});

for (const tc of transportCases) {
  test(`example backend: a shared counter and a poll over ${tc.name}`, async (t) => {
    const ann = await client(t, tc, `${onExample.url}/game`, { auth: { name: "Ann" } });
    const bob = await client(t, tc, `${onExample.url}/game`, { auth: { name: "Bob" } });
    const { data: start } = await ack(ann, "counter:get", {});
    const update = nextEvent(bob, "counter:value");
    assert.deepEqual(await ack(ann, "counter:add", { by: 2 }), { data: { value: start.value + 2 } });
    const [value] = [await update].flat();
    assert.deepEqual(value, { value: start.value + 2, by: "Ann" }, "bob sees ann's add, through the counter room the connect hook joined");
    assert.equal((await ack(ann, "counter:add", { by: 99 })).error.code, "bad_request");
    assert.equal((await ack(ann, "no:such", {})).error.code, "not_found");

    const results = nextEvent(ann, "poll:results");
    const { data: poll } = await ack(bob, "poll:vote", { choice: "tabs" });
    assert.ok(poll.votes.tabs >= 1);
    assert.deepEqual([await results].flat()[0], poll, "ann sees the results bob's vote produced");

    const err = await refusal(`${onExample.url}/game`, tc, { auth: { name: "banned" } });
    assert.equal(err.message, "forbidden");
    assert.deepEqual(err.data, { code: "forbidden", message: "this name is banned" });
  });

  test(`connect hook: the body, accepted with user/rooms/data, refused, timed out over ${tc.name}`, async (t) => {
    script.connect = (req) => {
      if (req.auth.name === "ann") return [200, { user: { id: "u-ann", name: "Ann" }, rooms: ["team:red"], data: { team: "red" } }];
      if (req.auth.name === "slow") return "hang";
      if (req.auth.name === "down") return [503, null];
      return [200, { error: { code: "banned", message: "not today" } }];
    };
    script.event = (req) => [200, { ack: [{ data: { user: req.socket.user, rooms: req.socket.rooms, data: req.data ?? null } }] }];
    t.after(() => (delete script.connect, delete script.event));
    const ann = await client(t, tc, `${onScripted.url}/game`, {
      auth: { name: "ann", token: "secret-token" },
      extraHeaders: { cookie: "sid=1" }, // Node's client sends it; browsers send their own cookie
      query: { from: "test" },
    });
    const req = seen.requests.findLast((r) => r.hook === "connect" && r.body.auth.name === "ann").body;
    assert.deepEqual(req.auth, { name: "ann" }, "auth without the token");
    assert.equal(req.query.from, "test");
    assert.equal(req.socket.namespace, "/game");
    assert.deepEqual(req.headers, { cookie: "sid=1" }, "the --hook-headers header, not authorization");
    assert.deepEqual(await ack(ann, "whoami", {}), {
      data: { user: { id: "u-ann", name: "Ann" }, rooms: ["team:red", "user:u-ann"], data: { team: "red" } },
    });

    for (const [name, code, data] of [
      ["eve", "banned", { code: "banned", message: "not today" }],
      ["slow", "unavailable", { code: "unavailable", message: "the app backend is unavailable" }],
      ["down", "unavailable", { code: "unavailable", message: "the app backend is unavailable" }],
    ]) {
      const err = await refusal(`${onScripted.url}/game`, tc, { auth: { name } });
      assert.equal(err.message, code, name);
      assert.deepEqual(err.data, data, name);
    }
  });

  test(`event hook: every kind of answer over ${tc.name}`, async (t) => {
    const answers = {
      plain: [200, { ack: [{ data: 1 }] }],
      none: [200, {}],
      self: [200, { emit: [{ event: "just-you", args: ["hi"] }] }],
      others: [200, { emit: [{ rooms: ["table"], toSelf: false, event: "to-others", args: [1] }], ack: [{ data: "sent" }] }],
      join: [200, { join: ["table"] }],
      forbidden: [200, { join: ["user:someone"], ack: [{ data: "no" }] }],
      leave: [200, { leave: ["table"] }],
      refused: [422, { error: { code: "invalid_move", message: "no" } }],
      broken: [500, null],
      slow: "hang",
      garbage: [200, "<html>"],
      huge: [200, { ack: ["x".repeat(2 << 20)] }],
      bye: [200, { ack: [{ data: "bye" }], disconnect: true }],
    };
    script.connect = () => [200, {}];
    script.event = (req) => answers[req.event];
    t.after(() => (delete script.connect, delete script.event));
    const a = await client(t, tc, `${onScripted.url}/game`);
    const b = await client(t, tc, `${onScripted.url}/game`);
    assert.deepEqual(await ack(b, "join", {}), { data: null });
    assert.deepEqual(await ack(a, "join", {}), { data: null });

    assert.deepEqual(await ack(a, "plain", {}), { data: 1 });
    assert.deepEqual(await ack(a, "none", {}), { data: null });
    const mine = nextEvent(a, "just-you");
    assert.deepEqual(await ack(a, "self", {}), { data: null });
    assert.deepEqual([await mine].flat()[0], "hi");
    let selfGot = false;
    a.on("to-others", () => (selfGot = true));
    const theirs = nextEvent(b, "to-others");
    assert.deepEqual(await ack(a, "others", {}), { data: "sent" });
    await theirs;
    assert.equal((await ack(a, "forbidden", {})).error.code, "forbidden");
    assert.equal((await ack(a, "refused", {})).error.code, "invalid_move");
    assert.equal((await ack(a, "broken", {})).error.code, "unavailable");
    assert.equal((await ack(a, "slow", {})).error.code, "unavailable");
    assert.equal((await ack(a, "garbage", {})).error.code, "internal");
    assert.equal((await ack(a, "huge", {})).error.code, "internal");
    assert.deepEqual(await ack(a, "leave", {}), { data: null });
    assert.equal(selfGot, false, "toSelf: false left the sender out");
    const gone = once(a, "disconnect");
    assert.deepEqual(await ack(a, "bye", {}), { data: "bye" });
    assert.equal((await gone)[0], "io server disconnect");
  });

  test(`event hook: 1,000 events from 10 sockets in each socket's order over ${tc.name}`, async (t) => {
    const order = new Map();
    script.event = (req) => {
      const list = order.get(req.socket.id) ?? [];
      list.push(req.args[0]);
      order.set(req.socket.id, list);
      return [200, { ack: [req.args[0]] }];
    };
    t.after(() => delete script.event);
    const sockets = await Promise.all(Array.from({ length: 10 }, () => client(t, tc, `${onScripted.url}/game`)));
    await Promise.all(
      sockets.map(async (s) => {
        const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => ack(s, "seq", i)));
        assert.deepEqual(acks, Array.from({ length: 100 }, (_, i) => i));
      }),
    );
    for (const s of sockets) assert.deepEqual(order.get(s.id), Array.from({ length: 100 }, (_, i) => i), `socket ${s.id}`);
  });

  test(`event hook: rate_limited beyond 100 waiting over ${tc.name}`, async (t) => {
    // A node of its own whose hook timeout is longer than the test: the first event is held by
    // the backend until released, the next 100 wait, the 5 after them are refused at once.
    const node = await startServer(["--hook-url", `${scriptedURL}/hooks`, "--hook-secret", secret, "--hook-timeout", "60s"]);
    t.after(() => node.stop());
    let release, first;
    const held = new Promise((r) => (release = r));
    const arrived = new Promise((r) => (first = r));
    script.event = async (req) => {
      if (req.args[0] === 0) {
        first();
        await held;
      }
      return [200, { ack: [{ data: req.args[0] }] }];
    };
    t.after(() => delete script.event);
    const s = await client(t, tc, node.url);
    const firstAck = ack(s, "work", 0);
    await arrived;
    const acks = Array.from({ length: 105 }, (_, i) => ack(s, "work", i + 1));
    const limited = (await Promise.all(acks.slice(100))).map((a) => a.error?.code);
    assert.deepEqual(limited, Array(5).fill("rate_limited"));
    release();
    assert.deepEqual(await firstAck, { data: 0 });
    assert.deepEqual(await Promise.all(acks.slice(0, 100)), Array.from({ length: 100 }, (_, i) => ({ data: i + 1 })));
  });
}

test("events webhook: batched, retried until the backend recovers, nothing lost or reordered", async (t) => {
  let failures = 0;
  seen.events.length = 0;
  script.events = () => (++failures <= 2 ? [500, null] : [204, null]);
  t.after(() => delete script.events);
  const tc = transportCases[0];
  const ann = await client(t, tc, `${onScripted.url}/chat`, { auth: { name: "Ann" } });
  assert.ok((await ack(ann, "chat:join", { room: "webhook-room" })).data);
  const id = ann.id;
  ann.disconnect();
  const deadline = Date.now() + 20000;
  const of = (keep) => seen.events.filter(keep).map((e) => e.type + (e.user ? ` ${e.user.name}` : ""));
  const done = () => of((e) => e.socket?.id === id).length === 2 && of((e) => e.room === "webhook-room").length === 4;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100)); // polling the backend's record
  // In order per socket and per room (the kinds among themselves come from different places).
  assert.deepEqual(of((e) => e.socket?.id === id), ["socket.connected", "socket.disconnected"]);
  assert.deepEqual(of((e) => e.type.startsWith("room.") && e.room === "webhook-room"), ["room.occupied", "room.vacated"]);
  assert.deepEqual(of((e) => e.type.startsWith("chat.") && e.room === "webhook-room"), ["chat.member_added Ann", "chat.member_removed Ann"]);
  assert.ok(failures >= 3, "the first batches failed and were sent again");
});
