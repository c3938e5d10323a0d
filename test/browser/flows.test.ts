import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { ConversationRecord } from '../../src/protocol/conversations.js';
import { conversationIdOf, haveChromium, lastReplyText, openPage, screenshot, scriptedPageSuite, sendMessage, until, waitForReplyEnd, type PageProbe } from './harness.js';

/**
 * Flows that used to mislead (issue 13): where a reopened conversation
 * lands, what the page says when the server goes away, keys, focus, drafts.
 * The scripted model echoes the user's message word by word.
 */

const words = (count: number, stem = 'word'): string => Array.from({ length: count }, (_, i) => `${stem}${i}`).join(' ');

/** Distance in px from the bottom of the message list to the bottom of what is shown. */
const gapBelow = (page: Page): Promise<number> =>
  page.evaluate<number>("(() => { const el = document.querySelector('.messages'); return el.scrollHeight - el.scrollTop - el.clientHeight; })()");

const replyLength = (page: Page): Promise<number> => page.evaluate<number>("(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return last ? last.textContent.length : 0; })()");

describe.skipIf(!haveChromium)('the chat page, flows that used to mislead', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 4 });
  const probes = suite.probes;

  async function newPage(options: Parameters<typeof openPage>[2] = {}, path = '/'): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, suite.server.url, options);
    probes.push(probe);
    await probe.page.goto(`${suite.server.url}${path}`);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  /** A conversation with a few long finished exchanges (taller than the screen), made through the API. */
  async function longConversation(): Promise<ConversationRecord> {
    const conversation = (await (await fetch(`${suite.server.url}/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as ConversationRecord;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${suite.server.url}/api/conversations/${conversation.id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: words(120, `old${i}-`) }) });
      await response.text();
    }
    return conversation;
  }

  it('lands at the end of a conversation reopened mid-reply (reload, second tab) and follows the live reply', async () => {
    const conversation = await longConversation();
    const first = await newPage({ viewport: { width: 1000, height: 700 } }, `/c/${conversation.id}`);
    const text = words(900, 'live');
    await sendMessage(first.page, text);
    await until(first.page, "(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); const last = m[m.length - 1]; return !!last && last.textContent.length > 300; })()");
    const id = await conversationIdOf(first.page);

    // A second tab opened on the conversation mid-reply.
    const second = await newPage({ viewport: { width: 1000, height: 700 } }, `/c/${id}`);
    await until(second.page, "document.querySelectorAll('article.from-assistant').length === 4");
    // And the first tab reloaded.
    await first.page.reload();
    await first.page.locator('article.from-assistant').nth(3).waitFor();
    for (const page of [first.page, second.page]) {
      const before = await replyLength(page);
      await until(page, `(() => { const m = document.querySelectorAll('article.from-assistant .markdown'); return m[m.length - 1].textContent.length > ${before + 200}; })()`);
      expect(await gapBelow(page)).toBeLessThan(48); // at the end, following the growing reply
    }
    await screenshot(second.page, 'reopened-mid-reply');
    // Scrolled up, the reader stays put and is offered the way back.
    await second.page.evaluate("document.querySelector('.messages').scrollTop = 0");
    const jump = second.page.getByRole('button', { name: 'Jump to the latest' });
    await jump.waitFor();
    expect(await second.page.evaluate<number>("document.querySelector('.messages').scrollTop")).toBeLessThan(50);
    await jump.click();
    await until(second.page, "(() => { const el = document.querySelector('.messages'); return el.scrollHeight - el.scrollTop - el.clientHeight < 48; })()");
    for (const page of [first.page, second.page]) expect(await waitForReplyEnd(page, 30_000)).toBe('complete');
    expect(await lastReplyText(second.page)).toBe(text);
    await first.context.close();
    await second.context.close();
  });

  it('keeps following when the page grows between its scroll to the end and that scroll\'s event', async () => {
    // What a long reply does: a chunk off screen renders at its real height, not its placeholder's, just
    // after the view scrolled to the end, so the scroll event reports a gap no reader made.
    const conversation = await longConversation();
    const { page, context } = await newPage({ viewport: { width: 1000, height: 700 } }, `/c/${conversation.id}`);
    await page.locator('article.from-assistant').nth(2).waitFor();
    await until(page, "(() => { const el = document.querySelector('.messages'); return el.scrollHeight - el.scrollTop - el.clientHeight < 48; })()");
    await page.evaluate(`(() => {
      const scroller = document.querySelector('.messages');
      const inner = document.querySelector('.messages-inner');
      const block = () => { const d = document.createElement('div'); d.style.height = '400px'; return d; };
      inner.append(block());
      scroller.scrollTop = scroller.scrollHeight;
      inner.append(block());
    })()`);
    await until(page, "(() => { const el = document.querySelector('.messages'); return el.scrollHeight - el.scrollTop - el.clientHeight < 48; })()", 3_000);
    expect(await page.getByRole('button', { name: 'Jump to the latest' }).count()).toBe(0);
    await context.close();
  });

  it('returns focus to the trigger on Esc (export menu, rename box), and the phone drawer takes focus and makes the page inert', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'focus please');
    await waitForReplyEnd(page);
    const activeLabel = (): Promise<string | null> => page.evaluate<string | null>("document.activeElement && (document.activeElement.getAttribute('aria-label') || document.activeElement.tagName)");
    await page.getByRole('button', { name: 'Export the conversation' }).click();
    await page.getByRole('link', { name: 'Markdown (.md)' }).focus();
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'Markdown (.md)' }).waitFor({ state: 'detached' });
    expect(await activeLabel()).toBe('Export the conversation');

    const id = await conversationIdOf(page);
    await page.locator(`.conversation[data-conversation-id="${id}"]`).getByRole('button', { name: /^Rename/ }).click();
    await page.getByLabel('New title').press('Escape');
    expect(await activeLabel()).toMatch(/^Rename/);
    await context.close();

    const phone = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.page.getByRole('button', { name: 'Show conversations' }).click();
    await phone.page.locator('.sidebar').waitFor({ state: 'visible' });
    await until(phone.page, "document.activeElement?.closest('.sidebar') !== null");
    expect(await phone.page.evaluate<boolean>("document.querySelector('main').inert")).toBe(true);
    // Tab stays in the drawer: nothing behind it can take focus.
    for (let i = 0; i < 6; i++) {
      await phone.page.keyboard.press('Tab');
      expect(await phone.page.evaluate<boolean>("document.activeElement === document.body || document.activeElement?.closest('.sidebar') !== null")).toBe(true);
    }
    await phone.page.keyboard.press('Escape');
    await phone.page.locator('.sidebar').waitFor({ state: 'hidden' });
    expect(await phone.page.evaluate<boolean>("document.querySelector('main').inert")).toBe(false);
    expect(await phone.page.evaluate<string | null>("document.activeElement.getAttribute('aria-label')")).toBe('Show conversations');
    await phone.context.close();
  });

  it('keeps a draft per conversation (and for a new chat), across a reload', async () => {
    const { page, context } = await newPage();
    await sendMessage(page, 'the first conversation');
    await waitForReplyEnd(page);
    const first = await conversationIdOf(page);
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('half-written thought for the first');
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.waitForURL(`${suite.server.url}/`);
    expect(await box.inputValue()).toBe(''); // it did not follow me here
    await box.fill('an idea for a new chat');
    await page.locator(`.conversation[data-conversation-id="${first}"] a`).click();
    await page.waitForURL(`**/c/${first}`);
    expect(await box.inputValue()).toBe('half-written thought for the first');
    await page.reload();
    await box.waitFor();
    await until(page, `document.getElementById('composer-input').value === 'half-written thought for the first'`);
    await page.getByRole('button', { name: 'New chat' }).click();
    await until(page, `document.getElementById('composer-input').value === 'an idea for a new chat'`);
    // Sending clears the draft it sent.
    await box.press('Enter');
    await waitForReplyEnd(page);
    await page.reload();
    await box.waitFor();
    expect(await box.inputValue()).toBe('');
    await context.close();
  });

  it('says when a reply was cut at max tokens, and Continue generates more of the same reply', async () => {
    const { page, context } = await newPage();
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.getByLabel('Max tokens').fill('3');
    await page.getByRole('button', { name: 'Save' }).click();
    await sendMessage(page, 'one two three four five six seven eight');
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe('one two three');
    const note = page.locator('article.from-assistant .note-box');
    await note.getByText('Cut at the length limit.').waitFor();
    await screenshot(page, 'cut-at-max-tokens');
    await note.getByRole('button', { name: 'Continue' }).click();
    await until(page, "(document.querySelector('article.from-assistant .markdown')?.textContent ?? '').trim() === 'one two three four five six'");
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await page.locator('article.from-assistant').count()).toBe(1); // the same reply, not a new one
    await note.getByText('Cut at the length limit.').waitFor(); // cut again at 3 more
    const id = await conversationIdOf(page);
    await page.reload();
    await page.locator('article.from-assistant .note-box').waitFor();
    expect(await lastReplyText(page)).toBe('one two three four five six');
    expect(id).toBe(await conversationIdOf(page));
    await context.close();
  });
});
