// The Node.js Socket.IO 4.8 server that shares a Redis with Switchboard in the interop tests,
// with @socket.io/redis-adapter (pub/sub) or @socket.io/redis-streams-adapter.
import { createServer } from "node:http";
import { once } from "node:events";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

/** startNodePeer resolves with { io, url, close() } once the server listens. */
export async function startNodePeer({ redisUrl, adapter }) {
  const pub = createClient({ url: redisUrl });
  pub.on("error", () => {});
  await pub.connect();
  const clients = [pub];
  let adapterCtor;
  if (adapter === "redis") {
    const sub = pub.duplicate();
    sub.on("error", () => {});
    await sub.connect();
    clients.push(sub);
    adapterCtor = createAdapter(pub, sub);
  } else {
    adapterCtor = createStreamsAdapter(pub);
  }
  const http = createServer();
  const io = new Server(http, { adapter: adapterCtor, connectionStateRecovery: {} });
  io.on("connection", (socket) => {
    socket.data.peer = "node";
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack?.(room);
    });
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  return {
    io,
    url: `http://127.0.0.1:${http.address().port}`,
    async close() {
      await new Promise((resolve) => io.close(() => resolve()));
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    },
  };
}
