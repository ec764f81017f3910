// A private redis-server on a free port, for tests that share or stop Redis.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createConnection } from "node:net";

async function reachable(port) {
  return new Promise((resolve) => {
    const c = createConnection({ host: "127.0.0.1", port }, () => {
      c.end();
      resolve(true);
    });
    c.on("error", () => resolve(false));
  });
}

/** startRedis runs redis-server on a random port below the ephemeral range. */
export async function startRedis() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const r = { port, url: `redis://127.0.0.1:${port}/0`, proc: null };
    r.start = async () => {
      r.proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
        stdio: "ignore",
      });
      let exited = false;
      r.proc.once("exit", () => (exited = true));
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !exited) {
        if (await reachable(port)) return true;
        await new Promise((res) => setTimeout(res, 20)); // polling a port that is coming up
      }
      return false;
    };
    r.stop = async () => {
      if (!r.proc || r.proc.exitCode !== null || r.proc.signalCode !== null) return;
      r.proc.kill("SIGKILL");
      await once(r.proc, "exit");
    };
    if (await r.start()) return r;
    await r.stop();
  }
  throw new Error("could not start redis-server");
}
