import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import type { TestServer } from '../fixtures/server.js';
import { haveChromium, lastReplyText, launchChromium, openPage, screenshot, sendMessage, startScriptedServer, type BrowserSession } from './harness.js';

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
    expect(download.suggestedFilename()).toBe('keyed hello.md'); // named after the conversation's title
    // The key stays in this browser: a reload needs no prompt.
    await page.reload();
    await page.locator('.conversation').first().waitFor();
    expect(await page.getByLabel('API key', { exact: true }).isVisible()).toBe(false);
    expect(probe.errors).toEqual([]);
    expect(probe.cspViolations).toEqual([]);
    await probe.context.close();
  });

  it('says when a key is wrong (no pile of toasts behind it), and changes or forgets a stored key', async () => {
    const probe = await openPage(session.browser, server.url);
    const { page } = probe;
    await page.goto(server.url);
    const key = page.getByLabel('API key', { exact: true });
    await key.waitFor();
    await key.fill('not-the-key');
    await page.getByRole('button', { name: 'Use this key' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.getByRole('alert').getByText('This server did not accept that key').waitFor();
    expect(await key.isVisible()).toBe(true);
    await page.waitForTimeout(300);
    expect(await page.locator('.toast').count()).toBe(0);
    await screenshot(page, 'api-key-wrong');
    await key.fill('page-test-key-0123456789');
    await page.getByRole('button', { name: 'Use this key' }).click();
    await key.waitFor({ state: 'hidden' });

    // Change it: a wrong one is refused and the stored one kept; Cancel leaves it as it was.
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.getByRole('button', { name: 'Change the key…' }).click();
    await key.waitFor();
    await key.fill('another-wrong-key');
    await page.getByRole('button', { name: 'Use this key' }).click();
    await dialog.getByRole('alert').getByText('did not accept').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await key.waitFor({ state: 'hidden' });
    expect(await page.evaluate<string | null>("localStorage.getItem('parlance-api-key')")).toBe('page-test-key-0123456789');

    // Forget it: gone from this browser, and the server asks again.
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.getByRole('button', { name: 'Forget the key' }).click();
    await key.waitFor();
    expect(await page.evaluate<string | null>("localStorage.getItem('parlance-api-key')")).toBeNull();
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0); // needed, not optional
    expect(probe.errors).toEqual([]);
    await probe.context.close();
  });
});
