/**
 * Anthropic's official SDK against Parlance's `/v1/messages`: the embedded tiny model (real llama.cpp) and the
 * scripted engine (predictable text), with an API key required as a deployed server would.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineLoad, metricValue, waitFor } from '../adversarial/helpers.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const key = 'anthropic-test-key-0123456789';
const tiny = 'parlance-tiny';
const scripted = 'parlance-scripted';
let server: TestServer;
let client: Anthropic;
const auth = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
/** The whole prompt: Anthropic counts the tokens read from the prompt cache apart from `input_tokens`. */
const promptTokens = (usage: Anthropic.Usage): number => usage.input_tokens + (usage.cache_read_input_tokens ?? 0);
const post = (path: string, body: unknown, headers: Record<string, string> = auth, signal?: AbortSignal) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

beforeAll(async () => {
  server = await startTestServer({ scripted: true, apiKeys: [{ name: 'test', key }], ...noShedding });
  client = new Anthropic({ baseURL: server.url, apiKey: key, maxRetries: 0 });
});
afterAll(async () => server.stop());

describe('messages.create', () => {
  it('answers with a text block, stop_reason and exact usage (embedded model)', async () => {
    const message = await client.messages.create({ model: tiny, max_tokens: 12, system: 'You are terse.', messages: [{ role: 'user', content: 'Say hello.' }] });
    expect(message.type).toBe('message');
    expect(message.id).toMatch(/^msg_/);
    expect(message.role).toBe('assistant');
    expect(message.content).toHaveLength(1);
    const [block] = message.content;
    expect(block?.type).toBe('text');
    expect(block?.type === 'text' && block.text.length).toBeGreaterThan(0);
    // The tiny model never samples end-of-turn: 12 tokens always end on the limit.
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(12);
    expect(message.usage.input_tokens).toBeGreaterThan(5);
  });

  it('takes system as blocks, and a longer system prompt costs more input tokens', async () => {
    const ask = (system: Anthropic.TextBlockParam[]) => client.messages.create({ model: tiny, max_tokens: 1, system, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] });
    const short = await ask([{ type: 'text', text: 'Be brief.' }]);
    const long = await ask([{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'Answer in English, with short words, and never more than ten of them.' }]);
    expect(promptTokens(long.usage)).toBeGreaterThan(promptTokens(short.usage));
  });

  it('stops at a stop sequence and names it (scripted echo)', async () => {
    const message = await client.messages.create({ model: scripted, max_tokens: 50, stop_sequences: ['brown'], messages: [{ role: 'user', content: 'the quick brown fox' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'the quick ' }]);
    expect(message.stop_reason).toBe('stop_sequence');
    expect(message.stop_sequence).toBe('brown');
    const free = await client.messages.create({ model: scripted, max_tokens: 50, messages: [{ role: 'user', content: 'the quick brown fox' }] });
    expect(free.content).toEqual([{ type: 'text', text: 'the quick brown fox' }]);
    expect(free.stop_reason).toBe('end_turn');
  });

  it('honours max_tokens: a lower limit gives a shorter reply', async () => {
    const message = await client.messages.create({ model: scripted, max_tokens: 2, messages: [{ role: 'user', content: 'one two three four' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'one two' }]);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(2);
  });

  it('sends earlier tool use and tool results to the model as a tool turn', async () => {
    // The scripted model echoes the last user text: here the text after the tool result.
    const message = await client.messages.create({
      model: scripted,
      max_tokens: 20,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }, { type: 'text', text: 'thanks then' }] },
      ],
    });
    expect(message.content).toEqual([{ type: 'text', text: 'thanks then' }]);
  });
});

describe('messages.stream', () => {
  it('delivers the text in several steps, and the final message matches them (embedded model)', async () => {
    const stream = client.messages.stream({ model: tiny, max_tokens: 16, messages: [{ role: 'user', content: 'Tell me a story.' }] });
    const steps: string[] = [];
    stream.on('text', (text) => steps.push(text));
    const final = await stream.finalMessage();
    expect(steps.length).toBeGreaterThan(1);
    const [block] = final.content;
    expect(block?.type === 'text' ? block.text : undefined).toBe(steps.join(''));
    expect(final.stop_reason).toBe('max_tokens');
    expect(final.usage.output_tokens).toBe(16);
  });

  it('sends the exact event sequence (fetch, scripted echo)', async () => {
    const response = await post('/v1/messages', { model: scripted, max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'red green' }] });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const raw = await response.text();
    const id = /"id":"(msg_[0-9a-f]{32})"/.exec(raw)?.[1];
    expect(id).toBeDefined();
    expect(raw).toBe(
      `event: message_start\ndata: {"type":"message_start","message":{"id":"${id}","type":"message","role":"assistant","model":"${scripted}","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":6,"output_tokens":0}}}\n\n` +
        'event: ping\ndata: {"type":"ping"}\n\n' +
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"red"}}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" green"}}\n\n' +
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":6,"output_tokens":2}}\n\n' +
        'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });

  it('stops the generation when the client goes away', async () => {
    const cancelled = async () => metricValue(await (await fetch(`${server.url}/metrics`, { headers: auth })).text(), 'parlance_generations_total', { reason: 'cancelled', engine: 'llama' });
    const before = await cancelled();
    const controller = new AbortController();
    const response = await post('/v1/messages', { model: tiny, max_tokens: 900, stream: true, messages: [{ role: 'user', content: 'Go on.' }] }, auth, controller.signal);
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('content_block_delta')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(await waitFor(cancelled, (count) => count > before)).toBe(before + 1);
    expect((await waitFor(() => engineLoad(server.url, auth), (load) => load.busy === 0)).busy).toBe(0);
  });
});

describe('count_tokens', () => {
  it('counts what messages.create reports as its prompt (embedded model)', async () => {
    const request = { model: tiny, system: 'You are terse.', messages: [{ role: 'user' as const, content: 'How many tokens is this?' }] };
    const counted = await client.messages.countTokens(request);
    const created = await client.messages.create({ ...request, max_tokens: 1 });
    expect(counted.input_tokens).toBe(promptTokens(created.usage));
    const longer = await client.messages.countTokens({ ...request, messages: [{ role: 'user', content: 'How many tokens is this longer question, then?' }] });
    expect(longer.input_tokens).toBeGreaterThan(counted.input_tokens);
  });
});

describe('tool use', () => {
  const tools: Anthropic.Tool[] = [
    // An enum keeps the random-weight model's grammar-bound answer short.
    { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } },
    { name: 'get_time', input_schema: { type: 'object', properties: {} } },
  ];

  it.each([scripted, tiny])('answers tool_choice {type: "tool"} with a tool_use block whose input fits the schema (%s)', async (model) => {
    const message = await client.messages.create({ model, max_tokens: 60, tools, tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'What is it like in Paris?' }] });
    expect(message.stop_reason).toBe('tool_use');
    const use = message.content.find((block) => block.type === 'tool_use');
    expect(use).toMatchObject({ type: 'tool_use', name: 'get_weather', id: expect.any(String) });
    expect(typeof (use?.type === 'tool_use' ? (use.input as { city?: unknown }).city : undefined)).toBe('string');

    const stream = client.messages.stream({ model, max_tokens: 60, tools, tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'Paris?' }] });
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content.find((block) => block.type === 'tool_use')).toMatchObject({ name: 'get_weather', input: { city: expect.any(String) } });
  });

  it('calls several tools in parallel, one block each, and none with tool_choice none (scripted)', async () => {
    const both = await client.messages.create({ model: scripted, max_tokens: 60, tools, messages: [{ role: 'user', content: 'use get_weather and get_time' }] });
    expect(both.content.filter((block) => block.type === 'tool_use').map((block) => (block.type === 'tool_use' ? block.name : ''))).toEqual(['get_weather', 'get_time']);
    const one = await client.messages.create({ model: scripted, max_tokens: 60, tools, tool_choice: { type: 'auto', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: 'use get_weather and get_time' }] });
    expect(one.content.filter((block) => block.type === 'tool_use')).toHaveLength(1);
    const none = await client.messages.create({ model: scripted, max_tokens: 60, tools, tool_choice: { type: 'none' }, messages: [{ role: 'user', content: 'use get_weather and get_time' }] });
    expect(none.content).toEqual([{ type: 'text', text: 'use get_weather and get_time' }]);
    expect(none.stop_reason).toBe('end_turn');
  });

  it('sends tool results back, and the model answers from them (scripted)', async () => {
    const message = await client.messages.create({
      model: scripted,
      max_tokens: 60,
      tools,
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
      ],
    });
    expect(message.content).toEqual([{ type: 'text', text: 'get_weather returned sunny.' }]);
  });
});

describe('structured output and thinking', () => {
  it.each([scripted, tiny])('output_config.format makes the text JSON that fits the schema (%s)', async (model) => {
    const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] }, sure: { type: 'boolean' } }, required: ['answer', 'sure'], additionalProperties: false };
    const message = await client.messages.create({ model, max_tokens: 200, output_config: { format: { type: 'json_schema', schema } }, messages: [{ role: 'user', content: 'Answer in JSON.' }] });
    const [block] = message.content;
    const value = JSON.parse(block?.type === 'text' ? block.text : '') as { answer: unknown; sure: unknown };
    expect(['yes', 'no']).toContain(value.answer);
    expect(typeof value.sure).toBe('boolean');
    expect(message.stop_reason).toBe('end_turn');
  });

  it('streams thinking as a thinking block before the text (scripted)', async () => {
    const stream = client.messages.stream({ model: scripted, max_tokens: 60, messages: [{ role: 'user', content: '/think the answer' }] });
    const thinking: string[] = [];
    stream.on('thinking', (delta) => thinking.push(delta));
    const final = await stream.finalMessage();
    expect(final.content).toEqual([
      { type: 'thinking', thinking: 'Thinking about: the answer', signature: '' },
      { type: 'text', text: 'the answer' },
    ]);
    expect(thinking.join('')).toBe('Thinking about: the answer');
  });
});

describe('errors in Anthropic shape', () => {
  it('an unknown model is Anthropic.NotFoundError', async () => {
    const refused = client.messages.create({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    await expect(refused).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(refused).rejects.toMatchObject({ error: { type: 'error', error: { type: 'not_found_error', message: expect.stringContaining("'no-such-model'") } } });
  });

  it('a parameter the model cannot honour is BadRequestError naming it: top_k, thinking, output_config.effort', async () => {
    // Sampling fields are no longer in the SDK's types, but clients still send them.
    const topK = await post('/v1/messages', { model: scripted, max_tokens: 5, top_k: 3, messages: [{ role: 'user', content: 'x' }] });
    expect(topK.status).toBe(400);
    expect(((await topK.json()) as { error: { message: string } }).error.message).toContain("'top_k'");
    // The tiny model's template separates no thinking, so it has no budget to honour.
    await expect(client.messages.create({ model: tiny, max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("'thinking'"),
    });
    await expect(client.messages.create({ model: tiny, max_tokens: 5, output_config: { effort: 'low' }, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("'output_config.effort'"),
    });
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    await expect(client.messages.create({ model: tiny, max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }, { type: 'text', text: 'what is this?' }] }] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("'messages'"),
    });
    await expect(client.messages.create({ model: scripted, max_tokens: 5, tool_choice: { type: 'tool', name: 'absent' }, tools: [{ name: 'present', input_schema: { type: 'object' } }], messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );
  });

  it('a missing max_tokens, a bad block and a server tool are 400s that name the field', async () => {
    const missing = await post('/v1/messages', { model: tiny, messages: [{ role: 'user', content: 'x' }] });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    const badBlock = await post('/v1/messages', { model: tiny, max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] });
    expect(badBlock.status).toBe(400);
    expect(((await badBlock.json()) as { error: { message: string } }).error.message).toContain('messages[0].content');
    const serverTool = await post('/v1/messages', { model: tiny, max_tokens: 5, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'x' }] });
    expect(serverTool.status).toBe(400);
    expect(((await serverTool.json()) as { error: { message: string } }).error.message).toContain('tools[0]');
  });

  it('accepts unknown fields (the SDK adds some over time) and the anthropic-version header', async () => {
    const response = await post('/v1/messages', { model: scripted, max_tokens: 5, messages: [{ role: 'user', content: 'fine' }], some_future_field: { x: 1 } });
    expect(response.status).toBe(200);
  });

  it('a missing or wrong API key is AuthenticationError, in the same shape', async () => {
    const anonymous = await post('/v1/messages', { model: tiny, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, { 'content-type': 'application/json' });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.stringContaining('API key') } });
    const wrong = new Anthropic({ baseURL: server.url, apiKey: 'not-the-key', maxRetries: 0 });
    await expect(wrong.messages.countTokens({ model: tiny, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it('counts its requests by route in /metrics', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
    expect(metricValue(metrics, 'parlance_http_requests_total', { route: '/v1/messages', method: 'POST', status: '200' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'parlance_http_requests_total', { route: '/v1/messages/count_tokens', method: 'POST', status: '200' })).toBeGreaterThan(0);
  });

  it('is documented in /docs', async () => {
    const spec = (await (await fetch(`${server.url}/docs/json`, { headers: auth })).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/messages', '/v1/messages/count_tokens']));
  });
});
