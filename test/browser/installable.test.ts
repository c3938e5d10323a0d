import { describe, expect, it } from 'vitest';
import { conversationIdOf, haveChromium, openPage, screenshot, scriptedPageSuite, sendMessage, until, waitForReplyEnd } from './harness.js';

/**
 * The installable page (issue 13): a web app manifest Chromium accepts, and a
 * service worker that keeps the shell only, so the page opens with the server
 * gone and says so, while no API answer is ever kept or replayed.
 */

interface Manifest {
  readonly name?: string;
  readonly short_name?: string;
  readonly start_url?: string;
  readonly scope?: string;
  readonly display?: string;
  readonly icons?: readonly { readonly src: string; readonly sizes: string; readonly type: string; readonly purpose?: string }[];
}

/** A PNG's width and height, from its IHDR chunk. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe.skipIf(!haveChromium)('the installable page (manifest, offline shell)', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 1 });

  it('links a manifest with standalone display and fetchable 192, 512 and maskable PNG icons', async () => {
    const response = await fetch(`${suite.server.url}/manifest.webmanifest`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/manifest\+json/);
    const manifest = (await response.json()) as Manifest;
    expect(manifest).toMatchObject({ name: 'Parlance', short_name: 'Parlance', start_url: '/', scope: '/', display: 'standalone' });
    const pngs = (manifest.icons ?? []).filter((icon) => icon.type === 'image/png');
    expect(pngs.map((icon) => `${icon.sizes} ${icon.purpose ?? 'any'}`).sort()).toEqual(['192x192 any', '512x512 any', '512x512 maskable']);
    for (const icon of pngs) {
      const image = await fetch(new URL(icon.src, suite.server.url));
      expect(image.status).toBe(200);
      expect(image.headers.get('content-type')).toBe('image/png');
      const { width, height } = pngSize(Buffer.from(await image.arrayBuffer()));
      expect(`${width}x${height}`).toBe(icon.sizes);
    }
    // The worker is revalidated on every load (a new deploy is seen at once) and carries the page's CSP.
    const worker = await fetch(`${suite.server.url}/sw.js`);
    expect(worker.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(worker.headers.get('cache-control')).toBe('no-cache');
    expect(worker.headers.get('content-security-policy')).toContain("default-src 'self'");
  });

  it('installs its worker, keeps only the shell, and opens offline with the notice that the server is unreachable', async () => {
    const probe = await openPage(suite.session.browser, suite.server.url);
    suite.probes.push(probe);
    const { page, context } = probe;
    // A cache of an older build, there before this build's worker installs: it must be gone once it activates.
    await page.addInitScript({
      content: "if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1'); caches.open('parlance-shell-0123456789abcdef').then((cache) => cache.put('/stale', new Response('old'))); }",
    });
    await page.goto(suite.server.url);
    await page.getByLabel('Message', { exact: true }).waitFor();

    // Chromium reads the manifest the page links and finds nothing wrong with it.
    const cdp = await context.newCDPSession(page);
    const parsed = await cdp.send('Page.getAppManifest');
    expect(parsed.url).toBe(`${suite.server.url}/manifest.webmanifest`);
    expect(parsed.errors).toEqual([]);

    const state = await page.evaluate<string>("navigator.serviceWorker.ready.then((registration) => registration.active.state === 'activated' ? 'activated' : new Promise((resolve) => registration.active.addEventListener('statechange', (event) => event.target.state === 'activated' && resolve('activated'))))");
    expect(state).toBe('activated');
    const installability = await cdp.send('Page.getInstallabilityErrors');
    // Playwright's contexts are incognito, where Chromium never installs: any other reason would be ours.
    expect(installability.installabilityErrors.filter((error) => error.errorId !== 'in-incognito')).toEqual([]);

    // Used as usual: a conversation with a reply, so there is something the API could have left in a cache.
    await sendMessage(page, 'A message to remember offline');
    expect(await waitForReplyEnd(page)).toBe('complete');
    const id = await conversationIdOf(page);
    await until(page, `document.querySelector('.sidebar')?.textContent.includes('A message to remember offline') === true`);
    const reloaded = await page.reload();
    await page.getByLabel('Message', { exact: true }).waitFor();
    expect(await page.evaluate<boolean>('navigator.serviceWorker.controller !== null')).toBe(true);
    // With the server up, the page itself still comes from it (each answer has its own request id), not the cache.
    expect(reloaded?.fromServiceWorker()).toBe(true);
    const storedId = await page.evaluate<string | null>("caches.match('/').then((response) => response.headers.get('x-request-id'))");
    expect(storedId).not.toBeNull();
    expect(reloaded?.headers()['x-request-id']).toBeDefined();
    expect(reloaded?.headers()['x-request-id']).not.toBe(storedId);

    // One cache, this build's, holding the page, its hashed assets, icons and manifest: never an API answer.
    const version = /"version":"([0-9a-f]+)"/.exec((await (await fetch(`${suite.server.url}/sw.js`)).text()).replaceAll('\\"', '"'))?.[1];
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    expect(await page.evaluate<string[]>('caches.keys()')).toEqual([`parlance-shell-${version ?? ''}`]);
    const cached = await page.evaluate<string[]>("caches.keys().then((names) => Promise.all(names.map((name) => caches.open(name).then((cache) => cache.keys())))).then((lists) => lists.flat().map((request) => new URL(request.url).pathname))");
    expect(cached).toContain('/');
    expect(cached).toContain('/manifest.webmanifest');
    for (const path of cached) expect(path).toMatch(/^\/(?:$|assets\/|favicon\.svg$|icon-[a-z0-9-]+\.png$|manifest\.webmanifest$)/);

    // The network goes away; the conversation's page is loaded again, and it is the stored shell.
    await context.setOffline(true);
    const offline = await page.goto(`${suite.server.url}/c/${encodeURIComponent(id)}`);
    expect(offline?.headers()['x-request-id']).toBe(storedId);
    await page.locator('.banner.connection[role=alert]', { hasText: 'Parlance cannot be reached.' }).waitFor();
    // Nothing of the API was kept: no stale list, no stale conversation, and a fetch of it fails.
    await page.getByText('Could not load the conversation.').waitFor();
    expect(await page.locator('.sidebar').textContent()).not.toContain('A message to remember offline');
    expect(await page.locator('article.message').count()).toBe(0);
    expect(await page.evaluate<string>("fetch('/parlance/api/conversations').then(() => 'answered', () => 'failed')")).toBe('failed');
    expect(await page.evaluate<string>("fetch('/health').then(() => 'answered', () => 'failed')")).toBe('failed');
    await screenshot(page, 'offline-shell');
    // A new chat works offline as far as it can: the composer is there, the notice stays.
    await page.goto(suite.server.url);
    await page.getByLabel('Message', { exact: true }).waitFor();
    await page.locator('.banner.connection[role=alert]', { hasText: 'Parlance cannot be reached.' }).waitFor();
    await screenshot(page, 'offline-new-chat');
  });
});
