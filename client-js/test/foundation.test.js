import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, transportCases, waitUpgrade } from "./helpers.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
});

for (const tc of transportCases) {
  test(`connects and acks over ${tc.name}`, async (t) => {
    const socket = await connect(server.url, { ...tc.opts, auth: { name: "ada" } });
    t.after(() => socket.disconnect());
    if (tc.upgrade) {
      await waitUpgrade(socket);
      assert.equal(socket.io.engine.transport.name, "websocket");
    } else {
      assert.equal(socket.io.engine.transport.name, tc.opts.transports[0]);
    }
    const res = await socket.timeout(5000).emitWithAck("subscribe", { rooms: ["news"] });
    assert.deepEqual(res, { data: { rooms: ["news", `user:${socket.id}`] } });
  });
}

test("an unknown namespace is refused with connect_error", async () => {
  await assert.rejects(connect(`${server.url}/nope`), /Invalid namespace/);
});
