// Switchboard beside Node.js Socket.IO 4.8 on one Redis: what crosses, for both Redis adapters.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { startServer, connect, nextEvent } from "./helpers.js";
import { startRedis } from "./peers/redis.js";
import { startNodePeer } from "./peers/node-peer.js";

const ack = (socket, event, payload) =>
  new Promise((resolve) => socket.timeout(10000).emit(event, payload, (err, res) => resolve(err ? { err } : res)));

async function waitFor(what, cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50)); // polling with a deadline
  }
}

// Only the pub/sub adapter: the Go Streams adapter (zishang520 v3.0.2) and Node's
// @socket.io/redis-streams-adapter 0.3.1 do not understand each other (README, "Running several
// nodes").
for (const adapter of ["redis"]) {
  test(`${adapter}: Switchboard and a Node.js Socket.IO server share rooms`, async (t) => {
    const redis = await startRedis();
    const sb = await startServer(["--adapter", adapter, "--redis-url", redis.url]);
    const node = await startNodePeer({ redisUrl: redis.url, adapter });
    const onSb = await connect(sb.url, { transports: ["websocket"], auth: { name: "alice" } });
    const onNode = await connect(node.url, { transports: ["websocket"] });
    t.after(async () => {
      onSb.close();
      onNode.close();
      await node.close();
      await sb.stop();
      await redis.stop();
    });
    assert.deepEqual((await ack(onSb, "subscribe", { rooms: ["r1"] })).data.rooms.includes("r1"), true);
    await ack(onNode, "join", "r1");

    await t.test("a room broadcast from Node reaches Switchboard's clients", async () => {
      // The streams adapter reads from the stream's end: retry until the reader is up.
      let got;
      const seen = nextEvent(onSb, "hello").then((v) => (got = v));
      await waitFor("the broadcast", async () => {
        node.io.to("r1").emit("hello", "from-node");
        await new Promise((r) => setTimeout(r, 100));
        return got !== undefined;
      });
      await seen;
      assert.equal(got, "from-node");
    });

    await t.test("fetchSockets on Node sees Switchboard's sockets, with rooms and data", async () => {
      const sockets = await node.io.in("r1").fetchSockets();
      const ids = sockets.map((s) => s.id).sort();
      assert.deepEqual(ids, [onSb.id, onNode.id].sort());
      const remote = sockets.find((s) => s.id === onSb.id);
      assert.ok(remote.rooms.has("r1"));
    });

    await t.test("socketsJoin from Node moves Switchboard's sockets", async () => {
      node.io.in("r1").socketsJoin("r2");
      await waitFor("the join", async () => {
        const socks = await node.io.in("r2").fetchSockets();
        return socks.some((s) => s.id === onSb.id);
      });
    });

    await t.test("Node counts Switchboard as a server", async () => {
      assert.equal(await node.io.of("/").adapter.serverCount(), 2);
    });
  });
}

test("redis: @socket.io/redis-emitter reaches Switchboard's clients", async (t) => {
  const redis = await startRedis();
  const sb = await startServer(["--adapter", "redis", "--redis-url", redis.url]);
  const client = createClient({ url: redis.url });
  await client.connect();
  const emitter = new Emitter(client);
  const s = await connect(sb.url, { transports: ["websocket"] });
  t.after(async () => {
    s.close();
    await client.close();
    await sb.stop();
    await redis.stop();
  });
  await ack(s, "subscribe", { rooms: ["news"] });
  const got = nextEvent(s, "headline");
  emitter.to("news").emit("headline", { title: "hi" });
  assert.deepEqual(await got, { title: "hi" });
  // emitter.emit() to the whole namespace: see the next test.
});

test("redis: Switchboard's HTTP API reaches Node's clients, and Node's namespace-wide emits reach Switchboard's", async (t) => {
  const KEY = "interop-key";
  const redis = await startRedis();
  const sb = await startServer(["--adapter", "redis", "--redis-url", redis.url, "--api-keys", KEY]);
  const node = await startNodePeer({ redisUrl: redis.url, adapter: "redis" });
  const client = createClient({ url: redis.url });
  client.on("error", () => {});
  await client.connect();
  const emitter = new Emitter(client);
  const onSb = await connect(sb.url, { transports: ["websocket"], auth: { name: "alice" } });
  const onNode = await connect(node.url, { transports: ["websocket"] });
  t.after(async () => {
    onSb.close();
    onNode.close();
    await client.close().catch(() => {});
    await node.close();
    await sb.stop();
    await redis.stop();
  });
  const api = async (method, path, body) => {
    const res = await fetch(`${sb.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
  };
  await ack(onNode, "join", "r1");
  await waitFor("both servers counted", async () => (await api("GET", "/stats")).body.nodes === 2);

  await t.test("POST /api/v1/emit to a room and to the namespace reaches Node's client", async () => {
    for (const [rooms, event] of [
      [["r1"], "to-room"],
      [[], "to-all"],
    ]) {
      const got = nextEvent(onNode, event);
      assert.equal((await api("POST", "/emit", { rooms, event, data: { from: "switchboard" } })).status, 202);
      assert.deepEqual(await got, { from: "switchboard" });
    }
  });

  await t.test("a chat-shaped object keeps its JSON keys on Node", async () => {
    // Structs Switchboard emits travel as their JSON, not with Go field names.
    const got = nextEvent(onNode, "shape");
    await api("POST", "/emit", { rooms: ["r1"], event: "shape", args: [{ room: "r1", user: { id: "u", name: "n" } }, 2] });
    assert.deepEqual(await got, [{ room: "r1", user: { id: "u", name: "n" } }, 2]);
  });

  await t.test("GET /api/v1/sockets on Switchboard lists Node's sockets", async () => {
    const res = await api("GET", "/sockets?room=r1");
    assert.deepEqual(
      res.body.sockets.map((s) => s.id),
      [onNode.id],
    );
  });

  await t.test("io.emit and emitter.emit to the whole namespace reach Switchboard's clients", async () => {
    let got = nextEvent(onSb, "node-all");
    node.io.emit("node-all", "from-node");
    assert.equal(await got, "from-node");
    got = nextEvent(onSb, "emitter-all");
    emitter.emit("emitter-all", "from-emitter");
    assert.equal(await got, "from-emitter");
    got = nextEvent(onSb, "two-rooms");
    await ack(onSb, "subscribe", { rooms: ["r2"] });
    node.io.to("r2").to("r3").emit("two-rooms", "from-node");
    assert.equal(await got, "from-node");
  });

  await t.test("serverSideEmit from Node reaches Switchboard without harm", async () => {
    // Switchboard listens to no server-side event: Node's emits are received and dropped (with
    // an ack, Node's callback times out waiting for Switchboard: README). Node refuses reserved
    // names such as "connection".
    node.io.serverSideEmit("anything", { x: 1 });
    node.io.serverSideEmit("anything");
    // Still serving: a round trip through Switchboard works.
    const got = nextEvent(onNode, "after");
    assert.equal((await api("POST", "/emit", { rooms: ["r1"], event: "after", data: 1 })).status, 202);
    assert.equal(await got, 1);
    assert.equal(sb.proc.exitCode, null);
  });
});
