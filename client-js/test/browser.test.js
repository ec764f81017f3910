// The demo page in a real browser: headless Chromium (Debian's package) driven by playwright-core.
// Two pages chat with each other, see each other's presence and typing, a backend's emit through
// the HTTP API shows in the notification panel, and a dropped connection recovers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./helpers.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(pkgDir, "dist");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const apiKey = randomBytes(16).toString("hex");
const wait = 15000;

let server, context, artifacts;

/** builtFresh reports whether dist/index.html is newer than every source of the page. */
function builtFresh() {
  const index = join(dist, "index.html");
  if (!existsSync(index)) return false;
  const sources = [join(pkgDir, "vite.config.js"), ...readdirSync(join(pkgDir, "web")).map((f) => join(pkgDir, "web", f))];
  return sources.every((f) => statSync(f).mtimeMs <= statSync(index).mtimeMs);
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!builtFresh()) {
    execFileSync("pnpm", ["run", "build"], { cwd: pkgDir, stdio: "inherit" });
  }
  server = await startServer(["--api-keys", apiKey, "--web-dir", dist]);
  artifacts = mkdtempSync(join(tmpdir(), "switchboard-browser-"));
  context = await chromium.launchPersistentContext(join(artifacts, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1200, height: 760 },
  });
});

after(async () => {
  await context?.close();
  if (server) assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
});

/** openPage loads the demo page and joins room as name. */
async function openPage(name, room) {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${name}] page error: ${err.message}`));
  await page.goto(server.url + "/demo/"); // "/" is the landing page, which links here
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join button[type=submit]");
  return page;
}

/** see waits until the element matching selector holds text (a string or RegExp), naming what was expected. */
async function see(page, selector, text, what) {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: wait });
  } catch {
    const [shown, status, notice] = await Promise.all([selector, "#status", "#notice"].map((s) => page.locator(s).allInnerTexts()));
    assert.fail(`${what}: ${selector} never showed ${text}; it shows ${JSON.stringify(shown)} (status: ${status.join(" ").replace(/\s+/g, " ")}; notice: ${notice.join(" ") || "none"})`);
  }
}

test("two browsers chat, see presence and typing, get backend notifications and recover", { timeout: 120000 }, async (t) => {
  const room = "lobby";
  const ada = await openPage("ada", room);
  const shot = async (label) => {
    const path = join(artifacts, `${label}.png`);
    await ada.screenshot({ path, fullPage: true });
    t.diagnostic(`screenshot: ${path}`);
  };
  try {
    await see(ada, "#state", /^connected$/, "ada connects");
    await see(ada, "#members li", "ada", "ada's join ack lists her");

    const bob = await openPage("bob", room);
    await see(bob, "#members li", "ada", "bob's join ack lists ada");
    await see(ada, "#members li", "bob", "ada sees bob join (chat:user-joined)");

    await bob.locator("#text").pressSequentially("hel");
    await see(ada, "#typing", "bob is typing", "ada sees bob typing (chat:typing)");
    await bob.locator("#text").pressSequentially("lo from bob");
    await bob.click("#send button");
    await see(ada, "#messages li", "hello from bob", "ada gets bob's message");
    await see(bob, "#messages li", "hello from bob", "bob gets his own message");
    await see(ada, "#typing", /^$/, "bob's typing indicator ends with his message");

    await ada.fill("#text", "hi bob");
    await ada.click("#send button");
    await see(bob, "#messages li", "hi bob", "bob gets ada's message");

    // The page upgrades from long-polling to websocket and says so.
    await see(ada, "#transport", "websocket", "ada's page shows the websocket transport");

    // A backend emits to a room the panel subscribed to.
    await ada.fill("#sub-room", "alerts");
    await ada.click("#subscribe button");
    await see(ada, "#subscriptions li", "alerts", "ada's panel subscribes to alerts");
    const res = await fetch(`${server.url}/api/v1/emit`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ namespace: "/", rooms: ["alerts"], event: "deploy", data: { version: "1.2.3" } }),
    });
    assert.equal(res.status, 202, `POST /api/v1/emit answered ${res.status}: ${await res.text()}`);
    await see(ada, "#events li", /deploy.*"version":"1\.2\.3"/, "ada's panel shows the backend's deploy event");
    await shot("chat");

    // A dropped connection reconnects and recovers both namespaces.
    await ada.click("#drop");
    await see(ada, "#recovered", "/chat recovered", "ada's /chat session recovers after the drop");
    await see(ada, "#recovered", "/ recovered", "ada's / session recovers after the drop");
    await see(ada, "#state", /^connected$/, "ada is connected again");
    await bob.fill("#text", "still there?");
    await bob.click("#send button");
    await see(ada, "#messages li", "still there?", "ada gets messages after recovering");
    await shot("recovered");

    // Presence: bob leaves by closing his page.
    await bob.close();
    await see(ada, "#members", /^(?![\s\S]*bob)/, "ada sees bob leave (chat:user-left)");
  } catch (err) {
    await shot("failure").catch(() => {});
    throw err;
  }
});

test("the landing page at / says what runs and links to the demo", { timeout: 60000 }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(server.url + "/");
    assert.match(await page.locator("#adapter").innerText(), /^memory$/);
    assert.match(await page.locator("#namespaces").innerText(), /^\/, \/chat, \/relay$/);
    assert.ok((await page.locator("#snippet").innerText()).includes(`io("${server.url}/chat")`), "the snippet connects to this server's /chat");
    await page.click("#demo a");
    await page.waitForURL(server.url + "/demo/", { timeout: wait });
    await page.locator("#join").waitFor({ timeout: wait });
  } finally {
    await page.close();
  }
});
