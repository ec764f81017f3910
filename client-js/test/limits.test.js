// Limits as socket.io-client sees them, over every transport: a refused handshake is a
// connect_error, a rate-limited event an ack with rate_limited, and a client over its limits
// leaves the others alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, transportCases, waitUpgrade } from "./helpers.js";

let server;
before(async () => {
  server = await startServer(["--max-connections", "1", "--event-rate", "0.001", "--event-burst", "3", "--event-abuse", "0"]);
});
after(async () => {
  assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
});

for (const tc of transportCases) {
  test(`over ${tc.name}: connection limit and event rate`, async (t) => {
    // The previous case's client may not be counted out yet.
    const socket = await retryConnect(server.url, tc.opts);
    t.after(() => socket.disconnect());
    if (tc.upgrade) await waitUpgrade(socket);

    // The node is full: a second client gets connect_error, the first keeps working.
    // The refusal is an HTTP 503 on the handshake, which the client reports as a transport error.
    await assert.rejects(connect(server.url, tc.opts), /xhr poll error|websocket error/);

    for (let i = 0; i < 3; i++) {
      const res = await socket.timeout(5000).emitWithAck("subscribe", { rooms: [`r${i}`] });
      assert.ok(res.data, `event ${i} within the burst: ${JSON.stringify(res)}`);
    }
    const limited = await socket.timeout(5000).emitWithAck("subscribe", { rooms: ["r9"] });
    assert.equal(limited.error?.code, "rate_limited");
    assert.ok(socket.connected, "a rate-limited client stays connected without --event-abuse");

    // Leaving frees the slot for the next client.
    socket.disconnect();
    const next = await retryConnect(server.url, tc.opts);
    next.disconnect();
  });
}

/** retryConnect connects once the server has counted the previous client's close. */
async function retryConnect(url, opts, deadline = Date.now() + 10000) {
  for (;;) {
    try {
      return await connect(url, opts);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
