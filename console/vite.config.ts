import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build goes inside the Python package, which ships it and serves it at `/`.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../host/polyhost/server/console_dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npm run dev` talks to a `polyhost serve` on its default port.
    proxy: { "/api": "http://127.0.0.1:8700", "/openapi.json": "http://127.0.0.1:8700" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
