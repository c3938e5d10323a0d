/// <reference lib="webworker" />
/**
 * The chat page's service worker: it keeps the page's shell (the built HTML,
 * JS, CSS, fonts and icons) so the page opens with the server down or the
 * device offline, and then says the server cannot be reached (the page's own
 * connection banner). It never stores or answers an API request: only the
 * shell's files and the hashed, immutable `/assets/` are ever cached; every
 * other request (the APIs, /health, /docs…) goes to the network untouched and
 * fails when the network does.
 *
 * The build (web/vite.config.ts) replaces SHELL_PLACEHOLDER with the build's
 * version and its file list, so each deploy has its own cache, and the old
 * one is deleted once the new worker takes over.
 */
export {};

declare const self: ServiceWorkerGlobalScope;

interface Shell {
  readonly version: string;
  /** Paths fetched at install: the page itself (`/`), its entry script and style, the icons and manifest. */
  readonly files: readonly string[];
}

const shell = JSON.parse('SHELL_PLACEHOLDER') as Shell;
const CACHE_PREFIX = 'parlance-shell-';
const cacheName = `${CACHE_PREFIX}${shell.version}`;
const shellFiles = new Set(shell.files);
/** How long a page load waits for the server before the stored shell is shown instead. */
const NAVIGATION_TIMEOUT_MS = 4000;

/** The page's own URLs (`/`, a conversation at `/c/:id`): all served the same HTML. */
const isPagePath = (path: string): boolean => path === '/' || /^\/c\/[^/]+\/?$/.test(path);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(cacheName);
      await cache.addAll(shell.files.map((path) => new Request(path, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith(CACHE_PREFIX) && name !== cacheName) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

/** The network's page, unless it fails, takes too long or answers with a server error: then the stored shell. */
async function page(request: Request): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), NAVIGATION_TIMEOUT_MS);
  try {
    const response = await fetch(request, { signal: controller.signal });
    if (response.status < 500) return response;
    return (await caches.match('/', { cacheName })) ?? response;
  } catch (error) {
    const stored = await caches.match('/', { cacheName });
    if (stored) return stored;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** A shell file or a hashed asset: from the cache, else from the network (an asset is kept for next time). */
async function file(request: Request, path: string): Promise<Response> {
  const cache = await caches.open(cacheName);
  const stored = await cache.match(request);
  if (stored) return stored;
  const response = await fetch(request);
  if (response.ok && path.startsWith('/assets/')) await cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    if (isPagePath(url.pathname)) event.respondWith(page(request));
    return;
  }
  if (url.search === '' && (shellFiles.has(url.pathname) || url.pathname.startsWith('/assets/'))) event.respondWith(file(request, url.pathname));
});
