import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import type { TestServer } from '../fixtures/server.js';
import { haveChromium, lastReplyText, launchChromium, openPage, sendMessage, startScriptedServer, type BrowserSession } from './harness.js';

/** A server run with --api-key: the page itself is public, and it asks for the key the API needs. */
describe.skipIf(!haveChromium)('the chat page on a server that needs an API key', () => {
  let server: TestServer;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startScriptedServer({ scriptedDelayMs: 1, apiKeys: ['page-test-key-0123456789'] });
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await session?.close();
    await server?.stop();
  });

  it('asks for the key, then works with it, exports included', async () => {
    const probe = await openPage(session.browser, server.url);
    const { page } = probe;
    await page.goto(server.url);
    const key = page.getByLabel('API key', { exact: true });
    await key.waitFor();
    await key.fill('page-test-key-0123456789');
    await page.getByRole('button', { name: 'Use this key' }).click();
    await key.waitFor({ state: 'hidden' });
    await sendMessage(page, 'keyed hello');
    await page.getByTestId('stats').waitFor();
    expect(await lastReplyText(page)).toBe('keyed hello');
    // Exports cannot be plain links with a key: the page fetches them and saves a blob.
    await page.getByRole('button', { name: 'Export the conversation' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Markdown (.md)' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^conversation-.+\.md$/);
    // The key stays in this browser: a reload needs no prompt.
    await page.reload();
    await page.locator('.conversation').first().waitFor();
    expect(await page.getByLabel('API key', { exact: true }).isVisible()).toBe(false);
    expect(probe.errors).toEqual([]);
    expect(probe.cspViolations).toEqual([]);
    await probe.context.close();
  });
});
