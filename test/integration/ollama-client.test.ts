/**
 * ollama-js, the official Ollama client, against Parlance's `/api/*`: the embedded tiny model (real llama.cpp)
 * and the scripted engine (predictable text), with an API key required. Also the name clash: Parlance's own
 * API under /parlance/api, its old paths kept.
 */
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineLoad, metricValue, waitFor } from '../adversarial/helpers.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const key = 'ollama-test-key-0123456789';
const tiny = 'parlance-tiny';
const scripted = 'parlance-scripted';
const auth = { authorization: `Bearer ${key}` };
let server: TestServer;
let ollama: Ollama;
const post = (path: string, body: unknown, headers: Record<string, string> = auth, signal?: AbortSignal) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

beforeAll(async () => {
  server = await startTestServer({ scripted: true, apiKeys: [{ name: 'test', key }], ...noShedding });
  ollama = new Ollama({ host: server.url, headers: auth });
});
afterAll(async () => server.stop());

describe('models', () => {
  it('list, ps and show describe the served models', async () => {
    const listed = await ollama.list();
    expect(listed.models.map((model) => model.name)).toEqual(expect.arrayContaining([tiny, scripted]));
    const entry = listed.models.find((model) => model.name === tiny);
    expect(entry).toMatchObject({ model: tiny, details: { format: 'gguf' } });
    expect(entry?.digest).toMatch(/^[0-9a-f]{64}$/);

    const running = await ollama.ps();
    expect(running.models.find((model) => model.name === tiny)).toMatchObject({ model: tiny, context_length: 1024 });

    const shown = await ollama.show({ model: tiny });
    expect(shown.capabilities).toEqual(expect.arrayContaining(['completion', 'tools', 'embedding']));
    expect(shown.capabilities).not.toContain('thinking'); // the tiny model's template separates no thinking
    const info = shown.model_info as unknown as Record<string, unknown>;
    expect(info[`${String(info['general.architecture'])}.context_length`]).toBe(1024);

    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('an unknown model is a 404 whose message ollama-js prints as it is', async () => {
    const refused = ollama.show({ model: 'no-such-model' });
    await expect(refused).rejects.toMatchObject({ name: 'ResponseError', status_code: 404, message: "model 'no-such-model' not found" });
    await expect(ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow("model 'no-such-model' not found");
  });
});

describe('chat', () => {
  it('streams the reply in several parts, then a done object with counts and nanosecond durations (embedded model)', async () => {
    const request = { model: tiny, messages: [{ role: 'user', content: 'Tell me a story.' }], options: { num_predict: 8, seed: 42, temperature: 0.9 } };
    const parts = await ollama.chat({ ...request, stream: true });
    const texts: string[] = [];
    let last: Awaited<ReturnType<typeof ollama.chat>> | undefined;
    for await (const part of parts) {
      if (!part.done) texts.push(part.message.content);
      last = part;
    }
    expect(texts.length).toBeGreaterThan(1);
    expect(last).toMatchObject({ model: tiny, done: true, done_reason: 'length', eval_count: 8, message: { role: 'assistant', content: '' } });
    expect(last?.prompt_eval_count).toBeGreaterThan(5);
    for (const field of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'] as const) expect(Number.isInteger(last?.[field])).toBe(true);
    expect(last!.total_duration).toBeGreaterThanOrEqual(last!.eval_duration + last!.prompt_eval_duration);
    // The same seed without streaming gives the same text: the options reach the model.
    const whole = await ollama.chat({ ...request, stream: false });
    expect(whole.message.content).toBe(texts.join(''));
    expect(whole.done_reason).toBe('length');
    expect(whole.eval_duration).toBeGreaterThan(0);
  });

  it('honours num_predict, stop and num_ctx (scripted echo)', async () => {
    const ask = async (options: Record<string, unknown>) => (await ollama.chat({ model: scripted, messages: [{ role: 'user', content: 'one two three four five six' }], options })).message.content;
    expect(await ask({})).toBe('one two three four five six');
    expect(await ask({ num_predict: 2 })).toBe('one two');
    expect(await ask({ stop: [' four'] })).toBe('one two three');
    // The scripted prompt takes 10 tokens (6 words + 4 for the turn): a context of 12 leaves room for 2.
    const bounded = await ollama.chat({ model: scripted, messages: [{ role: 'user', content: 'one two three four five six' }], options: { num_ctx: 12 } });
    expect(bounded).toMatchObject({ message: { content: 'one two' }, done_reason: 'length' });
  });

  it('writes NDJSON: one object per line, each a whole JSON value (fetch, scripted echo)', async () => {
    const response = await post('/api/chat', { model: scripted, messages: [{ role: 'user', content: 'red green' }] });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const raw = await response.text();
    expect(raw.endsWith('\n')).toBe(true);
    const lines = raw.slice(0, -1).split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => (line['message'] as { content: string }).content)).toEqual(['red', ' green', '']);
    expect(lines.map((line) => line['done'])).toEqual([false, false, true]);
    for (const line of lines) expect(new Date(String(line['created_at'])).toISOString()).toBe(String(line['created_at']));
    expect(lines.at(-1)).toMatchObject({ done_reason: 'stop', prompt_eval_count: 6, eval_count: 2 });
  });

  it('answers an empty chat by loading the model, as Ollama does', async () => {
    expect(await ollama.chat({ model: scripted, messages: [] })).toMatchObject({ done: true, done_reason: 'load' });
  });

  it('stops the generation when the client goes away', async () => {
    const cancelled = async () => metricValue(await (await fetch(`${server.url}/metrics`, { headers: auth })).text(), 'parlance_generations_total', { reason: 'cancelled', engine: 'llama' });
    const before = await cancelled();
    const controller = new AbortController();
    const response = await post('/api/chat', { model: tiny, messages: [{ role: 'user', content: 'Go on.' }], options: { num_predict: 900 } }, auth, controller.signal);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    expect(await waitFor(cancelled, (count) => count > before)).toBe(before + 1);
    expect((await waitFor(() => engineLoad(server.url, auth), (load) => load.busy === 0)).busy).toBe(0);
  });
});

describe('generate', () => {
  it('streams a continuation of the prompt, and answers one object with stream: false (embedded model)', async () => {
    const parts = await ollama.generate({ model: tiny, prompt: 'Once upon a time', stream: true, options: { num_predict: 6, seed: 1 } });
    const texts: string[] = [];
    for await (const part of parts) if (!part.done) texts.push(part.response ?? '');
    expect(texts.length).toBeGreaterThan(1);
    const whole = await ollama.generate({ model: tiny, prompt: 'Once upon a time', options: { num_predict: 6, seed: 1 } });
    expect(whole).toMatchObject({ done: true, done_reason: 'length', eval_count: 6, response: texts.join('') });
  });

  it('raw sends the prompt as it is; system goes in as a system turn (scripted echo)', async () => {
    expect((await ollama.generate({ model: scripted, prompt: 'plain words here', raw: true })).response).toBe('plain words here');
    const templated = await ollama.generate({ model: scripted, prompt: 'hi there', system: 'be kind' });
    expect(templated.response).toBe('hi there');
    // The system prompt counts: 2 words + 4 for its turn.
    const bare = await ollama.generate({ model: scripted, prompt: 'hi there' });
    expect(templated.prompt_eval_count - bare.prompt_eval_count).toBe(6);
  });
});

describe('tools and formats', () => {
  const weather = { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } } };

  it('answers with tool calls, their arguments parsed, streamed and not (scripted)', async () => {
    const request = { model: scripted, tools: [weather], messages: [{ role: 'user', content: 'call get_weather please' }] };
    const whole = await ollama.chat(request);
    expect(whole.message.tool_calls).toEqual([{ function: { name: 'get_weather', arguments: { city: expect.stringMatching(/^(Paris|Rome)$/) } } }]);
    expect(whole.done_reason).toBe('stop');
    const parts = await ollama.chat({ ...request, stream: true });
    const calls = [];
    for await (const part of parts) calls.push(...(part.message.tool_calls ?? []));
    expect(calls).toEqual(whole.message.tool_calls);
  });

  it('sends tool results back by tool name, and the model answers from them (scripted)', async () => {
    const answer = await ollama.chat({
      model: scripted,
      tools: [weather],
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: 'sunny', tool_name: 'get_weather' },
      ],
    });
    expect(answer.message.content).toBe('get_weather returned sunny.');
  });

  it('format: a schema makes the reply JSON that fits it, and "json" makes it a JSON object (embedded model)', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] }, sure: { type: 'boolean' } }, required: ['answer', 'sure'] };
    const fitted = JSON.parse((await ollama.chat({ model: tiny, format: schema, messages: [{ role: 'user', content: 'Answer in JSON.' }], options: { num_predict: 200 } })).message.content) as Record<string, unknown>;
    expect(['yes', 'no']).toContain(fitted['answer']);
    expect(typeof fitted['sure']).toBe('boolean');
    const object = await ollama.generate({ model: scripted, format: 'json', prompt: 'hello' });
    expect(JSON.parse(object.response ?? '')).toEqual({ echo: 'hello' });
  });
});

describe('what cannot be honoured is refused by name, readably', () => {
  it.each([
    [scripted, { options: { top_k: 5 } }, 'options.top_k'],
    [scripted, { options: { repeat_penalty: 1.3 } }, 'options.repeat_penalty'],
    [tiny, { options: { mirostat: 2 } }, 'options.mirostat'],
    [tiny, { options: { num_ctx: 1_000_000 } }, 'options.num_ctx'],
    [tiny, { think: true }, 'think'],
    [tiny, { think: 'high' }, 'think'],
    [tiny, { logprobs: true }, 'logprobs'],
    [tiny, { messages: [{ role: 'user', content: 'what is this?', images: ['iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='] }] }, 'images'],
  ])('%s %j', async (model, extra, field) => {
    const refused = ollama.chat({ model, messages: [{ role: 'user', content: 'x' }], ...extra } as Parameters<typeof ollama.chat>[0] & { stream?: false });
    await expect(refused).rejects.toMatchObject({ name: 'ResponseError', status_code: 400, message: expect.stringContaining(field) });
  });

  it('generate refuses template, suffix and context', async () => {
    await expect(ollama.generate({ model: tiny, prompt: 'x', template: '{{ .Prompt }}' })).rejects.toThrow('template');
    await expect(ollama.generate({ model: tiny, prompt: 'x', suffix: 'y' })).rejects.toThrow('suffix');
    await expect(ollama.generate({ model: tiny, prompt: 'x', context: [1, 2] })).rejects.toThrow('context');
  });
});

describe('embed', () => {
  it('embeds one text or several, deterministically (embedded model)', async () => {
    const one = await ollama.embed({ model: tiny, input: 'hello world' });
    expect(one.embeddings).toHaveLength(1);
    const width = one.embeddings[0]?.length ?? 0;
    expect(width).toBeGreaterThan(0);
    const many = await ollama.embed({ model: tiny, input: ['hello world', 'something else'] });
    expect(many.embeddings.map((vector) => vector.length)).toEqual([width, width]);
    expect(many.embeddings[0]).toEqual(one.embeddings[0]);
    expect(many.embeddings[1]).not.toEqual(one.embeddings[0]);
    expect(many.prompt_eval_count).toBeGreaterThan(one.prompt_eval_count);
  });

  it('says readably when a model cannot embed', async () => {
    await expect(ollama.embed({ model: scripted, input: 'x' })).rejects.toMatchObject({ status_code: 400, message: expect.stringContaining("'parlance-scripted' cannot embed") });
  });
});

describe('keys, routes, metrics and docs', () => {
  it('needs the API key, and says so in Ollama error shape', async () => {
    const anonymous = await fetch(`${server.url}/api/tags`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: expect.stringContaining('API key') });
  });

  it('answers routes Ollama has and Parlance does not with a readable 404, and a wrong method with 405', async () => {
    await expect(new Ollama({ host: server.url, headers: auth }).pull({ model: 'llama3' })).rejects.toMatchObject({ status_code: 404, message: 'No route for POST /api/pull.' });
    const wrong = await fetch(`${server.url}/api/tags`, { method: 'DELETE', headers: auth });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves Parlance’s own API under /parlance/api, and keeps the old /api paths', async () => {
    const created = await post('/parlance/api/conversations', { model: scripted });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const viaPrefix = await fetch(`${server.url}/parlance/api/conversations/${id}`, { headers: auth });
    const viaAlias = await fetch(`${server.url}/api/conversations/${id}`, { headers: auth });
    expect(viaPrefix.status).toBe(200);
    expect(await viaAlias.json()).toEqual(await viaPrefix.json());
    const reply = await post(`/parlance/api/conversations/${id}/messages`, { content: 'hello prefix' });
    expect(await reply.text()).toContain('event: done');
    expect((await fetch(`${server.url}/parlance/api/conversations`)).status).toBe(401);
  });

  it('documents the dialect and the prefixed API in /docs, not the aliases', async () => {
    const spec = (await (await fetch(`${server.url}/docs/json`, { headers: auth })).json()) as { paths: Record<string, unknown> };
    const paths = Object.keys(spec.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/chat', '/api/generate', '/api/tags', '/api/show', '/api/ps', '/api/version', '/api/embed', '/parlance/api/conversations']));
    expect(paths).not.toContain('/api/conversations');
  });

  it('counts its requests by route in /metrics', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
    expect(metricValue(metrics, 'parlance_http_requests_total', { route: '/api/chat', method: 'POST', status: '200' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'parlance_http_requests_total', { route: '/api/tags', method: 'GET', status: '200' })).toBeGreaterThan(0);
  });
});
