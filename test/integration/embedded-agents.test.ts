/**
 * The embedded engine's agent features on the tiny random-weight model: tool calls held to their schemas by
 * grammar, tool results back in the history, JSON output that always validates, reasoning separated from the
 * answer, and every sampling control acting on the output. The model's text is gibberish, so each test shows an
 * effect (a grammar makes the output valid by construction; a parameter changes the output at a fixed seed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent, ChatMessage, GenerationRequest, JsonSchema, ToolDefinition } from '../../src/engines/contract.js';
import { LlamaCppEngine } from '../../src/engines/llama-cpp/engine.js';
import { THINKING_CHATML_TEMPLATE, writeTinyModel } from '../../src/engines/llama-cpp/tiny-model.js';
import { ParlanceError } from '../../src/errors.js';
import { tinyModelPath } from '../fixtures/paths.js';

const model = 'parlance-tiny';
const ajv = new Ajv2020({ strict: true });
// ajv checks a format only when told how: the one the schemas below use, as RFC 3339 writes it.
ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);

function engineOn(modelPath: string): Promise<LlamaCppEngine> {
  return LlamaCppEngine.create({ modelPath, modelId: model, gpu: 'off', threads: 1, sequences: 1, contextSize: 2048, defaultMaxTokens: 64, queueLength: 4 });
}

async function run(engine: LlamaCppEngine, request: GenerationRequest): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  for await (const event of await engine.open(request, new AbortController().signal)) events.push(event);
  return events;
}

const textOf = (events: readonly ChatEvent[]): string => events.map((e) => (e.type === 'text-delta' ? e.text : '')).join('');
const reasoningOf = (events: readonly ChatEvent[]): string => events.map((e) => (e.type === 'reasoning-delta' ? e.text : '')).join('');
const finishOf = (events: readonly ChatEvent[]): string | undefined => events.flatMap((e) => (e.type === 'finish' ? [e.reason] : []))[0];

function callsOf(events: readonly ChatEvent[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const event of events) {
    if (event.type === 'tool-call-start') calls[event.index] = { id: event.id, name: event.name, arguments: '' };
    if (event.type === 'tool-call-delta') {
      const call = calls[event.index];
      if (call) call.arguments += event.argumentsDelta;
    }
  }
  return calls;
}

async function rejection(promise: Promise<unknown>): Promise<ParlanceError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ParlanceError);
  return error as ParlanceError;
}

const user = (content: string): ChatMessage => ({ role: 'user', content });
const chat = (extra: Partial<GenerationRequest> = {}, sampling: GenerationRequest['sampling'] = {}): GenerationRequest => ({
  model,
  input: { kind: 'chat', messages: [user('Plan my day, please.')] },
  sampling: { seed: 11, maxTokens: 200, ...sampling },
  ...extra,
});

const search: ToolDefinition = {
  name: 'search',
  description: 'Search the web',
  parameters: {
    type: 'object',
    properties: {
      // Enums, not free strings: the random-weight model rarely closes a string before max_tokens
      // (maxLength is refused in tool parameters; see json-schema.ts).
      query: { enum: ['weather', 'news', 'trains'] },
      limit: { type: 'integer' },
      safe: { type: 'boolean' },
      region: { anyOf: [{ enum: ['eu', 'us'] }, { type: 'null' }] },
      tags: { type: 'array', items: { enum: ['news', 'maps', 'images'] }, maxItems: 3 },
    },
    required: ['query', 'limit', 'safe', 'region', 'tags'],
    additionalProperties: false,
  },
};
const clock: ToolDefinition = { name: 'clock', description: 'The time now' };

describe('embedded engine: tool calls', () => {
  let engine: LlamaCppEngine;
  beforeAll(async () => {
    engine = await engineOn(tinyModelPath);
  });
  afterAll(async () => engine.close());

  it('required: at every seed, a call to a declared tool whose arguments validate, streamed as start then fragments', async () => {
    for (const seed of [1, 2, 3]) {
      const events = await run(engine, chat({ tools: [search, clock], toolChoice: 'required' }, { seed }));
      const calls = callsOf(events);
      expect(calls.length).toBe(1);
      const call = calls[0];
      if (call?.name === 'search') {
        expect(ajv.validate(search.parameters ?? {}, JSON.parse(call.arguments)), `${call.arguments}: ${ajv.errorsText()}`).toBe(true);
        expect(events.filter((e) => e.type === 'tool-call-delta').length, 'arguments stream in pieces').toBeGreaterThan(3);
      } else {
        expect(call?.name).toBe('clock');
        expect(call?.arguments).toBe('{}');
      }
      expect(finishOf(events)).toBe('tool_calls');
      expect(textOf(events)).toBe('');
    }
  });

  it('a named function: that one, with valid arguments; a function without parameters gets {}', async () => {
    const events = await run(engine, chat({ tools: [search, clock], toolChoice: { name: 'search' } }));
    const [call] = callsOf(events);
    expect(call?.name).toBe('search');
    expect(ajv.validate(search.parameters ?? {}, JSON.parse(call?.arguments ?? '')), ajv.errorsText()).toBe(true);

    const bare = callsOf(await run(engine, chat({ tools: [search, clock], toolChoice: { name: 'clock' } })));
    expect(bare).toEqual([{ id: expect.stringMatching(/^call_/), name: 'clock', arguments: '{}' }]);
  });

  it('auto: the model chooses; whatever it chose is well formed', async () => {
    for (const seed of [1, 2, 3]) {
      const events = await run(engine, chat({ tools: [search, clock], toolChoice: 'auto' }, { seed, maxTokens: 60 }));
      const calls = callsOf(events);
      if (calls.length === 0) {
        expect(events.some((e) => e.type === 'tool-call-delta')).toBe(false);
        expect(finishOf(events)).not.toBe('tool_calls');
        continue;
      }
      for (const call of calls) expect(['search', 'clock']).toContain(call.name);
      if (finishOf(events) === 'tool_calls' && calls[0]?.name === 'search') expect(ajv.validate(search.parameters ?? {}, JSON.parse(calls[0].arguments))).toBe(true);
    }
    // Offered either way: the prompt documents the tools in the template's format.
    expect(await engine.countTokens(chat({ tools: [search, clock] }))).toBeGreaterThan(await engine.countTokens(chat()));
  });

  it('none: no calls, though the tools are still in the prompt', async () => {
    const plain = await engine.countTokens(chat());
    const withTools = await engine.countTokens(chat({ tools: [search], toolChoice: 'none' }));
    expect(withTools).toBeGreaterThan(plain + 20);
    const events = await run(engine, chat({ tools: [search], toolChoice: 'none' }, { maxTokens: 12 }));
    expect(callsOf(events)).toEqual([]);
    expect(finishOf(events)).toBe('length');
  });

  it('a tool loop: the call and its result go back into the prompt, and the reply continues after them', async () => {
    const call = { id: 'call_1', name: 'search', arguments: '{"query":"weather"}' };
    const messages: ChatMessage[] = [user('Weather?'), { role: 'assistant', content: '', toolCalls: [call] }, { role: 'tool', toolCallId: 'call_1', content: '{"sunny":true}' }];
    const loop = { model, input: { kind: 'chat' as const, messages }, sampling: { seed: 3, maxTokens: 8 }, tools: [search] };
    const longer = { ...loop, input: { kind: 'chat' as const, messages: [...messages.slice(0, 2), { role: 'tool' as const, toolCallId: 'call_1', content: '{"sunny":true,"wind":"strong from the west all day"}' }] } };
    expect(await engine.countTokens(longer)).toBeGreaterThan(await engine.countTokens(loop));
    const events = await run(engine, loop);
    expect(finishOf(events)).toBe('length');
    expect(textOf(events).length).toBeGreaterThan(0);
  });

  it('refuses a tool history that does not add up, before generating', async () => {
    const unanswered = chat({ input: { kind: 'chat', messages: [user('x'), { role: 'assistant', content: '', toolCalls: [{ id: 'call_9', name: 'clock', arguments: '{}' }] }] } });
    expect(await rejection(engine.open(unanswered, new AbortController().signal))).toMatchObject({ code: 'invalid_request', param: 'messages' });
    const stray = chat({ input: { kind: 'chat', messages: [user('x'), { role: 'tool', toolCallId: 'call_nope', content: 'hi' }] } });
    expect((await rejection(engine.open(stray, new AbortController().signal))).message).toContain('call_nope');
    const unknown = chat({ tools: [clock], toolChoice: { name: 'search' } });
    expect(await rejection(engine.open(unknown, new AbortController().signal))).toMatchObject({ code: 'invalid_request', param: 'tool_choice' });
    expect(engine.load().active).toBe(0);
  });
});

describe('embedded engine: response formats', () => {
  let engine: LlamaCppEngine;
  beforeAll(async () => {
    engine = await engineOn(tinyModelPath);
  });
  afterAll(async () => engine.close());

  const person: JsonSchema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 20 },
      age: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
      email: { type: ['string', 'null'], maxLength: 30 },
      address: { $ref: '#/$defs/address' },
      role: { enum: ['admin', 'user'] },
      born: { type: 'string', format: 'date' },
    },
    required: ['name', 'age', 'email', 'address', 'role', 'born'],
    additionalProperties: false,
    $defs: { address: { type: 'object', properties: { city: { type: 'string', maxLength: 15 }, zip: { type: 'integer' } }, required: ['city'], additionalProperties: false } },
  };

  it('json_schema: the reply parses and validates at every seed', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const events = await run(engine, chat({ responseFormat: { type: 'json_schema', name: 'person', schema: person, strict: true } }, { seed, maxTokens: 300 }));
      expect(finishOf(events)).toBe('stop');
      const text = textOf(events);
      expect(ajv.validate(person, JSON.parse(text)), `${text}: ${ajv.errorsText()}`).toBe(true);
    }
  });

  it('json_object: the reply is a JSON object', async () => {
    // Any object may hold strings without bound, which the random model seldom closes; a bias towards '"' and
    // '}' (byte tokens 0x22 and 0x7d) makes it finish sooner. The grammar alone makes what it writes JSON.
    const closers = new Map([[5 + 0x22, 6], [5 + 0x7d, 6]]);
    for (const seed of [1, 2, 3, 4]) {
      const events = await run(engine, chat({ responseFormat: { type: 'json_object' } }, { seed, maxTokens: 300, logitBias: closers }));
      expect(finishOf(events)).toBe('stop');
      const value: unknown = JSON.parse(textOf(events));
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
    }
  });

  it('refuses a schema keyword the grammar cannot enforce, naming it, before admission', async () => {
    const cases: [JsonSchema, string][] = [
      [{ type: 'object', properties: { zip: { type: 'string', pattern: '^[0-9]{5}$' } } }, "'pattern'"],
      [{ type: 'object', properties: { n: { type: 'number', minimum: 0 } } }, "'minimum'"],
      [{ type: 'string', format: 'email' }, 'format "email"'],
      [{ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, '"missing"'],
      [{ not: { type: 'null' } }, "'not'"],
    ];
    for (const [schema, named] of cases) {
      const error = await rejection(engine.open(chat({ responseFormat: { type: 'json_schema', name: 's', schema } }), new AbortController().signal));
      expect(error).toMatchObject({ code: 'unsupported_parameter', param: 'response_format', status: 400 });
      expect(error.message).toContain(named);
    }
    const both = await rejection(engine.open(chat({ tools: [clock], toolChoice: 'required', responseFormat: { type: 'json_object' } }), new AbortController().signal));
    expect(both).toMatchObject({ code: 'unsupported_parameter', param: 'response_format' });
    expect(engine.load().active).toBe(0);
  });
});

describe('embedded engine: sampling controls change the output at a fixed seed', () => {
  let engine: LlamaCppEngine;
  beforeAll(async () => {
    engine = await engineOn(tinyModelPath);
  });
  afterAll(async () => engine.close());

  const sample = async (sampling: GenerationRequest['sampling']): Promise<string> =>
    textOf(await run(engine, { model, input: { kind: 'chat', messages: [user('Tell me a story about a dragon.')] }, sampling: { seed: 5, maxTokens: 40, ...sampling } }));

  it('the same seed gives the same reply, another seed another', async () => {
    const base = await sample({});
    expect(await sample({})).toBe(base);
    expect(await sample({ seed: 6 })).not.toBe(base);
  });

  it.each([
    ['top_k', { topK: 1 }],
    ['min_p', { minP: 0.6 }],
    ['presence_penalty', { presencePenalty: 2 }],
    ['frequency_penalty', { frequencyPenalty: 2 }],
    ['negative presence_penalty', { presencePenalty: -2 }],
    ['repeat_penalty', { repeatPenalty: 1.8 }],
  ] as const)('%s', async (_name, sampling) => {
    expect(await sample(sampling)).not.toBe(await sample({}));
  });

  it('logit_bias: +100 forces a token, -100 bans it, an id outside the vocabulary is a 400', async () => {
    const piecesWith = async (bias: [number, number][]): Promise<Set<string>> => {
      const events = await run(engine, { model, input: { kind: 'chat', messages: [user('hi')] }, sampling: { seed: 5, maxTokens: 12, logitBias: new Map(bias) } });
      return new Set(events.flatMap((e) => (e.type === 'text-delta' ? [e.text] : [])));
    };
    const one = await piecesWith([[300, 100]]);
    expect(one.size, `one piece repeated: ${JSON.stringify([...one])}`).toBe(1);
    const two = await piecesWith([[300, 100], [301, 100]]);
    expect(two.size, `two forced pieces share the reply: ${JSON.stringify([...two])}`).toBe(2);
    // The same two, with the second banned: only the first is left.
    expect(await piecesWith([[300, 100], [301, -100]])).toEqual(one);
    expect(await sample({ logitBias: new Map([[300, 100]]) })).not.toBe(await sample({}));
    const error = await rejection(engine.open({ model, input: { kind: 'chat', messages: [user('hi')] }, sampling: { logitBias: new Map([[10_000_000, 5]]) } }, new AbortController().signal));
    expect(error).toMatchObject({ code: 'invalid_request', param: 'logit_bias' });
  });

  it('declares what it honours, and not logprobs (node-llama-cpp 3.21 exposes no token probabilities in chat generation)', () => {
    const capabilities = engine.models()[0]?.capabilities;
    for (const capability of ['tools', 'tool_choice', 'parallel_tool_calls', 'json_object', 'json_schema', 'top_k', 'min_p', 'seed', 'presence_penalty', 'frequency_penalty', 'repeat_penalty', 'logit_bias'] as const) {
      expect(capabilities?.has(capability), capability).toBe(true);
    }
    for (const capability of ['logprobs', 'images', 'reasoning', 'reasoning_effort'] as const) expect(capabilities?.has(capability), capability).toBe(false);
  });
});

describe('embedded engine: a reasoning model (the tiny model with a thinking ChatML template)', () => {
  let dir: string;
  let engine: LlamaCppEngine;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parlance-thinking-'));
    const path = join(dir, 'parlance-tiny-thinking.gguf');
    await writeTinyModel(path, { chatTemplate: THINKING_CHATML_TEMPLATE, name: 'parlance-tiny-thinking' });
    engine = await engineOn(path);
  });
  afterAll(async () => {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  const think = (reasoning?: GenerationRequest['reasoning']): GenerationRequest => ({
    model,
    input: { kind: 'chat', messages: [user('Why is the sky blue?')] },
    sampling: { seed: 2, maxTokens: 16 },
    ...(reasoning === undefined ? {} : { reasoning }),
  });

  it('declares reasoning, and streams the thinking as reasoning deltas, never as <think> text', async () => {
    expect(engine.models()[0]?.capabilities.has('reasoning')).toBe(true);
    expect(engine.models()[0]?.capabilities.has('reasoning_effort')).toBe(true);
    const events = await run(engine, think());
    expect(reasoningOf(events).length).toBeGreaterThan(0);
    expect(textOf(events)).not.toContain('think>');
    expect(reasoningOf(events)).not.toContain('think>');
  });

  it('a budget ends the thinking after that many tokens, and the answer follows', async () => {
    const events = await run(engine, think({ budgetTokens: 4 }));
    const usage = events.find((e) => e.type === 'usage');
    expect(usage?.type === 'usage' ? usage.usage.reasoningTokens : undefined).toBe(4);
    const kinds = events.filter((e) => e.type === 'text-delta' || e.type === 'reasoning-delta').map((e) => e.type);
    expect(kinds.indexOf('text-delta')).toBeGreaterThan(kinds.lastIndexOf('reasoning-delta'));
    expect(textOf(events).length).toBeGreaterThan(0);
  });

  it('max_tokens bounds thinking and answer together: exactly that many, finish length', async () => {
    for (const reasoning of [undefined, { budgetTokens: 3 }]) {
      const events = await run(engine, { ...think(reasoning), sampling: { seed: 2, maxTokens: 7 } });
      const usage = events.find((e) => e.type === 'usage');
      expect(usage?.type === 'usage' ? usage.usage.completionTokens : undefined).toBe(7);
      expect(events.filter((e) => e.type === 'text-delta' || e.type === 'reasoning-delta').length).toBe(7);
      expect(finishOf(events)).toBe('length');
    }
  });

  it('enabled: false answers without thinking', async () => {
    const events = await run(engine, think({ enabled: false }));
    expect(reasoningOf(events)).toBe('');
    expect(textOf(events).length).toBeGreaterThan(0);
  });
});
