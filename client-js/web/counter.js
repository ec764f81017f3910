// The backend hooks demo: a shared counter and a poll whose logic lives in the app backend
// (client-js/examples/hook-backend.js). The page only emits events on /game and shows what comes
// back: its own ack, and the emits the backend sends to every page in the rooms the connect hook
// joined it to ("counter", "poll").
import { io } from "socket.io-client";

const $ = (id) => document.getElementById(id);
const name = new URLSearchParams(location.search).get("name") || `guest-${Math.random().toString(36).slice(2, 6)}`;
const game = io("/game", { auth: { name } });
window.switchboard = { game }; // for playing in the console

const setState = (state, detail) => {
  $("status").dataset.state = state;
  $("state").textContent = detail ? `${state} (${detail})` : state;
};
const showCount = ({ value, by }) => {
  $("count").textContent = String(value);
  $("last").textContent = by ? `last +1 by ${by}` : "";
};
const showPoll = ({ question, votes }) => {
  $("question").textContent = question;
  for (const [choice, n] of Object.entries(votes)) $(`votes-${choice}`).textContent = String(n);
};
/** call emits an event and resolves with its ack's data, showing an error code if there is one. */
async function call(event, payload) {
  const reply = await game.timeout(10000).emitWithAck(event, payload);
  if (reply.error) {
    $("notice").textContent = `${event}: ${reply.error.code}`;
    return null;
  }
  $("notice").textContent = "";
  return reply.data;
}

game.on("connect", async () => {
  setState("connected", name);
  for (const b of document.querySelectorAll("button")) b.disabled = false;
  const count = await call("counter:get", {});
  if (count) showCount(count);
  const poll = await call("poll:get", {});
  if (poll) showPoll(poll);
});
game.on("disconnect", (reason) => setState("disconnected", reason));
game.on("connect_error", (err) => setState("refused", err.message)); // the connect hook's code
game.on("counter:value", showCount);
game.on("poll:results", showPoll);

$("add").addEventListener("click", async () => {
  const count = await call("counter:add", { by: 1 });
  if (count) $("count").textContent = String(count.value);
});
for (const button of document.querySelectorAll(".vote")) {
  button.addEventListener("click", () => call("poll:vote", { choice: button.dataset.choice }));
}
