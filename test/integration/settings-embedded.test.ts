/**
 * A conversation's stored sampling settings change what the real engine (llama.cpp on the tiny model)
 * writes: the seed makes a hot sampler repeatable, and top-k 1 makes it greedy whatever the seed. Through
 * the conversation API, so the settings go from the store to the engine, not from the request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ReplyDone } from '../../src/protocol/conversations.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
const base = '/parlance/api';

beforeAll(async () => {
  server = await startTestServer(noShedding);
});
afterAll(async () => server?.stop());

/** A new conversation with these settings, and its first reply's text. */
async function replyWith(settings: Record<string, unknown>): Promise<string> {
  const created = await fetch(`${server.url}${base}/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ settings }) });
  expect(created.status).toBe(201);
  const conversation = (await created.json()) as ConversationRecord;
  const response = await fetch(`${server.url}${base}/conversations/${conversation.id}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'Tell me a story.' }),
  });
  const done = parseSse(await response.text()).find((event) => event.event === 'done');
  const message = (JSON.parse(done?.data ?? 'null') as ReplyDone).message;
  expect(message.status).toBe('complete');
  return message.content;
}

describe('stored settings on the embedded engine', () => {
  it('seed and top-k change the reply, compared with the same conversation without them', async () => {
    const hot = { temperature: 2, maxTokens: 24 };
    const seeded = await replyWith({ ...hot, seed: 1 });
    expect(await replyWith({ ...hot, seed: 1 })).toBe(seeded);
    const otherSeed = await replyWith({ ...hot, seed: 2 });
    expect(otherSeed).not.toBe(seeded);
    const greedy = await replyWith({ ...hot, seed: 1, topK: 1 });
    expect(greedy).not.toBe(seeded);
    expect(await replyWith({ ...hot, seed: 2, topK: 1 })).toBe(greedy);
  });

  it('global defaults reach the engine too: a default top-k of 1 makes every seed give the same reply', async () => {
    await fetch(`${server.url}${base}/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ defaults: { topK: 1, maxTokens: 24, temperature: 2 } }) });
    const first = await replyWith({ seed: 3 });
    expect(await replyWith({ seed: 4 })).toBe(first);
    expect(await replyWith({ seed: 3, topK: 50 })).not.toBe(first);
  });
});
