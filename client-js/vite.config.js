// Vite builds the demo page in web/ into dist/, which `go run .` serves at "/".
// `pnpm --filter client-js dev` serves it with hot reload and proxies Socket.IO and the HTTP API
// to the Switchboard at $SWITCHBOARD_URL (default http://localhost:3000).
import { defineConfig } from "vite";

const target = process.env.SWITCHBOARD_URL ?? "http://localhost:3000";

export default defineConfig({
  root: "web",
  build: { outDir: "../dist", emptyOutDir: true },
  server: {
    proxy: {
      "/socket.io": { target, ws: true },
      "/api": { target },
    },
  },
});
