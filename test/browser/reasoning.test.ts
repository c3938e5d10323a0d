import { describe, expect, it } from 'vitest';
import type { ConversationRecord } from '../../src/protocol/conversations.js';
import { conversationIdOf, haveChromium, lastReplyText, openPage, screenshot, scriptedPageSuite, sendMessage, until, waitForReplyEnd, type PageProbe } from './harness.js';

/**
 * Reasoning and tool calls in conversations. The scripted model thinks aloud
 * ("Thinking about: …") before echoing a message that starts with `/think `;
 * tool calls come from an imported conversation (the conversation API sends
 * no tools of its own).
 */

const words = (count: number, stem = 'word'): string => Array.from({ length: count }, (_, i) => `${stem}${i}`).join(' ');

describe.skipIf(!haveChromium)('reasoning and tool calls on the chat page', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 15 });
  const probes = suite.probes;

  async function newPage(path = '/'): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, suite.server.url);
    probes.push(probe);
    await probe.page.goto(`${suite.server.url}${path}`);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  it('streams the thinking into an open block, folds it when the answer starts, and keeps it across a reload mid-reply', async () => {
    const { page, context } = await newPage();
    const topic = words(120, 'idea');
    await sendMessage(page, `/think ${topic}`);
    const thinking = page.locator('article.from-assistant details.thinking');
    await thinking.waitFor();
    // While it thinks: open, growing, labelled as thinking, and no answer yet.
    await until(page, "(() => { const d = document.querySelector('article.from-assistant details.thinking'); return !!d && d.open && d.querySelector('.thinking-text').textContent.length > 60; })()");
    expect(await thinking.locator('summary').textContent()).toContain('Thinking…');
    await screenshot(page, 'reasoning-live');
    // A reload while it still thinks: the block comes back with what was thought, and goes on.
    const id = await conversationIdOf(page);
    const before = ((await thinking.locator('.thinking-text').textContent()) ?? '').length;
    await page.reload();
    await thinking.waitFor();
    await until(page, `(() => { const d = document.querySelector('article.from-assistant details.thinking'); return !!d && d.querySelector('.thinking-text').textContent.length >= ${before}; })()`);
    // The answer starts: the block folds away.
    await until(page, "(() => { const m = document.querySelector('article.from-assistant .markdown'); const d = document.querySelector('article.from-assistant details.thinking'); return m.textContent.length > 20 && d && !d.open; })()", 30_000);
    expect(await waitForReplyEnd(page, 30_000)).toBe('complete');
    expect(await lastReplyText(page)).toBe(topic);
    expect(await thinking.locator('.thinking-text').textContent()).toBe(`Thinking about: ${topic}`);
    expect(await thinking.locator('summary').textContent()).not.toContain('…');
    // Opened by the reader, and stored: a reload shows it (folded).
    await thinking.locator('summary').click();
    expect((await thinking.getAttribute('open')) !== null).toBe(true);
    await screenshot(page, 'reasoning-done');
    await page.goto(`${suite.server.url}/c/${id}`);
    await thinking.waitFor();
    expect((await thinking.getAttribute('open')) !== null).toBe(false);
    expect(await thinking.locator('.thinking-text').textContent()).toBe(`Thinking about: ${topic}`);
    expect(await lastReplyText(page)).toBe(topic);
    await context.close();
  });

  it('shows tool calls and their results as compact cards that open, and they survive a reload', async () => {
    const time = Date.now();
    const exported = {
      format: 'parlance.conversation',
      version: 1,
      exportedAt: time,
      conversation: { id: 'c', title: 'Weather agent', model: null, systemPrompt: null, settings: {}, activeLeafId: 'a', createdAt: time, updatedAt: time },
      messages: [
        { id: 'u', conversationId: 'c', parentId: null, role: 'user', content: 'Weather in Paris?', status: 'complete', model: null, usage: null, timings: null, error: null, createdAt: time, updatedAt: time },
        {
          id: 'a',
          conversationId: 'c',
          parentId: 'u',
          role: 'assistant',
          content: 'It is sunny in Paris, 21 °C.',
          status: 'complete',
          model: 'parlance-scripted',
          usage: null,
          timings: null,
          error: null,
          reasoning: 'I should look the weather up.',
          toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}', result: '{"sky":"sunny","temperature":21}' }],
          finishReason: 'stop',
          createdAt: time + 1,
          updatedAt: time + 1,
        },
      ],
    };
    const response = await fetch(`${suite.server.url}/api/conversations/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(exported) });
    expect(response.status).toBe(201);
    const conversation = (await response.json()) as ConversationRecord;
    const { page, context } = await newPage(`/c/${conversation.id}`);
    const card = page.locator('article.from-assistant details.tool-card');
    await card.waitFor();
    expect(await card.locator('summary').textContent()).toMatch(/get_weather.*"city":"Paris".*returned/);
    expect((await card.getAttribute('open')) !== null).toBe(false);
    await card.locator('summary').click();
    await card.locator('pre').nth(1).waitFor();
    expect(await card.locator('pre').first().textContent()).toBe('{\n  "city": "Paris",\n  "unit": "celsius"\n}');
    expect(await card.locator('pre').nth(1).textContent()).toBe('{"sky":"sunny","temperature":21}');
    expect(await page.locator('article.from-assistant details.thinking .thinking-text').textContent()).toBe('I should look the weather up.');
    await screenshot(page, 'tool-card');
    await page.reload();
    await card.waitFor();
    expect(await card.locator('.tool-name').textContent()).toBe('get_weather');
    await context.close();
  });
});
