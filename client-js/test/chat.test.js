// The event contract of "/" and "/chat" (README "Events"), checked with the stock socket.io-client
// over websocket-only, polling-only and polling→websocket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, nextEvent as nextArgs, transportCases, waitUpgrade } from "./helpers.js";

let server;
before(async () => {
  server = await startServer(["--chat-history", "100"]);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

/**
 * nextEvent resolves with the first argument of the next `event`. With connection state recovery
 * on, the server appends each event's offset as a last argument, as Node's Socket.IO does.
 */
async function nextEvent(socket, event) {
  const args = await nextArgs(socket, event);
  return Array.isArray(args) ? args[0] : args;
}

const ack = (socket, event, payload) => socket.timeout(5000).emitWithAck(event, payload);

/** chatClient connects to /chat with a name. */
async function chatClient(tc, name, t) {
  const socket = await connect(`${server.url}/chat`, { ...tc.opts, auth: { name } });
  t.after(() => socket.disconnect());
  if (tc.upgrade) await waitUpgrade(socket);
  return socket;
}

for (const tc of transportCases) {
  test(`/ subscribe and unsubscribe over ${tc.name}`, async (t) => {
    const socket = await connect(server.url, { ...tc.opts });
    t.after(() => socket.disconnect());
    if (tc.upgrade) await waitUpgrade(socket);
    const own = `user:${socket.id}`;
    assert.deepEqual(await ack(socket, "subscribe", { rooms: ["b", "a"] }), { data: { rooms: ["a", "b", own] } });
    assert.deepEqual(await ack(socket, "unsubscribe", { rooms: ["b"] }), { data: { rooms: ["a", own] } });
    assert.equal((await ack(socket, "subscribe", { rooms: ["user:someone-else"] })).error.code, "forbidden");
    assert.equal((await ack(socket, "unsubscribe", { rooms: [own] })).error.code, "forbidden");
    assert.equal((await ack(socket, "subscribe", { rooms: [] })).error.code, "bad_request");
    assert.equal((await ack(socket, "subscribe", { rooms: "a" })).error.code, "bad_request");
    assert.equal((await ack(socket, "subscribe", { rooms: ["x".repeat(129)] })).error.code, "bad_request");
    assert.equal((await ack(socket, "subscribe", null)).error.code, "bad_request");
  });

  test(`/chat: every event of the contract over ${tc.name}`, async (t) => {
    const room = `lobby-${tc.name.replace(/[^a-z]/g, "")}`;
    const alice = await chatClient(tc, "alice", t);
    const bob = await chatClient(tc, "bob", t);

    // chat:join: ack with members and history; the others get chat:user-joined.
    let res = await ack(alice, "chat:join", { room });
    assert.deepEqual(res, { data: { room, members: [{ id: alice.id, name: "alice" }], history: [] } });
    const joined = nextEvent(alice, "chat:user-joined");
    res = await ack(bob, "chat:join", { room });
    assert.deepEqual(res.data.members, [
      { id: alice.id, name: "alice" },
      { id: bob.id, name: "bob" },
    ]);
    assert.deepEqual(await joined, { room, user: { id: bob.id, name: "bob" } });

    // chat:send: ack {id, ts}; chat:message to every member, the sender included.
    const toAlice = nextEvent(alice, "chat:message");
    const toBob = nextEvent(bob, "chat:message");
    const sent = await ack(bob, "chat:send", { room, text: "hello ☃" });
    assert.equal(sent.data.id, "1");
    assert.ok(Math.abs(sent.data.ts - Date.now()) < 60000, "ts is Unix milliseconds");
    const want = { id: "1", room, user: { id: bob.id, name: "bob" }, text: "hello ☃", ts: sent.data.ts };
    assert.deepEqual(await toAlice, want);
    assert.deepEqual(await toBob, want);

    // chat:typing: to the others only, volatile (repeated until one gets through), no ack.
    let bobSawTyping = false;
    bob.on("chat:typing", () => (bobSawTyping = true));
    const typing = nextEvent(alice, "chat:typing");
    let got;
    typing.then((v) => (got = v));
    for (let i = 0; i < 20 && !got; i++) {
      bob.emit("chat:typing", { room, typing: true });
      await ack(bob, "chat:history", { room, limit: 1 }); // a round trip between tries
    }
    assert.deepEqual(await typing, { room, user: { id: bob.id, name: "bob" }, typing: true });
    assert.equal(bobSawTyping, false);

    // chat:history.
    await ack(alice, "chat:send", { room, text: "second" });
    res = await ack(alice, "chat:history", { room });
    assert.deepEqual(res.data.messages.map((m) => m.id), ["1", "2"]);
    res = await ack(alice, "chat:history", { room, before: "2", limit: 1 });
    assert.deepEqual(res.data.messages.map((m) => m.text), ["hello ☃"]);

    // chat:leave: ack {room}; the others get chat:user-left.
    const left = nextEvent(alice, "chat:user-left");
    assert.deepEqual(await ack(bob, "chat:leave", { room }), { data: { room } });
    assert.deepEqual(await left, { room, user: { id: bob.id, name: "bob" } });

    // Errors.
    const code = async (event, payload) => (await ack(bob, event, payload)).error.code;
    assert.equal(await code("chat:send", { room, text: "gone" }), "forbidden");
    assert.equal(await code("chat:typing", { room, typing: true }), "forbidden");
    assert.equal(await code("chat:history", { room }), "forbidden");
    assert.equal(await code("chat:join", { room: `user:${alice.id}` }), "forbidden");
    assert.equal(await code("chat:join", { room: 42 }), "bad_request");
    assert.equal(await code("chat:join", { room: "a b" }), "bad_request");
    assert.equal(await code("chat:join", "lobby"), "bad_request");
    await ack(bob, "chat:join", { room });
    assert.equal(await code("chat:send", { room, text: "x".repeat(4001) }), "bad_request");
    assert.equal(await code("chat:send", { room, text: null }), "bad_request");
    assert.equal(await code("chat:history", { room, limit: 0 }), "bad_request");
    assert.equal(await code("chat:history", { room, before: "abc" }), "bad_request");
  });

  test(`/chat: join a room and receive a room broadcast over ${tc.name}`, async (t) => {
    const room = `broadcast-${tc.name.replace(/[^a-z]/g, "")}`;
    const listener = await chatClient(tc, "listener", t);
    const speaker = await chatClient(tc, "speaker", t);
    await ack(listener, "chat:join", { room });
    await ack(speaker, "chat:join", { room });
    const heard = nextEvent(listener, "chat:message");
    await ack(speaker, "chat:send", { room, text: "to the room" });
    assert.equal((await heard).text, "to the room");
  });

  test(`/chat: a disconnect without leave is chat:user-left over ${tc.name}`, async (t) => {
    const room = `drop-${tc.name.replace(/[^a-z]/g, "")}`;
    const stay = await chatClient(tc, "stay", t);
    const drop = await chatClient(tc, "drop", t);
    await ack(stay, "chat:join", { room });
    await ack(drop, "chat:join", { room });
    const left = nextEvent(stay, "chat:user-left");
    const dropId = drop.id;
    drop.disconnect();
    assert.deepEqual(await left, { room, user: { id: dropId, name: "drop" } });
    const res = await ack(stay, "chat:join", { room });
    assert.deepEqual(res.data.members, [{ id: stay.id, name: "stay" }]);
  });
}

test("/chat: many clients send at once; everyone receives every message in id order", async (t) => {
  const room = "crowd";
  const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => chatClient(transportCases[i % 3], `c${i}`, t)));
  await Promise.all(clients.map((c) => ack(c, "chat:join", { room })));
  const perClient = 10;
  const total = clients.length * perClient;
  const received = clients.map((c) => {
    const ids = [];
    return new Promise((resolve) => {
      c.on("chat:message", (m) => {
        ids.push(Number(m.id));
        if (ids.length === total) resolve(ids);
      });
    });
  });
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = 0; k < perClient; k++) await ack(c, "chat:send", { room, text: `${i}-${k}` });
    }),
  );
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  for (const ids of await Promise.all(received)) assert.deepEqual(ids, expected);
});

test("recover a dropped connection: same id, rooms, and the missed chat message", async (t) => {
  const room = "recovery";
  const other = await connect(`${server.url}/chat`, { transports: ["websocket"], auth: { name: "other" } });
  t.after(() => other.disconnect());
  const socket = await connect(`${server.url}/chat`, {
    transports: ["websocket"],
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    auth: { name: "dropper" },
  });
  t.after(() => socket.disconnect());
  await ack(socket, "chat:join", { room });
  await ack(other, "chat:join", { room });
  // Recovery needs an offset, which rides on events: receive one first.
  const first = nextEvent(socket, "chat:message");
  await ack(other, "chat:send", { room, text: "before the drop" });
  assert.equal((await first).text, "before the drop");

  const id = socket.id;
  // Presence follows: the drop is chat:user-left, the recovery chat:user-joined.
  const presence = [];
  other.on("chat:user-left", (e) => presence.push(["left", e.user.id]));
  other.on("chat:user-joined", (e) => presence.push(["joined", e.user.id]));
  const rejoined = nextEvent(other, "chat:user-joined");
  const disconnected = nextArgs(socket, "disconnect");
  socket.io.engine.close();
  await disconnected; // the client reports "forced close"; the server sees its transport close
  // Sent while the socket is away.
  const missed = await ack(other, "chat:send", { room, text: "while you were away" });

  const reconnected = nextArgs(socket, "connect");
  const delivered = nextEvent(socket, "chat:message");
  await reconnected;
  assert.equal(socket.recovered, true);
  assert.equal(socket.id, id);
  const m = await delivered;
  assert.equal(m.text, "while you were away");
  assert.equal(m.id, missed.data.id);
  // Still in the room: it can send there, and history sees it as a member.
  const res = await ack(socket, "chat:history", { room });
  assert.deepEqual(res.data.messages.map((x) => x.text), ["before the drop", "while you were away"]);
  await rejoined;
  assert.deepEqual(presence, [
    ["left", id],
    ["joined", id],
  ]);
});
