// The backend hooks demo (web/counter.html) in a real browser: headless Chromium driven by
// playwright-core, against Switchboard calling the example backend (examples/hook-backend.js).
// Two pages share a counter and a poll whose logic is the backend's: a click on one is an event
// forwarded to the backend, whose emit reaches the other.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./helpers.js";
import { createHookBackend } from "../examples/hook-backend.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(pkgDir, "dist");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const secret = randomBytes(16).toString("hex");
const wait = 15000;

let server, backend, context;

/** builtFresh reports whether the built page is newer than every source of the pages. */
function builtFresh() {
  const page = join(dist, "counter.html");
  if (!existsSync(page)) return false;
  const sources = [join(pkgDir, "vite.config.js"), ...readdirSync(join(pkgDir, "web")).map((f) => join(pkgDir, "web", f))];
  return sources.every((f) => statSync(f).mtimeMs <= statSync(page).mtimeMs);
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!builtFresh()) execFileSync("pnpm", ["run", "build"], { cwd: pkgDir, stdio: "inherit" });
  backend = createHookBackend({ secret });
  backend.listen(0, "127.0.0.1");
  await once(backend, "listening");
  const hookURL = `http://127.0.0.1:${backend.address().port}/hooks`;
  server = await startServer(["--web-dir", dist, "--hook-url", hookURL, "--hook-secret", secret, "--hook-connect", "--namespaces", "/game"]);
  context = await chromium.launchPersistentContext(join(mkdtempSync(join(tmpdir(), "switchboard-counter-")), "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await context?.close();
  if (server) assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
  backend?.close();
});

/** see waits until selector's text matches text, naming what was expected. */
async function see(page, selector, text, what) {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: wait });
  } catch {
    const [shown, state, notice] = await Promise.all([selector, "#state", "#notice"].map((s) => page.locator(s).allInnerTexts()));
    assert.fail(`${what}: ${selector} never showed ${text}; it shows ${JSON.stringify(shown)} (state: ${state}; notice: ${notice})`);
  }
}

test("two pages share a counter and a poll decided by the app backend", { timeout: 120000 }, async () => {
  // One page from the demo's home page link, the other by its URL with a name.
  const first = await context.newPage();
  first.on("pageerror", (err) => console.error(`[first] page error: ${err.message}`));
  await first.goto(server.url + "/demo/");
  await first.click("#counter-link");
  await first.waitForURL(server.url + "/demo/counter.html", { timeout: wait });
  const ann = await context.newPage();
  ann.on("pageerror", (err) => console.error(`[ann] page error: ${err.message}`));
  await ann.goto(server.url + "/demo/counter.html?name=Ann");
  await see(first, "#state", /^connected/, "the first page connects through the connect hook");
  await see(ann, "#state", /connected \(Ann\)/, "Ann's page connects");
  await see(first, "#count", /^0$/, "the first page shows the backend's counter");

  await ann.click("#add");
  await see(ann, "#count", /^1$/, "Ann's ack carries the new value");
  await see(first, "#count", /^1$/, "the backend's emit reaches the other page");
  await see(first, "#last", "last +1 by Ann", "with who added");
  await first.click("#add");
  await first.click("#add");
  await see(ann, "#count", /^3$/, "Ann sees the other page's adds");

  await see(ann, "#question", "Tabs or spaces?", "the poll shows");
  await first.click(".vote[data-choice=spaces]");
  await see(ann, "#votes-spaces", /^1$/, "Ann sees the vote");
  await ann.click(".vote[data-choice=tabs]");
  await see(first, "#votes-tabs", /^1$/, "the first page sees Ann's vote");
  assert.equal(backend.state.counter, 3, "the state is the backend's");

  // A name the connect hook refuses shows its code.
  const banned = await context.newPage();
  await banned.goto(server.url + "/demo/counter.html?name=banned");
  await see(banned, "#state", "refused (forbidden)", "the connect hook's refusal");
});
