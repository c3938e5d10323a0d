import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { sampleReply } from '../../bench/ui-render.js';
import { haveChromium, openPage, scriptedPageSuite, until, waitForReplyEnd, type PageProbe } from './harness.js';

/**
 * Large text in the chat page (the paths made fast for issue 13's smoothness:
 * a 20 KB paste or fill goes into the text box in one step, a long reply's
 * finished blocks are grouped in chunks that skip rendering off screen).
 * These check that what the person sees and sends is still exactly right;
 * timings are for bench/page-smoothness.ts, never asserted here.
 */
/** Puts `text` on the clipboard (expressions as strings: the tests compile without the DOM's types). */
const copy = (page: Page, text: string): Promise<unknown> => page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);

describe.skipIf(!haveChromium)('large text in the chat page', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 1 });
  const text = sampleReply();

  async function newPage(): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, suite.server.url, { permissions: ['clipboard-read', 'clipboard-write'] });
    suite.probes.push(probe);
    await probe.page.goto(suite.server.url);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  it('pastes 20 KB at the cursor, replacing the selection, and keeps it as the draft', async () => {
    const { page } = await newPage();
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('before  after');
    // Select the second space: the paste replaces it.
    await page.evaluate("document.getElementById('composer-input').setSelectionRange(7, 8)");
    await copy(page, text);
    await page.keyboard.press('ControlOrMeta+V');
    expect(await box.inputValue()).toBe(`before ${text}after`);
    // The caret sits after the pasted text, so typing goes on from there.
    await page.keyboard.type('!');
    expect(await box.inputValue()).toBe(`before ${text}!after`);
    await expect.poll(() => page.getByRole('button', { name: 'Send (Enter)' }).isEnabled()).toBe(true);
    // React saw the change: the draft is stored and survives a reload.
    await page.reload();
    await box.waitFor();
    expect(await box.inputValue()).toBe(`before ${text}!after`);
    // A small paste keeps the browser's own path.
    await box.fill('');
    await copy(page, 'short');
    await page.keyboard.press('ControlOrMeta+V');
    expect(await box.inputValue()).toBe('short');
  });

  it('undoes a 20 KB paste with Ctrl+Z, and redoes it, like a small one', async () => {
    const { page } = await newPage();
    const box = page.getByLabel('Message', { exact: true });
    await box.focus();
    await page.keyboard.type('Summarise: ');
    await copy(page, text);
    await page.keyboard.press('ControlOrMeta+V');
    await page.keyboard.type('thanks');
    expect(await box.inputValue()).toBe(`Summarise: ${text}thanks`);
    // Typing after the paste goes first (one step for the run of typing), then the paste itself.
    await page.keyboard.press('ControlOrMeta+Z');
    expect(await box.inputValue()).toBe(`Summarise: ${text}`);
    await page.keyboard.press('ControlOrMeta+Z');
    expect(await box.inputValue()).toBe('Summarise: ');
    await page.keyboard.press('ControlOrMeta+Shift+Z');
    expect(await box.inputValue()).toBe(`Summarise: ${text}`);
    await page.keyboard.press('ControlOrMeta+Z');
    expect(await box.inputValue()).toBe('Summarise: ');
    // The caret is back where the paste went in: typing goes on from there.
    await page.keyboard.type('this');
    expect(await box.inputValue()).toBe('Summarise: this');
    // React saw each step: the draft is what the box shows, through a reload.
    await page.reload();
    await box.waitFor();
    expect(await box.inputValue()).toBe('Summarise: this');
  });

  it('sends a 20 KB message filled in at once, renders the whole 20 KB reply, and opens it for editing whole', async () => {
    const { page } = await newPage();
    const box = page.getByLabel('Message', { exact: true });
    await box.fill(text);
    expect(await box.inputValue()).toBe(text);
    await box.press('Enter');
    expect(await waitForReplyEnd(page, 60_000)).toBe('complete');
    expect(await box.inputValue()).toBe('');
    // The scripted model echoes the message: the reply is the same Markdown, every block of it on the page,
    // those scrolled out of view included (they skip rendering, not the DOM).
    const reply = page.locator('article.from-assistant .markdown').last();
    const headings = (text.match(/^## /gm) ?? []).length;
    const fences = (text.match(/^```\w+$/gm) ?? []).length;
    expect(await reply.locator('h2').count()).toBe(headings);
    expect(await reply.locator('.code-block').count()).toBe(fences);
    expect(await reply.locator('table').count()).toBe((text.match(/^\| Approach/gm) ?? []).length);
    await expect.poll(() => reply.locator('.code-block code.hljs').count()).toBe(fences);
    expect(await reply.locator('h2').first().textContent()).toBe('1. Step 1: Setting up');
    expect(await reply.locator('h2').last().textContent()).toBe(`${headings}. Step ${headings}: ${['Setting up', 'Writing the code', 'Testing it', 'Shipping'][(headings - 1) % 4]}`);
    // The view followed the reply to its end.
    await until(page, "(() => { const s = document.querySelector('.messages'); return s.scrollHeight - s.scrollTop - s.clientHeight < 48; })()");
    expect(await page.getByRole('button', { name: 'Jump to the latest' }).count()).toBe(0);
    // Scrolled to the top, the first blocks render again where they were.
    await page.evaluate("document.querySelector('.messages').scrollTo({ top: 0 })");
    await expect.poll(() => page.getByRole('button', { name: 'Jump to the latest' }).count()).toBe(1);
    // Shown in parts that the browser skips laying out and painting while they are off screen (sending the
    // message laid out all of it in one frame), and that join back to exactly what was sent.
    const parts = page.locator('article.from-user .user-text').first().locator('.user-part');
    expect(await parts.count()).toBeGreaterThan(5);
    expect((await parts.allTextContents()).join('\n')).toBe(text);
    // Selected and copied, the message is what was sent: no line doubled where one part ends (a selection
    // leaves out the final newline of any block, a short message's too).
    const selected = await page.evaluate(`(() => {
      const range = document.createRange();
      range.selectNodeContents(document.querySelector('article.from-user .user-text'));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      return getSelection().toString();
    })()`);
    expect(selected).toBe(text.replace(/\n$/, ''));
    expect(await page.evaluate("getComputedStyle(document.querySelector('article.from-user .user-part')).contentVisibility")).toBe('auto');

    await page.getByRole('button', { name: 'Edit and resend' }).click();
    const edit = page.getByLabel('Edit your message');
    expect(await edit.inputValue()).toBe(text);
    // A large paste into the edit box goes where the cursor is (the end, on opening).
    await copy(page, '\nPS: '.padEnd(3000, '.'));
    await page.keyboard.press('ControlOrMeta+V');
    expect(await edit.inputValue()).toBe(`${text}${'\nPS: '.padEnd(3000, '.')}`);
    await expect.poll(() => page.getByRole('button', { name: 'Send as a new version' }).isEnabled()).toBe(true);
  });
});

describe.skipIf(!haveChromium)('a streaming reply at reading speed', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 20 });

  it('grows the open block in place: the text already on screen keeps its elements while more arrives', async () => {
    const probe = await openPage(suite.session.browser, suite.server.url);
    suite.probes.push(probe);
    const { page } = probe;
    await page.goto(suite.server.url);
    const box = page.getByLabel('Message', { exact: true });
    await box.waitFor();
    // One paragraph (no blank line): it stays the open block for the whole reply, redrawn as it grows.
    const words = Array.from({ length: 160 }, (_, i) => `word${i}`).join(' ');
    await box.fill(`Some **bold** text, then ${words} and the end.`);
    await box.press('Enter');
    await until(page, "(() => { const p = document.querySelector('.markdown.streaming .md-tail > p'); if (!p || !p.textContent.includes('bold')) return false; window.__first = p; window.__firstStrong = p.querySelector('strong'); window.__firstLength = p.textContent.length; return true; })()", 20_000);
    await until(page, "(() => { const p = document.querySelector('.markdown.streaming .md-tail > p'); return !!p && p.textContent.length > window.__firstLength + 100; })()", 20_000);
    // Redrawn by patching, not by replacing: the same paragraph and the same <strong>, with more text.
    expect(await page.evaluate("document.querySelector('.markdown.streaming .md-tail > p') === window.__first && window.__first.querySelector('strong') === window.__firstStrong")).toBe(true);
    expect(await waitForReplyEnd(page, 60_000)).toBe('complete');
    const reply = page.locator('article.from-assistant .markdown').last();
    expect((await reply.textContent())?.trim()).toBe(`Some bold text, then ${words} and the end.`);
    expect(await reply.locator('p').count()).toBe(1);
    expect(await reply.locator('strong').textContent()).toBe('bold');
  });
});
