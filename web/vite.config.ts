// The production build goes to dist/, which the backend embeds (rust-embed) and serves at `/`; every
// other page path falls back to index.html, where src/router.ts routes. `npm run dev` serves the sources
// with the API proxied to a backend on 127.0.0.1:8080 (`make run`).
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Nothing inlined as data: or inline script, so the backend's CSP can stay `script-src 'self'`.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
