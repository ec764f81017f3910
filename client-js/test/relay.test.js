// The "/relay" contract (SPEC §9, README "/relay"), checked with the stock socket.io-client over
// websocket-only, polling-only and polling→websocket: ack shapes and errors, unkeyed order,
// keyed coalescing with the last value, state for a late joiner, state dropped on departure; and
// two nodes on one Redis sharing members, state and messages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, nextEvent as nextArgs, transportCases, waitUpgrade } from "./helpers.js";
import { startRedis } from "./peers/redis.js";

let server;
before(async () => {
  server = await startServer(["--relay-tick", "50ms"]);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

/** nextEvent resolves with the first argument of the next `event` (recovery appends an offset). */
async function nextEvent(socket, event) {
  const args = await nextArgs(socket, event);
  return Array.isArray(args) ? args[0] : args;
}

/** messages records socket's relay:message arguments, in order. */
function messages(socket) {
  const log = [];
  socket.on("relay:message", (m) => log.push(m));
  return log;
}

async function waitFor(what, cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10)); // polling with a deadline
  }
}

const ack = (socket, event, payload) => socket.timeout(10000).emitWithAck(event, payload);
const user = (socket, name) => ({ id: socket.id, name });

/** relayClient connects to /relay at url with a name. */
async function relayClient(t, url, tc, name) {
  const socket = await connect(`${url}/relay`, { ...tc.opts, auth: { name } });
  t.after(() => socket.disconnect());
  if (tc.upgrade) await waitUpgrade(socket);
  return socket;
}

for (const tc of transportCases) {
  const tag = tc.name.replace(/[^a-z]/g, "");

  test(`/relay acks and errors over ${tc.name}`, async (t) => {
    const room = `acks-${tag}`;
    const alice = await relayClient(t, server.url, tc, "alice");
    const bob = await relayClient(t, server.url, tc, "bob");
    assert.equal((await ack(alice, "relay:publish", { room, event: "move", data: 1 })).error.code, "forbidden", "publish before joining");
    assert.deepEqual(await ack(alice, "relay:join", { room }), { data: { room, members: [user(alice, "alice")], state: {} } });
    const joined = nextEvent(alice, "relay:user-joined");
    const res = await ack(bob, "relay:join", { room });
    assert.deepEqual(res.data.members, [user(alice, "alice"), user(bob, "bob")]);
    assert.deepEqual(await joined, { room, user: user(bob, "bob") });

    const heard = nextEvent(bob, "relay:message");
    assert.deepEqual(await ack(alice, "relay:publish", { room, event: "hello", data: { hi: [1, "☃"] } }), { data: {} });
    assert.deepEqual(await heard, { room, user: user(alice, "alice"), event: "hello", data: { hi: [1, "☃"] } });
    const keyed = nextEvent(bob, "relay:message");
    assert.deepEqual(await ack(alice, "relay:publish", { room, event: "move", data: { x: 1 }, key: "pos" }), { data: {} });
    assert.deepEqual(await keyed, { room, user: user(alice, "alice"), event: "move", data: { x: 1 }, key: "pos" });

    const bad = [
      ["no event", { room, data: 1 }],
      ["event with a space", { room, event: "a b", data: 1 }],
      ["event of 65 characters", { room, event: "e".repeat(65), data: 1 }],
      ["no data", { room, event: "move" }],
      ["data over 16 KiB", { room, event: "move", data: "x".repeat(16 * 1024) }],
      ["empty key", { room, event: "move", data: 1, key: "" }],
      ["key of 65 characters", { room, event: "move", data: 1, key: "k".repeat(65) }],
      ["key not a string", { room, event: "move", data: 1, key: 7 }],
      ["bad room", { room: "a room", event: "move", data: 1 }],
      ["not an object", "move"],
    ];
    for (const [what, payload] of bad) {
      assert.equal((await ack(alice, "relay:publish", payload)).error.code, "bad_request", what);
    }
    for (let k = 1; k < 100; k++) await ack(alice, "relay:publish", { room, event: "move", data: k, key: `k${k}` });
    const over = await ack(alice, "relay:publish", { room, event: "move", data: 0, key: "k100" });
    assert.equal(over.error.code, "bad_request", "a 101st key");
    assert.equal((await ack(alice, "relay:join", { room: `user:${bob.id}` })).error.code, "forbidden");
    assert.equal((await ack(alice, "relay:join", { room: "" })).error.code, "bad_request");

    const left = nextEvent(bob, "relay:user-left");
    assert.deepEqual(await ack(alice, "relay:leave", { room }), { data: { room } });
    assert.deepEqual(await left, { room, user: user(alice, "alice") });
    assert.equal((await ack(alice, "relay:publish", { room, event: "move", data: 1 })).error.code, "forbidden", "publish after leaving");
  });

  test(`/relay unkeyed messages arrive in order over ${tc.name}`, async (t) => {
    const room = `order-${tag}`;
    const alice = await relayClient(t, server.url, tc, "alice");
    const bob = await relayClient(t, server.url, tc, "bob");
    await ack(alice, "relay:join", { room });
    await ack(bob, "relay:join", { room });
    const log = messages(bob);
    const own = messages(alice);
    for (let i = 0; i < 499; i++) alice.emit("relay:publish", { room, event: "seq", data: i });
    await ack(alice, "relay:publish", { room, event: "seq", data: 499 });
    await waitFor("500 messages", () => log.length === 500);
    assert.deepEqual(
      log.map((m) => m.data),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.equal(own.length, 0, "the sender does not get its own messages");
  });

  test(`/relay: 1,000 publishes of one key in a tick reach a member as one message over ${tc.name}`, async (t) => {
    // A server of its own with a long tick: its loop starts at the first keyed publish, so the
    // first tick comes 3 s later, after the whole burst.
    const slow = await startServer(["--relay-tick", "3s"]);
    t.after(() => slow.stop());
    const room = `burst-${tag}`;
    const alice = await relayClient(t, slow.url, tc, "alice");
    const bob = await relayClient(t, slow.url, tc, "bob");
    const carol = await relayClient(t, slow.url, tc, "carol");
    for (const s of [alice, bob, carol]) await ack(s, "relay:join", { room });
    const logs = [messages(bob), messages(carol)];
    const started = Date.now();
    for (let i = 0; i < 999; i++) alice.emit("relay:publish", { room, event: "move", data: { x: i }, key: "pos" });
    await ack(alice, "relay:publish", { room, event: "move", data: { x: 999 }, key: "pos" });
    assert.ok(Date.now() - started < 3000, "the burst took longer than the tick");
    for (const log of logs) {
      await waitFor("the tick", () => log.length > 0);
      assert.deepEqual(log, [{ room, user: user(alice, "alice"), event: "move", data: { x: 999 }, key: "pos" }]);
    }
  });

  test(`/relay state: a late joiner gets it, a departed user's is gone, over ${tc.name}`, async (t) => {
    const room = `state-${tag}`;
    const alice = await relayClient(t, server.url, tc, "alice");
    const bob = await relayClient(t, server.url, tc, "bob");
    await ack(alice, "relay:join", { room });
    await ack(bob, "relay:join", { room });
    const aliceHeard = messages(alice);
    await ack(alice, "relay:publish", { room, event: "move", data: { x: 1 }, key: "pos" });
    await ack(alice, "relay:publish", { room, event: "look", data: "north", key: "dir" });
    await ack(bob, "relay:publish", { room, event: "move", data: { x: 2 }, key: "pos" });
    await waitFor("bob's value to go out", () => aliceHeard.some((m) => m.key === "pos"));

    const carol = await relayClient(t, server.url, tc, "carol");
    let res = await ack(carol, "relay:join", { room });
    assert.deepEqual(res.data.state, { [alice.id]: { pos: { x: 1 }, dir: "north" }, [bob.id]: { pos: { x: 2 } } });

    const left = nextEvent(carol, "relay:user-left");
    const bobUser = user(bob, "bob"); // socket.id is gone once disconnected
    bob.disconnect();
    assert.deepEqual(await left, { room, user: bobUser });
    const dave = await relayClient(t, server.url, tc, "dave");
    res = await ack(dave, "relay:join", { room });
    assert.deepEqual(res.data.state, { [alice.id]: { pos: { x: 1 }, dir: "north" } });
    assert.deepEqual(res.data.members.map((u) => u.name), ["alice", "carol", "dave"]);
  });
}

test("/relay on two nodes on one Redis: members, state and messages cross", { timeout: 60000 }, async (t) => {
  const redis = await startRedis();
  const key = "relay-test-key";
  const args = ["--adapter", "redis", "--redis-url", redis.url, "--api-keys", key];
  const a = await startServer(args);
  const b = await startServer(args);
  t.after(async () => {
    await a.stop();
    await b.stop();
    await redis.stop();
  });
  // Each node listens to the other's messages once it counts two nodes.
  for (const node of [a, b]) {
    await waitFor("both nodes in stats", async () => {
      const res = await fetch(`${node.url}/api/v1/stats`, { headers: { authorization: `Bearer ${key}` } });
      return (await res.json()).nodes === 2;
    });
  }
  const tc = transportCases[0];
  const room = "arena";
  const alice = await relayClient(t, a.url, tc, "alice");
  const bob = await relayClient(t, b.url, tc, "bob");
  await ack(alice, "relay:join", { room });
  const joined = nextEvent(alice, "relay:user-joined");
  assert.deepEqual((await ack(bob, "relay:join", { room })).data.members.map((u) => u.name), ["alice", "bob"]);
  assert.deepEqual(await joined, { room, user: user(bob, "bob") });

  const onB = messages(bob);
  const onA = messages(alice);
  for (let i = 0; i < 99; i++) alice.emit("relay:publish", { room, event: "move", data: { x: i }, key: "pos" });
  await ack(alice, "relay:publish", { room, event: "move", data: { x: 99 }, key: "pos" });
  await waitFor("A's last value on B", () => onB.some((m) => m.key === "pos" && m.data.x === 99));
  assert.ok(onB.length < 100, `${onB.length} messages for 100 publishes of one key`);
  for (let i = 0; i < 50; i++) bob.emit("relay:publish", { room, event: "seq", data: i });
  await waitFor("B's unkeyed messages on A", () => onA.length === 50);
  assert.deepEqual(
    onA.map((m) => m.data),
    Array.from({ length: 50 }, (_, i) => i),
  );

  const carol = await relayClient(t, b.url, tc, "carol");
  const res = await ack(carol, "relay:join", { room });
  assert.deepEqual(res.data.state, { [alice.id]: { pos: { x: 99 } } });
  const left = nextEvent(carol, "relay:user-left");
  const aliceUser = user(alice, "alice");
  alice.disconnect();
  assert.deepEqual(await left, { room, user: aliceUser });
  const dave = await relayClient(t, a.url, tc, "dave");
  assert.deepEqual((await ack(dave, "relay:join", { room })).data.state, {});
});
