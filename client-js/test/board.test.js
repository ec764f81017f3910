// The relay board (web/board.html) in a real browser: headless Chromium driven by playwright-core.
// Two pages see each other's cursor and dot, live; a page that joins late gets them from the
// room's state; the tick shows; a page that closes takes its dot with it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./helpers.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(pkgDir, "dist");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const wait = 15000;

let server, context, artifacts;

/** builtFresh reports whether the built board is newer than every source of the pages. */
function builtFresh() {
  const board = join(dist, "board.html");
  if (!existsSync(board)) return false;
  const sources = [join(pkgDir, "vite.config.js"), ...readdirSync(join(pkgDir, "web")).map((f) => join(pkgDir, "web", f))];
  return sources.every((f) => statSync(f).mtimeMs <= statSync(board).mtimeMs);
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  if (!builtFresh()) {
    execFileSync("pnpm", ["run", "build"], { cwd: pkgDir, stdio: "inherit" });
  }
  server = await startServer(["--web-dir", dist, "--relay-tick", "50ms"]);
  artifacts = mkdtempSync(join(tmpdir(), "switchboard-board-"));
  context = await chromium.launchPersistentContext(join(artifacts, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1200, height: 800 },
  });
});

after(async () => {
  await context?.close();
  if (server) assert.equal(await server.stop(), 0, "the server exits 0 on SIGTERM");
});

/** openBoard loads the board from the demo's home page (following its link) and joins as name. */
async function openBoard(name, room) {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${name}] page error: ${err.message}`));
  await page.goto(server.url + "/demo/");
  await page.click("#board-link");
  await page.waitForURL(server.url + "/demo/board.html", { timeout: wait });
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join button[type=submit]");
  await waitUntil(page, () => document.querySelector("#state").textContent === "connected", undefined, `${name} connects`);
  await waitUntil(page, () => document.querySelector("#board .dot.me:not([hidden])") !== null, undefined, `${name}'s own dot shows`);
  return page;
}

/** waitUntil waits for fn(arg) to hold in page, failing with what was expected. */
async function waitUntil(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: wait });
  } catch {
    const shown = await page.evaluate(() => ({
      state: document.querySelector("#state")?.textContent,
      notice: document.querySelector("#notice")?.textContent,
      board: [...document.querySelectorAll("#board > *")].map((n) => `${n.className}:${n.dataset.name}@${n.dataset.x},${n.dataset.y}${n.hidden ? " hidden" : ""}`),
    }));
    assert.fail(`${what}: never happened; the page shows ${JSON.stringify(shown)}`);
  }
}

/** seesAt waits until page shows name's element (".dot" or ".cursor") at about (x, y). */
function seesAt(page, kind, name, x, y, what) {
  return waitUntil(
    page,
    ([kind, name, x, y]) => {
      const n = document.querySelector(`#board ${kind}[data-name="${name}"]`);
      return n !== null && !n.hidden && Math.abs(n.dataset.x - x) < 0.011 && Math.abs(n.dataset.y - y) < 0.011;
    },
    [kind, name, x, y],
    what,
  );
}

/** ownDot is where page's own dot is. */
async function ownDot(page) {
  return page.evaluate(() => {
    const n = document.querySelector("#board .dot.me");
    return { x: Number(n.dataset.x), y: Number(n.dataset.y) };
  });
}

test("two pages of the board see each other's cursor and dot", { timeout: 120000 }, async (t) => {
  const room = "arena";
  const ada = await openBoard("ada", room);
  const bob = await openBoard("bob", room);
  const shot = async (page, label) => {
    const path = join(artifacts, `${label}.png`);
    await page.screenshot({ path, fullPage: true });
    t.diagnostic(`screenshot: ${path}`);
  };
  try {
    await waitUntil(ada, () => [...document.querySelectorAll("#players li")].some((li) => li.textContent === "bob"), undefined, "ada sees bob join");
    // Each sees the other's dot where the other placed it (bob's from his first publish, ada's
    // from the room's state in bob's join answer).
    let adaDot = await ownDot(ada);
    let bobDot = await ownDot(bob);
    await seesAt(bob, ".dot", "ada", adaDot.x, adaDot.y, "bob sees ada's dot (state on join)");
    await seesAt(ada, ".dot", "bob", bobDot.x, bobDot.y, "ada sees bob's dot");

    // Cursors: the pointer over the board is published as it moves.
    const box = await ada.locator("#board").boundingBox();
    await ada.mouse.move(box.x + box.width * 0.1, box.y + box.height * 0.2);
    await ada.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5, { steps: 20 });
    await seesAt(bob, ".cursor", "ada", 0.25, 0.5, "bob sees ada's cursor where she left it");
    const bbox = await bob.locator("#board").boundingBox();
    await bob.mouse.move(bbox.x + bbox.width * 0.75, bbox.y + bbox.height * 0.4, { steps: 10 });
    await seesAt(ada, ".cursor", "bob", 0.75, 0.4, "ada sees bob's cursor");

    // The game: arrow keys move one's dot, and the other page follows.
    for (const key of ["ArrowRight", "ArrowRight", "ArrowRight", "ArrowDown", "ArrowDown"]) await ada.keyboard.press(key);
    adaDot = await ownDot(ada);
    await seesAt(bob, ".dot", "ada", adaDot.x, adaDot.y, "bob sees ada's dot move");
    for (const key of ["ArrowLeft", "ArrowUp", "ArrowUp"]) await bob.keyboard.press(key);
    bobDot = await ownDot(bob);
    await seesAt(ada, ".dot", "bob", bobDot.x, bobDot.y, "ada sees bob's dot move");

    // The tick shows: a stream of moves arrives one update per tick.
    for (let i = 0; i < 30; i++) await ada.mouse.move(box.x + box.width * (0.2 + i / 100), box.y + box.height * 0.6, { steps: 4 });
    await waitUntil(bob, () => /updates every ≈ \d+ ms/.test(document.querySelector("#tick").textContent), undefined, "bob's page shows the tick");
    const ticks = Number(await bob.locator("#ticks").innerText());
    assert.ok(ticks > 0, "bob's page counted ticks");
    await shot(bob, "board");

    // A late joiner gets both dots from the state.
    const cy = await openBoard("cy", room);
    await seesAt(cy, ".dot", "ada", adaDot.x, adaDot.y, "cy sees ada's dot from the state");
    await seesAt(cy, ".dot", "bob", bobDot.x, bobDot.y, "cy sees bob's dot from the state");

    // Closing a page removes its dot and cursor from the others.
    await bob.close();
    await waitUntil(ada, () => document.querySelector('#board [data-name="bob"]') === null, undefined, "ada sees bob's dot go");
    await waitUntil(cy, () => document.querySelector('#board [data-name="bob"]') === null, undefined, "cy sees bob's dot go");
    await cy.close();
  } catch (err) {
    await shot(ada, "failure").catch(() => {});
    throw err;
  }
});
