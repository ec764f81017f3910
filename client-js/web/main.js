// The Switchboard demo page: a chat room on /chat and a notification panel on /, both over one
// connection of the stock socket.io-client.
import { io } from "socket.io-client";

const $ = (id) => document.getElementById(id);
const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // never innerHTML: names and texts are user input
  if (className) node.className = className;
  return node;
};
const time = (ts) => new Date(ts).toLocaleTimeString();

$("curl").textContent =
  `curl -X POST ${location.origin}/api/v1/emit \\\n  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\\n` +
  `  -d '{"namespace":"/","rooms":["alerts"],"event":"deploy","data":{"version":"1.2.3"}}'`;

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim();
  const token = $("token").value.trim();
  $("join").hidden = true;
  $("chat").hidden = false;
  $("notifications").hidden = false;
  $("room-name").textContent = room;
  start({ name, room, token });
});

function start({ name, room, token }) {
  // With a JWT the server takes the user from the token; anonymous users pick a name (SPEC §5, §2).
  const auth = token ? { token } : { name };
  // Same origin as the page; both namespaces share one Engine.IO connection (one Manager).
  const chat = io("/chat", { auth });
  const root = io("/", { auth });
  const manager = chat.io;
  window.switchboard = { manager, chat, root }; // for playing in the console

  watchConnection(manager, { "/chat": chat, "/": root });
  $("drop").disabled = false;
  $("drop").onclick = () => manager.engine?.close(); // as a network drop: the client reconnects
  runChat(chat, room);
  runNotifications(root);
}

// --- connection state -----------------------------------------------------------------------

function setState(state, detail) {
  $("status").dataset.state = state;
  $("state").textContent = detail ? `${state} (${detail})` : state;
}

function showTransport(manager) {
  $("transport").textContent = manager.engine?.transport?.name ?? "";
}

function watchConnection(manager, sockets) {
  setState("connecting");
  // Each (re)connection opens a new engine: long-polling first, then upgraded to websocket.
  manager.on("open", () => {
    showTransport(manager);
    manager.engine.on("upgrade", () => showTransport(manager));
  });
  manager.on("close", (reason) => {
    setState("disconnected", reason);
    $("transport").textContent = "";
  });
  manager.on("reconnect_attempt", (n) => setState("reconnecting", `attempt ${n}`));

  const recovered = {};
  const refused = {}; // nsp → why the server refused it; final, the client does not retry
  for (const [nsp, socket] of Object.entries(sockets)) {
    let connectedBefore = false;
    socket.on("connect", () => {
      const errors = Object.values(refused);
      if (errors.length === 0) setState("connected");
      else setState("error", errors.join("; "));
      showTransport(manager);
      if (connectedBefore) {
        recovered[nsp] = socket.recovered;
        $("recovered").textContent =
          "reconnected: " + Object.entries(recovered).map(([n, r]) => `${n} ${r ? "recovered" : "not recovered"}`).join(", ");
      }
      connectedBefore = true;
    });
    socket.on("connect_error", (err) => {
      const why = `${nsp} ${err.message}${err.data?.code ? `: ${err.data.code}` : ""}`;
      if (socket.active) return setState("reconnecting", why); // a network error: retried
      refused[nsp] = why; // refused by the server (bad token, unknown namespace): final
      setState("error", Object.values(refused).join("; "));
    });
  }
}

// --- chat (/chat) ---------------------------------------------------------------------------

function runChat(chat, room) {
  const members = new Map(); // user id → user
  const typing = new Map(); // user id → { user, timer }

  const renderMembers = () => $("members").replaceChildren(...[...members.values()].map((u) => el("li", u.name)));
  const renderTyping = () => {
    const names = [...typing.values()].map((t) => t.user.name);
    $("typing").textContent = names.length === 0 ? "" : `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} typing…`;
  };
  const addMessage = (m) => {
    const li = el("li");
    li.dataset.id = m.id;
    li.append(el("time", time(m.ts)), el("strong", m.user.name), el("span", m.text));
    $("messages").append(li);
    li.scrollIntoView({ block: "end" });
  };
  const notice = (text) => ($("notice").textContent = text);
  const failed = (err) => ({ error: { code: "timeout", message: err.message } });

  chat.on("connect_error", (err) => {
    if (!chat.active) notice(`cannot join: /chat refused the connection (${err.message}${err.data?.code ? `: ${err.data.code}` : ""})`);
  });
  chat.on("connect", async () => {
    if (chat.recovered) return; // still a member; the server replays what was missed
    const res = await chat.timeout(10000).emitWithAck("chat:join", { room }).catch(failed);
    if (res.error) return notice(`cannot join: ${res.error.code} (${res.error.message})`);
    notice("");
    members.clear();
    res.data.members.forEach((u) => members.set(u.id, u));
    renderMembers();
    $("messages").replaceChildren();
    res.data.history.forEach(addMessage);
  });
  chat.on("chat:user-joined", ({ user }) => {
    members.set(user.id, user);
    renderMembers();
  });
  chat.on("chat:user-left", ({ user }) => {
    members.delete(user.id);
    renderMembers();
    stopTyping(user.id);
  });
  chat.on("chat:message", (m) => {
    stopTyping(m.user.id);
    addMessage(m);
  });

  // Typing indicators are volatile: a lost "false" is covered by forgetting after 5 s.
  function stopTyping(id) {
    clearTimeout(typing.get(id)?.timer);
    if (typing.delete(id)) renderTyping();
  }
  chat.on("chat:typing", ({ user, typing: on }) => {
    stopTyping(user.id);
    if (on) typing.set(user.id, { user, timer: setTimeout(() => stopTyping(user.id), 5000) });
    renderTyping();
  });

  let typingNow = false;
  let idle;
  const setTyping = (on) => {
    clearTimeout(idle);
    if (on) idle = setTimeout(() => setTyping(false), 2000);
    if (on !== typingNow && chat.connected) chat.emit("chat:typing", { room, typing: on });
    typingNow = on;
  };
  $("text").addEventListener("input", () => setTyping($("text").value !== ""));

  $("send").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    setTyping(false);
    const res = await chat.timeout(10000).emitWithAck("chat:send", { room, text }).catch(failed);
    if (res.error) return notice(`not sent: ${res.error.code} (${res.error.message})`);
    notice("");
    $("text").value = "";
  });
}

// --- notifications (/) ----------------------------------------------------------------------

function runNotifications(root) {
  const rooms = new Set();
  const renderRooms = (list) => $("subscriptions").replaceChildren(...list.map((r) => el("li", r)));
  const subscribe = async (list) => {
    const res = await root.timeout(10000).emitWithAck("subscribe", { rooms: list }).catch((err) => ({ error: { code: "timeout", message: err.message } }));
    if (res.error) return addEvent("subscribe failed", [res.error]);
    renderRooms(res.data.rooms);
  };

  // Every event a backend emits to a subscribed room (or to this user's room) lands here. With
  // connection state recovery on, the server appends each broadcast's offset as a last argument
  // (socket.io-client keeps it to resume from there; _pid is set only then): shown apart.
  root.onAny((event, ...args) => {
    const offset = root._pid && typeof args.at(-1) === "string" ? args.pop() : undefined;
    addEvent(event, args, offset);
  });

  root.on("connect", () => {
    if (!root.recovered && rooms.size > 0) subscribe([...rooms]); // a new session: subscribe again
  });
  $("subscribe").addEventListener("submit", (e) => {
    e.preventDefault();
    const room = $("sub-room").value.trim();
    rooms.add(room);
    $("sub-room").value = "";
    subscribe([room]);
  });
}

function addEvent(event, args, offset) {
  const li = el("li");
  li.append(el("time", time(Date.now())), el("strong", event), el("code", JSON.stringify(args.length === 1 ? args[0] : args)));
  if (offset) li.append(el("small", `offset ${offset}`, "offset"));
  $("events").prepend(li);
}
