import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

const brotli = promisify(brotliCompress);
const gz = promisify(gzip);

/** Writes `.br` and `.gz` beside each compressible asset, so the server sends them without compressing per request. */
function precompress(): Plugin {
  let outDir = '';
  return {
    name: 'parlance-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    async writeBundle(_options, bundle) {
      const files = Object.keys(bundle).filter((file) => /\.(?:m?js|css|svg|ttf|json|html)$/.test(file) && file.startsWith('assets/'));
      await Promise.all(
        files.map(async (file) => {
          const path = join(outDir, file);
          const data = await readFile(path);
          if (data.length < 1024) return;
          await writeFile(`${path}.br`, await brotli(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
          await writeFile(`${path}.gz`, await gz(data, { level: 9 }));
        }),
      );
    },
  };
}

const webDir = fileURLToPath(new URL('.', import.meta.url));

/**
 * The chat page's build: `web/` in, `dist/web/` out. Every file under
 * `dist/web/assets/` has a content hash in its name, which is what lets the
 * server cache them forever (`src/http/routes/ui/page.ts`).
 */
export default defineConfig({
  root: webDir,
  base: '/',
  plugins: [react(), precompress()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    // Never inline assets as data: URLs (Vite inlines small fonts by default): the CSP allows fonts from 'self' only.
    assetsInlineLimit: 0,
    // Chromium, Firefox and Safari support modulepreload: the polyfill would only add bytes.
    modulePreload: { polyfill: false },
    // The initial bundle is budgeted (150 KB gzipped) and checked by test/browser; this is just a tripwire.
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npm run dev:web`: the page with hot reload, its API calls proxied to a running Parlance.
    proxy: { '/parlance': 'http://127.0.0.1:8000', '/api': 'http://127.0.0.1:8000', '/v1': 'http://127.0.0.1:8000', '/health': 'http://127.0.0.1:8000' },
  },
});
