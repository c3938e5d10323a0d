import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord } from '../../src/protocol/conversations.js';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { axeViolations, conversationIdOf, haveChromium, launchChromium, openPage, screenshot, scriptedPageSuite, sendMessage, until, waitForReplyEnd, type BrowserSession, type PageProbe } from './harness.js';

/** The smaller things of issue 13 that each misled or got in the way. */

const words = (count: number, stem = 'word'): string => Array.from({ length: count }, (_, i) => `${stem}${i}`).join(' ');

describe.skipIf(!haveChromium)('the chat page, details', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 2 });
  const probes = suite.probes;

  async function newPage(options: Parameters<typeof openPage>[2] = {}, path = '/', on: TestServer = suite.server): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, on.url, options);
    probes.push(probe);
    await probe.page.goto(`${on.url}${path}`);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  const importConversation = async (messages: readonly Record<string, unknown>[], title = 'Imported'): Promise<ConversationRecord> => {
    const time = Date.now();
    const body = {
      format: 'parlance.conversation',
      version: 1,
      exportedAt: time,
      conversation: { id: 'c', title, model: null, systemPrompt: null, settings: {}, activeLeafId: String(messages.at(-1)?.['id']), createdAt: time, updatedAt: time },
      messages: messages.map((m, i) => ({ conversationId: 'c', parentId: i === 0 ? null : String(messages[i - 1]?.['id']), status: 'complete', model: null, usage: null, timings: null, error: null, createdAt: time + i, updatedAt: time + i, ...m })),
    };
    const response = await fetch(`${suite.server.url}/api/conversations/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(response.status).toBe(201);
    return (await response.json()) as ConversationRecord;
  };

  it('titles a conversation without raw Markdown, and renders GFM task lists as boxes', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, '**Bold** plan:\n\n- [ ] write it\n- [x] test it');
    await waitForReplyEnd(page);
    const id = await conversationIdOf(page);
    const item = page.locator(`.conversation[data-conversation-id="${id}"] a`);
    await until(page, `(document.querySelector('.conversation[data-conversation-id="${id}"] a')?.textContent ?? '').length > 0`);
    expect(await item.textContent()).toBe('Bold plan: write it test it');
    expect(await page.locator('.chat-title').textContent()).toBe('Bold plan: write it test it');
    const reply = page.locator('article.from-assistant .markdown');
    expect(await reply.locator('li.task-item').count()).toBe(2);
    expect(await reply.locator('li.task-item.done').count()).toBe(1);
    expect(await reply.textContent()).not.toContain('[ ]');
    expect(await reply.textContent()).not.toContain('[x]');
    expect(await reply.locator('li.task-item').first().textContent()).toBe('☐To do: write it'); // the box, what it means to a screen reader, the text
    await context.close();
  });

  it('gives a long message a tall edit box', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, words(300, 'long'));
    await waitForReplyEnd(page);
    await page.locator('article.from-user').hover();
    await page.getByRole('button', { name: 'Edit and resend' }).click();
    const height = await page.evaluate<number>("document.querySelector('.edit-form textarea').getBoundingClientRect().height");
    expect(height).toBeGreaterThan(200);
    await page.getByLabel('Edit your message').press('Escape');
    await context.close();
  });

  it('never covers the last line with "Jump to the latest", and the settings button does not look like the theme toggle', async () => {
    const { page, context } = await newPage({ viewport: { width: 900, height: 600 } });
    await sendMessage(page, words(400, 'many'));
    await waitForReplyEnd(page);
    for (const gap of [20, 60, 100, 300]) {
      await page.evaluate(`(() => { const el = document.querySelector('.messages'); el.scrollTop = el.scrollHeight - el.clientHeight - ${gap}; })()`);
      await page.waitForTimeout(100);
      const jump = page.getByRole('button', { name: 'Jump to the latest' });
      if ((await jump.count()) === 0) continue;
      // The last line of the conversation (the reply's action row) is not under the button.
      const covered = await page.evaluate<boolean>(`(() => {
        const button = document.querySelector('.jump').getBoundingClientRect();
        const rows = document.querySelectorAll('article .message-actions');
        const last = rows[rows.length - 1].getBoundingClientRect();
        const view = document.querySelector('.messages').getBoundingClientRect();
        const visible = last.top < view.bottom && last.bottom > view.top;
        return visible && last.bottom > button.top && last.top < button.bottom;
      })()`);
      expect(covered, `covered at a gap of ${gap}px`).toBe(false);
    }
    await page.evaluate("document.querySelector('.messages').scrollTop = 0");
    await page.getByRole('button', { name: 'Jump to the latest' }).waitFor();
    await screenshot(page, 'jump-to-latest');
    const settingsIcon = await page.getByRole('button', { name: 'Conversation settings' }).locator('svg').getAttribute('data-icon');
    const themeIcon = await page.getByRole('button', { name: /Change theme/ }).locator('svg').getAttribute('data-icon');
    expect(settingsIcon).toBe('sliders');
    expect(['sun', 'moon', 'auto']).toContain(themeIcon);
    await context.close();
  });

  it('shows errors without upstream hosts and ports', async () => {
    const conversation = await importConversation([
      { id: 'u', role: 'user', content: 'hello' },
      { id: 'a', role: 'assistant', content: '', status: 'failed', error: { code: 'upstream_error', message: 'The upstream http://10.1.2.3:8000/v1/chat/completions answered 502; connect ECONNREFUSED 10.1.2.3:8000 (gpu-box.internal:8000).' } },
    ]);
    const { page, context } = await newPage({}, `/c/${conversation.id}`);
    const box = page.locator('article.from-assistant .error-box');
    await box.waitFor();
    const text = (await box.textContent()) ?? '';
    expect(text).toContain('The reply failed.');
    expect(text).toContain('answered 502');
    expect(text).not.toMatch(/10\.1\.2\.3|8000|gpu-box|http:/);
    await context.close();
  });

  it('shows in one tab the conversations created, renamed and deleted in another', async () => {
    const first = await newPage();
    const second = await openPage(suite.session.browser, suite.server.url);
    probes.push(second);
    // Two tabs of one browser (one context), as a person would have them.
    const tab = await first.context.newPage();
    await tab.goto(suite.server.url);
    await tab.getByLabel('Message', { exact: true }).waitFor();
    await sendMessage(tab, 'made in the other tab');
    await waitForReplyEnd(tab);
    const id = await conversationIdOf(tab);
    await first.page.locator(`.conversation[data-conversation-id="${id}"]`).waitFor({ timeout: 5000 });
    await tab.locator(`.conversation[data-conversation-id="${id}"]`).getByRole('button', { name: /^Rename/ }).click();
    await tab.getByLabel('New title').fill('Renamed over there');
    await tab.getByLabel('New title').press('Enter');
    await first.page.locator(`.conversation[data-conversation-id="${id}"]`).getByText('Renamed over there').waitFor({ timeout: 5000 });
    await first.context.close();
    await second.context.close();
  });

  it('shows message times, imports an export file, names exports after the title, and has a shortcut sheet', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'Café plans: “one” two');
    await waitForReplyEnd(page);
    const time = page.locator('article.from-user time.timestamp');
    expect(await time.getAttribute('datetime')).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await time.textContent())?.trim()).toMatch(/\d{1,2}[:.]\d{2}/);
    // The export is named after the conversation.
    await page.getByRole('button', { name: 'Export the conversation' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /JSON/ }).click()]);
    expect(download.suggestedFilename()).toBe('Café plans “one” two.json'); // the colon is not for file names
    const file = await download.path();
    // …and imported back from the file, as a new conversation that opens.
    const before = await conversationIdOf(page);
    await page.getByLabel('Conversation file to import').setInputFiles(file);
    await until(page, `location.pathname !== '/c/${before}'`);
    await page.getByText('Imported “Café plans: “one” two”.').waitFor();
    expect(await page.locator('article.from-user .user-text').textContent()).toBe('Café plans: “one” two');
    // Shortcuts: ? shows them (not while typing), Ctrl+K goes to the search box.
    await page.locator('.messages').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('?');
    await page.getByRole('heading', { name: 'Keyboard shortcuts' }).waitFor();
    await screenshot(page, 'shortcuts');
    await page.keyboard.press('Escape');
    await page.getByRole('heading', { name: 'Keyboard shortcuts' }).waitFor({ state: 'hidden' });
    await page.keyboard.press('Control+k');
    expect(await page.evaluate<string | undefined>('document.activeElement?.id')).toBe('conversation-search');
    await page.getByLabel('Message', { exact: true }).focus();
    await page.keyboard.type('what?');
    expect(await page.getByRole('heading', { name: 'Keyboard shortcuts' }).isVisible()).toBe(false);
    await context.close();
  });

  it('renders math that passes axe (no aria-prohibited-attr), and the main states have no serious or critical violations', async () => {
    const { page, context } = await newPage();
    let found = await axeViolations(page);
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    await sendMessage(page, 'Euler: $e^{i\\pi} + 1 = 0$ and\n\n$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$');
    await waitForReplyEnd(page);
    await page.locator('.math-display .katex-display').waitFor();
    expect(await axeViolations(page, ['aria-prohibited-attr'])).toEqual([]);
    found = await axeViolations(page);
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    found = await axeViolations(page);
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    await context.close();
  });
});

describe.skipIf(!haveChromium)('the demo banner', () => {
  let server: TestServer;
  let session: BrowserSession;

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startTestServer({ demo: true, scripted: false });
    session = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await session?.close();
    await server?.stop();
  });

  it('is small on a phone, and dismissed it stays dismissed', async () => {
    const probe = await openPage(session.browser, server.url, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const { page } = probe;
    await page.goto(server.url);
    const banner = page.locator('#banner');
    await banner.waitFor();
    const height = await page.evaluate<number>("document.getElementById('banner').getBoundingClientRect().height");
    expect(height).toBeLessThan(844 * 0.08);
    await screenshot(page, 'phone-demo-banner');
    await banner.getByRole('button', { name: 'Dismiss this notice' }).click();
    await banner.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByLabel('Message', { exact: true }).waitFor();
    await page.waitForTimeout(500);
    expect(await banner.count()).toBe(0);
    expect(probe.errors).toEqual([]);
    await probe.context.close();
  });
});
