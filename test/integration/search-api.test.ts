/**
 * Search over message text through the HTTP API on the real server: a chat turn's reply is found by a word the
 * scripted model echoed, under both of Parlance's API prefixes, behind the API key, with bad input refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, SearchPage } from '../../src/protocol/conversations.js';
import { readAll, startTestServer, type TestServer } from '../fixtures/server.js';

const key = 'search-test-key-0123456789';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 0, apiKeys: [{ name: 'test', key }] });
});
afterAll(async () => server.stop());

async function api<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${key}` }): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

describe('GET /parlance/api/search', () => {
  it('finds the words of a stored exchange, with the matched word marked in the snippet', async () => {
    const conversation = (await api<ConversationRecord>('POST', '/parlance/api/conversations', { model: 'parlance-scripted', title: 'Zoo' })).body;
    const turn = await fetch(`${server.url}/parlance/api/conversations/${conversation.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'the aardvark sleeps' }),
    });
    expect(turn.status).toBe(200);
    await readAll(turn);
    await api('POST', '/parlance/api/conversations', { title: 'Other' });

    for (const prefix of ['/parlance/api', '/api']) {
      const found = await api<SearchPage>('GET', `${prefix}/search?q=${encodeURIComponent('Aardv')}`);
      expect(found.status).toBe(200);
      // The scripted model echoes the user's words: the reply and the question both hold the word, the reply newest.
      expect(found.body.hits.map((h) => h.role)).toEqual(['assistant', 'user']);
      const [hit] = found.body.hits;
      expect(hit).toMatchObject({ conversationId: conversation.id, conversationTitle: 'Zoo' });
      expect(hit?.snippet.highlights.map(([start, end]) => hit.snippet.text.slice(start, end))).toEqual(['aardvark']);
    }
    const limited = await api<SearchPage>('GET', '/parlance/api/search?q=aardvark&limit=1');
    expect(limited.body.hits).toHaveLength(1);
    const rest = await api<SearchPage>('GET', `/parlance/api/search?q=aardvark&limit=1&cursor=${limited.body.nextCursor ?? ''}`);
    expect(rest.body.hits.map((h) => h.role)).toEqual(['user']);
  });

  it('takes query syntax characters as plain text', async () => {
    for (const q of ['"', '*', '-', ':', '(', 'aardvark*"(:-']) {
      const answer = await api<SearchPage>('GET', `/parlance/api/search?q=${encodeURIComponent(q)}`);
      expect(answer.status, q).toBe(200);
    }
  });

  it('refuses a query out of bounds with a 400 naming the field, and a request without the key with a 401', async () => {
    const long = await api<{ error: { param: string } }>('GET', `/parlance/api/search?q=${'x'.repeat(201)}`);
    expect(long.status).toBe(400);
    expect(long.body.error.param).toBe('q');
    const missing = await api<{ error: { param: string } }>('GET', '/parlance/api/search');
    expect(missing.status).toBe(400);
    const tooMany = await api<{ error: { param: string } }>('GET', '/parlance/api/search?q=x&limit=51');
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.param).toBe('limit');
    const badCursor = await api<{ error: { param: string } }>('GET', '/parlance/api/search?q=x&cursor=nonsense');
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.param).toBe('cursor');
    expect((await api('GET', '/parlance/api/search?q=aardvark', undefined, {})).status).toBe(401);
  });
});
