import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { ConversationPage, ConversationTree } from '../../src/protocol/conversations.js';
import { contentSecurityPolicy, webRoot } from '../../src/http/routes/ui/page.js';
import { conversationIdOf, haveChromium, lastReplyText, openPage, screenshot, scriptedPageSuite, sendMessage, until, waitForReplyEnd, type PageProbe } from './harness.js';

/**
 * The chat page in a real Chromium against a real Parlance serving the
 * scripted echo model: every reply is the user's message, word by word, one
 * word every 20 ms, so what the page must show is known in advance.
 */

const words = (count: number, stem = 'word'): string => Array.from({ length: count }, (_, i) => `${stem}${i}`).join(' ');

/** Starts recording the length of the last reply's text at every DOM change. */
async function recordReplyLengths(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.__lengths = [];
    new MutationObserver(() => {
      const all = document.querySelectorAll('article.from-assistant .markdown');
      const last = all[all.length - 1];
      if (last) window.__lengths.push(last.textContent.length);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  })()`);
}

async function recordedLengths(page: Page): Promise<number[]> {
  return await page.evaluate<number[]>('window.__lengths');
}

describe.skipIf(!haveChromium)('the chat page in Chromium (scripted model)', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 20 });
  const probes = suite.probes;

  const api = async <T>(path: string): Promise<T> => (await (await fetch(`${suite.server.url}${path}`)).json()) as T;

  async function newPage(options: Parameters<typeof openPage>[2] = {}): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, suite.server.url, options);
    probes.push(probe);
    await probe.page.goto(suite.server.url);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  it('is served with a strict CSP, no-cache HTML at / and /c/:id, and immutable hashed assets', async () => {
    for (const path of ['/', '/c/some-conversation']) {
      const response = await fetch(`${suite.server.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toBe(contentSecurityPolicy);
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      const html = await response.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
      expect(html).not.toMatch(/\sstyle=/);
    }
    const html = await (await fetch(suite.server.url)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1] ?? '');
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      expect(asset).toMatch(/-[A-Za-z0-9_-]{8}\.(js|css)$/);
      const response = await fetch(`${suite.server.url}${asset}`, { headers: { 'accept-encoding': 'br, gzip' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    expect((await fetch(`${suite.server.url}/assets/missing-12345678.js`)).status).toBe(404);
  });

  it('keeps the initial JavaScript under 150 KB gzipped', async () => {
    const html = await readFile(join(webRoot, 'index.html'), 'utf8');
    const initial = [...html.matchAll(/<(?:script|link)[^>]+(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((match) => match[1] ?? '');
    expect(initial.length).toBeGreaterThan(0);
    let gzipped = 0;
    for (const file of initial) gzipped += gzipSync(await readFile(join(webRoot, file))).length;
    console.log(`initial JavaScript: ${initial.join(', ')} = ${(gzipped / 1024).toFixed(1)} KiB gzipped`);
    expect(gzipped).toBeLessThanOrEqual(150 * 1024);
  });

  it('streams a reply in several steps, then shows time to first token and tokens per second', async () => {
    const { page, context } = await newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await screenshot(page, 'empty');
    await recordReplyLengths(page);
    const text = words(60, 'stream');
    await sendMessage(page, text);
    await until(page, "(() => { const l = window.__lengths; return l.length > 0 && l[l.length - 1] > 60; })()");
    await screenshot(page, 'streaming');
    await page.getByRole('button', { name: 'Stop the reply (Esc)' }).waitFor();
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe(text);
    const lengths = await recordedLengths(page);
    const steps = new Set(lengths.filter((length) => length > 0 && length < text.length));
    expect(steps.size).toBeGreaterThanOrEqual(5); // arrived in many steps, not all at once
    for (let i = 1; i < lengths.length; i++) expect(lengths[i] ?? 0).toBeGreaterThanOrEqual(lengths[i - 1] ?? 0);
    const stats = (await page.getByTestId('stats').last().textContent()) ?? '';
    expect(stats).toMatch(/first token \d+ ms/);
    expect(stats).toMatch(/[\d.]+ tokens\/s/);
    expect(stats).toContain('60 tokens');
    // The URL names the conversation, and the sidebar lists it.
    const id = await conversationIdOf(page);
    await page.locator(`.conversation[data-conversation-id="${id}"]`).waitFor();
    // Heavy parts load only when a reply needs them.
    expect(requests.filter((url) => /katex|highlight/.test(url))).toEqual([]);
    await context.close();
  });

  it('stops a reply with the Stop button and with Esc, keeping what was written', async () => {
    const { page, context } = await newPage();
    const long = words(200, 'stop');
    await sendMessage(page, long);
    await until(page, "(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return !!last && last.textContent.length > 40; })()");
    await page.getByRole('button', { name: 'Stop the reply (Esc)' }).click();
    expect(await waitForReplyEnd(page)).toBe('stopped');
    const stopped = await lastReplyText(page);
    expect(stopped.length).toBeGreaterThan(0);
    expect(stopped.length).toBeLessThan(long.length);
    expect(long.startsWith(stopped.trim())).toBe(true);
    await expect(page.getByText('Stopped.').count()).resolves.toBe(1);

    const again = words(200, 'esc');
    await sendMessage(page, again);
    await until(page, "(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return !!last && last.textContent.startsWith('esc') && last.textContent.length > 40; })()");
    await page.keyboard.press('Escape');
    expect(await waitForReplyEnd(page)).toBe('stopped');
    expect((await lastReplyText(page)).length).toBeLessThan(again.length);
    // The server kept both stopped replies.
    const tree = await api<ConversationTree>(`/api/conversations/${await conversationIdOf(page)}`);
    expect(tree.messages.filter((message) => message.role === 'assistant').map((message) => message.status)).toEqual(['stopped', 'stopped']);
    await context.close();
  });

  it('regenerates a reply and switches between the versions', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'first version please');
    await waitForReplyEnd(page);
    await page.getByRole('button', { name: 'Regenerate the reply' }).click();
    await waitForReplyEnd(page);
    const reply = page.locator('article.from-assistant').last();
    await expect(reply.locator('.branch-count').textContent()).resolves.toMatch(/2\s*\/\s*2/);
    await reply.getByRole('button', { name: 'Previous version' }).click();
    await until(page, "(document.querySelector('article.from-assistant .branch-count')?.textContent ?? '').replace(/\\s/g, '') === '1/2'");
    const id = await conversationIdOf(page);
    const tree = await api<ConversationTree>(`/api/conversations/${id}`);
    const assistants = tree.messages.filter((message) => message.role === 'assistant');
    expect(assistants).toHaveLength(2);
    expect(tree.activePath.at(-1)).toBe(assistants[0]?.id);
    // The choice is the server's: a reload shows the same version.
    await page.reload();
    await page.locator('article.from-assistant .branch-count').waitFor();
    await expect(page.locator('article.from-assistant .branch-count').textContent()).resolves.toMatch(/1\s*\/\s*2/);
    await context.close();
  });

  it('edits an earlier message and resends it as a new branch; the old branch is kept', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'original question');
    await waitForReplyEnd(page);
    await sendMessage(page, 'a follow up');
    await waitForReplyEnd(page);
    await page.locator('article.from-user').first().hover();
    await page.locator('article.from-user').first().getByRole('button', { name: 'Edit and resend' }).click();
    const editor = page.getByLabel('Edit your message');
    await editor.fill('edited question');
    await editor.press('Enter');
    await waitForReplyEnd(page);
    expect(await page.locator('article.from-user').count()).toBe(1);
    expect(await page.locator('article.from-user .user-text').textContent()).toBe('edited question');
    expect(await lastReplyText(page)).toBe('edited question');
    const userMessage = page.locator('article.from-user').first();
    await expect(userMessage.locator('.branch-count').textContent()).resolves.toMatch(/2\s*\/\s*2/);
    await userMessage.getByRole('button', { name: 'Previous version' }).click();
    await until(page, "document.querySelectorAll('article.from-user').length === 2");
    expect(await page.locator('article.from-user .user-text').allTextContents()).toEqual(['original question', 'a follow up']);
    expect(await lastReplyText(page)).toBe('a follow up');
    await context.close();
  });

  it('continues a reply that is still streaming after a reload, without losing or repeating text', async () => {
    const { page, context } = await newPage();
    const text = words(150, 'reload');
    await sendMessage(page, text);
    await until(page, "(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return !!last && last.textContent.length > 200; })()");
    const id = await conversationIdOf(page);
    await page.reload();
    await page.locator('article.from-assistant').waitFor();
    // Still streaming after the reload: the page reattached rather than showing a stored copy.
    const afterReload = await lastReplyText(page);
    expect(afterReload.length).toBeLessThan(text.length);
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe(text);
    expect(page.url()).toContain(`/c/${id}`);
    await context.close();
  });

  it('moves between conversations with the sidebar, back and forward', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'alpha conversation');
    await waitForReplyEnd(page);
    const alpha = await conversationIdOf(page);
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.waitForURL(`${suite.server.url}/`);
    await sendMessage(page, 'beta conversation');
    await waitForReplyEnd(page);
    const beta = await conversationIdOf(page);
    expect(beta).not.toBe(alpha);
    await page.goBack();
    await page.goBack();
    await page.waitForURL(`**/c/${alpha}`);
    await page.getByText('alpha conversation').first().waitFor();
    expect(await lastReplyText(page)).toBe('alpha conversation');
    await page.goForward();
    await page.goForward();
    await page.waitForURL(`**/c/${beta}`);
    await until(page, "(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); return m.length > 0 && m[m.length - 1].textContent.trim() === 'beta conversation'; })()");
    // Sidebar: newest first.
    const order = await page.evaluate<string[]>("[...document.querySelectorAll('.conversation')].map((item) => item.getAttribute('data-conversation-id'))");
    expect(order.indexOf(beta)).toBeLessThan(order.indexOf(alpha));
    await page.locator(`.conversation[data-conversation-id="${alpha}"] a`).click();
    await page.waitForURL(`**/c/${alpha}`);
    await context.close();
  });

  it('renames, searches and deletes conversations, with undo', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'something to rename');
    await waitForReplyEnd(page);
    const id = await conversationIdOf(page);
    const item = page.locator(`.conversation[data-conversation-id="${id}"]`);
    await item.getByRole('button', { name: /^Rename/ }).click();
    const input = page.getByLabel('New title');
    await input.fill('Zebra facts');
    await input.press('Enter');
    await item.getByText('Zebra facts').waitFor();
    expect((await api<ConversationTree>(`/api/conversations/${id}`)).conversation.title).toBe('Zebra facts');

    const search = page.getByLabel('Search conversations by title');
    await search.fill('zebra');
    await until(page, "document.querySelectorAll('.conversation').length === 1");
    await search.fill('no such title anywhere');
    await page.getByText('No conversation has that in its title.').waitFor();
    await search.fill('');

    await item.getByRole('button', { name: 'Delete “Zebra facts”' }).click();
    await item.waitFor({ state: 'detached' });
    expect(new URL(page.url()).pathname).toBe('/');
    await page.getByRole('button', { name: 'Undo' }).click();
    await item.waitFor();
    await item.getByRole('button', { name: 'Delete “Zebra facts”' }).click();
    await item.waitFor({ state: 'detached' });
    await page.waitForTimeout(6500); // the undo window
    expect((await fetch(`${suite.server.url}/api/conversations/${id}`)).status).toBe(404);
    const list = await api<ConversationPage>('/api/conversations');
    expect(list.conversations.some((conversation) => conversation.id === id)).toBe(false);
    await context.close();
  });

  it('sets the model, system prompt, temperature and max tokens of a conversation', async () => {
    const { page, context } = await newPage();
    const models = await page.getByLabel('Model', { exact: true }).locator('option').allTextContents();
    expect(models).toContain('parlance-scripted');
    await sendMessage(page, 'hello settings');
    await waitForReplyEnd(page);
    const id = await conversationIdOf(page);
    await page.getByLabel('Model', { exact: true }).selectOption('parlance-scripted');
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.getByLabel('System prompt').fill('Answer briefly.');
    await page.getByLabel('Temperature').fill('0.3');
    await page.getByLabel('Max tokens').fill('3');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('dialog[open]').waitFor({ state: 'detached' }).catch(() => page.locator('dialog').waitFor({ state: 'hidden' }));
    const { conversation } = await api<ConversationTree>(`/api/conversations/${id}`);
    expect(conversation.model).toBe('parlance-scripted');
    expect(conversation.systemPrompt).toBe('Answer briefly.');
    expect(conversation.settings).toMatchObject({ temperature: 0.3, maxTokens: 3 });
    await sendMessage(page, 'one two three four five six');
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe('one two three');
    await context.close();
  });

  it('shows a refused send as an error with a retry that works, never a stuck spinner', async () => {
    const { page, context } = await newPage();
    let refused = 0;
    await page.route('**/api/conversations/*/messages', async (route) => {
      if (refused > 0) return route.fallback();
      refused++;
      await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { message: 'The engine is busy; try again.', type: 'server_error', param: null, code: 'engine_overloaded' } }) });
    });
    await sendMessage(page, 'please retry me');
    const failure = page.locator('.failure');
    await failure.getByText('The engine is busy; try again.').waitFor();
    expect(await page.locator('.pending').count()).toBe(0);
    await failure.getByRole('button', { name: 'Retry' }).click();
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe('please retry me');
    expect(await page.locator('.failure').count()).toBe(0);
    await context.close();
  });

  it('renders Markdown: headings, lists, tables, links, highlighted code with copy buttons, and math', async () => {
    const { page, context } = await newPage({ permissions: ['clipboard-read', 'clipboard-write'] });
    const markdown = [
      '## Sorting in two languages',
      '',
      'Some *emphasis*, a [link](https://example.com/docs) and `inline code`; Euler: $e^{i\\pi} + 1 = 0$.',
      '',
      '1. first',
      '2. second',
      '   - nested',
      '',
      '| language | lines |',
      '| :------- | ----: |',
      '| TypeScript | 3 |',
      '| Python | 2 |',
      '',
      '```ts',
      'export function sort(values: number[]): number[] {',
      '  return [...values].sort((a, b) => a - b);',
      '}',
      '```',
      '',
      '```python',
      'def sort(values):',
      '    return sorted(values)',
      '```',
      '',
      '$$',
      '\\int_0^1 x^2\\,dx = \\frac{1}{3}',
      '$$',
      '',
      '> A quote to finish.',
    ].join('\n');
    await sendMessage(page, markdown);
    await waitForReplyEnd(page);
    const reply = page.locator('article.from-assistant .markdown').last();
    await reply.locator('h2', { hasText: 'Sorting in two languages' }).waitFor();
    expect(await reply.locator('ol > li').count()).toBe(2);
    expect(await reply.locator('table th').allTextContents()).toEqual(['language', 'lines']);
    expect(await reply.locator('td.align-right').count()).toBe(2);
    const link = reply.getByRole('link', { name: 'link' });
    expect(await link.getAttribute('href')).toBe('https://example.com/docs');
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.getAttribute('rel')).toContain('noopener');
    await reply.locator('code .hljs-keyword').first().waitFor(); // highlight.js, loaded lazily
    expect(await reply.locator('.code-lang').allTextContents()).toEqual(['ts', 'python']);
    await reply.locator('.math-inline .katex').waitFor(); // KaTeX, loaded lazily
    await reply.locator('.math-display .katex-display').waitFor();
    await page.waitForTimeout(300); // fonts
    await screenshot(page, 'code-heavy');
    await reply.getByRole('button', { name: 'Copy python block' }).click();
    await reply.getByRole('button', { name: 'Copy python block' }).getByText('Copied').waitFor();
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe('def sort(values):\n    return sorted(values)\n');
    await page.locator('article.from-assistant').last().hover();
    await page.getByRole('button', { name: 'Copy the reply' }).click();
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(markdown);
    await context.close();
  });

  it('works from the keyboard, with visible focus and labelled controls', async () => {
    const { page, context } = await newPage();
    const box = page.getByLabel('Message', { exact: true });
    await box.focus();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    expect(await box.inputValue()).toBe('line one\nline two');
    await page.keyboard.press('Enter');
    await waitForReplyEnd(page);
    expect(await page.locator('article.from-user .user-text').textContent()).toBe('line one\nline two');
    // Every control has a name a screen reader can read.
    const unlabelled = await page.evaluate<string[]>(`(() => {
      const bad = [];
      for (const el of document.querySelectorAll('button, a[href], input, select, textarea')) {
        const name = (el.getAttribute('aria-label') || '').trim() || (el.textContent || '').trim() || (el.labels && el.labels.length ? 'label' : '') || el.getAttribute('title') || '';
        if (!name) bad.push(el.outerHTML.slice(0, 120));
      }
      return bad;
    })()`);
    expect(unlabelled).toEqual([]);
    // Focus is visible when moving with Tab.
    await page.getByRole('button', { name: 'New chat' }).focus();
    await page.keyboard.press('Tab');
    // The search box draws its ring on its container (:focus-within); everything else on itself.
    const outline = await page.evaluate<string>("(() => { const el = document.activeElement; const ring = el.closest('.search') ?? el; return el.matches(':focus-visible') ? getComputedStyle(ring).outlineStyle : 'not focus-visible'; })()");
    expect(['solid', 'auto']).toContain(outline);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>("(() => { const el = document.activeElement; return el.matches(':focus-visible') ? getComputedStyle(el).outlineStyle : 'not focus-visible'; })()")).toBe('solid');
    await context.close();
  });

  it('exports a conversation as Markdown and JSON', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'export me');
    await waitForReplyEnd(page);
    await page.getByRole('button', { name: 'Export the conversation' }).click();
    const markdownLink = page.getByRole('link', { name: 'Markdown (.md)' });
    const href = (await markdownLink.getAttribute('href')) ?? '';
    const download = await Promise.all([page.waitForEvent('download'), markdownLink.click()]).then(([event]) => event);
    expect(download.suggestedFilename()).toMatch(/\.md$/);
    const response = await fetch(`${suite.server.url}${href}`);
    expect(response.headers.get('content-disposition')).toMatch(/attachment/);
    expect(await response.text()).toContain('export me');
    await page.getByRole('button', { name: 'Export the conversation' }).click();
    const json = await page.getByRole('link', { name: /JSON/ }).getAttribute('href');
    const data = (await (await fetch(`${suite.server.url}${json ?? ''}`)).json()) as { messages: unknown[] };
    expect(data.messages).toHaveLength(2);
    await context.close();
  });

  it('follows the system theme (dark) and works at phone width', async () => {
    const dark = await newPage({ colorScheme: 'dark' });
    await sendMessage(dark.page, 'Dark mode with `code`:\n\n```js\nconst theme = "dark";\n```');
    await waitForReplyEnd(dark.page);
    await dark.page.locator('code .hljs-string').first().waitFor();
    const background = await dark.page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
    expect(background).toBe('rgb(23, 24, 26)');
    await screenshot(dark.page, 'dark');
    await dark.context.close();

    const phone = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    expect(await phone.page.locator('.sidebar').isVisible()).toBe(false);
    await sendMessage(phone.page, 'A reply on a phone, long enough to wrap over more than one line of this narrow screen.');
    await waitForReplyEnd(phone.page);
    const overflow = await phone.page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(phone.page, 'phone');
    await phone.page.getByRole('button', { name: 'Show conversations' }).click();
    await phone.page.locator('.sidebar').waitFor({ state: 'visible' });
    await phone.page.waitForTimeout(300); // the slide-in
    await screenshot(phone.page, 'phone-sidebar');
    await phone.page.keyboard.press('Escape');
    await phone.page.locator('.sidebar').waitFor({ state: 'hidden' });
    await phone.context.close();
  });

  it('shows a missing conversation as a message, not a blank page', async () => {
    const { page, context } = await newPage();
    await page.goto(`${suite.server.url}/c/01900000-0000-7000-8000-000000000000`);
    await page.getByText('This conversation does not exist.').waitFor();
    await page.getByRole('button', { name: 'Start a new chat' }).click();
    await page.waitForURL(`${suite.server.url}/`);
    await context.close();
  });
});
