/**
 * The Anthropic and Ollama dialects in front of an OpenAI-compatible upstream (the fake one): text relayed,
 * parameters passed on, errors before and after the first byte in each dialect's own shape.
 */
import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSteps, contentChunk, errorPlan, sse, startFakeUpstream, streamPlan, streamSteps, type FakeToolCall, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

const model = 'up-model';
let upstream: FakeUpstream;
let front: TestServer;
let anthropic: Anthropic;
let ollama: Ollama;

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: [model] });
  front = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], ...noShedding });
  anthropic = new Anthropic({ baseURL: front.url, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: front.url });
});
afterAll(async () => {
  await front.stop();
  await upstream.close();
});

const calls: FakeToolCall[] = [
  { id: 'call_w', name: 'get_weather', arguments: '{"city":"Paris","unit":"°C"}' },
  { id: 'call_t', name: 'get_time', arguments: '{"zone":"Europe/Paris"}' },
];
const tools = [
  { name: 'get_weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' }, unit: { type: 'string' } } } },
  { name: 'get_time', input_schema: { type: 'object' as const, properties: { zone: { type: 'string' } } } },
];

/** A stream that sends two pieces, then the upstream dies. */
const dyingStream = () => ({ steps: [...streamSteps(['Hello', ' there'], { tail: [] }), { delayMs: 20 }, { destroy: true as const }] });

describe('Anthropic Messages through an upstream', () => {
  it('relays the text, streamed and not, and passes the sampling fields on', async () => {
    upstream.script = () => streamPlan(['Hello', ' from', ' fake'], { usage: { prompt_tokens: 9, completion_tokens: 3 } });
    const message = await anthropic.messages.create({ model, max_tokens: 30, stop_sequences: ['END'], messages: [{ role: 'user', content: 'hi' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'Hello from fake' }]);
    expect(message.usage).toEqual({ input_tokens: 9, output_tokens: 3 });
    expect(message.stop_reason).toBe('end_turn');
    expect(upstream.generations().at(-1)?.body).toMatchObject({ model, max_tokens: 30, stop: ['END'], messages: [{ role: 'user', content: 'hi' }] });

    const stream = anthropic.messages.stream({ model, max_tokens: 30, messages: [{ role: 'user', content: 'hi' }] });
    const steps: string[] = [];
    stream.on('text', (text) => steps.push(text));
    const final = await stream.finalMessage();
    expect(steps).toEqual(['Hello', ' from', ' fake']);
    expect(final.content).toEqual([{ type: 'text', text: 'Hello from fake' }]);
  });

  it.each(['interleaved', 'llama-server', 'vllm'] as const)('serialises parallel tool calls streamed %s as whole tool_use blocks, after the thinking', async (shape) => {
    upstream.script = () => ({ steps: agentSteps({ reasoning: ['Two ', 'tools.'], content: ['Checking.'], toolCalls: calls, toolCallShape: shape }) });
    const stream = anthropic.messages.stream({ model, max_tokens: 100, tools, messages: [{ role: 'user', content: 'weather and time in Paris' }] });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([
      { type: 'thinking', thinking: 'Two tools.', signature: '' },
      { type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'call_w', name: 'get_weather', input: { city: 'Paris', unit: '°C' } },
      { type: 'tool_use', id: 'call_t', name: 'get_time', input: { zone: 'Europe/Paris' } },
    ]);
    expect(final.stop_reason).toBe('tool_use');
    expect(upstream.generations().at(-1)?.body).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather' } }, { type: 'function', function: { name: 'get_time' } }] });
  });

  it("passes the upstream's refusal through as the SDK's typed error", async () => {
    upstream.script = () => errorPlan(429, 'slow down', { headers: { 'retry-after': '7' }, type: 'rate_limit_error' });
    const refused = anthropic.messages.create({ model, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    await expect(refused).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    await expect(refused).rejects.toMatchObject({ error: { type: 'error', error: { type: 'rate_limit_error' } } });
  });

  it('sends a failure after the first byte as an error event, which the SDK throws', async () => {
    upstream.script = dyingStream;
    const response = await fetch(`${front.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, max_tokens: 30, stream: true, messages: [{ role: 'user', content: 'hi' }] }) });
    const events = parseSse(await response.text());
    expect(events.map((event) => event.event).slice(0, 4)).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta']);
    const last = events.at(-1);
    expect(last?.event).toBe('error');
    expect(JSON.parse(last?.data ?? '{}')).toEqual({ type: 'error', error: { type: expect.stringMatching(/_error$/), message: expect.any(String) } });

    upstream.script = dyingStream;
    const stream = anthropic.messages.stream({ model, max_tokens: 30, messages: [{ role: 'user', content: 'hi' }] });
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError);
  });

  it('says readably that an upstream model cannot count tokens here', async () => {
    const refused = anthropic.messages.countTokens({ model, messages: [{ role: 'user', content: 'x' }] });
    await expect(refused).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(refused).rejects.toMatchObject({ message: expect.stringContaining('cannot count tokens') });
  });
});

describe('Ollama through an upstream', () => {
  it('lists the upstream model and relays chat and generate', async () => {
    expect((await ollama.list()).models.map((entry) => entry.name)).toEqual([model]);
    upstream.script = () => streamPlan(['Hello', ' from', ' fake'], { usage: { prompt_tokens: 9, completion_tokens: 3 } });
    const parts = await ollama.chat({ model, messages: [{ role: 'user', content: 'hi' }], stream: true, options: { temperature: 0.2, num_predict: 20 } });
    const texts: string[] = [];
    let done: Awaited<ReturnType<typeof ollama.chat>> | undefined;
    for await (const part of parts) {
      if (part.done) done = part;
      else texts.push(part.message.content);
    }
    expect(texts).toEqual(['Hello', ' from', ' fake']);
    expect(done).toMatchObject({ done_reason: 'stop', prompt_eval_count: 9, eval_count: 3 });
    expect(upstream.generations().at(-1)?.body).toMatchObject({ temperature: 0.2, max_tokens: 20 });

    upstream.script = () => streamPlan(['Once', ' more']);
    expect((await ollama.generate({ model, prompt: 'go' })).response).toBe('Once more');
  });

  it('relays parallel tool calls (interleaved upstream) as parsed arguments, and thinking', async () => {
    upstream.script = () => ({ steps: agentSteps({ reasoning: ['Two ', 'tools.'], toolCalls: calls, toolCallShape: 'interleaved' }) });
    const parts = await ollama.chat({ model, messages: [{ role: 'user', content: 'weather and time' }], stream: true, tools: tools.map((tool) => ({ type: 'function', function: { name: tool.name, parameters: tool.input_schema } })) });
    let thinking = '';
    const toolCalls = [];
    for await (const part of parts) {
      thinking += part.message.thinking ?? '';
      toolCalls.push(...(part.message.tool_calls ?? []));
    }
    expect(thinking).toBe('Two tools.');
    expect(toolCalls).toEqual([
      { function: { name: 'get_weather', arguments: { city: 'Paris', unit: '°C' } } },
      { function: { name: 'get_time', arguments: { zone: 'Europe/Paris' } } },
    ]);
  });

  it('sends a failure after the first byte as an {"error"} line, which ollama-js throws', async () => {
    upstream.script = dyingStream;
    const parts = await ollama.chat({ model, messages: [{ role: 'user', content: 'hi' }], stream: true });
    const texts: string[] = [];
    const drain = async () => {
      for await (const part of parts) texts.push(part.message.content);
    };
    await expect(drain()).rejects.toThrow(/./);
    expect(texts).toEqual(['Hello', ' there']);
  });

  it('passes an upstream 4xx through with its message', async () => {
    upstream.script = () => errorPlan(400, 'the upstream says no', { param: 'messages' });
    await expect(ollama.chat({ model, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status_code: 400, message: expect.stringContaining('the upstream says no') });
  });

  it('relays a multi-byte character split across TCP writes', async () => {
    const bytes = Buffer.from(sse(contentChunk('a☃b')), 'utf8');
    const cut = bytes.indexOf(Buffer.from('☃')) + 1;
    upstream.script = () => ({ steps: [...streamSteps([], { tail: [] }), { write: bytes.subarray(0, cut) }, { delayMs: 20 }, { write: bytes.subarray(cut) }, ...streamSteps([]).slice(1)] });
    expect((await ollama.chat({ model, messages: [{ role: 'user', content: 'x' }] })).message.content).toBe('a☃b');
  });
});
