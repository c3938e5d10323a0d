import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpDeps } from '../../deps.js';
import { securityHeaders } from '../../security-headers.js';

export { contentSecurityPolicy } from '../../security-headers.js';

const seedPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parlance</title>
<link rel="stylesheet" href="/assets/seed-page.css">
</head>
<body>
<main>
  <h1>Parlance</h1>
  <p id="banner" class="banner" role="status" hidden></p>
  <form id="chat">
    <label for="prompt">Message</label>
    <textarea id="prompt" name="prompt" rows="3" required placeholder="Ask something…"></textarea>
    <button id="send" type="submit">Send</button>
  </form>
  <pre id="reply" aria-live="polite"></pre>
</main>
<script type="module" src="/assets/seed-page.js"></script>
</body>
</html>`;

const style = `body{font:16px/1.5 system-ui,sans-serif;margin:0;background:Canvas;color:CanvasText;color-scheme:light dark}
main{max-width:46rem;margin:2rem auto;padding:0 1rem}
form{display:grid;gap:.5rem}textarea{font:inherit;padding:.5rem}button{justify-self:start;font:inherit;padding:.4rem 1.2rem}
pre{white-space:pre-wrap;word-break:break-word;border-top:1px solid GrayText;padding-top:1rem;min-height:3rem}
.banner{background:#fff3cd;color:#664d03;border:1px solid #ffe69c;padding:.5rem .75rem;border-radius:.25rem}`;

/*
 * The script reads the SSE framing of /completion with the event-stream rules
 * (data lines joined by newlines, an `end` event closing the reply), so
 * multi-line replies keep their line breaks.
 */
const script = `const form = document.getElementById('chat');
const reply = document.getElementById('reply');
const send = document.getElementById('send');
const banner = document.getElementById('banner');
fetch('/health').then((r) => r.json()).then((health) => {
  if (health.notices && health.notices.length) { banner.textContent = health.notices.map((n) => n.message).join(' '); banner.hidden = false; }
}).catch(() => {});
function handle(block) {
  let event = 'message'; const data = [];
  for (const line of block.split('\\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  if (!data.length) return;
  if (event === 'message') reply.textContent += data.join('\\n');
  else if (event === 'error') reply.textContent += '\\n[error] ' + JSON.parse(data.join('\\n')).message;
}
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  reply.textContent = ''; send.disabled = true;
  try {
    const res = await fetch('/completion', { method: 'POST', body: new FormData(form) });
    if (!res.ok) { const body = await res.json().catch(() => ({})); reply.textContent = '[error] ' + (body.error?.message ?? res.status); return; }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\\r\\n?/g, '\\n');
      let end;
      while ((end = buffer.indexOf('\\n\\n')) >= 0) { handle(buffer.slice(0, end)); buffer = buffer.slice(end + 2); }
    }
  } finally { send.disabled = false; }
});
document.getElementById('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});`;

/** The seed's minimal page, served only when the chat page has not been built (`npm run build`). */
function seedPageRoutes(app: FastifyInstance): void {
  app.get('/', async (_request, reply) => reply.headers(securityHeaders).type('text/html; charset=utf-8').send(seedPage));
  app.get('/assets/seed-page.js', async (_request, reply) => reply.headers(securityHeaders).type('text/javascript; charset=utf-8').send(script));
  app.get('/assets/seed-page.css', async (_request, reply) => reply.headers(securityHeaders).type('text/css; charset=utf-8').send(style));
}

/** The project root: the nearest folder above this module with a package.json (works from src/ and from dist/src/). */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** Where `vite build` (web/vite.config.ts) writes the chat page. */
export const webRoot = join(projectRoot(), 'dist', 'web');

/** Hashed build outputs never change under their name: browsers may keep them for a year without asking. */
export const immutableCache = 'public, max-age=31536000, immutable';

const day = 'public, max-age=86400';

/**
 * The page's files outside `/assets/`, at fixed names (web/public, and the service worker the build writes).
 * The manifest and the worker are revalidated on every load, so that a new deploy is seen at once; the worker
 * carries the page's CSP, which then governs what it may fetch.
 */
const rootFiles: Readonly<Record<string, { readonly type: string; readonly cache: string; readonly headers?: Readonly<Record<string, string>> }>> = {
  'favicon.svg': { type: 'image/svg+xml', cache: day },
  'icon-192.png': { type: 'image/png', cache: day },
  'icon-512.png': { type: 'image/png', cache: day },
  'icon-maskable-512.png': { type: 'image/png', cache: day },
  'manifest.webmanifest': { type: 'application/manifest+json', cache: 'no-cache' },
  'sw.js': { type: 'text/javascript; charset=utf-8', cache: 'no-cache', headers: securityHeaders },
};

/**
 * The chat page (`web/`, built by Vite into `dist/web/`). Its HTML, at `/` and
 * at every `/c/:id` (the URL names the conversation, so reload and history
 * work), is revalidated on every load (`no-cache`) and carries the strict CSP;
 * everything under `/assets/` has a content hash in its name and is cached as
 * immutable. The HTML is read once, at start. A service worker (/sw.js) keeps
 * the shell for offline use; see web/service-worker/shell.ts.
 */
export const pageRoutes: FastifyPluginAsync<HttpDeps> = async (app) => {
  const indexPath = join(webRoot, 'index.html');
  if (!existsSync(indexPath)) {
    app.log.warn({ webRoot }, "the chat page is not built (run 'npm run build'); serving the minimal seed page at /");
    seedPageRoutes(app);
    return;
  }
  const html = await readFile(indexPath, 'utf8');
  const pageHeaders = { ...securityHeaders, 'cache-control': 'no-cache' };
  const sendPage = async (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => reply.headers(pageHeaders).type('text/html; charset=utf-8').send(html);
  app.get('/', sendPage);
  app.get('/c/:id', sendPage);

  for (const [name, file] of Object.entries(rootFiles)) {
    const path = join(webRoot, name);
    if (!existsSync(path)) continue;
    const body = await readFile(path);
    const headers = { 'x-content-type-options': 'nosniff', 'cache-control': file.cache, ...file.headers };
    app.get(`/${name}`, async (_request, reply) => reply.headers(headers).type(file.type).send(body));
  }

  await app.register(fastifyStatic, {
    root: join(webRoot, 'assets'),
    prefix: '/assets/',
    index: false,
    decorateReply: false,
    cacheControl: false, // set below, exactly
    etag: true,
    lastModified: false,
    // web/vite.config.ts writes .br and .gz beside each text asset; the one the browser accepts is sent.
    preCompressed: true,
    setHeaders: (reply) => {
      reply.header('cache-control', immutableCache);
      reply.header('x-content-type-options', 'nosniff');
    },
  });
};
