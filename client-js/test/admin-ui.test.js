// The stock admin UI (@socket.io/admin-ui 0.5.1, served by Switchboard at /admin-ui/) in headless
// Chromium, against two Switchboard nodes on one Redis with /admin in development mode: a wrong
// password is refused, the right one logs in, the UI shows both nodes, their sockets and rooms,
// a command sent from the UI acts on a socket of the other node, an emit sent over the UI's own
// connection reaches a socket.io-client, and /admin stays out of the stats, the HTTP API and the
// product metrics.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer, connect, nextEvent } from "./helpers.js";
import { startRedis } from "./peers/redis.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const uiDist = join(pkgDir, "node_modules", "@socket.io", "admin-ui", "ui", "dist", "index.html");
const KEY = "admin-ui-key";
const PASSWORD = "switchboard-ui-test";
// bcrypt of PASSWORD at cost 4 (printf '%s' switchboard-ui-test | go run ./internal/adminhash -cost 4)
const HASH = "$2a$04$pMeufAuK2BF3bHsBdZuH5ugnF1oBHiSh1dhFFN45HOdxj0V4P6j1q";
const wait = 15000;

let redis, nodeA, nodeB, context, page, onA, onB;

async function api(node, method, path, body) {
  const res = await fetch(`${node.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

async function waitFor(what, cond, timeoutMs = wait) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50)); // polling with a deadline
  }
}

/** see waits until the page shows text (a string or RegExp) somewhere visible. */
async function see(text, what) {
  try {
    await page.getByText(text).first().waitFor({ state: "visible", timeout: wait });
  } catch {
    const body = (await page.locator("body").innerText()).replace(/\s+/g, " ").slice(0, 1500);
    assert.fail(`${what}: the page never showed ${text}; it shows: ${body}`);
  }
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  assert.ok(existsSync(uiDist), "no @socket.io/admin-ui in client-js/node_modules: pnpm install");
  redis = await startRedis();
  const args = (id) => [
    "--adapter", "redis", "--redis-url", redis.url, "--api-keys", KEY,
    "--admin-password-hash", HASH, "--admin-mode", "development", "--admin-server-id", id,
  ];
  // The binary looks for the UI under its working directory: client-js/node_modules here.
  nodeA = await startServer(args("node-a"));
  nodeB = await startServer(args("node-b"));
  for (const node of [nodeA, nodeB]) {
    await waitFor("both nodes in stats", async () => (await api(node, "GET", "/stats")).body.nodes === 2);
  }
  onA = await connect(nodeA.url);
  onB = await connect(nodeB.url);
  for (const [node, socket, room] of [[nodeA, onA, "room-on-a"], [nodeB, onB, "room-on-b"]]) {
    assert.equal((await api(node, "POST", "/sockets/join", { rooms: [socket.id], join: [room] })).status, 200);
  }

  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "switchboard-admin-ui-")), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 900 },
  });
  // The UI's index.html links Google Fonts and the MDI icon font from CDNs: not needed here.
  await context.route(/fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.jsdelivr\.net/, (route) => route.abort());
  page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[admin-ui] page error: ${err.message}`));
  // Keep the page's websockets and what they send, so that the test can write on the UI's own
  // connection once it has upgraded (the "5" packet): 0.5.1's UI has no emit form.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = function (...args) {
      const ws = new Native(...args);
      ws.__sent = [];
      const send = ws.send.bind(ws);
      ws.send = (data) => (ws.__sent.push(String(data)), send(data));
      ws.__send = send;
      window.__sockets.push(ws);
      return ws;
    };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
});

after(async () => {
  await context?.close();
  onA?.close();
  onB?.close();
  for (const node of [nodeA, nodeB]) if (node) assert.equal(await node.stop(), 0, "the server exits 0 on SIGTERM");
  await redis?.stop();
});

test("the stock admin UI: login, both nodes, their sockets and rooms, commands, /admin hidden", async (t) => {
  await page.goto(nodeA.url + "/admin-ui");
  assert.equal(new URL(page.url()).pathname, "/admin-ui/", "/admin-ui redirects to /admin-ui/");

  const serverUrl = page.getByLabel("Server URL");
  await serverUrl.waitFor({ timeout: wait });
  await waitFor("the Server URL filled with this origin", async () => (await serverUrl.inputValue()) === nodeA.url);

  await t.test("a wrong password is refused", async () => {
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Connect" }).click();
    await see("Invalid credentials", "wrong password");
  });

  await t.test("the right password logs in", async () => {
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByText("Invalid credentials").waitFor({ state: "detached", timeout: wait });
    await page.getByLabel("Server URL").waitFor({ state: "hidden", timeout: wait });
  });

  await t.test("both nodes of the cluster", async () => {
    await page.goto(nodeA.url + "/admin-ui/#/servers/");
    await see("node-a", "the Servers page");
    await see("node-b", "the Servers page");
    const rows = await page.locator("tbody tr").allInnerTexts();
    for (const id of ["node-a", "node-b"]) {
      const row = rows.find((r) => r.includes(id));
      assert.ok(row && /healthy/i.test(row) && !/unhealthy/i.test(row), `${id} healthy: ${JSON.stringify(rows)}`);
    }
  });

  await t.test("their sockets", async () => {
    await page.goto(nodeA.url + "/admin-ui/#/sockets/");
    await see(onA.id, "A's socket in the Sockets page");
    await see(onB.id, "B's socket in the Sockets page");
    const text = await page.locator("body").innerText();
    assert.ok(!text.includes("/admin"), "no /admin namespace or socket in the Sockets page");
  });

  await t.test("their rooms", async () => {
    await page.goto(nodeA.url + "/admin-ui/#/rooms/");
    await see("room-on-a", "A's room in the Rooms page");
    await see("room-on-b", "B's room in the Rooms page");
  });

  await t.test("the UI's join form acts on a socket of the other node", async () => {
    await page.goto(`${nodeA.url}/admin-ui/#/n/${encodeURIComponent("/")}/sockets/${onB.id}`);
    await see("room-on-b", "B's socket page");
    const combo = page.getByLabel("Join a room");
    await combo.fill("joined-from-ui");
    // the form's submit button (an icon, "Join" in its tooltip)
    await page.locator("form").filter({ has: combo }).locator("button[type=submit]").click();
    await waitFor("B's socket in the room the UI joined", async () => {
      const res = await api(nodeA, "GET", "/sockets?room=joined-from-ui");
      return res.body.sockets?.length === 1 && res.body.sockets[0].id === onB.id;
    });
    await see("joined-from-ui", "the room on the socket page");
  });

  await t.test("an emit sent over the UI's connection reaches a socket.io-client on the other node", async () => {
    await waitFor("the UI's connection upgraded to websocket", () =>
      page.evaluate(() => window.__sockets.some((ws) => ws.readyState === 1 && ws.__sent.includes("5"))),
    );
    const got = nextEvent(onB, "from-admin-ui");
    await page.evaluate((sid) => {
      const ws = window.__sockets.find((w) => w.readyState === 1 && w.__sent.includes("5"));
      ws.__send("42/admin," + JSON.stringify(["emit", "/", sid, "from-admin-ui", { hello: "B" }]));
    }, onB.id);
    assert.deepEqual(await got, { hello: "B" });
    await page.goto(nodeA.url + "/admin-ui/#/events/");
    await see("from-admin-ui", "the event in the Events page");
  });

  await t.test("/admin is absent from stats, the HTTP API and the product metrics", async () => {
    const stats = (await api(nodeA, "GET", "/stats")).body;
    assert.ok(!("/admin" in stats.namespaces), `stats lists /admin: ${JSON.stringify(stats)}`);
    assert.equal(stats.connections, 2, "only the two product sockets count, not the UI's");
    assert.equal((await api(nodeA, "GET", "/sockets?namespace=/admin")).status, 400);
    assert.equal((await api(nodeB, "POST", "/emit", { namespace: "/admin", event: "config", data: {} })).status, 400);
    const metrics = await (await fetch(nodeA.url + "/metrics")).text();
    assert.ok(!metrics.includes('namespace="/admin"'), "no /admin series in /metrics");
    const landing = await (await fetch(nodeA.url + "/")).text();
    assert.ok(landing.includes('href="/admin-ui/"'), "the landing page links the admin UI");
    assert.ok(!landing.includes("/admin<") && !landing.includes('"/admin"'), "the landing page lists no /admin namespace");
  });
});
