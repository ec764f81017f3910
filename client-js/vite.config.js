// Vite builds the demo pages in web/ into dist/, which `go run .` serves at "/demo/": the home
// page (index.html: chat and notifications), the relay board (board.html: live cursors and
// a minimal game on /relay) and the backend hooks demo (counter.html: a shared counter and a poll
// decided by the app backend of examples/hook-backend.js).
// `pnpm --filter client-js dev` serves it with hot reload and proxies Socket.IO and the HTTP API
// to the Switchboard at $SWITCHBOARD_URL (default http://localhost:3000).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const target = process.env.SWITCHBOARD_URL ?? "http://localhost:3000";

export default defineConfig({
  root: "web",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL("web/index.html", import.meta.url)),
        board: fileURLToPath(new URL("web/board.html", import.meta.url)),
        counter: fileURLToPath(new URL("web/counter.html", import.meta.url)),
      },
    },
  },
  server: {
    proxy: {
      "/socket.io": { target, ws: true },
      "/api": { target },
    },
  },
});
