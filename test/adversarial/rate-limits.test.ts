/**
 * Per-key rate limits against a real server (scripted echo model): requests and tokens per minute, each key
 * with its own window, the same 429 + Retry-After answer as a full queue, through the official SDK too.
 */
import OpenAI, { RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, jsonHeaders } from './helpers.js';

const keys = {
  few: 'few-requests-key-0123456789',
  tokens: 'few-tokens-key-0123456789',
  free: 'default-limits-key-0123456789',
  dialects: 'dialects-key-0123456789',
};
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    embedded: false,
    scripted: true,
    rateLimitRequests: 100,
    apiKeys: [
      { name: 'few', key: keys.few, requestsPerMinute: 3 },
      { name: 'tokens', key: keys.tokens, tokensPerMinute: 40 },
      { name: 'free', key: keys.free },
      { name: 'dialects', key: keys.dialects, requestsPerMinute: 2 },
    ],
  });
});
afterAll(async () => server.stop());

const chat = (key: string, content = 'hello there', extra: Record<string, unknown> = {}) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...jsonHeaders, authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content }], ...extra }),
  });

describe('requests per minute', () => {
  it("refuses a key's request past its limit with 429 and Retry-After, at once, and leaves other keys alone", async () => {
    const allowed: Response[] = [];
    for (let i = 0; i < 3; i++) allowed.push(await chat(keys.few));
    expect(allowed.map((response) => response.status)).toEqual([200, 200, 200]);
    expect(allowed.map((response) => response.headers.get('x-ratelimit-remaining-requests'))).toEqual(['2', '1', '0']);
    expect(allowed[0]?.headers.get('x-ratelimit-limit-requests')).toBe('3');

    const started = performance.now();
    const refused = await chat(keys.few);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(expectOpenAIError(await refused.json(), 'rate_limit_exceeded').error.message).toMatch(/3 requests per minute/);

    // Streaming requests and the conversation API count against the same limit.
    const stream = await chat(keys.few, 'hi', { stream: true });
    expect(stream.status).toBe(429);
    const created = await fetch(`${server.url}/api/conversations`, { method: 'POST', headers: { ...jsonHeaders, 'x-api-key': keys.few }, body: '{}' });
    expect(created.status).toBe(201); // opening a conversation generates nothing and is not counted
    const { id } = (await created.json()) as { id: string };
    const send = await fetch(`${server.url}/api/conversations/${id}/messages`, { method: 'POST', headers: { ...jsonHeaders, 'x-api-key': keys.few }, body: JSON.stringify({ content: 'hi' }) });
    expect(send.status).toBe(429);
    // The refused message was not stored.
    const tree = (await (await fetch(`${server.url}/api/conversations/${id}`, { headers: { 'x-api-key': keys.few } })).json()) as { messages: unknown[] };
    expect(tree.messages).toEqual([]);

    // The official SDK sees its RateLimitError.
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: keys.few, maxRetries: 0 });
    await expect(client.chat.completions.create({ model: 'parlance-scripted', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(RateLimitError);

    // Another key, under the server-wide default of 100 a minute, is served.
    const other = await chat(keys.free);
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-limit-requests')).toBe('100');
  });
});

describe('the other dialects', () => {
  it("count Anthropic's and Ollama's generations against the key, and refuse in each dialect's shape", async () => {
    const headers = { ...jsonHeaders, 'x-api-key': keys.dialects };
    const anthropic = () => fetch(`${server.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify({ model: 'parlance-scripted', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }) });
    const ollama = () => fetch(`${server.url}/api/chat`, { method: 'POST', headers, body: JSON.stringify({ model: 'parlance-scripted', stream: false, messages: [{ role: 'user', content: 'hi' }] }) });
    expect((await anthropic()).status).toBe(200);
    expect((await ollama()).status).toBe(200);
    const refusedAnthropic = await anthropic();
    expect(refusedAnthropic.status).toBe(429);
    expect(refusedAnthropic.headers.get('retry-after')).not.toBeNull();
    expect(await refusedAnthropic.json()).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: expect.stringMatching(/2 requests per minute/) } });
    const refusedOllama = await ollama();
    expect(refusedOllama.status).toBe(429);
    expect(await refusedOllama.json()).toEqual({ error: expect.stringMatching(/2 requests per minute/) });
    // Listing models generates nothing and is not counted.
    expect((await fetch(`${server.url}/api/tags`, { headers })).status).toBe(200);
  });
});

describe('tokens per minute', () => {
  it('charges prompt and completion tokens when a generation ends, streamed or not, and refuses the key once over', async () => {
    // The echo model answers with the prompt's words: about 2 × 8 tokens here.
    const first = await chat(keys.tokens, 'one two three four five six seven eight');
    expect(first.status).toBe(200);
    const usage = ((await first.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
    expect(usage).toBeGreaterThan(0);
    expect(usage).toBeLessThan(40);

    // A streamed conversation reply is charged too, once it has ended.
    const created = (await (await fetch(`${server.url}/api/conversations`, { method: 'POST', headers: { ...jsonHeaders, 'x-api-key': keys.tokens }, body: '{}' })).json()) as { id: string };
    const reply = await fetch(`${server.url}/api/conversations/${created.id}/messages`, {
      method: 'POST',
      headers: { ...jsonHeaders, 'x-api-key': keys.tokens },
      body: JSON.stringify({ content: 'nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen' }),
    });
    expect(reply.status).toBe(200);
    expect(parseSse(await reply.text()).at(-1)?.event).toBe('done');

    const refused = await chat(keys.tokens, 'more');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(expectOpenAIError(await refused.json(), 'rate_limit_exceeded').error.message).toMatch(/40 tokens per minute/);
    // Reading history is not a generation: still served.
    expect((await fetch(`${server.url}/api/conversations`, { headers: { 'x-api-key': keys.tokens } })).status).toBe(200);
  });
});
