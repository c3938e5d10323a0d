/**
 * The Responses, embeddings and rerank doors under the same rules as /v1/chat/completions: keys, per-key
 * limits, metrics by route, /docs, disconnects that cancel, the engine's queue bound and the context bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlamaCppEngine } from '../../src/engines/llama-cpp/engine.js';
import { startFakeUpstream, streamPlan, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { tinyModelPath } from '../fixtures/paths.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const key = 'k'.repeat(24);
const limited = 'l'.repeat(24);

describe('keys, limits, metrics and docs', () => {
  let server: TestServer;
  let upstream: FakeUpstream;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: ['up-model'] });
    server = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], apiKeys: [{ name: 'main', key }, { name: 'few', key: limited, requestsPerMinute: 1 }], ...noShedding });
  });
  afterAll(async () => {
    await server.stop();
    await upstream.close();
  });

  const post = (path: string, body: unknown, apiKey?: string) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) }, body: JSON.stringify(body) });

  it('needs a key on every new door', async () => {
    const bodies: [string, unknown][] = [
      ['/v1/responses', { model: 'up-model', input: 'hi' }],
      ['/v1/embeddings', { model: 'up-model', input: 'hi' }],
      ['/v1/rerank', { model: 'up-model', query: 'q', documents: ['d'] }],
      ['/rerank', { model: 'up-model', query: 'q', documents: ['d'] }],
    ];
    for (const [path, body] of bodies) {
      expect((await post(path, body)).status, path).toBe(401);
      expect((await post(path, body, key)).status, path).toBe(200);
    }
    expect((await fetch(`${server.url}/v1/responses/resp_x`)).status).toBe(401);
  });

  it("counts each door against a key's requests per minute", async () => {
    expect((await post('/v1/embeddings', { model: 'up-model', input: 'hi' }, limited)).status).toBe(200);
    const refused = await post('/v1/responses', { model: 'up-model', input: 'hi' }, limited);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
  });

  it('counts requests by route in /metrics and documents the routes in /docs', async () => {
    await post('/v1/responses', { model: 'up-model', input: 'hi' }, key);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    expect(metrics).toMatch(/parlance_http_requests_total\{route="\/v1\/responses",method="POST",status="200"\} [1-9]/);
    expect(metrics).toMatch(/parlance_http_requests_total\{route="\/v1\/embeddings",method="POST",status="200"\} [1-9]/);
    const docs = (await (await fetch(`${server.url}/docs/json`, { headers: { authorization: `Bearer ${key}` } })).json()) as { paths: Record<string, unknown> };
    for (const path of ['/v1/responses', '/v1/responses/{id}', '/v1/embeddings', '/v1/rerank']) expect(Object.keys(docs.paths)).toContain(path);
  });

  it('cancels the upstream generation when a streaming client goes away', async () => {
    upstream.script = (request) => (request.path === '/v1/chat/completions' ? streamPlan(Array.from({ length: 200 }, (_, i) => `w${i} `), { delayMs: 20 }) : undefined);
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'up-model', input: 'go on', stream: true }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    let seen = '';
    while (!seen.includes('response.output_text.delta')) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      seen += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    const relayed = upstream.generations().at(-1);
    expect(await relayed?.closed).toBe(true);
    upstream.script = () => undefined;
  });
});

describe('the embedded engine bounds embeddings', () => {
  it('refuses an input longer than its context, naming it', async () => {
    const server = await startTestServer({ contextSize: 64, ...noShedding });
    try {
      const response = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'parlance-tiny', input: ['short', 'word '.repeat(200)] }) });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: 'context_length_exceeded', param: 'input[1]' });
    } finally {
      await server.stop();
    }
  });

  it('answers queue_full (429) past its queue, and a request cancelled while queued leaves', async () => {
    const engine = await LlamaCppEngine.create({ modelPath: tinyModelPath, modelId: 'tiny', gpu: 'off', threads: 1, sequences: 1, contextSize: 256, defaultMaxTokens: 8, queueLength: 1 });
    try {
      const batch = { model: 'tiny', inputs: Array.from({ length: 20 }, (_, i) => `text ${i}`) };
      const running = engine.embed(batch, new AbortController().signal);
      const leaving = new AbortController();
      const queued = engine.embed(batch, leaving.signal);
      await expect(engine.embed(batch, new AbortController().signal)).rejects.toMatchObject({ code: 'queue_full', status: 429 });
      leaving.abort(new Error('gone'));
      await expect(queued).rejects.toThrow('gone');
      expect((await running).vectors).toHaveLength(20);
      expect(engine.models()[0]?.capabilities.has('embeddings')).toBe(true);
      expect(engine.models()[0]?.capabilities.has('rerank')).toBe(false);
    } finally {
      await engine.close();
    }
  });
});
