import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { ParlanceError } from '../../src/errors.js';
import type { ChatEvent, Engine, Generation, GenerationRequest } from '../../src/engines/contract.js';
import { BalancedEngine } from '../../src/engines/openai-compatible/balancer.js';
import { parseUpstreamFlag, upstreamEngineOptions } from '../../src/engines/openai-compatible/config.js';
import { OpenAICompatibleEngine, type OpenAICompatibleEngineOptions } from '../../src/engines/openai-compatible/engine.js';
import {
  contentChunk,
  errorPlan,
  jsonPlan,
  refusedPort,
  sse,
  startFakeUpstream,
  streamPlan,
  streamSteps,
  type FakeUpstream,
  type FakeUpstreamOptions,
  type Plan,
} from '../fixtures/fake-upstream.js';

const API_KEY = 'sk-test-7f3a9c1e-never-show-me';

const fakes: FakeUpstream[] = [];
const engines: Engine[] = [];

afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function fake(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream(options);
  fakes.push(upstream);
  return upstream;
}

/** A fake whose every generation request gets `plan`. */
async function fakeWith(plan: Plan | ((body: unknown) => Plan)): Promise<FakeUpstream> {
  return fake({ script: (request) => (request.method === 'POST' ? (typeof plan === 'function' ? plan(request.body) : plan) : undefined) });
}

function engineFor(upstream: FakeUpstream, options: Partial<OpenAICompatibleEngineOptions> = {}): OpenAICompatibleEngine {
  const engine = new OpenAICompatibleEngine({
    name: 'fake-vllm',
    baseUrl: upstream.url,
    apiKey: API_KEY,
    models: ['fake-model'],
    stallTimeoutMs: 5_000,
    totalTimeoutMs: 30_000,
    ...options,
  });
  engines.push(engine);
  return engine;
}

function chat(content = 'hi', sampling: GenerationRequest['sampling'] = {}): GenerationRequest {
  return { model: 'fake-model', input: { kind: 'chat', messages: [{ role: 'user', content }] }, sampling };
}

async function collect(generation: Generation): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  for await (const event of generation) events.push(event);
  return events;
}

function textOf(events: readonly ChatEvent[]): string {
  return events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');
}

function tail(events: readonly ChatEvent[]): ChatEvent[] {
  return events.filter((event) => event.type !== 'text-delta');
}

async function rejection(promise: Promise<unknown>): Promise<ParlanceError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ParlanceError);
  return error as ParlanceError;
}

/** Resolves with whether the request's socket closed early, or 'open' if it did not close within `ms`. */
function closedWithin(promise: Promise<boolean>, ms: number): Promise<boolean | 'open'> {
  return Promise.race([promise, new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), ms))]);
}

describe('OpenAICompatibleEngine: relaying', () => {
  it('relays the text exactly, then the upstream usage and finish', async () => {
    const pieces = ['Hel', 'lo', ', ', 'wörld', ' ', '🙂', '\n', '  indented', '"quoted"\\'];
    const upstream = await fakeWith(streamPlan(pieces, { usage: { prompt_tokens: 11, completion_tokens: 9 } }));
    const engine = engineFor(upstream);
    const events = await collect(await engine.open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe(pieces.join(''));
    expect(events.filter((event) => event.type === 'text-delta')).toHaveLength(pieces.length);
    expect(tail(events)).toEqual([
      { type: 'usage', usage: { promptTokens: 11, completionTokens: 9 } },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('maps finish reasons: length stays length, anything else is stop', async () => {
    let reason = 'length';
    const upstream = await fakeWith(() => streamPlan(['a'], { finishReason: reason }));
    const engine = engineFor(upstream);
    expect((await collect(await engine.open(chat(), new AbortController().signal))).at(-1)).toEqual({ type: 'finish', reason: 'length' });
    reason = 'content_filter';
    expect((await collect(await engine.open(chat(), new AbortController().signal))).at(-1)).toEqual({ type: 'finish', reason: 'stop' });
  });

  it("reports the stop string that ended the reply where the upstream names it (vLLM's stop_reason)", async () => {
    const upstream = await fakeWith({ steps: [...streamSteps(['a'], { tail: [] }), { write: sse({ choices: [{ index: 0, delta: {}, finish_reason: 'stop', stop_reason: 'END' }] }) }, { write: 'data: [DONE]\n\n' }] });
    const events = await collect(await engineFor(upstream).open(chat('hi', { stop: ['END'] }), new AbortController().signal));
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop', stopSequence: 'END' });
  });

  it('reassembles a UTF-8 character split across two TCP writes', async () => {
    const bytes = Buffer.from(sse(contentChunk('é🙂 ok')), 'utf8');
    // Cut inside the emoji's four bytes.
    const cut = bytes.indexOf(Buffer.from('🙂', 'utf8')) + 2;
    const upstream = await fakeWith({
      steps: [{ write: bytes.subarray(0, cut) }, { delayMs: 30 }, { write: bytes.subarray(cut) }, ...streamSteps([], { usage: null })],
    });
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('é🙂 ok');
    expect(textOf(events)).not.toContain('\uFFFD');
  });

  it('counts content chunks as usage when the upstream sends none', async () => {
    const upstream = await fakeWith(streamPlan(['a', 'b', 'c'], { usage: null }));
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(tail(events)).toEqual([
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 3 } },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('passes the sampling parameters and stream_options through', async () => {
    const upstream = await fakeWith(streamPlan(['ok']));
    const request: GenerationRequest = {
      model: 'fake-model',
      input: { kind: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }] },
      sampling: { maxTokens: 17, temperature: 0.25, topP: 0.9, seed: 42, stop: ['\n\n', 'END'] },
    };
    await collect(await engineFor(upstream).open(request, new AbortController().signal));
    const [received] = upstream.generations();
    expect(received?.path).toBe('/v1/chat/completions');
    expect(received?.body).toEqual({
      model: 'fake-model',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 17,
      temperature: 0.25,
      top_p: 0.9,
      seed: 42,
      stop: ['\n\n', 'END'],
    });
  });

  it('sends no sampling fields the request did not set', async () => {
    const upstream = await fakeWith(streamPlan(['ok']));
    await collect(await engineFor(upstream).open(chat('hi', { stop: [] }), new AbortController().signal));
    expect(Object.keys(upstream.generations()[0]?.body as object).sort()).toEqual(['messages', 'model', 'stream', 'stream_options']);
  });

  it('uses /completions and choices[0].text for text input', async () => {
    const upstream = await fakeWith(streamPlan(['Once', ' upon', ' a time'], { kind: 'text' }));
    const events = await collect(
      await engineFor(upstream).open({ model: 'fake-model', input: { kind: 'text', prompt: 'Tell me' }, sampling: { maxTokens: 3 } }, new AbortController().signal),
    );
    expect(textOf(events)).toBe('Once upon a time');
    const [received] = upstream.generations();
    expect(received?.path).toBe('/v1/completions');
    expect(received?.body).toMatchObject({ prompt: 'Tell me', max_tokens: 3, stream: true, stream_options: { include_usage: true } });
  });

  it('sends the API key as a Bearer token', async () => {
    const upstream = await fakeWith(streamPlan(['ok']));
    await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(upstream.generations()[0]?.headers['authorization']).toBe(`Bearer ${API_KEY}`);
    const keyless = await fakeWith(streamPlan(['ok']));
    await collect(await engineFor(keyless, { apiKey: '' }).open(chat(), new AbortController().signal));
    expect(keyless.generations()[0]?.headers['authorization']).toBeUndefined();
  });

  it('drops unknown SSE event types and comments; only plain data events are relayed', async () => {
    const upstream = await fakeWith({
      steps: [
        { write: ': keep-alive\n\n' },
        { write: sse(contentChunk('one ')) },
        { write: sse(contentChunk('INJECTED'), 'custom') },
        { write: `event: message\ndata: ${JSON.stringify(contentChunk('two'))}\n\n` },
        { write: 'retry: 10\nid: 7\n\n' },
        ...streamSteps([]),
      ],
    });
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('one two');
    expect(events.map((event) => event.type)).toEqual(['text-delta', 'text-delta', 'usage', 'finish']);
  });

  it('reassembles multi-line data fields', async () => {
    const json = JSON.stringify(contentChunk('multi'), null, 1).split('\n');
    const upstream = await fakeWith({ steps: [{ write: `${json.map((line) => `data: ${line}`).join('\n')}\n\n` }, ...streamSteps([])] });
    expect(textOf(await collect(await engineFor(upstream).open(chat(), new AbortController().signal)))).toBe('multi');
  });

  it('turns an `event: error` into an in-stream error, never a normal finish', async () => {
    const upstream = await fakeWith({
      steps: [{ write: sse(contentChunk('partial')) }, { write: sse({ error: { message: 'CUDA out of memory' } }, 'error') }, ...streamSteps([])],
    });
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('partial');
    expect(tail(events)).toEqual([
      { type: 'error', code: 'upstream_error', message: expect.stringContaining('CUDA out of memory') as string },
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 1 } },
      { type: 'finish', reason: 'error' },
    ]);
  });

  it('treats a stream that ends without [DONE] or finish_reason as an error', async () => {
    const upstream = await fakeWith(streamPlan(['a', 'b'], { finishReason: null, usage: null, done: false }));
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('ab');
    expect(tail(events).map((event) => event.type)).toEqual(['error', 'usage', 'finish']);
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'error' });
  });

  it('accepts a stream that has a finish_reason but no [DONE]', async () => {
    const upstream = await fakeWith(streamPlan(['a'], { done: false }));
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' });
  });

  it('reports active requests in load() and frees them at the end', async () => {
    const upstream = await fakeWith(streamPlan(['a', 'b'], { delayMs: 50 }));
    const engine = engineFor(upstream);
    const generation = await engine.open(chat(), new AbortController().signal);
    expect(engine.load()).toEqual({ active: 1, queued: 0, capacity: Number.POSITIVE_INFINITY });
    await collect(generation);
    expect(engine.load().active).toBe(0);
  });

  it('streams in the shape the official openai SDK parses (the fake is realistic)', async () => {
    const upstream = await fakeWith(streamPlan(['Hi', ' there']));
    const client = new OpenAI({ baseURL: upstream.url, apiKey: API_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hi there');
  });
});

describe('OpenAICompatibleEngine: errors before the first byte', () => {
  it('passes a 4xx through with its status, message and param', async () => {
    const upstream = await fakeWith(errorPlan(400, 'max_tokens must be at most 4096', { param: 'max_tokens', code: 'invalid_value' }));
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'invalid_request', status: 400, message: 'max_tokens must be at most 4096', param: 'max_tokens' });
  });

  it('keeps other 4xx statuses', async () => {
    const upstream = await fakeWith(jsonPlan(422, { object: 'error', message: 'bad stop', type: 'BadRequestError', param: 'stop', code: 422 }));
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'invalid_request', status: 422, message: 'bad stop', param: 'stop' });
  });

  it('maps a 404 on a model to model_not_found', async () => {
    const upstream = await fakeWith(errorPlan(404, 'The model `nope` does not exist.', { code: 'model_not_found' }));
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'model_not_found', status: 404, message: 'The model `nope` does not exist.', param: 'model' });
  });

  it('maps a 429 to a 429 with the upstream Retry-After', async () => {
    const upstream = await fakeWith(errorPlan(429, 'Rate limit reached', { type: 'rate_limit_error', headers: { 'retry-after': '7' } }));
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'queue_full', status: 429, retryAfterSeconds: 7, message: 'Rate limit reached' });
  });

  it('maps a 5xx to upstream_error (502) naming the upstream and its host', async () => {
    const upstream = await fakeWith(errorPlan(500, 'engine crashed', { type: 'server_error' }));
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'upstream_error', status: 502 });
    expect(error.message).toContain('fake-vllm');
    expect(error.message).toContain(`127.0.0.1:${upstream.port}`);
  });

  it('maps connection refused to engine_unavailable (503) naming the upstream', async () => {
    const port = await refusedPort();
    const engine = new OpenAICompatibleEngine({ name: 'gone', baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: API_KEY, models: ['m'], stallTimeoutMs: 5000, totalTimeoutMs: 5000 });
    engines.push(engine);
    const error = await rejection(engine.open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'engine_unavailable', status: 503 });
    expect(error.message).toContain('"gone"');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(engine.load().active).toBe(0);
  });

  it('maps missing headers within connectTimeoutMs to upstream_timeout (504)', async () => {
    const upstream = await fakeWith({ ...streamPlan(['late']), headerDelayMs: 2_000 });
    const started = performance.now();
    const error = await rejection(engineFor(upstream, { connectTimeoutMs: 200 }).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'upstream_timeout', status: 504 });
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('rejects a 200 that is neither an event stream nor a JSON answer', async () => {
    const upstream = await fakeWith({ headers: { 'content-type': 'text/html' }, steps: [{ write: '<h1>proxy login</h1>' }] });
    const error = await rejection(engineFor(upstream).open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'upstream_error', status: 502 });
  });

  it('relays a 200 JSON answer from an upstream that ignored stream: true', async () => {
    const upstream = await fakeWith(jsonPlan(200, { choices: [{ message: { role: 'assistant', content: 'not streamed' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2 } }));
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(events).toEqual([
      { type: 'text-delta', text: 'not streamed' },
      { type: 'usage', usage: { promptTokens: 3, completionTokens: 2 } },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('never puts the API key in an error message', async () => {
    const echoing = await fakeWith((body) =>
      (body as { max_tokens?: number }).max_tokens === 1
        ? errorPlan(400, `bad request from key ${API_KEY}`)
        : (body as { max_tokens?: number }).max_tokens === 2
          ? errorPlan(401, `Incorrect API key provided: ${API_KEY}`, { type: 'authentication_error' })
          : errorPlan(500, `crash while serving ${API_KEY}`),
    );
    const engine = engineFor(echoing);
    const messages: string[] = [];
    for (const maxTokens of [1, 2, 3]) {
      const error = await rejection(engine.open(chat('hi', { maxTokens }), new AbortController().signal));
      messages.push(error.message);
    }
    const port = await refusedPort();
    const refused = engineFor(echoing, { baseUrl: `http://127.0.0.1:${port}/v1` });
    messages.push((await rejection(refused.open(chat(), new AbortController().signal))).message);
    expect(messages).toHaveLength(4);
    for (const message of messages) expect(message).not.toContain(API_KEY);
    // Our own credentials being refused is not the client's fault: not a 401 to them.
    const unauthorized = await rejection(engine.open(chat('hi', { maxTokens: 2 }), new AbortController().signal));
    expect(unauthorized).toMatchObject({ code: 'upstream_error', status: 502 });
  });
});

describe('OpenAICompatibleEngine: failures after the first byte', () => {
  it('turns a destroyed socket into an in-stream error and finish error', async () => {
    const upstream = await fakeWith(streamPlan(['one', ' two'], { tail: [{ delayMs: 20 }, { destroy: true }] }));
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('one two');
    const [error, usage, finish] = tail(events);
    expect(error).toMatchObject({ type: 'error', code: 'upstream_error' });
    expect(error?.type === 'error' && error.message).toContain('fake-vllm');
    expect(usage).toEqual({ type: 'usage', usage: { promptTokens: 0, completionTokens: 2 } });
    expect(finish).toEqual({ type: 'finish', reason: 'error' });
  });

  it('times out a stalled stream in-stream, keep-alives notwithstanding, and closes the upstream socket', async () => {
    const upstream = await fakeWith(streamPlan(['a'], { tail: [{ keepAlive: { everyMs: 50, forMs: 5_000 } }, { stall: true }] }));
    const started = performance.now();
    const events = await collect(await engineFor(upstream, { stallTimeoutMs: 300 }).open(chat(), new AbortController().signal));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(textOf(events)).toBe('a');
    expect(tail(events)).toEqual([
      { type: 'error', code: 'upstream_timeout', message: expect.stringContaining('fake-vllm') as string },
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 1 } },
      { type: 'finish', reason: 'error' },
    ]);
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
  });

  it('does not count role-only and empty deltas as progress', async () => {
    const empty = sse({ choices: [{ index: 0, delta: { content: '' }, finish_reason: null }] });
    const role = sse({ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] });
    const steps = Array.from({ length: 40 }, (_, i) => [{ write: i % 2 === 0 ? empty : role }, { delayMs: 50 }]).flat();
    const upstream = await fakeWith({ steps: [...steps, ...streamSteps(['never'])] });
    const events = await collect(await engineFor(upstream, { stallTimeoutMs: 300 }).open(chat(), new AbortController().signal));
    expect(tail(events)[0]).toMatchObject({ type: 'error', code: 'upstream_timeout' });
  });

  it('does not time out a slow stream that keeps producing text', async () => {
    const upstream = await fakeWith(streamPlan(['a', 'b', 'c', 'd', 'e', 'f'], { delayMs: 100 }));
    const events = await collect(await engineFor(upstream, { stallTimeoutMs: 250 }).open(chat(), new AbortController().signal));
    expect(textOf(events)).toBe('abcdef');
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' });
  });

  it('does not blame the upstream for a slow consumer', async () => {
    const upstream = await fakeWith(streamPlan(['a', 'b', 'c']));
    const events: ChatEvent[] = [];
    for await (const event of await engineFor(upstream, { stallTimeoutMs: 150 }).open(chat(), new AbortController().signal)) {
      events.push(event);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(textOf(events)).toBe('abc');
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop' });
  });

  it('turns an error object inside a data chunk into an in-stream error', async () => {
    const upstream = await fakeWith({ steps: [{ write: sse(contentChunk('x')) }, { write: sse({ error: { object: 'error', message: 'decoder crashed', code: 500 } }) }, { stall: true }] });
    const events = await collect(await engineFor(upstream).open(chat(), new AbortController().signal));
    expect(tail(events)).toEqual([
      { type: 'error', code: 'upstream_error', message: expect.stringContaining('decoder crashed') as string },
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 1 } },
      { type: 'finish', reason: 'error' },
    ]);
    // The upstream may still be generating; it is told to stop.
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
  });

  it('bounds the whole request by totalTimeoutMs', async () => {
    const upstream = await fakeWith(streamPlan(Array.from({ length: 100 }, () => 'x'), { delayMs: 20 }));
    const events = await collect(await engineFor(upstream, { totalTimeoutMs: 300 }).open(chat(), new AbortController().signal));
    expect(tail(events)[0]).toMatchObject({ type: 'error', code: 'upstream_timeout' });
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'error' });
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
  });
});

describe('OpenAICompatibleEngine: cancellation', () => {
  it('aborts the upstream at once when the client leaves, and finishes cancelled', async () => {
    const upstream = await fakeWith(streamPlan(Array.from({ length: 200 }, (_, i) => `t${i} `), { delayMs: 25 }));
    const engine = engineFor(upstream);
    const controller = new AbortController();
    const events: ChatEvent[] = [];
    let abortedAt = 0;
    for await (const event of await engine.open(chat(), controller.signal)) {
      events.push(event);
      if (events.length === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    const record = upstream.generations()[0]!;
    expect(await closedWithin(record.closed, 1_000)).toBe(true);
    expect(record.closedAt! - abortedAt).toBeLessThan(200);
    expect(events.slice(0, 3).every((event) => event.type === 'text-delta')).toBe(true);
    expect(tail(events)).toEqual([
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 3 } },
      { type: 'finish', reason: 'cancelled' },
    ]);
    expect(events.length).toBeLessThanOrEqual(6);
    expect(engine.load().active).toBe(0);
  });

  it('aborts the upstream when the consumer breaks out of the loop', async () => {
    const upstream = await fakeWith(streamPlan(Array.from({ length: 200 }, () => 'x'), { delayMs: 25 }));
    const engine = engineFor(upstream);
    for await (const event of await engine.open(chat(), new AbortController().signal)) {
      if (event.type === 'text-delta') break;
    }
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
    expect(engine.load().active).toBe(0);
  });

  it('aborts before the first byte: the upstream sees the close and the generation is cancelled', async () => {
    const upstream = await fakeWith({ ...streamPlan(['late']), headerDelayMs: 5_000 });
    const controller = new AbortController();
    const opening = engineFor(upstream).open(chat(), controller.signal);
    while (upstream.generations().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    const events = await collect(await opening);
    expect(events).toEqual([
      { type: 'usage', usage: { promptTokens: 0, completionTokens: 0 } },
      { type: 'finish', reason: 'cancelled' },
    ]);
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
  });

  it('close() aborts in-flight requests', async () => {
    const upstream = await fakeWith(streamPlan(Array.from({ length: 200 }, () => 'x'), { delayMs: 25 }));
    const engine = engineFor(upstream);
    const generation = await engine.open(chat(), new AbortController().signal);
    const done = collect(generation);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await engine.close();
    expect((await done).at(-1)).toEqual({ type: 'finish', reason: 'cancelled' });
    expect(await closedWithin(upstream.generations()[0]!.closed, 1_000)).toBe(true);
    await expect(engine.open(chat(), new AbortController().signal)).rejects.toMatchObject({ code: 'engine_unavailable' });
  });
});

describe('OpenAICompatibleEngine: discovery', () => {
  it('discovers models from GET /models', async () => {
    const upstream = await fake({ models: ['llama-3-8b', 'qwen-2.5'] });
    const bare = new OpenAICompatibleEngine({ name: 'vllm-a', baseUrl: upstream.url, apiKey: API_KEY, stallTimeoutMs: 1000, totalTimeoutMs: 1000 });
    engines.push(bare);
    await bare.discover();
    expect(bare.models().map(({ id, ownedBy }) => ({ id, ownedBy }))).toEqual([
      { id: 'llama-3-8b', ownedBy: 'vllm-a' },
      { id: 'qwen-2.5', ownedBy: 'vllm-a' },
    ]);
    expect(bare.lastError).toBeUndefined();
    expect(upstream.requests[0]).toMatchObject({ method: 'GET', path: '/v1/models' });
    expect(upstream.requests[0]?.headers['authorization']).toBe(`Bearer ${API_KEY}`);
  });

  it('leaves the list empty and records the error when discovery fails, without throwing', async () => {
    const port = await refusedPort();
    const engine = new OpenAICompatibleEngine({ name: 'down', baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: API_KEY, stallTimeoutMs: 1000, totalTimeoutMs: 1000 });
    engines.push(engine);
    await engine.discover();
    expect(engine.models()).toEqual([]);
    expect(engine.lastError).toMatchObject({ code: 'engine_unavailable' });
    expect(engine.lastError?.message).not.toContain(API_KEY);
  });

  it('keeps the last known models when a later discovery fails', async () => {
    const upstream = await fake({ models: ['kept'] });
    const engine = new OpenAICompatibleEngine({ name: 'blip', baseUrl: upstream.url, stallTimeoutMs: 1000, totalTimeoutMs: 1000 });
    engines.push(engine);
    await engine.discover();
    upstream.script = () => errorPlan(503, 'restarting');
    await engine.discover();
    expect(engine.models().map((model) => model.id)).toEqual(['kept']);
    expect(engine.lastError).toMatchObject({ code: 'upstream_error' });
    upstream.script = () => undefined;
    await engine.discover();
    expect(engine.lastError).toBeUndefined();
  });

  it('does not ask the upstream when models are configured', async () => {
    const upstream = await fake();
    const engine = engineFor(upstream, { models: ['pinned'] });
    await engine.discover();
    expect(engine.models().map(({ id, ownedBy }) => ({ id, ownedBy }))).toEqual([{ id: 'pinned', ownedBy: 'fake-vllm' }]);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('BalancedEngine', () => {
  function balanced(members: readonly FakeUpstream[], options: { cooldownMs?: number; now?: () => number } = {}): BalancedEngine {
    const engine = new BalancedEngine({
      name: 'pool',
      engines: members.map((upstream, i) => new OpenAICompatibleEngine({ name: `u${i}`, baseUrl: upstream.url, models: ['fake-model'], stallTimeoutMs: 5000, totalTimeoutMs: 30_000 })),
      ...options,
    });
    engines.push(engine);
    return engine;
  }

  it('fails over before the first byte and cools the failed upstream down', async () => {
    const broken = await fakeWith(errorPlan(500, 'down', { type: 'server_error' }));
    const healthy = await fakeWith(streamPlan(['served']));
    // With nothing outstanding anywhere, the first member is the first pick.
    const pool = balanced([broken, healthy]);
    expect(textOf(await collect(await pool.open(chat(), new AbortController().signal)))).toBe('served');
    expect(broken.generations()).toHaveLength(1);
    expect(healthy.generations()).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(textOf(await collect(await pool.open(chat(), new AbortController().signal)))).toBe('served');
    expect(broken.generations()).toHaveLength(1);
    expect(healthy.generations()).toHaveLength(4);
  });

  it('tries a cooled-down upstream again once the cool-down is over', async () => {
    let clock = 0;
    let healed = false;
    const flaky = await fakeWith(() => (healed ? streamPlan(['flaky']) : errorPlan(502, 'bad gateway')));
    const healthy = await fakeWith(streamPlan(['healthy', ' and slow'], { delayMs: 100 }));
    const pool = balanced([flaky, healthy], { cooldownMs: 1_000, now: () => clock });
    await collect(await pool.open(chat(), new AbortController().signal));
    expect(flaky.generations()).toHaveLength(1);
    healed = true;
    clock = 1_001;
    // Two requests at once cannot both go to the least-loaded healthy one, so the flaky one, out of its cool-down, gets one.
    const first = await pool.open(chat(), new AbortController().signal);
    const second = await pool.open(chat(), new AbortController().signal);
    const texts = (await Promise.all([collect(first), collect(second)])).map(textOf).sort();
    expect(texts).toEqual(['flaky', 'healthy and slow']);
    expect(flaky.generations()).toHaveLength(2);
  });

  it('fails over on connection refused', async () => {
    const port = await refusedPort();
    const healthy = await fakeWith(streamPlan(['ok']));
    const pool = new BalancedEngine({
      name: 'pool',
      engines: [
        new OpenAICompatibleEngine({ name: 'gone', baseUrl: `http://127.0.0.1:${port}/v1`, models: ['fake-model'], stallTimeoutMs: 5000, totalTimeoutMs: 5000 }),
        new OpenAICompatibleEngine({ name: 'ok', baseUrl: healthy.url, models: ['fake-model'], stallTimeoutMs: 5000, totalTimeoutMs: 5000 }),
      ],
    });
    engines.push(pool);
    for (let i = 0; i < 2; i++) expect(textOf(await collect(await pool.open(chat(), new AbortController().signal)))).toBe('ok');
  });

  it('retries only once', async () => {
    const fakesDown = await Promise.all([0, 1, 2].map(() => fakeWith(errorPlan(503, 'overloaded', { type: 'server_error' }))));
    const pool = balanced(fakesDown);
    const error = await rejection(pool.open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'upstream_error', status: 502 });
    expect(fakesDown.reduce((sum, upstream) => sum + upstream.generations().length, 0)).toBe(2);
  });

  it('does not retry a 4xx', async () => {
    const a = await fakeWith(errorPlan(400, 'bad temperature', { param: 'temperature' }));
    const b = await fakeWith(errorPlan(400, 'bad temperature', { param: 'temperature' }));
    const pool = balanced([a, b]);
    const error = await rejection(pool.open(chat(), new AbortController().signal));
    expect(error).toMatchObject({ code: 'invalid_request', status: 400, param: 'temperature' });
    expect(a.generations().length + b.generations().length).toBe(1);
  });

  it('does not retry after the first byte: the error is in-stream and the upstream saw one request', async () => {
    const a = await fakeWith(streamPlan(['half'], { tail: [{ delayMs: 20 }, { destroy: true }] }));
    const b = await fakeWith(streamPlan(['half'], { tail: [{ delayMs: 20 }, { destroy: true }] }));
    const pool = balanced([a, b]);
    const events = await collect(await pool.open(chat(), new AbortController().signal));
    expect(tail(events).map((event) => event.type)).toEqual(['error', 'usage', 'finish']);
    expect(events.at(-1)).toEqual({ type: 'finish', reason: 'error' });
    expect(a.generations().length + b.generations().length).toBe(1);
  });

  it('sends concurrent requests to the upstream with the fewest outstanding', async () => {
    const slow = streamPlan(['s', 'l', 'o', 'w'], { delayMs: 100 });
    const a = await fakeWith(slow);
    const b = await fakeWith(slow);
    const pool = balanced([a, b]);
    const first = await pool.open(chat(), new AbortController().signal);
    const second = await pool.open(chat(), new AbortController().signal);
    expect(pool.load().active).toBe(2);
    await Promise.all([collect(first), collect(second)]);
    expect(a.generations()).toHaveLength(1);
    expect(b.generations()).toHaveLength(1);
  });

  it('tries the least recently failed upstream when all are cooling down', async () => {
    let clock = 1_000;
    let healed = false;
    const a = await fakeWith(() => (healed ? streamPlan(['a healed']) : errorPlan(500, 'a down')));
    const b = await fakeWith(() => (healed ? streamPlan(['b healed']) : errorPlan(500, 'b down')));
    const pool = balanced([a, b], { now: () => clock++ });
    // a is tried first and fails first, then b on the retry.
    await rejection(pool.open(chat(), new AbortController().signal));
    expect([a.generations().length, b.generations().length]).toEqual([1, 1]);
    healed = true;
    expect(textOf(await collect(await pool.open(chat(), new AbortController().signal)))).toBe('a healed');
  });

  it('lists the union of its members models', () => {
    const make = (name: string, models: string[]): OpenAICompatibleEngine =>
      new OpenAICompatibleEngine({ name, baseUrl: 'http://127.0.0.1:9/v1', models, stallTimeoutMs: 1000, totalTimeoutMs: 1000 });
    const pool = new BalancedEngine({ name: 'pool', engines: [make('x', ['m1', 'm2']), make('y', ['m2', 'm3'])] });
    expect(pool.models().map((model) => model.id)).toEqual(['m1', 'm2', 'm3']);
  });

  it('rejects a model no member serves', async () => {
    const upstream = await fake();
    const pool = balanced([upstream]);
    await expect(pool.open({ ...chat(), model: 'other' }, new AbortController().signal)).rejects.toMatchObject({ code: 'model_not_found' });
  });
});

describe('upstream config', () => {
  it('parses --upstream with and without a name', () => {
    expect(parseUpstreamFlag('http://gpu-1:8000/v1')).toEqual({ name: 'gpu-1:8000', baseUrl: 'http://gpu-1:8000/v1', stallTimeoutMs: 30_000, totalTimeoutMs: 600_000 });
    expect(parseUpstreamFlag('vllm=http://gpu-1:8000/v1/')).toMatchObject({ name: 'vllm', baseUrl: 'http://gpu-1:8000/v1' });
    expect(() => parseUpstreamFlag('ftp://x/v1')).toThrow(/--upstream/);
    expect(() => parseUpstreamFlag('http://user:secret@h/v1')).toThrow(/credentials/);
    expect(() => parseUpstreamFlag('http://user:secret@h/v1')).not.toThrow(/secret/);
  });

  it('resolves the key from the named environment variable', () => {
    const config = { ...parseUpstreamFlag('http://h:1/v1'), apiKeyEnv: 'UPSTREAM_KEY' };
    expect(upstreamEngineOptions(config, { UPSTREAM_KEY: 'k' })).toMatchObject({ apiKey: 'k', baseUrl: 'http://h:1/v1', name: 'h:1' });
    expect(() => upstreamEngineOptions(config, {})).toThrow(/UPSTREAM_KEY/);
  });
});
