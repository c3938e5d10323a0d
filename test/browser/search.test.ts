import { describe, expect, it } from 'vitest';
import type { ConversationRecord } from '../../src/protocol/conversations.js';
import { conversationIdOf, haveChromium, openPage, screenshot, scriptedPageSuite, until } from './harness.js';

/** Searching message text from the sidebar's search box: the match shown marked, and a click opens its conversation. */
describe.skipIf(!haveChromium)('the chat page, message search', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 1 });
  const probes = suite.probes;

  /** A conversation with one exchange through the API (the scripted model echoes the user's words). */
  async function exchange(title: string, content: string): Promise<ConversationRecord> {
    const created = await fetch(`${suite.server.url}/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, model: 'parlance-scripted' }) });
    const conversation = (await created.json()) as ConversationRecord;
    const turn = await fetch(`${suite.server.url}/api/conversations/${conversation.id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content }) });
    await turn.text();
    return conversation;
  }

  it('lists the messages that have the words, marks them, and opens the conversation on a click', async () => {
    const target = await exchange('Zoo visit', 'we saw an <b>aardvark</b> asleep by the fence');
    await exchange('Groceries', 'milk, eggs and bread');
    const probe = await openPage(suite.session.browser, suite.server.url);
    probes.push(probe);
    const { page } = probe;
    await page.goto(suite.server.url);
    await page.getByLabel('Message', { exact: true }).waitFor();

    const box = page.locator('#conversation-search');
    await box.fill('a');
    // One character: no message search yet (the title filter alone).
    expect(await page.locator('.search-results').count()).toBe(0);
    await box.fill('aardv');
    await until(page, "document.querySelectorAll('.search-hit').length === 2");
    const hits = page.locator('.search-hit');
    expect(await hits.locator('strong').allTextContents()).toEqual(['Zoo visit', 'Zoo visit']);
    expect(await hits.first().locator('mark').allTextContents()).toEqual(['aardvark']);
    // The message's own markup is text, never HTML.
    expect(await hits.first().locator('.search-snippet').textContent()).toContain('<b>aardvark</b>');
    expect(await hits.first().locator('b').count()).toBe(0);
    await screenshot(page, 'search-results');

    await box.fill('aardvark eggs');
    await until(page, "document.querySelector('.search-results')?.textContent?.includes('No message has that') === true");

    await box.fill('milk');
    await until(page, "document.querySelectorAll('.search-hit').length === 2");
    await box.fill('aardvark');
    await until(page, "document.querySelectorAll('.search-hit').length === 2 && document.querySelector('.search-hit strong')?.textContent === 'Zoo visit'");
    await hits.first().locator('a').click();
    await until(page, "location.pathname.startsWith('/c/')");
    expect(await conversationIdOf(page)).toBe(target.id);
    await page.locator('article.from-assistant').first().waitFor();
  });
});
