import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchModelOptions, writeTinyModel } from '../../src/engines/llama-cpp/tiny-model.js';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';
import { haveChromium, launchChromium, openPage, screenshot, sendMessage, type BrowserSession } from './harness.js';

/**
 * A message to a model of the library that is still on disk: the page says the model is loading, with its
 * progress, until it is in memory, and then the reply comes. The model on disk is the bench-size random GGUF
 * (~300 MB), whose load lasts long enough to be seen; the tiny one is the `--model`, loaded at start.
 */
describe.skipIf(!haveChromium)('the chat page while a requested model loads', () => {
  let dir: string;
  let server: TestServer;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    dir = await mkdtemp(join(tmpdir(), 'parlance-loading-'));
    await writeTinyModel(join(dir, 'big.gguf'), { ...benchModelOptions, name: 'big' });
    server = await startTestServer({ modelsDir: dir, modelsMax: 2, contextSize: 256, sequences: 1, maxTokens: 4, ...noShedding });
    session = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await session?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows "Loading model big…" with a progress bar while it loads, then the reply', async () => {
    const { page, errors } = await openPage(session.browser, server.url);
    await page.goto(server.url);
    const picker = page.getByLabel('Model', { exact: true });
    await picker.locator('option', { hasText: 'big' }).first().waitFor({ state: 'attached' });
    await picker.selectOption('big');
    await sendMessage(page, 'Hello, big model.');
    const indicator = page.getByRole('status').filter({ hasText: 'Loading model big…' });
    await indicator.waitFor({ timeout: 30_000 });
    const bar = indicator.getByRole('progressbar', { name: 'big loaded' });
    expect(Number(await bar.getAttribute('value'))).toBeGreaterThanOrEqual(0);
    await screenshot(page, 'model-loading');
    await page.locator('article.from-assistant[data-status="complete"]').waitFor({ timeout: 120_000 });
    await indicator.waitFor({ state: 'detached', timeout: 10_000 });
    const health = (await (await fetch(`${server.url}/health`)).json()) as { models: { id: string; state?: string }[] };
    expect(health.models.find((model) => model.id === 'big')?.state).toBe('loaded');
    expect(errors).toEqual([]);
  }, 180_000);
});
