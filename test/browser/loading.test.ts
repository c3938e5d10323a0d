import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { startWhileLoading, type LoadingServer } from '../fixtures/held-load.js';
import type { TestServer } from '../fixtures/server.js';
import { haveChromium, lastReplyText, launchChromium, openPage, screenshot, sendMessage, type BrowserSession } from './harness.js';

/**
 * The page opened while the server is still loading its model (here: an upstream whose model list is held
 * back): it says so, then, once loading ends, lists the model and chats, without a reload.
 */
describe.skipIf(!haveChromium)('the chat page while the server loads its model', () => {
  let loading: LoadingServer;
  let server: TestServer | undefined;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    loading = await startWhileLoading('slow-model');
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    loading?.release();
    await session?.close();
    await (server ?? (await loading?.started.catch(() => undefined)))?.stop();
    await loading?.upstream.close();
  });

  it('shows a loading notice, then the model, and the first message is answered', async () => {
    const { page, errors } = await openPage(session.browser, loading.url);
    await page.goto(loading.url);
    const notice = page.getByRole('status').filter({ hasText: 'still loading its model' });
    await notice.waitFor();
    expect(await page.getByLabel('Model', { exact: true }).locator('option').allTextContents()).not.toContain('slow-model');
    await screenshot(page, 'loading');

    loading.release();
    server = await loading.started;
    await notice.waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'slow-model' }).first().waitFor({ state: 'attached' });

    await sendMessage(page, 'Are you there?');
    await page.locator('article.from-assistant[data-status="complete"]').waitFor();
    expect(await lastReplyText(page)).toBe('Hello from fake');
    expect(errors).toEqual([]);
  });
});
