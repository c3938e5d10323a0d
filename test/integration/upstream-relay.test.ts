import { spawn, type ChildProcess } from 'node:child_process';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorPlan, sse, startFakeUpstream, streamPlan, streamSteps, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { tinyModelPath } from '../fixtures/paths.js';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { freePort } from '../fixtures/net.js';

const chat = (server: TestServer, body: Record<string, unknown>, signal?: AbortSignal) =>
  fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

describe('Parlance in front of an OpenAI-compatible upstream', () => {
  let upstream: FakeUpstream;
  let front: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: ['up-model'] });
    front = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`] });
    client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await front.stop();
    await upstream.close();
  });

  it("lists the upstream's discovered models", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['up-model']);
  });

  it('relays the text exactly, a multi-byte character split across TCP writes included, with usage and finish', async () => {
    const snowman = Buffer.from('☃', 'utf8');
    const piece = sse({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'fake', choices: [{ index: 0, delta: { content: 'a☃b' }, finish_reason: null }] });
    const bytes = Buffer.from(piece, 'utf8');
    const cut = bytes.indexOf(snowman) + 1; // inside the character
    upstream.script = () => ({
      steps: [...streamSteps(['Hello', ', ', 'wörld'], { tail: [] }), { write: bytes.subarray(0, cut) }, { delayMs: 20 }, { write: bytes.subarray(cut) }, ...streamSteps([], { usage: { prompt_tokens: 9, completion_tokens: 4 } }).slice(1)],
    });
    const stream = await client.chat.completions.create({ model: 'up-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true }, stop: ['END'], temperature: 0.3, seed: 5 });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello, wörlda☃b');
    expect(finish).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
    const sent = upstream.generations().at(-1)?.body as Record<string, unknown>;
    expect(sent).toMatchObject({ model: 'up-model', stop: ['END'], temperature: 0.3, seed: 5, stream: true });
  });

  it('passes a 429 through with its Retry-After, as the SDK typed error', async () => {
    upstream.script = () => errorPlan(429, 'slow down', { headers: { 'retry-after': '7' }, type: 'rate_limit_error' });
    const response = await chat(front, { model: 'up-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain('slow down');
  });

  it('passes an upstream 400 through with its message and param', async () => {
    upstream.script = () => errorPlan(400, 'bad logit_bias', { param: 'logit_bias', code: 'invalid_value' });
    const error = await client.chat.completions.create({ model: 'up-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('bad logit_bias');
  });

  it('turns a failure after the first byte into an in-stream error event, with no [DONE]', async () => {
    upstream.script = () => ({ steps: [...streamSteps(['partial', ' text'], { tail: [] }), { delayMs: 50 }, { destroy: true }] });
    const response = await chat(front, { model: 'up-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    expect(response.status).toBe(200);
    const raw = await response.text();
    expect(raw).not.toContain('[DONE]');
    const events = parseSse(raw).map((e) => JSON.parse(e.data) as { error?: { code: string; message: string }; choices?: { delta?: { content?: string } }[] });
    expect(events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('')).toBe('partial text');
    const last = events.at(-1);
    expect(last?.error?.code).toBe('upstream_error');
    expect(last?.error?.message).toContain('fake');
  });

  it('does not let an upstream push its own event types through to the client', async () => {
    upstream.script = () => ({ steps: [...streamSteps(['safe'], { tail: [] }), { write: sse({ evil: '<script>' }, 'custom') }, ...streamSteps([]).slice(1)] });
    const response = await chat(front, { model: 'up-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    const raw = await response.text();
    expect(raw).not.toContain('evil');
    expect(raw).not.toContain('event:');
    expect(raw).toContain('"content":"safe"');
  });

  it('aborts the upstream request as soon as the client goes away', async () => {
    upstream.script = () => streamPlan(Array.from({ length: 200 }, (_, i) => `t${i} `), { delayMs: 20 });
    const controller = new AbortController();
    const response = await chat(front, { model: 'up-model', messages: [{ role: 'user', content: 'x' }], stream: true }, controller.signal);
    const reader = response.body!.getReader();
    await reader.read();
    await reader.read();
    const abortedAt = performance.now();
    controller.abort();
    const request = upstream.generations().at(-1)!;
    expect(await request.closed).toBe(true);
    expect(request.closedAt! - abortedAt).toBeLessThan(500);
  });
});

describe('a real upstream: a second Parlance process serving the tiny GGUF', () => {
  let back: ChildProcess;
  let front: TestServer;

  beforeAll(async () => {
    const port = await freePort();
    back = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--model', tinyModelPath, '--port', String(port), '--context-size', '1024', '--sequences', '2', '--log-level', 'warn'], { stdio: 'inherit' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error('the back Parlance did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    front = await startTestServer({ embedded: false, upstreams: [`back=http://127.0.0.1:${port}/v1`] });
  });
  afterAll(async () => {
    await front?.stop();
    back?.kill('SIGTERM');
  });

  it('streams through both with the official openai client', async () => {
    const client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['parlance-tiny']);
    const request = { model: 'parlance-tiny', messages: [{ role: 'user' as const, content: 'Hello' }], max_tokens: 10, seed: 11, temperature: 0.7 };
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(usage?.completion_tokens).toBe(10);
    // Same seed, same model: the non-streamed answer through both hops is the same text.
    const whole = await client.chat.completions.create(request);
    expect(whole.choices[0]?.message.content).toBe(text);
    expect(whole.choices[0]?.finish_reason).toBe('length');
  });
});
