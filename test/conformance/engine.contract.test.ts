/**
 * The engine contract (src/engines/contract.ts), run against every engine: the embedded llama.cpp engine on
 * the tiny model, the scripted engine, and the OpenAI-compatible relay in front of a fake upstream that behaves
 * as a real one does (honours max_tokens and stop, streams slowly enough to be cancelled, streams a forced tool
 * call as vLLM does). The tool-call promises bind every engine whose model declares tools.
 *
 * Each promise is tested on the events a consumer sees. Engine-specific behaviour (grammars, sampling, the
 * relay's error mapping) lives in the engines' own test files.
 */
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertSupported, requiredCapabilities } from '../../src/core/capabilities.js';
import type { ChatEvent, Engine, GenerationRequest, ModelInfo, ToolDefinition } from '../../src/engines/contract.js';
import { LlamaCppEngine } from '../../src/engines/llama-cpp/engine.js';
import { OpenAICompatibleEngine } from '../../src/engines/openai-compatible/engine.js';
import { ScriptedEngine } from '../../src/engines/scripted/engine.js';
import { ParlanceError } from '../../src/errors.js';
import { sse, startFakeUpstream, type FakeUpstream, type Plan, type Step } from '../fixtures/fake-upstream.js';
import { tinyModelPath } from '../fixtures/paths.js';

interface Running {
  readonly engine: Engine;
  readonly model: ModelInfo;
  stop(): Promise<void>;
}

interface EngineTarget {
  readonly name: string;
  start(): Promise<Running>;
}

const words = 'alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec romeo sierra tango'.split(' ');
/** A user message whose reply (an echo for the scripted engine) runs to hundreds of tokens unless stopped. */
const longText = Array.from({ length: 60 }, (_, i) => words[i % words.length]).join(' ');

const embedded: EngineTarget = {
  name: 'embedded llama.cpp (tiny model)',
  async start() {
    const engine = await LlamaCppEngine.create({ modelPath: tinyModelPath, modelId: 'parlance-tiny', gpu: 'off', threads: 1, sequences: 1, contextSize: 2048, defaultMaxTokens: 64, queueLength: 4 });
    const model = engine.models()[0];
    if (model === undefined) throw new Error('no model');
    return { engine, model, stop: () => engine.close() };
  },
};

const scripted: EngineTarget = {
  name: 'scripted',
  start() {
    const engine = new ScriptedEngine({ tokenDelayMs: 1 });
    const model = engine.models()[0];
    if (model === undefined) throw new Error('no model');
    return Promise.resolve({ engine, model, stop: () => engine.close() });
  },
};

/** Arguments a real model might give the suite's tools, valid for their schemas. */
const upstreamArguments: Readonly<Record<string, string>> = { get_weather: '{"city":"Paris","days":3,"unit":"celsius"}', get_time: '{"zone":"UTC"}' };

/** A forced call as vLLM streams it: id, type and name first, then the arguments in fragments split mid-string. */
function upstreamToolCall(name: string): Step[] {
  const args = upstreamArguments[name] ?? '{}';
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): Step => ({
    write: sse({ id: 'up-2', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish }] }),
  });
  const fragments = [args.slice(0, 5), args.slice(5, 12), args.slice(12)];
  return [
    chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_up1', type: 'function', function: { name, arguments: '' } }] }),
    ...fragments.map((fragment) => chunk({ tool_calls: [{ index: 0, function: { arguments: fragment } }] })),
    chunk({}, 'tool_calls'),
    { write: sse({ id: 'up-2', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [], usage: { prompt_tokens: 7, completion_tokens: 12, total_tokens: 19 } }) },
    { write: 'data: [DONE]\n\n' },
  ];
}

/** The name a request forces a call to, when it does: the named function, or the first tool for `required`. */
function forcedTool(body: Record<string, unknown>): string | undefined {
  const choice = body['tool_choice'];
  const tools = Array.isArray(body['tools']) ? (body['tools'] as { function?: { name?: unknown } }[]) : [];
  if (typeof choice === 'object' && choice !== null) {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    return typeof name === 'string' ? name : undefined;
  }
  const first = tools[0]?.function?.name;
  return choice === 'required' && typeof first === 'string' ? first : undefined;
}

/**
 * What a well-behaved upstream streams, as vLLM does: words (honouring max_tokens and stop), then its finish
 * reason, usage and [DONE]; or, when the request forces a tool call, that call.
 */
function upstreamReply(body: Record<string, unknown>): Plan {
  const forced = forcedTool(body);
  if (forced !== undefined) return { steps: upstreamToolCall(forced) };
  const maxTokens = typeof body['max_tokens'] === 'number' ? body['max_tokens'] : 500;
  const stops = Array.isArray(body['stop']) ? body['stop'].filter((s): s is string => typeof s === 'string') : [];
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): Step => ({
    write: sse({ id: 'up-1', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish }] }),
  });
  const steps: Step[] = [chunk({ role: 'assistant', content: '' })];
  let text = '';
  let count = 0;
  let finish = 'length';
  for (const word of Array.from({ length: maxTokens }, (_, i) => `${i === 0 ? '' : ' '}${words[i % words.length] ?? ''}`)) {
    const candidate = text + word;
    const at = stops.map((stop) => candidate.indexOf(stop)).filter((i) => i >= 0).sort((a, b) => a - b)[0];
    if (at !== undefined) {
      if (at > text.length) steps.push(chunk({ content: candidate.slice(text.length, at) }));
      count++;
      finish = 'stop';
      break;
    }
    steps.push({ delayMs: 2 }, chunk({ content: word }));
    text = candidate;
    count++;
  }
  steps.push(chunk({}, finish));
  steps.push({ write: sse({ id: 'up-1', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [], usage: { prompt_tokens: 7, completion_tokens: count, total_tokens: 7 + count } }) });
  steps.push({ write: 'data: [DONE]\n\n' });
  return { steps };
}

const relay: EngineTarget = {
  name: 'OpenAI-compatible relay (fake upstream)',
  async start() {
    const fake: FakeUpstream = await startFakeUpstream({
      script: (request) => (request.method === 'POST' && typeof request.body === 'object' && request.body !== null ? upstreamReply(request.body as Record<string, unknown>) : undefined),
    });
    const engine = new OpenAICompatibleEngine({ name: 'fake-vllm', baseUrl: fake.url, models: ['fake-model'], stallTimeoutMs: 5_000, totalTimeoutMs: 30_000 });
    const model = engine.models()[0];
    if (model === undefined) throw new Error('no model');
    return {
      engine,
      model,
      stop: async () => {
        await engine.close();
        await fake.close();
      },
    };
  },
};

for (const target of [embedded, scripted, relay]) engineContract(target);

// ---------------------------------------------------------------------------

async function collect(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const all: ChatEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

function textOf(events: readonly ChatEvent[]): string {
  return events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');
}

function finishOf(events: readonly ChatEvent[]): ChatEvent | undefined {
  return events.find((event) => event.type === 'finish');
}

function usageOf(events: readonly ChatEvent[]): { promptTokens: number; completionTokens: number } {
  const usage = events.find((event) => event.type === 'usage');
  if (usage?.type !== 'usage') throw new Error('no usage event');
  return usage.usage;
}

/** Content events, then one usage, then one finish, and nothing after. */
function expectWellOrdered(events: readonly ChatEvent[]): void {
  const kinds = events.map((event) => event.type);
  const usageAt = kinds.indexOf('usage');
  expect(usageAt, 'one usage event').toBeGreaterThanOrEqual(0);
  expect(kinds.lastIndexOf('usage')).toBe(usageAt);
  expect(kinds.indexOf('finish'), 'finish right after usage').toBe(usageAt + 1);
  expect(kinds.length, 'nothing after finish').toBe(usageAt + 2);
  for (const kind of kinds.slice(0, usageAt)) expect(['text-delta', 'reasoning-delta', 'tool-call-start', 'tool-call-delta', 'error']).toContain(kind);
}

/** Polls a condition the engine reaches on its own shortly (a slot released in a `finally`); bounded. */
async function eventually(condition: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

const weatherTool: ToolDefinition = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { enum: ['Paris', 'Oslo', 'Lima'] }, days: { type: 'integer' }, unit: { enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'days', 'unit'],
    additionalProperties: false,
  },
};
const timeTool: ToolDefinition = { name: 'get_time', description: 'The time now', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false } };

/** The calls a generation made, rebuilt from its events as a consumer would, checking their order on the way. */
function callsOf(events: readonly ChatEvent[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const event of events) {
    if (event.type === 'tool-call-start') {
      expect(event.index, 'calls are indexed in the order they begin').toBe(calls.length);
      expect(event.id).toMatch(/^call_[A-Za-z0-9]+$/);
      calls.push({ id: event.id, name: event.name, arguments: '' });
    } else if (event.type === 'tool-call-delta') {
      const call = calls[event.index];
      expect(call, 'a delta only after its call started').toBeDefined();
      if (call) call.arguments += event.argumentsDelta;
    }
  }
  return calls;
}

function engineContract(target: EngineTarget): void {
  describe(`Engine contract: ${target.name}`, () => {
    let running: Running;
    beforeAll(async () => {
      running = await target.start();
    });
    afterAll(async () => running.stop());

    const chat = (content: string, sampling: GenerationRequest['sampling'] = {}, extra: Partial<GenerationRequest> = {}): GenerationRequest => ({
      model: running.model.id,
      input: { kind: 'chat', messages: [{ role: 'user', content }] },
      sampling: { seed: 7, ...sampling },
      ...extra,
    });
    const run = async (request: GenerationRequest): Promise<ChatEvent[]> => collect(await running.engine.open(request, new AbortController().signal));

    it('yields content, then exactly one usage, then exactly one finish, then ends', async () => {
      const events = await run(chat(longText, { maxTokens: 8 }));
      expectWellOrdered(events);
      expect(textOf(events).length).toBeGreaterThan(0);
      expect(usageOf(events).promptTokens).toBeGreaterThan(0);
    });

    it('stops at maxTokens with exactly that many tokens and finish reason length', async () => {
      const events = await run(chat(longText, { maxTokens: 5 }));
      expectWellOrdered(events);
      expect(usageOf(events).completionTokens).toBe(5);
      expect(finishOf(events)).toEqual({ type: 'finish', reason: 'length' });
    });

    it('ends the reply before a stop string, which is not emitted, with finish reason stop', async () => {
      const free = textOf(await run(chat(longText, { maxTokens: 24 })));
      // A stop string from the middle of what the same request produces without one.
      const stop = free.slice(Math.floor(free.length / 2), Math.floor(free.length / 2) + 3);
      expect(stop.length).toBe(3);
      const events = await run(chat(longText, { maxTokens: 24, stop: [stop] }));
      expectWellOrdered(events);
      expect(textOf(events)).toBe(free.slice(0, free.indexOf(stop)));
      const finish = finishOf(events);
      expect(finish).toMatchObject({ type: 'finish', reason: 'stop' });
      // Where the engine knows which stop string ended the reply, it names that one (an upstream may not say).
      if (finish?.type === 'finish' && finish.stopSequence !== undefined) expect(finish.stopSequence).toBe(stop);
    });

    it('stops within a token of the signal aborting, finishes cancelled, and frees what it held', async () => {
      const controller = new AbortController();
      const generation = await running.engine.open(chat(longText, { maxTokens: 400 }), controller.signal);
      const events: ChatEvent[] = [];
      let deltasAtAbort = 0;
      for await (const event of generation) {
        events.push(event);
        if (event.type === 'text-delta' && ++deltasAtAbort === 3) controller.abort();
      }
      expectWellOrdered(events);
      expect(finishOf(events)).toEqual({ type: 'finish', reason: 'cancelled' });
      // Far fewer than the 400 asked for: the engine did not run on for nobody. (Tokens already decoded may still
      // be in flight; a handful, not hundreds.)
      expect(usageOf(events).completionTokens).toBeLessThan(20);
      expect(await eventually(() => running.engine.load().active === 0)).toBe(true);
    });

    it('frees what it held when the consumer breaks out of the loop, and serves the next request', async () => {
      const generation = await running.engine.open(chat(longText, { maxTokens: 400 }), new AbortController().signal);
      let seen = 0;
      for await (const event of generation) {
        if (event.type === 'text-delta' && ++seen === 2) break;
      }
      expect(await eventually(() => running.engine.load().active === 0)).toBe(true);
      const next = await run(chat(longText, { maxTokens: 3 }));
      expect(finishOf(next)).toEqual({ type: 'finish', reason: 'length' });
    });

    it('declares what it honours, and the core refuses a request for anything else with unsupported_parameter naming the field', () => {
      const probes: { param: string; request: GenerationRequest }[] = [
        { param: 'logprobs', request: chat('hi', { logprobs: { topLogprobs: 2 } }) },
        { param: 'tools', request: chat('hi', {}, { tools: [weatherTool] }) },
        { param: 'response_format', request: chat('hi', {}, { responseFormat: { type: 'json_object' } }) },
        { param: 'top_k', request: chat('hi', { topK: 3 }) },
        { param: 'messages', request: { ...chat('hi'), input: { kind: 'chat', messages: [{ role: 'user', content: 'see', parts: [{ type: 'image', url: 'data:image/png;base64,AA==' }] }] } } },
      ];
      for (const probe of probes) {
        const missing = requiredCapabilities(probe.request).filter(({ capability }) => !running.model.capabilities.has(capability));
        let error: unknown;
        try {
          assertSupported(probe.request, running.model);
        } catch (caught) {
          error = caught;
        }
        if (missing.length === 0) {
          expect(error, `${probe.param} is declared, so it is not refused`).toBeUndefined();
          continue;
        }
        expect(error).toBeInstanceOf(ParlanceError);
        expect(error).toMatchObject({ code: 'unsupported_parameter', param: probe.param, status: 400 });
      }
    });

    describe('tool calls', () => {
      /** The tool-call promises bind engines whose model declares tools. */
      const needTools = (context: { skip: (note?: string) => void }): void => {
        if (!running.model.capabilities.has('tools')) context.skip(`${target.name} declares no tools`);
      };
      const ajv = new Ajv({ strict: true });
      const validates = (tool: ToolDefinition, args: string): boolean => ajv.validate(tool.parameters ?? {}, JSON.parse(args));

      it('with tool_choice required: a well-formed call whose arguments fit the schema, finish tool_calls', async (context) => {
        needTools(context);
        const events = await run(chat('What is the weather in Paris?', { maxTokens: 200 }, { tools: [weatherTool, timeTool], toolChoice: 'required' }));
        expectWellOrdered(events);
        const calls = callsOf(events);
        expect(calls.length).toBeGreaterThanOrEqual(1);
        for (const call of calls) {
          const tool = [weatherTool, timeTool].find((t) => t.name === call.name);
          expect(tool, `called a declared tool, not ${call.name}`).toBeDefined();
          if (tool) expect(validates(tool, call.arguments), `${call.arguments}: ${ajv.errorsText()}`).toBe(true);
        }
        expect(finishOf(events)).toEqual({ type: 'finish', reason: 'tool_calls' });
      });

      it('with a named tool_choice: calls that function and no other', async (context) => {
        needTools(context);
        const events = await run(chat('What time is it?', { maxTokens: 200 }, { tools: [weatherTool, timeTool], toolChoice: { name: 'get_weather' }, parallelToolCalls: false }));
        const calls = callsOf(events);
        expect(calls.map((call) => call.name)).toEqual(['get_weather']);
        expect(validates(weatherTool, calls[0]?.arguments ?? ''), ajv.errorsText()).toBe(true);
        expect(finishOf(events)).toEqual({ type: 'finish', reason: 'tool_calls' });
      });

      it('takes a tool result back and continues the reply', async (context) => {
        needTools(context);
        const events = await run({
          model: running.model.id,
          input: {
            kind: 'chat',
            messages: [
              { role: 'user', content: 'Weather in Paris?' },
              { role: 'assistant', content: '', toolCalls: [{ id: 'call_abc123', name: 'get_weather', arguments: '{"city":"Paris","days":1,"unit":"celsius"}' }] },
              { role: 'tool', toolCallId: 'call_abc123', content: '{"temperature":21}' },
            ],
          },
          sampling: { seed: 7, maxTokens: 6 },
          tools: [weatherTool],
          toolChoice: 'none',
        });
        expectWellOrdered(events);
        expect(textOf(events).length).toBeGreaterThan(0);
        expect(callsOf(events)).toEqual([]);
      });
    });
  });
}
