// Issue 22 and issue 18 item 7, seen from the stock socket.io-client: what a client sees when the
// server shuts down, and a client's binary ack as the HTTP API hands it to a backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, transportCases, waitUpgrade } from "./helpers.js";

const KEY = "js-test-key";

for (const tc of transportCases) {
  // A client told "transport error" took the close for a network fault; "transport close" is the
  // server closing on purpose, after which the client reconnects (elsewhere) and recovers.
  test(`at shutdown a client over ${tc.name} sees "transport close"`, async () => {
    const server = await startServer(["--drain-delay", "200ms"]);
    const socket = await connect(server.url, tc.opts);
    if (tc.upgrade) await waitUpgrade(socket);
    const reason = new Promise((resolve) => socket.once("disconnect", (r) => resolve(r)));
    assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
    assert.equal(await reason, "transport close");
    socket.close();
  });
}

for (const tc of transportCases) {
  test(`a binary ack collected by POST /api/v1/emit keeps its bytes over ${tc.name}`, async (t) => {
    // Recovery off: the offset argument of stored broadcasts is not what this test looks at.
    const server = await startServer(["--api-keys", KEY, "--recovery-window", "0"]);
    t.after(() => server.stop());
    const socket = await connect(server.url, tc.opts);
    t.after(() => socket.close());
    if (tc.upgrade) await waitUpgrade(socket);
    socket.on("photo", (kind, ack) => {
      const bytes = Uint8Array.from([0, 1, 2, 255]);
      if (kind === "nested") ack({ blob: Buffer.from(bytes), name: "p.bin", parts: [bytes] });
      else ack(Buffer.from(bytes));
    });

    const emit = async (kind) => {
      const res = await fetch(`${server.url}/api/v1/emit`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ event: "photo", data: kind, ackTimeoutMs: 5000 }),
      });
      assert.equal(res.status, 200);
      return res.json();
    };
    const buffer = { type: "Buffer", data: [0, 1, 2, 255] };
    assert.deepEqual(await emit("nested"), {
      acks: [{ blob: buffer, name: "p.bin", parts: [buffer] }],
      timedOut: false,
    });
    assert.deepEqual(await emit("bare"), { acks: [buffer], timedOut: false });
  });
}
