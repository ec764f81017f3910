// SPEC §5 with the stock socket.io-client: refusal codes, the rooms claim, expiry and refresh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { io } from "socket.io-client";
import { spawn } from "node:child_process";
import { startServer, connect, nextEvent, transportCases, waitUpgrade, binary } from "./helpers.js";

const secret = "a-test-secret-of-at-least-32-bytes!!";

/** mint signs claims as an HS256 JWT with nothing but node:crypto. */
function mint(claims, key = secret, header = { alg: "HS256", typ: "JWT" }) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}
const now = () => Math.floor(Date.now() / 1000);

/** disconnectReason resolves with the reason of socket's next disconnect. */
async function disconnectReason(socket, timeoutMs) {
  const args = await nextEvent(socket, "disconnect", timeoutMs);
  return Array.isArray(args) ? args[0] : args;
}

/** refusal resolves with the connect_error of a connection that must be refused. */
async function refusal(url, opts) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  try {
    return await new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error("connected, want connect_error")));
      socket.once("connect_error", resolve);
    });
  } finally {
    socket.close();
  }
}

let server;
before(async () => {
  server = await startServer(["--jwt-secret", secret]);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

for (const tc of transportCases) {
  test(`refusal codes over ${tc.name}`, async () => {
    const cases = [
      { name: "no token", auth: undefined, code: "token_missing" },
      { name: "garbage", auth: { token: "not.a.jwt" }, code: "token_invalid" },
      { name: "wrong signature", auth: { token: mint({ sub: "alice" }, "another-secret") }, code: "token_invalid" },
      { name: "alg none", auth: { token: mint({ sub: "alice" }, secret, { alg: "none" }).replace(/[^.]*$/, "") }, code: "token_invalid" },
      { name: "no sub", auth: { token: mint({ exp: now() + 60 }) }, code: "token_invalid" },
      { name: "expired", auth: { token: mint({ sub: "alice", exp: now() - 60 }) }, code: "token_expired" },
    ];
    for (const c of cases) {
      const err = await refusal(server.url, { ...tc.opts, auth: c.auth });
      assert.equal(err.message, "unauthorized", c.name);
      assert.equal(err.data?.code, c.code, c.name);
    }
  });

  test(`a valid token connects over ${tc.name}`, async (t) => {
    const socket = await connect(server.url, { ...tc.opts, auth: { token: mint({ sub: "alice", exp: now() + 60 }) } });
    t.after(() => socket.disconnect());
    if (tc.upgrade) await waitUpgrade(socket);
    const res = await socket.timeout(5000).emitWithAck("subscribe", { rooms: ["news"] });
    assert.deepEqual(res, { data: { rooms: ["news", "user:alice"] } });
  });
}

test("an Authorization: Bearer header authenticates a Node client", async (t) => {
  const token = mint({ sub: "svc", exp: now() + 60 });
  for (const transports of [["websocket"], ["polling"]]) {
    const socket = await connect(server.url, { transports, extraHeaders: { Authorization: `Bearer ${token}` } });
    t.after(() => socket.disconnect());
    const res = await socket.timeout(5000).emitWithAck("subscribe", { rooms: ["jobs"] });
    assert.deepEqual(res, { data: { rooms: ["jobs", "user:svc"] } });
  }
  const err = await refusal(server.url, { transports: ["websocket"], extraHeaders: { Authorization: "Basic eDp5" } });
  assert.equal(err.data?.code, "token_missing");
});

test("the rooms claim limits subscribe; others' user rooms are denied", async (t) => {
  const socket = await connect(server.url, {
    auth: { token: mint({ sub: "alice", exp: now() + 60, rooms: ["news", "prices:*"] }) },
  });
  t.after(() => socket.disconnect());
  const sub = (rooms) => socket.timeout(5000).emitWithAck("subscribe", { rooms });
  assert.deepEqual(await sub(["news", "prices:EURUSD", "prices:"]), {
    data: { rooms: ["news", "prices:", "prices:EURUSD", "user:alice"] },
  });
  for (const denied of [["sports"], ["news", "newsroom"], ["user:bob"]]) {
    const res = await sub(denied);
    assert.equal(res.error?.code, "forbidden", `subscribe ${denied}`);
  }

  const none = await connect(server.url, { auth: { token: mint({ sub: "carol", exp: now() + 60, rooms: [] }) } });
  t.after(() => none.disconnect());
  const res = await none.timeout(5000).emitWithAck("subscribe", { rooms: ["news"] });
  assert.equal(res.error?.code, "forbidden");
});

test("a rooms claim that is not a list of strings is token_invalid", async () => {
  for (const rooms of ["news", [1], { news: true }]) {
    const err = await refusal(server.url, { auth: { token: mint({ sub: "alice", rooms }) } });
    assert.equal(err.data?.code, "token_invalid", JSON.stringify(rooms));
  }
});

test("chat:join obeys the rooms claim", async (t) => {
  const auth = { token: mint({ sub: "alice", exp: now() + 60, rooms: ["lobby"] }) };
  const chat = await connect(`${server.url}/chat`, { auth });
  t.after(() => chat.disconnect());
  const ok = await chat.timeout(5000).emitWithAck("chat:join", { room: "lobby" });
  assert.equal(ok.data?.room, "lobby");
  const denied = await chat.timeout(5000).emitWithAck("chat:join", { room: "secret" });
  assert.equal(denied.error?.code, "forbidden");
});

for (const tc of transportCases) {
  test(`at exp: auth:expired, then a server disconnect without reconnection, over ${tc.name}`, async () => {
    const exp = now() + 2;
    // reconnection on: the client must still not come back by itself.
    const socket = io(server.url, { forceNew: true, reconnection: true, reconnectionDelay: 50, ...tc.opts, auth: { token: mint({ sub: "alice", exp }) } });
    try {
      await nextEvent(socket, "connect");
      const events = [];
      socket.on("auth:expired", (p) => events.push(["auth:expired", p]));
      const reason = await disconnectReason(socket, 8000);
      assert.equal(reason, "io server disconnect");
      assert.deepEqual(events, [["auth:expired", { exp }]]);
      assert.ok(Date.now() >= exp * 1000, "not before exp");
      // A server-side disconnect leaves the client inactive: socket.io-client will not reconnect
      // it by itself (its documented meaning of `active`), whatever its reconnection option.
      assert.equal(socket.active, false);
      assert.equal(socket.connected, false);
    } finally {
      socket.close();
    }
  });
}

test("auth:refresh extends the socket's life and applies the new claims", async (t) => {
  const exp = now() + 2;
  const socket = await connect(server.url, { auth: { token: mint({ sub: "alice", exp, rooms: ["news"] }) } });
  t.after(() => socket.disconnect());
  let expired = false;
  socket.on("auth:expired", () => (expired = true));
  const refresh = (payload) => socket.timeout(5000).emitWithAck("auth:refresh", payload);

  assert.equal((await refresh({ token: mint({ sub: "bob", exp: now() + 60 }) })).error?.code, "forbidden");
  assert.equal((await refresh({ token: mint({ sub: "alice", exp: now() - 1 }) })).error?.code, "unauthorized");
  assert.equal((await refresh({ token: "junk" })).error?.code, "unauthorized");
  assert.equal((await refresh({ token: 7 })).error?.code, "bad_request");
  assert.equal((await refresh("token")).error?.code, "bad_request");

  const later = now() + 3600;
  const newToken = mint({ sub: "alice", exp: later, rooms: ["sports"] });
  assert.deepEqual(await refresh({ token: newToken }), { data: { exp: later } });
  socket.auth.token = newToken; // what a reconnection would present

  const sub = (rooms) => socket.timeout(5000).emitWithAck("subscribe", { rooms });
  assert.equal((await sub(["news"])).error?.code, "forbidden");
  assert.ok((await sub(["sports"])).data);

  // Past the first token's exp, the socket is still there.
  await new Promise((r) => setTimeout(r, (exp + 1) * 1000 - Date.now()));
  assert.equal(expired, false);
  assert.equal(socket.connected, true);
  assert.ok((await sub(["sports"])).data);
});

test("after a transport drop the token is checked again and its expiry re-armed", async (t) => {
  const exp = now() + 3;
  const socket = io(server.url, { forceNew: true, transports: ["websocket"], reconnectionDelay: 50, auth: { token: mint({ sub: "alice", exp }) } });
  t.after(() => socket.close());
  await nextEvent(socket, "connect");
  const dropped = disconnectReason(socket);
  const back = nextEvent(socket, "connect");
  socket.io.engine.close(); // the client reconnects by itself; the middleware runs again
  assert.equal(await dropped, "forced close");
  await back;
  const expired = nextEvent(socket, "auth:expired", 8000);
  const gone = disconnectReason(socket, 8000);
  // With connection state recovery on, events carry their offset as a last argument.
  const [payload] = [await expired].flat();
  assert.deepEqual(payload, { exp });
  assert.equal(await gone, "io server disconnect");

  // Once the token has expired, the same client is refused on its next attempt.
  const err = await refusal(server.url, { auth: socket.auth });
  assert.equal(err.data?.code, "token_expired");
});

test("without a key anonymous clients connect, the start says so, and auth:refresh is a bad_request", async (t) => {
  const anon = await startServer();
  t.after(() => anon.stop());
  assert.ok(
    anon.logs.some((e) => e.level === "warn" && /anonymous clients are allowed/.test(e.message)),
    "startup warning",
  );
  const socket = await connect(anon.url, { auth: { name: "ada" } });
  t.after(() => socket.disconnect());
  const res = await socket.timeout(5000).emitWithAck("auth:refresh", { token: mint({ sub: "alice" }) });
  assert.equal(res.error?.code, "bad_request");
});

test("a bad --jwt-public-key stops the start with exit code 2", async () => {
  const proc = spawn(binary(), ["--addr", "127.0.0.1:0", "--jwt-public-key", "/nonexistent/key.pem"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const [code] = await new Promise((resolve) => proc.once("exit", (...a) => resolve(a)));
  assert.equal(code, 2);
  assert.match(stderr.trim(), /^switchboard: invalid --jwt-public-key: .+$/);
});
