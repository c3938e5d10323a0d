import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { haveChromium, lastReplyText, launchChromium, openPage, screenshot, sendMessage, type BrowserSession } from './harness.js';

/**
 * The page opened while the server is still loading its model (here: an upstream whose model list is held
 * back): it says so, then, once loading ends, lists the model and chats, without a reload.
 */
describe.skipIf(!haveChromium)('the chat page while the server loads its model', () => {
  let upstream: FakeUpstream;
  let server: TestServer | undefined;
  let session: BrowserSession;
  let release!: () => void;
  let started: Promise<TestServer>;
  let base: string;

  beforeAll(async () => {
    await ensureWebBuilt();
    const held = new Promise<void>((resolve) => (release = resolve));
    upstream = await startFakeUpstream({
      models: ['slow-model'],
      script: async (request) => {
        if (request.path === '/v1/models') await held;
        return undefined;
      },
    });
    let listening!: (url: string) => void;
    const url = new Promise<string>((resolve) => (listening = resolve));
    started = startTestServer({ embedded: false, upstreams: [`slow=${upstream.url}`] }, { onListening: listening });
    base = await url;
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    release();
    await session?.close();
    await (server ?? (await started.catch(() => undefined)))?.stop();
    await upstream?.close();
  });

  it('shows a loading notice, then the model, and the first message is answered', async () => {
    const { page, errors } = await openPage(session.browser, base);
    await page.goto(base);
    const notice = page.getByRole('status').filter({ hasText: 'still loading its model' });
    await notice.waitFor();
    expect(await page.getByLabel('Model', { exact: true }).locator('option').allTextContents()).not.toContain('slow-model');
    await screenshot(page, 'loading');

    release();
    server = await started;
    await notice.waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'slow-model' }).first().waitFor({ state: 'attached' });

    await sendMessage(page, 'Are you there?');
    await page.locator('article.from-assistant[data-status="complete"]').waitFor();
    expect(await lastReplyText(page)).toBe('Hello from fake');
    expect(errors).toEqual([]);
  });
});
