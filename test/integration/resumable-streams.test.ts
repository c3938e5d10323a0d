/**
 * Resumable `/v1/chat/completions` streams: a client that opted in with `X-Parlance-Resumable: true`
 * drops mid-stream, resumes with `Last-Event-ID`, and what it got plus what the resume sends is the whole
 * stream, byte for byte. Without the header a drop still cancels the generation.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastEventId, readEventsThenDrop, withoutStreamIdentity } from '../fixtures/resumable.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const key = 'sk-resume-test-key-0001';
const other = 'sk-resume-other-key-002';
// Forty words at 15 ms each: long enough to drop in the middle, short enough to finish quickly.
const prompt = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 15, apiKeys: [{ name: 'main', key }, { name: 'other', key: other }], ...noShedding });
});

afterAll(async () => {
  await server.stop();
});

function post(headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true } }),
    ...(signal === undefined ? {} : { signal }),
  });
}

function resume(id: string, after?: string, auth = key): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions/${id}/events`, { headers: { authorization: `Bearer ${auth}`, ...(after === undefined ? {} : { 'last-event-id': after }) } });
}

async function generationsCancelled(): Promise<number> {
  const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  const line = metrics.split('\n').find((row) => row.startsWith('parlance_generations_total{') && row.includes('reason="cancelled"') && row.includes('parlance-scripted'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('resumable chat completion streams', () => {
  it('goes on after a drop, and the resume sends exactly the missed bytes, then follows live to [DONE]', async () => {
    const controller = new AbortController();
    const response = await post({ 'x-parlance-resumable': 'true' }, controller.signal);
    expect(response.status).toBe(200);
    const id = response.headers.get('x-parlance-stream-id');
    expect(id).toMatch(/^chatcmpl-/);
    const before = await readEventsThenDrop(response, controller, 5);
    expect(before).toMatch(/^id: 1\ndata: /);

    const resumed = await resume(id ?? '', lastEventId(before));
    expect(resumed.status).toBe(200);
    const after = await resumed.text();
    expect(after.startsWith(`id: ${Number(lastEventId(before)) + 1}\n`)).toBe(true);
    expect(after.endsWith('data: [DONE]\n\n')).toBe(true);
    const whole = before + after;

    // The same stream from its start, and a second run of the same request that nobody interrupted.
    const fromStart = await (await resume(id ?? '')).text();
    expect(whole).toBe(fromStart);
    const uninterrupted = await (await post({ 'x-parlance-resumable': 'true' })).text();
    expect(withoutStreamIdentity(whole)).toBe(withoutStreamIdentity(uninterrupted));
    // The text went on being generated while nobody listened: all forty words are there.
    const content = [...whole.matchAll(/"content":"([^"]*)"/g)].map((match) => match[1]).join('');
    expect(content).toBe(prompt);
  });

  it("reads as an ordinary stream to the openai SDK, ids and all", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, defaultHeaders: { 'x-parlance-resumable': 'true' } });
    const stream = await client.chat.completions.create({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true });
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    expect(content).toBe(prompt);
  });

  it('refuses an unknown id, another key, and a Last-Event-ID that is not canonical or lies past the log', async () => {
    const unknown = await resume('chatcmpl-nope');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('not_found');

    const response = await post({ 'x-parlance-resumable': 'true' });
    const id = response.headers.get('x-parlance-stream-id') ?? '';
    const text = await response.text();
    const last = Number(lastEventId(text));

    expect((await resume(id, undefined, other)).status).toBe(404);
    for (const bad of ['0x10', '1e3', '5.0', '', '-1', '01', '+3', String(last + 1), '9'.repeat(40)]) {
      const refused = await resume(id, bad);
      expect(refused.status, `Last-Event-ID: ${JSON.stringify(bad)}`).toBe(400);
      expect(((await refused.json()) as { error: { param: string } }).error.param).toMatch(/Last-Event-ID|last-event-id/);
    }
    // The last id itself is fine: nothing is missing, and the stream is over.
    const nothingLeft = await resume(id, String(last));
    expect(nothingLeft.status).toBe(200);
    expect(await nothingLeft.text()).toBe('');
  });

  it('refuses a resumable header that is neither true nor false, or on a request that does not stream', async () => {
    expect((await post({ 'x-parlance-resumable': 'yes' })).status).toBe(400);
    const unstreamed = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-parlance-resumable': 'true' },
      body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(unstreamed.status).toBe(400);
    expect(((await unstreamed.json()) as { error: { param: string } }).error.param).toBe('x-parlance-resumable');
  });

  it('without the header, a drop still cancels the generation and nothing can be resumed', async () => {
    const cancelledBefore = await generationsCancelled();
    const controller = new AbortController();
    const response = await post({}, controller.signal);
    expect(response.headers.get('x-parlance-stream-id')).toBeNull();
    const before = await readEventsThenDrop(response, controller, 3);
    expect(before).not.toMatch(/^id:/m);
    const id = /"id":"(chatcmpl-[0-9a-f]+)"/.exec(before)?.[1] ?? '';
    while ((await generationsCancelled()) === cancelledBefore) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await resume(id)).status).toBe(404);
  });

  it('documents the resume route in /docs', async () => {
    const docs = (await (await fetch(`${server.url}/docs/json`, { headers: { authorization: `Bearer ${key}` } })).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(docs.paths)).toContain('/v1/chat/completions/{id}/events');
  });
});

describe('resumable streams on by default (--resumable-streams)', () => {
  it('end past the byte bound with a stream_too_large error event, for the client and for a resume alike; a request may opt out', async () => {
    const small = await startTestServer({ embedded: false, scripted: true, resumableStreams: true, resumableStreamMaxBytes: 2048, ...noShedding });
    try {
      const response = await fetch(`${small.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true }),
      });
      const text = await response.text();
      expect(text).toContain('"code":"stream_too_large"');
      expect(text).not.toContain('[DONE]');
      const id = response.headers.get('x-parlance-stream-id') ?? '';
      expect(await (await fetch(`${small.url}/v1/chat/completions/${id}/events`)).text()).toBe(text);

      // With resumable streams on by default, a request can still opt out: then nothing is logged.
      const optedOut = await fetch(`${small.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-parlance-resumable': 'false' },
        body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true }),
      });
      expect(optedOut.headers.get('x-parlance-stream-id')).toBeNull();
      const plain = await optedOut.text();
      expect(plain).not.toMatch(/^id:/m);
      expect(plain.endsWith('data: [DONE]\n\n')).toBe(true);
    } finally {
      await small.stop();
    }
  });
});
