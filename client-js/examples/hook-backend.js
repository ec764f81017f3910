// A complete app backend for Switchboard's hooks (README "Backend hooks", SPEC §8): a shared
// counter and a poll, in one file with no dependency but Node itself.
//
//   HOOK_SECRET=change-me PORT=4000 node examples/hook-backend.js
//   switchboard --hook-url http://127.0.0.1:4000/hooks --hook-secret change-me --hook-connect
//
// Switchboard POSTs {hook-url}/connect, /event and /events with a JSON body, signed: the header
// X-Switchboard-Signature is "sha256=" + hex HMAC-SHA256 of "<X-Switchboard-Timestamp>.<raw body>"
// keyed with the secret. Every request is checked before anything else; a forged or replayed one
// gets 401. The state lives in this process: with several backend processes, keep it in a
// database instead.
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";

/** maxSkewSeconds bounds how old (or how far ahead) a request's timestamp may be: replays older than that are refused. */
const maxSkewSeconds = 300;

/** verify reports whether a hook request is Switchboard's: the signature of its timestamp and raw body, and a fresh timestamp. */
export function verify(secret, timestamp, body, signature, now = Date.now()) {
  if (!/^[0-9]{1,15}$/.test(timestamp ?? "") || typeof signature !== "string" || !signature.startsWith("sha256=")) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > maxSkewSeconds) return false;
  const want = createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest();
  const got = Buffer.from(signature.slice("sha256=".length), "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** sign is what Switchboard sends as X-Switchboard-Signature (for curl lines and tests). */
export function sign(secret, timestamp, body) {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/**
 * createHookBackend returns an http.Server answering Switchboard's hooks under any path prefix:
 *
 * - connect: refuses the name "banned" (forbidden), else accepts; a connect to /game joins the
 *   rooms "counter" and "poll" at once and keeps when it joined as the socket's data.
 * - event: counter:get, counter:add {by} (1-10), poll:vote {choice}, poll:get; anything else is
 *   refused with not_found. Results go to the rooms' members with emit, and to the sender with ack.
 * - events: kept (the newest 1,000) and counted by type, for GET /state.
 *
 * GET /state shows the counter, the poll and the events received, for tests and curious humans.
 */
export function createHookBackend({ secret, log = () => {} }) {
  if (!secret) throw new Error("createHookBackend needs the --hook-secret it shares with Switchboard");
  const state = { counter: 0, poll: { question: "Tabs or spaces?", votes: { tabs: 0, spaces: 0 } }, voted: {}, events: [], seen: {} };

  const handlers = {
    connect(req) {
      if (req.auth?.name === "banned") return [403, { error: { code: "forbidden", message: "this name is banned" } }];
      if (req.socket.namespace !== "/game") return [200, {}];
      return [200, { rooms: ["counter", "poll"], data: { joinedAt: Date.now() } }];
    },
    event(req) {
      const [payload] = req.args;
      switch (req.event) {
        case "counter:get":
          return [200, { ack: [{ data: { value: state.counter } }] }];
        case "counter:add": {
          const by = payload?.by ?? 1;
          if (!Number.isInteger(by) || by < 1 || by > 10) return [400, { error: { code: "bad_request", message: "by must be 1-10" } }];
          state.counter += by;
          const update = { value: state.counter, by: req.socket.user.name };
          return [200, { emit: [{ rooms: ["counter"], event: "counter:value", args: [update] }], ack: [{ data: { value: state.counter } }] }];
        }
        case "poll:get":
          return [200, { ack: [{ data: state.poll }] }];
        case "poll:vote": {
          const choice = payload?.choice;
          if (!(choice in state.poll.votes)) return [400, { error: { code: "bad_request", message: "choice must be one of " + Object.keys(state.poll.votes).join(", ") } }];
          const voter = req.socket.user.id;
          if (state.voted[voter]) state.poll.votes[state.voted[voter]]--;
          state.voted[voter] = choice;
          state.poll.votes[choice]++;
          return [200, { emit: [{ rooms: ["poll"], event: "poll:results", args: [state.poll] }], ack: [{ data: state.poll }] }];
        }
        default:
          return [404, { error: { code: "not_found", message: `no event ${req.event}` } }];
      }
    },
    events(req) {
      for (const e of req.events) {
        state.seen[e.type] = (state.seen[e.type] ?? 0) + 1;
        state.events.push(e);
      }
      state.events.splice(0, Math.max(0, state.events.length - 1000));
      return [204, null];
    },
  };

  const server = createServer((req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, body === null ? {} : { "Content-Type": "application/json" });
      res.end(body === null ? undefined : JSON.stringify(body));
    };
    if (req.method === "GET" && req.url === "/state") return reply(200, state);
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 1 << 20) req.destroy(); // a hook body is never that big
      chunks.push(c);
    });
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const hook = req.url.split("/").pop();
      if (req.method !== "POST" || !(hook in handlers)) return reply(404, { error: { code: "not_found", message: "no such hook" } });
      if (!verify(secret, req.headers["x-switchboard-timestamp"], raw, req.headers["x-switchboard-signature"])) {
        log(`refused an unsigned or stale ${hook} request`);
        return reply(401, { error: { code: "unauthorized", message: "bad signature" } });
      }
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return reply(400, { error: { code: "bad_request", message: "not JSON" } });
      }
      const [status, answer] = handlers[hook](body);
      reply(status, answer);
    });
  });
  server.state = state;
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 4000);
  const server = createHookBackend({ secret: process.env.HOOK_SECRET, log: console.log });
  server.listen(port, "127.0.0.1", () => console.log(`hook backend on http://127.0.0.1:${port}/hooks (GET /state shows it)`));
}
