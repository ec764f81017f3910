// The terminal demo (bin/chat.js) against a real server, with a stock socket.io-client on the other end.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, connect } from "./helpers.js";

const chatJs = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "chat.js");
const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
});

/** runChat starts bin/chat.js; lines() waits for a printed line matching re. */
function runChat(args) {
  const proc = spawn(process.execPath, [chatJs, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const seen = [];
  const waiters = [];
  createInterface({ input: proc.stdout }).on("line", (line) => {
    seen.push(line);
    for (const w of [...waiters]) if (w.re.test(line)) w.resolve(line);
  });
  return {
    proc,
    seen,
    type: (line) => proc.stdin.write(line + "\n"),
    waitLine(re, timeoutMs = 10000) {
      const hit = seen.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`chat.js never printed ${re}; it printed:\n${seen.join("\n")}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

test("the terminal chat joins, prints, sends, reconnects and quits", { timeout: 60000 }, async (t) => {
  let server = await startServer();
  servers.push(server);
  const addr = new URL(server.url).host;

  const bob = await connect(`${server.url}/chat`, { auth: { name: "bob" } }).catch((err) => assert.fail(`bob connects to /chat: ${err.message}`));
  t.after(() => bob.disconnect());
  const joined = await bob.timeout(5000).emitWithAck("chat:join", { room: "lobby" });
  assert.ok(joined.data, `bob joins: ${JSON.stringify(joined)}`);
  await bob.timeout(5000).emitWithAck("chat:send", { room: "lobby", text: "before ada" });

  const cli = runChat(["--url", server.url, "--room", "lobby", "--name", "ada"]);
  t.after(() => cli.proc.kill());
  await cli.waitLine(/^connected as \S+ over (polling|websocket)$/);
  await cli.waitLine(/^joined lobby; members: (bob, ada|ada, bob)$/);
  await cli.waitLine(/\] bob: before ada$/); // history

  await bob.timeout(5000).emitWithAck("chat:send", { room: "lobby", text: "hi ada" });
  await cli.waitLine(/\] bob: hi ada$/);
  bob.emit("chat:typing", { room: "lobby", typing: true });
  await cli.waitLine(/^\* bob is typing…$/);

  const got = new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error("bob never got the message typed into the terminal")), 10000).unref();
    bob.on("chat:message", (m) => m.text === "hello from the terminal" && resolve(m));
  });
  cli.type("hello from the terminal");
  const msg = await got;
  assert.equal(msg.user.name, "ada");
  assert.equal(msg.room, "lobby");

  // The server goes away and comes back on the same address: the CLI says so and joins again.
  assert.equal(await server.stop(), 0);
  await cli.waitLine(/^disconnected \(transport (close|error)\); reconnecting…$/);
  server = await startServer(["--addr", addr]);
  servers.push(server);
  await cli.waitLine(/^reconnected \(recovered: false\)$/, 20000);
  await cli.waitLine(/^joined lobby; members: ada$/); // a new session: joined again, bob is gone

  cli.type("/quit");
  const [code] = await new Promise((resolve) => cli.proc.once("exit", (...a) => resolve(a)));
  assert.equal(code, 0);
});
