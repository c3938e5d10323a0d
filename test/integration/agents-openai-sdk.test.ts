/**
 * The official openai client driving an agent: tool calls forced (`required`, a named function) and chosen
 * (`auto`), streamed and not, parallel calls, the `tool` role sending results back, `json_schema` output that
 * validates (ajv), and the 400s for parameters a model cannot honour. Against the scripted model, an
 * OpenAI-compatible upstream (the fake, acting as a model) and the embedded tiny GGUF (whose random weights
 * are held to the schema by a grammar).
 */
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFromSchema } from '../../src/engines/scripted/schema-example.js';
import { agentScript, errorPlan, startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

let upstream: FakeUpstream;
let server: TestServer;
let client: OpenAI;
const ajv = new Ajv({ strict: false });

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: ['up-model'], script: agentScript({ exampleFromSchema }) });
  server = await startTestServer({ scripted: true, upstreams: [`fake=${upstream.url}`], ...noShedding });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.stop();
  await upstream.close();
});

const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const timeParameters = { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'], additionalProperties: false };
const tools: OpenAI.ChatCompletionFunctionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters } },
  { type: 'function', function: { name: 'get_time', description: 'The time in a zone', parameters: timeParameters } },
];
const schemaOf = (name: string): object => (name === 'get_weather' ? weatherParameters : timeParameters);

function expectValidCall(call: OpenAI.ChatCompletionMessageToolCall | undefined, name?: string): void {
  expect(call?.type).toBe('function');
  if (call?.type !== 'function') return;
  expect(call.id).toMatch(/^call_/);
  if (name !== undefined) expect(call.function.name).toBe(name);
  const args: unknown = JSON.parse(call.function.arguments);
  expect(ajv.validate(schemaOf(call.function.name), args), ajv.errorsText()).toBe(true);
}

/** Streams a chat and assembles tool calls from their deltas (id and name first, then argument fragments). */
async function streamCalls(body: Omit<OpenAI.ChatCompletionCreateParamsStreaming, 'stream'>) {
  const stream = await client.chat.completions.create({ ...body, stream: true });
  const calls: OpenAI.ChatCompletionMessageFunctionToolCall[] = [];
  let finish: string | null | undefined;
  let content = '';
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    finish = choice?.finish_reason ?? finish;
    content += choice?.delta.content ?? '';
    for (const delta of choice?.delta.tool_calls ?? []) {
      if (delta.id !== undefined) calls[delta.index] = { id: delta.id, type: 'function', function: { name: delta.function?.name ?? '', arguments: '' } };
      const call = calls[delta.index];
      if (call !== undefined) call.function.arguments += delta.function?.arguments ?? '';
    }
  }
  return { calls, finish, content };
}

interface Target {
  readonly model: string;
  /** Follows the user's words (a script): `auto` calls a tool the message names, and parallel calls are exact. */
  readonly predictable: boolean;
}

const targets: [string, Target][] = [
  ['the scripted model', { model: 'parlance-scripted', predictable: true }],
  ['an upstream (vLLM-shaped fake)', { model: 'up-model', predictable: true }],
];

describe.each(targets)('tools on %s', (_name, target) => {
  const { model } = target;

  it("tool_choice 'required' makes a call whose arguments fit the schema, not streamed", async () => {
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'What should I wear?' }], tools, tool_choice: 'required' });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    expect(choice?.message.tool_calls?.length).toBeGreaterThanOrEqual(1);
    for (const call of choice?.message.tool_calls ?? []) expectValidCall(call);
  });

  it("tool_choice 'required', streamed", async () => {
    const { calls, finish } = await streamCalls({ model, messages: [{ role: 'user', content: 'What should I wear?' }], tools, tool_choice: 'required' });
    expect(finish).toBe('tool_calls');
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const call of calls) expectValidCall(call);
  });

  it('a named tool_choice calls that function, streamed and not', async () => {
    const choice = { type: 'function', function: { name: 'get_time' } } as const;
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }], tools, tool_choice: choice });
    expect(completion.choices[0]?.message.tool_calls).toHaveLength(1);
    expectValidCall(completion.choices[0]?.message.tool_calls?.[0], 'get_time');
    const { calls } = await streamCalls({ model, messages: [{ role: 'user', content: 'Hello' }], tools, tool_choice: choice });
    expect(calls).toHaveLength(1);
    expectValidCall(calls[0], 'get_time');
  });

  it("tool_choice 'auto' lets the model choose: a call when it picks one, text when it does not", async () => {
    const called = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Use get_weather for Bern' }], tools, tool_choice: 'auto' });
    expectValidCall(called.choices[0]?.message.tool_calls?.[0], 'get_weather');
    const talked = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Just say hi' }], tools });
    expect(talked.choices[0]?.message.tool_calls).toBeUndefined();
    expect(talked.choices[0]?.message.content).toBe('Just say hi');
    expect(talked.choices[0]?.finish_reason).toBe('stop');
  });

  it('makes parallel calls, each with its own id and index, and one call when parallel_tool_calls is false', async () => {
    const ask = 'Call get_weather and get_time';
    const { calls } = await streamCalls({ model, messages: [{ role: 'user', content: ask }], tools, tool_choice: 'required' });
    expect(calls.map((call) => call.function.name)).toEqual(['get_weather', 'get_time']);
    for (const call of calls) expectValidCall(call);
    expect(new Set(calls.map((call) => call.id)).size).toBe(2);
    const single = await client.chat.completions.create({ model, messages: [{ role: 'user', content: ask }], tools, tool_choice: 'required', parallel_tool_calls: false });
    expect(single.choices[0]?.message.tool_calls).toHaveLength(1);
  });

  it('completes a round trip: the call, then the tool role with its result, then an answer that uses it', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Use get_weather please' }];
    const first = await client.chat.completions.create({ model, messages, tools });
    const message = first.choices[0]?.message;
    const call = message?.tool_calls?.[0];
    expectValidCall(call, 'get_weather');
    messages.push({ role: 'assistant', content: message?.content ?? null, tool_calls: message?.tool_calls ?? [] });
    messages.push({ role: 'tool', tool_call_id: call?.id ?? '', content: '21 degrees and sunny' });
    const second = await client.chat.completions.create({ model, messages, tools });
    expect(second.choices[0]?.finish_reason).toBe('stop');
    expect(second.choices[0]?.message.content).toContain('21 degrees and sunny');
  });

  it('answers json_schema with JSON that validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, tags: { type: 'array', items: { type: 'string' }, minItems: 1 } }, required: ['name', 'age', 'tags'], additionalProperties: false };
    const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'A person, please.' }], response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
    const parsed: unknown = JSON.parse(completion.choices[0]?.message.content ?? '');
    expect(ajv.validate(schema, parsed), ajv.errorsText()).toBe(true);
  });
});

describe('reasoning on the scripted model', () => {
  it('streams /think as reasoning_content before the answer, counts it in usage, and returns it as message.reasoning_content', async () => {
    const stream = await client.chat.completions.create({ model: 'parlance-scripted', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: '/think hello there' }] });
    let reasoning = '';
    let content = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) expect(content).toBe('');
      reasoning += delta?.reasoning_content ?? '';
      content += delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(reasoning).toBe('Thinking about: hello there');
    expect(content).toBe('hello there');
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(4);
    const whole = await client.chat.completions.create({ model: 'parlance-scripted', messages: [{ role: 'user', content: '/think hello there' }] });
    expect(whole.choices[0]?.message).toMatchObject({ content: 'hello there', reasoning_content: 'Thinking about: hello there' });
  });
});

describe('parameters a model cannot honour', () => {
  it('refuses a known field the scripted model lacks with 400 unsupported_parameter naming the field and the model', async () => {
    for (const [field, value] of [
      ['logprobs', true],
      ['presence_penalty', 0.5],
      ['top_k', 5],
      ['reasoning_effort', 'low'],
      ['logit_bias', { '5': 3 }],
    ] as const) {
      const error: unknown = await client.chat.completions.create({ model: 'parlance-scripted', messages: [{ role: 'user', content: 'x' }], [field]: value }).catch((e: unknown) => e);
      expect(error, field).toBeInstanceOf(OpenAI.BadRequestError);
      const bad = error as InstanceType<typeof OpenAI.BadRequestError>;
      expect(bad.code, field).toBe('unsupported_parameter');
      expect(bad.param, field).toBe(field);
      expect(bad.message).toContain(field);
      expect(bad.message).toContain('parlance-scripted');
    }
  });

  it('refuses what no engine here produces (audio, the deprecated functions) on every model', async () => {
    for (const model of ['parlance-scripted', 'up-model', 'parlance-tiny']) {
      const error: unknown = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], audio: { voice: 'alloy', format: 'mp3' } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('audio');
    }
  });

  it("passes an upstream's own refusal of a parameter through as a 400 naming it", async () => {
    const previous = upstream.script;
    upstream.script = (request) => (request.method === 'POST' ? errorPlan(400, "'logit_bias' is not supported by this model", { param: 'logit_bias', code: 'unsupported_parameter' }) : undefined);
    try {
      const error: unknown = await client.chat.completions.create({ model: 'up-model', messages: [{ role: 'user', content: 'x' }], logit_bias: { '1': 2 } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logit_bias');
    } finally {
      upstream.script = previous;
    }
  });

  it('refuses an image for a model that cannot see, naming messages', async () => {
    const error: unknown = await client.chat.completions
      .create({ model: 'parlance-scripted', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_parameter');
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');
  });
});

// The tiny model's weights are random: only the grammar makes its calls and JSON valid, so these assert
// validity, not content.
describe('tools on the embedded tiny model (grammar-constrained)', () => {
  const model = 'parlance-tiny';
  // Random weights write strings until something stops them: enums keep a call short, and still need the grammar.
  const embeddedWeather = { type: 'object', properties: { city: { type: 'string', enum: ['Bern', 'Paris'] }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false };
  const embeddedTime = { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false };
  const tools: OpenAI.ChatCompletionFunctionTool[] = [
    { type: 'function', function: { name: 'get_weather', parameters: embeddedWeather } },
    { type: 'function', function: { name: 'get_time', parameters: embeddedTime } },
  ];

  it("tool_choice 'required' makes a call whose arguments validate, streamed and not", async () => {
    const completion = await client.chat.completions.create({ model, seed: 1, max_tokens: 200, messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required' });
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    for (const call of completion.choices[0]?.message.tool_calls ?? []) expectValidCall(call);
    expect(completion.choices[0]?.message.tool_calls?.length).toBeGreaterThanOrEqual(1);
    const { calls, finish } = await streamCalls({ model, seed: 2, max_tokens: 200, messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required' });
    expect(finish).toBe('tool_calls');
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const call of calls) expectValidCall(call);
  });

  it('a named tool_choice calls that function', async () => {
    const completion = await client.chat.completions.create({ model, seed: 3, max_tokens: 200, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: { type: 'function', function: { name: 'get_time' } } });
    expectValidCall(completion.choices[0]?.message.tool_calls?.[0], 'get_time');
  });

  it("tool_choice 'auto' answers either text or valid calls", async () => {
    const completion = await client.chat.completions.create({ model, seed: 4, max_tokens: 60, messages: [{ role: 'user', content: 'hi' }], tools });
    for (const call of completion.choices[0]?.message.tool_calls ?? []) expectValidCall(call);
  });

  it('takes the tool role back and answers', async () => {
    const completion = await client.chat.completions.create({
      model,
      max_tokens: 8,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bern","unit":"celsius"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
      tools,
    });
    expect(completion.choices[0]?.message.role).toBe('assistant');
  });

  it('answers json_schema with JSON that validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, ok: { type: 'boolean' } }, required: ['name', 'ok'], additionalProperties: false };
    const completion = await client.chat.completions.create({ model, seed: 5, max_tokens: 200, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } } });
    expect(ajv.validate(schema, JSON.parse(completion.choices[0]?.message.content ?? ''))).toBe(true);
  });
});
