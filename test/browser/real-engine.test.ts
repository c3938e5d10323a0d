import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { tinyModelPath } from '../fixtures/paths.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { haveChromium, launchChromium, openPage, screenshot, sendMessage, type BrowserSession } from './harness.js';

/**
 * One path through the real engine: the tiny random-weight GGUF in llama.cpp,
 * served as the demo model, so the page also shows /health's notice. Its text
 * is gibberish; what matters is that real tokens stream into the page.
 */
describe.skipIf(!haveChromium)('the chat page on the embedded llama.cpp engine (tiny GGUF, demo mode)', () => {
  let server: TestServer;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    // demo mode loads parlance-tiny.gguf from the models folder: the one test/global-setup.ts wrote.
    // The demo model's context is capped at its training context (2048 tokens), so the long reply below asks for 1800.
    server = await startTestServer({ demo: true, model: undefined, modelsDir: dirname(tinyModelPath), maxTokens: 400, contextSize: 4096, sequences: 1 });
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await session?.close();
    await server?.stop();
  });

  it('shows the demo banner, streams real tokens in several steps, stops, and reports the reply timings', async () => {
    const probe = await openPage(session.browser, server.url);
    const { page } = probe;
    await page.goto(server.url);
    const banner = page.getByRole('status').filter({ hasText: 'random text' });
    await banner.waitFor();
    expect(await page.getByLabel('Model', { exact: true }).locator('option').allTextContents()).toContain('parlance-tiny');
    await page.evaluate(`(() => {
      window.__lengths = [];
      new MutationObserver(() => {
        const all = document.querySelectorAll('article.from-assistant .markdown');
        const last = all[all.length - 1];
        if (last) window.__lengths.push(last.textContent.length);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    })()`);
    await sendMessage(page, 'Hello, tiny model.');
    const reply = page.locator('article.from-assistant').last();
    await reply.waitFor();
    for (let i = 0; i < 400; i++) {
      const status = await reply.getAttribute('data-status');
      if (status !== 'streaming' && (await reply.getAttribute('aria-busy')) === 'false') break;
      await page.waitForTimeout(25);
    }
    const lengths = await page.evaluate<number[]>('window.__lengths');
    expect(new Set(lengths.filter((length) => length > 0)).size).toBeGreaterThanOrEqual(2);
    const stats = (await reply.getByTestId('stats').textContent()) ?? '';
    expect(stats).toMatch(/first token/);
    expect(stats).toContain('parlance-tiny');
    await screenshot(page, 'real-engine');

    // Stop mid-reply: the engine honours it, the page keeps the partial text. (A long reply this time.)
    await page.getByLabel('Model', { exact: true }).selectOption('parlance-tiny');
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.getByLabel('Max tokens').fill('1800');
    await page.getByRole('button', { name: 'Save' }).click();
    await reply.hover();
    await page.getByRole('button', { name: 'Regenerate the reply' }).click();
    await page.locator('article.from-assistant[data-status="streaming"]').waitFor();
    await page.keyboard.press('Escape');
    const last = page.locator('article.from-assistant').last();
    for (let i = 0; i < 400 && (await last.getAttribute('data-status')) === 'streaming'; i++) await page.waitForTimeout(25);
    expect(await last.getAttribute('data-status')).toBe('stopped');
    await last.getByText('Stopped.').waitFor();
    expect(probe.cspViolations).toEqual([]);
    expect(probe.errors).toEqual([]);
    expect(probe.foreignRequests).toEqual([]);
    await probe.context.close();
  });
});
