import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localBuilds } from '../../src/engines/llama-cpp/local-build.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

interface Health {
  engines: { name: string; active: number; queued: number; capacity: number }[];
}

async function llamaLoad(server: TestServer): Promise<Health['engines'][number]> {
  const health = (await (await fetch(`${server.url}/health`)).json()) as Health;
  const llama = health.engines.find((engine) => engine.name === 'llama');
  if (!llama) throw new Error('no llama engine in /health');
  return llama;
}

async function waitFor<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const model = 'parlance-tiny';
const chatBody = (maxTokens: number, content = 'hello') => JSON.stringify({ model, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content }] });

describe('cancellation', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sequences: 1, queueLength: 4 });
  });
  afterAll(async () => server.stop());

  it("names in /health the llama.cpp binary the engine loaded: the prebuilt one, unless 'parlance engine build' made one here", async () => {
    const health = (await (await fetch(`${server.url}/health`)).json()) as { engines: { name: string; llama_cpp?: unknown }[] };
    const llama = health.engines.find((engine) => engine.name === 'llama');
    expect(llama?.llama_cpp).toEqual({
      binary: localBuilds().length === 0 ? 'prebuilt' : 'local build',
      gpu: expect.anything(),
      release: expect.any(String),
      dispatch_loop: expect.stringMatching(/^(as shipped|patched)$/),
    });
  });

  it('frees the sequence when the client goes away mid-stream, and the next request starts at once', async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(1000), signal: controller.signal });
    const reader = response.body!.getReader();
    let received = '';
    const decoder = new TextDecoder();
    while ((received.match(/"content":"[^"]/g) ?? []).length < 3) {
      const { value } = await reader.read();
      received += decoder.decode(value, { stream: true });
    }
    expect((await llamaLoad(server)).active).toBe(1);
    controller.abort();

    // The only sequence must come back: the generation stops within a token, not after 1000.
    const after = await waitFor(() => llamaLoad(server), (load) => load.active === 0, 3000);
    expect(after.active).toBe(0);

    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const started = performance.now();
    const next = await client.chat.completions.create({ model, max_tokens: 4, messages: [{ role: 'user', content: 'again' }] });
    expect(next.usage?.completion_tokens).toBe(4);
    // 4 tokens of the tiny model take milliseconds; waiting for the abandoned 1000-token reply would take far longer.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('breaking out of the openai stream iterator aborts the request and frees the sequence', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model, max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'long' }] });
    let chunks = 0;
    for await (const _chunk of stream) {
      if (++chunks === 3) break;
    }
    const after = await waitFor(() => llamaLoad(server), (load) => load.active === 0, 3000);
    expect(after.active).toBe(0);
  });
});

describe('concurrency', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sequences: 2, queueLength: 16 });
  });
  afterAll(async () => server.stop());

  it('completes more streams than sequences, none lost, each with its full token count', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const results = await Promise.all(
      Array.from({ length: 7 }, async (_, i) => {
        const stream = await client.chat.completions.create({ model, max_tokens: 20, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `request ${i}` }] });
        let text = '';
        let completionTokens = 0;
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta.content ?? '';
          if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
        }
        return { text, completionTokens };
      }),
    );
    for (const result of results) {
      expect(result.completionTokens).toBe(20);
      expect(result.text.length).toBeGreaterThan(0);
    }
    expect((await llamaLoad(server)).active).toBe(0);
  });

  it('serves queued requests in order of arrival', async () => {
    const single = await startTestServer({ sequences: 1, queueLength: 16 });
    try {
      const order: number[] = [];
      const requests: Promise<void>[] = [];
      for (let i = 0; i < 5; i++) {
        requests.push(
          fetch(`${single.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(30, `n${i}`) }).then(async (response) => {
            await response.text();
            order.push(i);
          }),
        );
        // Let each request reach the queue before the next is sent, so "arrival" is well defined.
        await waitFor(() => llamaLoad(single), (load) => load.active + load.queued === i + 1 || order.length > 0, 2000);
      }
      await Promise.all(requests);
      expect(order).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await single.stop();
    }
  });

  it('answers 429 with Retry-After at once when the queue is full', async () => {
    const tight = await startTestServer({ sequences: 1, queueLength: 1 });
    try {
      const controllers = [new AbortController(), new AbortController()];
      const open = controllers.map((controller) =>
        fetch(`${tight.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(1000), signal: controller.signal }).catch(() => undefined),
      );
      await waitFor(() => llamaLoad(tight), (load) => load.active === 1 && load.queued === 1);
      const started = performance.now();
      const rejected = await fetch(`${tight.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(5) });
      expect(performance.now() - started).toBeLessThan(500);
      expect(rejected.status).toBe(429);
      expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await rejected.json()).toMatchObject({ error: { code: 'queue_full', type: 'rate_limit_error' } });
      for (const controller of controllers) controller.abort();
      await Promise.all(open);
      const idle = await waitFor(() => llamaLoad(tight), (load) => load.active === 0 && load.queued === 0);
      expect(idle).toMatchObject({ active: 0, queued: 0 });
    } finally {
      await tight.stop();
    }
  });
});
