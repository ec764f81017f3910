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
  // emitter.emit() to a whole namespace does not arrive: the library drops messages on the bare
  // namespace channel (README, "Running several nodes").
});
