import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationTree } from '../../src/protocol/conversations.js';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { freePort } from '../fixtures/net.js';
import { conversationIdOf, haveChromium, launchChromium, openPage, screenshot, sendMessage, until, waitForReplyEnd, type BrowserSession } from './harness.js';

/**
 * The server going away mid-reply, for real: Parlance runs as a child process
 * (the scripted echo model), stopped with SIGTERM (a graceful shutdown) or
 * SIGKILL (a crash), then started again on the same port and data directory.
 */

const words = (count: number, stem = 'word'): string => Array.from({ length: count }, (_, i) => `${stem}${i}`).join(' ');

async function startParlance(port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--port', String(port), '--log-level', 'warn', '--no-embedded', '--scripted', '--scripted-delay', '15', '--data-dir', dataDir], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('Parlance did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return child;
}

const exited = (child: ChildProcess): Promise<unknown> => (child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve)));

/** Records, in the page, the longest text the last reply ever showed. */
async function recordLongestShown(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.__longest = '';
    const check = () => {
      const all = document.querySelectorAll('article.from-assistant .markdown');
      const last = all[all.length - 1];
      const text = last ? last.textContent.replace(/\\u258d/g, '').trim() : '';
      if (text.length > window.__longest.length) window.__longest = text;
    };
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true, characterData: true });
  })()`);
}

const replyLonger = (length: number): string =>
  `(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return !!last && last.textContent.length > ${length}; })()`;

describe.skipIf(!haveChromium)('the chat page when the server goes away mid-reply', () => {
  let session: BrowserSession;
  const dirs: string[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    await ensureWebBuilt();
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await session?.close();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function setUp(): Promise<{ port: number; dataDir: string; url: string; child: ChildProcess }> {
    const dataDir = await mkdtemp(join(tmpdir(), 'parlance-gone-'));
    dirs.push(dataDir);
    const port = await freePort();
    const child = await startParlance(port, dataDir);
    children.push(child);
    return { port, dataDir, url: `http://127.0.0.1:${port}`, child };
  }

  it('a crash (SIGKILL): a connection banner while it is down, no Stop button, and no shown text taken back after the restart', async () => {
    const { port, dataDir, url, child } = await setUp();
    const probe = await openPage(session.browser, url);
    const { page } = probe;
    await page.goto(url);
    const text = words(400, 'crash');
    await sendMessage(page, text);
    await until(page, replyLonger(10));
    await recordLongestShown(page);
    await until(page, replyLonger(400));
    const id = await conversationIdOf(page);
    child.kill('SIGKILL');
    await exited(child);

    const banner = page.getByRole('alert').filter({ hasText: 'Parlance cannot be reached' });
    await banner.waitFor({ timeout: 15_000 });
    expect(await page.getByRole('button', { name: 'Stop the reply (Esc)' }).count()).toBe(0);
    await screenshot(page, 'server-down');
    const shown = await page.evaluate<string>('window.__longest');
    expect(shown.length).toBeGreaterThan(400);

    const again = await startParlance(port, dataDir);
    children.push(again);
    expect(await waitForReplyEnd(page, 30_000)).toBe('failed');
    await banner.waitFor({ state: 'detached', timeout: 15_000 });
    const final = ((await page.locator('article.from-assistant .markdown').last().textContent()) ?? '').trim();
    // Nothing the page showed was taken back, and what it shows now is what the server stored.
    expect(final.startsWith(shown)).toBe(true);
    const tree = (await (await fetch(`${url}/api/conversations/${id}`)).json()) as ConversationTree;
    expect(tree.messages.find((message) => message.role === 'assistant')?.content.trim()).toBe(final);
    const note = page.locator('article.from-assistant .note-box');
    await note.getByText('Cut short.').waitFor();
    expect(await note.textContent()).toMatch(/server stopped/);
    expect(await page.getByText('Stopped.', { exact: true }).count()).toBe(0);
    await screenshot(page, 'server-crashed-reply');
    expect(probe.errors).toEqual([]);
    await probe.context.close();
    again.kill('SIGTERM');
    await exited(again);
  });

  it('a graceful stop (SIGTERM): says the server shut down, not "Stopped.", and the banner until it is back', async () => {
    const { port, dataDir, url, child } = await setUp();
    const probe = await openPage(session.browser, url);
    const { page } = probe;
    await page.goto(url);
    await sendMessage(page, words(400, 'term'));
    await until(page, replyLonger(300));
    child.kill('SIGTERM');
    expect(await waitForReplyEnd(page, 20_000)).toBe('failed');
    const note = page.locator('article.from-assistant .note-box');
    await note.getByText('Cut short.').waitFor();
    expect(await note.textContent()).toMatch(/server shut down/);
    expect(await page.getByText('Stopped.', { exact: true }).count()).toBe(0);
    await exited(child);
    const banner = page.getByRole('alert').filter({ hasText: 'Parlance cannot be reached' });
    await banner.waitFor({ timeout: 15_000 });
    const again = await startParlance(port, dataDir);
    children.push(again);
    await banner.waitFor({ state: 'detached', timeout: 15_000 });
    expect(probe.errors).toEqual([]);
    await probe.context.close();
    again.kill('SIGTERM');
    await exited(again);
  });
});
