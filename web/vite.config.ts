// The production build goes to dist/, which the backend embeds (rust-embed) and serves at `/`; every
// other page path falls back to index.html, where src/router.ts routes. `npm run dev` serves the sources
// with the API proxied to a backend on 127.0.0.1:8080 (`make run`).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

/** The files worth compressing: text, from this size up. */
const COMPRESSIBLE = /\.(js|css|html|svg|json|txt)$/;
const MIN_BYTES = 1024;

/** Writes a brotli (`.br`, quality 11) and a gzip (`.gz`, level 9) copy beside each text file of the
 *  build, where it is smaller: the backend sends a copy to a client that accepts its encoding
 *  (backend/src/http/web.rs), compressed once here at the best ratio rather than on every request. */
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      const walk = (dir: string): string[] =>
        readdirSync(dir).flatMap((entry: string) => {
          const file = path.join(dir, entry);
          return statSync(file).isDirectory() ? walk(file) : [file];
        });
      for (const file of walk(outDir).filter((f) => COMPRESSIBLE.test(f))) {
        const bytes = readFileSync(file);
        if (bytes.length < MIN_BYTES) continue;
        const copies: [string, Uint8Array][] = [
          ['.br', brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } })],
          ['.gz', gzipSync(bytes, { level: 9 })],
        ];
        for (const [suffix, copy] of copies) if (copy.length < bytes.length) writeFileSync(file + suffix, copy);
      }
    },
  };
}

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Nothing inlined as data: or inline script, so the backend's CSP can stay `script-src 'self'`.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  plugins: [precompress()],
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
