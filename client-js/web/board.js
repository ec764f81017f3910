// The relay board: a minimal multiplayer game on /relay with the stock socket.io-client. Every
// tab on a board shows everyone's live cursor and dot and moves its own dot with the arrow keys.
// Positions are keyed relay messages (key "cursor", key "dot"): the page sends every move, the
// server keeps the latest per (player, key) for whoever joins later (relay:join's state) and sends
// each reader at most one update per (player, key) per tick (--relay-tick), always the latest.
import { io } from "socket.io-client";

const $ = (id) => document.getElementById(id);
const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // never innerHTML: names are user input
  if (className) node.className = className;
  return node;
};
const STEP = 0.02; // a key press moves the dot by 2% of the board
const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 1000) / 1000;
const hue = (id) => [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);

const params = new URLSearchParams(location.search);
if (params.get("name")) $("name").value = params.get("name");
if (params.get("room")) $("room").value = params.get("room");

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim();
  const token = $("token").value.trim();
  $("join").hidden = true;
  $("game").hidden = false;
  $("room-name").textContent = room;
  start({ name, room, token });
  $("board").focus();
});

/** subOf reads a JWT's sub, which the server makes the user id (the page only displays it). */
function subOf(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    return undefined;
  }
}

function start({ name, room, token }) {
  // With a JWT the server takes the user from the token; anonymous users pick a name (SPEC §5, §2).
  const relay = io("/relay", { auth: token ? { token } : { name } });
  window.switchboard = { relay }; // for playing in the console

  const players = new Map(); // user id → { user, dot, cursor } (elements)
  const me = { id: undefined, dot: { x: round(0.1 + Math.random() * 0.8), y: round(0.1 + Math.random() * 0.8) } };
  const counts = { sent: 0, received: 0 };
  const tick = tickMeter();
  const notice = (text) => ($("notice").textContent = text);

  const publish = (event, key, data) => {
    if (!relay.connected || me.id === undefined) return;
    relay.emit("relay:publish", { room, event, key, data }); // no ack: fire and forget
    $("sent").textContent = ++counts.sent;
  };

  // --- players and their elements ---------------------------------------------------------

  function player(user) {
    let p = players.get(user.id);
    if (!p) {
      const color = `hsl(${hue(user.id)} 65% 48%)`;
      const dot = el("div", undefined, "dot");
      const cursor = el("div", undefined, "cursor");
      for (const node of [dot, cursor]) {
        node.style.setProperty("--c", color);
        node.dataset.user = user.id;
        node.dataset.name = user.name;
        node.hidden = true;
        node.append(el("span", user.name));
      }
      if (user.id === me.id) dot.classList.add("me");
      $("board").append(dot, cursor);
      p = { user, dot, cursor, color };
      players.set(user.id, p);
      renderPlayers();
    }
    return p;
  }

  function removePlayer(id) {
    const p = players.get(id);
    if (!p) return;
    p.dot.remove();
    p.cursor.remove();
    players.delete(id);
    renderPlayers();
  }

  function renderPlayers() {
    $("players").replaceChildren(
      ...[...players.values()].map((p) => {
        const li = el("li", p.user.id === me.id ? `${p.user.name} (you)` : p.user.name, p.user.id === me.id ? "me" : undefined);
        li.style.setProperty("--c", p.color);
        return li;
      }),
    );
  }

  function place(node, pos) {
    if (!pos || typeof pos.x !== "number" || typeof pos.y !== "number") {
      node.hidden = true; // a cursor that left the board
      return;
    }
    node.hidden = false;
    node.style.left = `${clamp(pos.x) * 100}%`;
    node.style.top = `${clamp(pos.y) * 100}%`;
    node.dataset.x = round(pos.x);
    node.dataset.y = round(pos.y);
  }

  function apply(user, key, data) {
    if (user.id === me.id) {
      // The same user in another tab (one JWT): the dot is the user's, so it follows.
      if (key === "dot" && data) {
        me.dot = { x: data.x, y: data.y };
        place(player(user).dot, me.dot);
      }
      return;
    }
    const p = player(user);
    if (key === "dot") place(p.dot, data);
    if (key === "cursor") place(p.cursor, data);
  }

  // --- the connection -----------------------------------------------------------------------

  watchConnection(relay);
  relay.on("connect", async () => {
    if (relay.recovered) return; // still a member: the server resends the state it holds
    me.id = token ? subOf(token) : relay.id; // anonymous: the user id is the socket id (SPEC §2)
    const res = await relay
      .timeout(10000)
      .emitWithAck("relay:join", { room })
      .catch((err) => ({ error: { code: "timeout", message: err.message } }));
    if (res.error) return notice(`cannot join: ${res.error.code} (${res.error.message})`);
    notice("");
    for (const id of [...players.keys()]) removePlayer(id);
    const byID = new Map(res.data.members.map((u) => [u.id, u]));
    for (const u of res.data.members) player(u);
    // The state: each member's latest value per key, for a page that joins late.
    for (const [id, keys] of Object.entries(res.data.state)) {
      const user = byID.get(id);
      if (!user) continue;
      for (const [key, data] of Object.entries(keys)) apply(user, key, data);
    }
    place(player(byID.get(me.id) ?? { id: me.id, name }).dot, me.dot);
    publish("move", "dot", me.dot); // in the state for whoever joins next
  });
  relay.on("relay:user-joined", ({ user }) => player(user));
  relay.on("relay:user-left", ({ user }) => removePlayer(user.id));
  relay.on("relay:message", (m) => {
    $("received").textContent = ++counts.received;
    tick.saw();
    if (m.key) apply(m.user, m.key, m.data);
  });

  // --- input: the pointer is the cursor, the arrow keys move the dot --------------------------

  const board = $("board");
  board.addEventListener("pointermove", (e) => {
    const r = board.getBoundingClientRect();
    publish("cursor", "cursor", { x: round((e.clientX - r.left) / r.width), y: round((e.clientY - r.top) / r.height) });
  });
  board.addEventListener("pointerleave", () => publish("cursor", "cursor", null));
  const moves = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] };
  document.addEventListener("keydown", (e) => {
    const m = moves[e.key];
    if (!m || e.target.closest?.("input, textarea") || me.id === undefined) return;
    e.preventDefault(); // no scrolling
    me.dot = { x: round(clamp(me.dot.x + m[0])), y: round(clamp(me.dot.y + m[1])) };
    place(player({ id: me.id, name }).dot, me.dot);
    publish("move", "dot", me.dot);
  });
}

/**
 * tickMeter makes the server's tick visible. Updates of one tick reach the page together (one
 * write per tick), so arrivals less than a few milliseconds apart are one tick; the gap between
 * ticks, while someone moves, is the tick (the median of the last ones, gaps of idle moments left
 * out).
 */
function tickMeter() {
  let last = -Infinity;
  let start = -Infinity;
  let ticks = 0;
  const gaps = [];
  let off;
  return {
    saw(now = performance.now()) {
      const sameTick = now - last < 8;
      last = now;
      if (sameTick) return;
      if (now - start < 1000) {
        gaps.push(now - start);
        if (gaps.length > 21) gaps.shift();
      }
      start = now;
      $("ticks").textContent = ++ticks;
      if (gaps.length > 0) {
        const median = [...gaps].sort((a, b) => a - b)[gaps.length >> 1];
        $("tick").textContent = `updates every ≈ ${Math.round(median)} ms`;
      }
      const led = $("tick-led");
      led.classList.add("on");
      clearTimeout(off);
      off = setTimeout(() => led.classList.remove("on"), 30);
    },
  };
}

// --- connection state (as on the demo's home page) ---------------------------------------------

function watchConnection(socket) {
  const setState = (state, detail) => {
    $("status").dataset.state = state;
    $("state").textContent = detail ? `${state} (${detail})` : state;
  };
  const showTransport = () => ($("transport").textContent = socket.io.engine?.transport?.name ?? "");
  setState("connecting");
  socket.io.on("open", () => {
    showTransport();
    socket.io.engine.on("upgrade", showTransport);
  });
  socket.io.on("close", (reason) => {
    setState("disconnected", reason);
    $("transport").textContent = "";
  });
  socket.io.on("reconnect_attempt", (n) => setState("reconnecting", `attempt ${n}`));
  let connectedBefore = false;
  socket.on("connect", () => {
    setState("connected");
    showTransport();
    if (connectedBefore) $("recovered").textContent = `reconnected: ${socket.recovered ? "recovered" : "not recovered"}`;
    connectedBefore = true;
  });
  socket.on("connect_error", (err) => {
    const why = `${err.message}${err.data?.code ? `: ${err.data.code}` : ""}`;
    setState(socket.active ? "reconnecting" : "error", why);
  });
}
