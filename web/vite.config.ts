import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
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
const publicDir = join(webDir, 'public');

/**
 * Builds the service worker (web/service-worker/shell.ts) as `/sw.js`, outside `assets/` (its scope is the
 * whole page, and its name must not change), and writes into it this build's shell: the page (`/`), the
 * assets its HTML loads, and the public files (icons, manifest), under a version that is a hash of them all,
 * so that each deploy gets its own cache and replaces the last.
 */
function shellWorker(): Plugin {
  return {
    name: 'parlance-shell-worker',
    apply: 'build',
    // After Vite's own HTML plugin has put index.html into the bundle.
    enforce: 'post',
    config: () => ({
      build: {
        rollupOptions: {
          input: { index: join(webDir, 'index.html'), sw: join(webDir, 'service-worker', 'shell.ts') },
          output: { entryFileNames: (chunk: { name: string }) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js') },
        },
      },
    }),
    async generateBundle(_options, bundle) {
      const worker = bundle['sw.js'];
      const html = bundle['index.html'];
      if (worker?.type !== 'chunk' || html?.type !== 'asset') throw new Error(`the build has no sw.js chunk or no index.html: ${Object.keys(bundle).filter((name) => !name.startsWith('assets/')).join(', ')}`);
      if (worker.imports.length > 0) throw new Error(`sw.js must stand alone, but imports ${worker.imports.join(', ')}`);
      const page = String(html.source);
      const assets = [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1] ?? '');
      const publicFiles = (await readdir(publicDir)).sort();
      const version = createHash('sha256');
      for (const name of Object.keys(bundle).sort()) if (name !== 'sw.js') version.update(`${name}\n`);
      version.update(page);
      for (const name of publicFiles) version.update(await readFile(join(publicDir, name)));
      const shell = { version: version.digest('hex').slice(0, 16), files: ['/', ...new Set(assets), ...publicFiles.map((name) => `/${name}`)] };
      const placeholder = /(["'`])SHELL_PLACEHOLDER\1/;
      if (!placeholder.test(worker.code)) throw new Error('sw.js lost its SHELL_PLACEHOLDER');
      worker.code = worker.code.replace(placeholder, JSON.stringify(JSON.stringify(shell)));
    },
  };
}

/**
 * The chat page's build: `web/` in, `dist/web/` out. Every file under
 * `dist/web/assets/` has a content hash in its name, which is what lets the
 * server cache them forever (`src/http/routes/ui/page.ts`).
 */
export default defineConfig({
  root: webDir,
  base: '/',
  plugins: [react(), precompress(), shellWorker()],
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
