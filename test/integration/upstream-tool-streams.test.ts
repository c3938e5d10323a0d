/**
 * Tool calls and reasoning from an OpenAI-compatible upstream, in the stream shapes vLLM, llama-server and
 * Ollama send, relayed through Parlance to the official openai client: the client must see OpenAI's shapes
 * exactly, streamed and not, whatever shape the upstream used.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentAnswer, agentSteps, sse, startFakeUpstream, type AgentReply, type FakeToolCall, type FakeUpstream, type ToolCallShape } from '../fixtures/fake-upstream.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

let upstream: FakeUpstream;
let front: TestServer;
let client: OpenAI;
const model = 'up-model';

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: [model] });
  front = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], ...noShedding });
  client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await front.stop();
  await upstream.close();
});

const weather: OpenAI.ChatCompletionFunctionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const time: OpenAI.ChatCompletionFunctionTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } };
const calls: FakeToolCall[] = [
  { id: 'call_up1', name: 'get_weather', arguments: '{"city": "Zürich ☃ \\"old town\\""}' },
  { id: 'call_up2', name: 'get_time', arguments: '{"zone": "Europe/Zurich"}' },
];

function reply(reply: AgentReply): void {
  upstream.script = (request) => (request.method === 'POST' ? { steps: agentSteps(reply) } : undefined);
}

/** Reads a stream with the SDK, keeping every chunk, and assembles the calls the way OpenAI's docs show. */
async function streamed(body: Omit<OpenAI.ChatCompletionCreateParamsStreaming, 'model' | 'stream'>) {
  const stream = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, ...body });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  const assembled: { id?: string; type?: string; name: string; arguments: string }[] = [];
  let content = '';
  let reasoning = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    const delta = chunk.choices[0]?.delta as (OpenAI.ChatCompletionChunk.Choice.Delta & { reasoning_content?: string }) | undefined;
    content += delta?.content ?? '';
    reasoning += delta?.reasoning_content ?? '';
    for (const call of delta?.tool_calls ?? []) {
      const slot = (assembled[call.index] ??= { name: '', arguments: '' });
      if (call.id !== undefined) slot.id = call.id;
      if (call.type !== undefined) slot.type = call.type;
      slot.name += call.function?.name ?? '';
      slot.arguments += call.function?.arguments ?? '';
    }
  }
  const finish = chunks.map((chunk) => chunk.choices[0]?.finish_reason).find((reason) => reason != null);
  const usage = chunks.find((chunk) => chunk.usage)?.usage;
  return { chunks, assembled, content, reasoning, finish, usage };
}

describe.each<[ToolCallShape, readonly FakeToolCall[]]>([
  ['vllm', calls],
  ['llama-server', calls],
  ['ollama', calls],
  ['interleaved', calls],
])('tool calls streamed in the %s shape', (shape, made) => {
  it('reach the streaming client as OpenAI deltas: id, type and whole name first, then argument fragments, finish tool_calls', async () => {
    reply({ toolCalls: made, toolCallShape: shape });
    const result = await streamed({ messages: [{ role: 'user', content: 'weather and time?' }], tools: [weather, time], tool_choice: 'required' });
    expect(result.assembled).toEqual(made.map((call) => ({ id: call.id, type: 'function', name: call.name, arguments: call.arguments })));
    expect(made.map((call) => JSON.parse(call.arguments) as unknown)).toEqual(result.assembled.map((call) => JSON.parse(call.arguments) as unknown));
    expect(result.finish).toBe('tool_calls');
    expect(result.content).toBe('');
    // Each call's first delta carries its whole name, and no later delta names it again.
    const deltas = result.chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    for (const [index, call] of made.entries()) {
      const own = deltas.filter((delta) => delta.index === index);
      expect(own[0]).toMatchObject({ index, id: call.id, type: 'function', function: { name: call.name } });
      expect(own.slice(1).every((delta) => delta.id === undefined && delta.function?.name === undefined)).toBe(true);
    }
  });

  it('reach the non-streaming client as message.tool_calls with content null', async () => {
    reply({ toolCalls: made, toolCallShape: shape });
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather and time?' }], tools: [weather, time] });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    expect(choice?.message.tool_calls).toEqual(made.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })));
  });
});

describe('tool-call streams, the odd cases', () => {
  it('joins a UTF-8 character split across TCP writes inside the arguments', async () => {
    const steps = agentSteps({ toolCalls: [calls[0]!], toolCallShape: 'vllm' });
    const index = steps.findIndex((step) => 'write' in step && typeof step.write === 'string' && step.write.includes('☃'));
    const bytes = Buffer.from((steps[index] as { write: string }).write, 'utf8');
    const at = bytes.indexOf(Buffer.from('☃', 'utf8')) + 1;
    upstream.script = (request) => (request.method === 'POST' ? { steps: [...steps.slice(0, index), { write: bytes.subarray(0, at) }, { delayMs: 20 }, { write: bytes.subarray(at) }, ...steps.slice(index + 1)] } : undefined);
    const result = await streamed({ messages: [{ role: 'user', content: 'x' }], tools: [weather] });
    expect(result.assembled[0]?.arguments).toBe(calls[0]!.arguments);
  });

  it('names an upstream that sends a call without a function name, in the stream', async () => {
    upstream.script = (request) =>
      request.method === 'POST'
        ? { steps: [{ write: sse({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c', function: { arguments: '{}' } }] }, finish_reason: null }] }) }, { write: sse({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }) }, { write: 'data: [DONE]\n\n' }] }
        : undefined;
    const response = await fetch(`${front.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'x' }], tools: [weather] }) });
    const events = parseSse(await response.text());
    expect(events.at(-1)?.data).toContain('without a function name');
  });

  it('relays text before the calls, and keeps both', async () => {
    reply({ content: ['Let me ', 'check.'], toolCalls: [calls[1]!], toolCallShape: 'vllm' });
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'time?' }], tools: [time] });
    expect(completion.choices[0]?.message).toMatchObject({ content: 'Let me check.', tool_calls: [{ id: 'call_up2', function: { name: 'get_time' } }] });
  });
});

describe.each<['reasoning_content' | 'reasoning']>([['reasoning_content'], ['reasoning']])('reasoning sent as delta.%s', (spelling) => {
  const thinking = ['The user ', 'wants a gree', 'ting. ☃'];
  it('streams as delta.reasoning_content, before the answer, with reasoning_tokens in usage', async () => {
    reply({ reasoning: thinking, reasoningShape: spelling, content: ['Hello', '!'], usage: { prompt_tokens: 4, completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 6 } } });
    const result = await streamed({ messages: [{ role: 'user', content: 'hi' }] });
    expect(result.reasoning).toBe(thinking.join(''));
    expect(result.content).toBe('Hello!');
    const kinds = result.chunks.map((chunk) => (chunk.choices[0]?.delta.content ? 'text' : (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ? 'reasoning' : 'other')).filter((kind) => kind !== 'other');
    expect(kinds).toEqual(['reasoning', 'reasoning', 'reasoning', 'text', 'text']);
    expect(result.usage).toMatchObject({ completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 6 } });
  });

  it('comes back as message.reasoning_content when not streamed', async () => {
    reply({ reasoning: thinking, reasoningShape: spelling, content: ['Hello!'] });
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message).toMatchObject({ content: 'Hello!', reasoning_content: thinking.join('') });
  });
});

describe('an upstream that answers in one piece whatever stream says', () => {
  it('relays its calls and reasoning, to a streaming client too', async () => {
    upstream.script = (request) => (request.method === 'POST' ? agentAnswer({ reasoning: ['hm, weather'], toolCalls: calls }) : undefined);
    const result = await streamed({ messages: [{ role: 'user', content: 'x' }], tools: [weather, time] });
    expect(result.reasoning).toBe('hm, weather');
    expect(result.assembled.map((call) => [call.id, call.name, call.arguments])).toEqual(calls.map((call) => [call.id, call.name, call.arguments]));
    expect(result.finish).toBe('tool_calls');
  });
});

describe('what Parlance sends the upstream', () => {
  it('passes the sampling set of /v1/completions through, logprobs in the legacy spelling', async () => {
    upstream.script = (request) =>
      request.method === 'POST'
        ? {
            steps: [
              { write: sse({ choices: [{ index: 0, text: 'Hi', logprobs: { tokens: ['Hi'], token_logprobs: [-0.5], top_logprobs: [{ Hi: -0.5, Yo: -1.5 }], text_offset: [0] }, finish_reason: null }] }) },
              { write: sse({ choices: [{ index: 0, text: '', finish_reason: 'length' }] }) },
              { write: 'data: [DONE]\n\n' },
            ],
          }
        : undefined;
    const completion = await client.completions.create({ model, prompt: 'Say', max_tokens: 1, logprobs: 2, presence_penalty: 1, frequency_penalty: 1, logit_bias: { '3': 1 }, seed: 4, ...({ top_k: 3, min_p: 0.1, repeat_penalty: 1.2 } as object) });
    expect(upstream.generations().at(-1)?.body).toMatchObject({ prompt: 'Say', logprobs: 2, presence_penalty: 1, frequency_penalty: 1, logit_bias: { '3': 1 }, seed: 4, top_k: 3, min_p: 0.1, repeat_penalty: 1.2 });
    expect(completion.choices[0]?.logprobs).toEqual({ tokens: ['Hi'], token_logprobs: [-0.5], top_logprobs: [{ Hi: -0.5, Yo: -1.5 }], text_offset: [0] });
  });

  it('passes tools, tool choice, response format, reasoning effort, logprobs and every sampling field through unchanged', async () => {
    reply({ content: ['{}'] });
    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false };
    await client.chat.completions.create({
      model,
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: [{ type: 'text', text: 'look: ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bern"}' } }] },
        { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      ],
      tools: [{ ...weather, function: { ...weather.function, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
      reasoning_effort: 'low',
      logprobs: true,
      top_logprobs: 3,
      temperature: 0.5,
      top_p: 0.9,
      seed: 11,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '42': -100, '7': 5 },
      max_completion_tokens: 33,
      stop: ['END'],
      // llama.cpp's extensions, as the SDK sends unknown fields.
      ...({ top_k: 40, min_p: 0.05, repeat_penalty: 1.1 } as object),
    });
    expect(upstream.generations().at(-1)?.body).toEqual({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: [{ type: 'text', text: 'look: ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bern"}' } }] },
        { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weather.function.parameters, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
      reasoning_effort: 'low',
      logprobs: true,
      top_logprobs: 3,
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      repeat_penalty: 1.1,
      seed: 11,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '42': -100, '7': 5 },
      max_tokens: 33,
      stop: ['END'],
    });
  });

  it("relays the upstream's logprobs to the client", async () => {
    const logprobs = { content: [{ token: 'Hi', logprob: -0.25, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.25, bytes: [72, 105] }, { token: 'Yo', logprob: -2, bytes: [89, 111] }] }], refusal: null };
    upstream.script = (request) =>
      request.method === 'POST'
        ? { steps: [{ write: sse({ choices: [{ index: 0, delta: { content: 'Hi' }, logprobs, finish_reason: null }] }) }, { write: sse({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) }, { write: 'data: [DONE]\n\n' }] }
        : undefined;
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 2 });
    expect(completion.choices[0]?.logprobs).toEqual(logprobs);
  });
});
