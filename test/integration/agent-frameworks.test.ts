/**
 * The agent frameworks people build on, unchanged, against Parlance: the Vercel AI SDK (`ai` with
 * `@ai-sdk/openai-compatible`) and LangChain JS (`@langchain/openai`). Each runs against the scripted model
 * and against an OpenAI-compatible upstream (the fake, acting as a model); the embedded tiny model joins
 * once its grammars are in.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { tool as langchainTool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { generateObject, generateText, stepCountIs, streamObject, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { exampleFromSchema } from '../../src/engines/scripted/schema-example.js';
import { agentScript, startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

let upstream: FakeUpstream;
let server: TestServer;

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: ['up-model'], script: agentScript({ exampleFromSchema, shape: 'llama-server' }) });
  server = await startTestServer({ embedded: false, scripted: true, upstreams: [`fake=${upstream.url}`], ...noShedding });
});
afterAll(async () => {
  await server.stop();
  await upstream.close();
});

const person = z.object({ name: z.string(), age: z.number().int().min(0), languages: z.array(z.string()).min(1) });
const weatherInput = z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) });

describe.each([['parlance-scripted'], ['up-model']])('the Vercel AI SDK on %s', (modelId) => {
  const provider = () => createOpenAICompatible({ name: 'parlance', baseURL: `${server.url}/v1`, apiKey: 'unused', supportsStructuredOutputs: true });

  it('generateObject returns an object that fits the zod schema', async () => {
    const { object } = await generateObject({ model: provider()(modelId), schema: person, prompt: 'Invent a person.', maxRetries: 0 });
    expect(person.safeParse(object).success).toBe(true);
  });

  it('streamObject streams partial objects that end in one that fits', async () => {
    const result = streamObject({ model: provider()(modelId), schema: person, prompt: 'Invent a person.', maxRetries: 0 });
    const partials: unknown[] = [];
    for await (const partial of result.partialObjectStream) partials.push(partial);
    expect(partials.length).toBeGreaterThan(1);
    expect(person.safeParse(await result.object).success).toBe(true);
  });

  it("generateText with tools and toolChoice 'required' calls a tool with valid input", async () => {
    let called: unknown;
    const result = await generateText({
      model: provider()(modelId),
      prompt: 'What is the weather like?',
      tools: { get_weather: tool({ description: 'The weather in a city', inputSchema: weatherInput, execute: async (input) => ((called = input), { forecast: 'sunny' }) }) },
      toolChoice: 'required',
      maxRetries: 0,
    });
    expect(result.finishReason).toBe('tool-calls');
    expect(result.toolCalls).toHaveLength(1);
    expect(result.toolCalls[0]?.toolName).toBe('get_weather');
    expect(weatherInput.safeParse(called).success).toBe(true);
    expect(result.toolResults[0]?.output).toEqual({ forecast: 'sunny' });
  });

  it('runs a multi-step tool loop to an answer that uses the tool result (stopWhen)', async () => {
    const result = await generateText({
      model: provider()(modelId),
      prompt: 'Use get_weather for Bern, then tell me.',
      tools: { get_weather: tool({ inputSchema: weatherInput, execute: async () => ({ forecast: 'snow at noon' }) }) },
      stopWhen: stepCountIs(5),
      maxRetries: 0,
    });
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]?.toolCalls[0]?.toolName).toBe('get_weather');
    expect(result.finishReason).toBe('stop');
    expect(result.text).toContain('snow at noon');
  });

  it('streamText relays tool-call input as it streams, then the call', async () => {
    const result = streamText({
      model: provider()(modelId),
      prompt: 'weather?',
      tools: { get_weather: tool({ inputSchema: weatherInput }) },
      toolChoice: { type: 'tool', toolName: 'get_weather' },
      maxRetries: 0,
    });
    const kinds = new Set<string>();
    for await (const part of result.fullStream) kinds.add(part.type);
    expect(kinds).toContain('tool-input-delta');
    expect(kinds).toContain('tool-call');
    expect((await result.toolCalls)[0]?.toolName).toBe('get_weather');
  });
});

describe.each([['parlance-scripted'], ['up-model']])('LangChain JS on %s', (model) => {
  const chat = () => new ChatOpenAI({ model, apiKey: 'unused', maxRetries: 0, configuration: { baseURL: `${server.url}/v1` } });
  const getWeather = langchainTool(async () => 'sunny', { name: 'get_weather', description: 'The weather in a city', schema: weatherInput });

  it('bindTools returns tool calls with parsed args', async () => {
    const message = await chat().bindTools([getWeather], { tool_choice: 'get_weather' }).invoke('What is the weather?');
    expect(message.tool_calls).toHaveLength(1);
    expect(message.tool_calls?.[0]?.name).toBe('get_weather');
    expect(weatherInput.safeParse(message.tool_calls?.[0]?.args).success).toBe(true);
    expect(message.tool_calls?.[0]?.id).toMatch(/^call_/);
  });

  it('bindTools with tool_choice auto calls when asked by name, and the ToolMessage loop answers', async () => {
    const bound = chat().bindTools([getWeather]);
    const first = await bound.invoke('Please use get_weather');
    const call = first.tool_calls?.[0];
    expect(call?.name).toBe('get_weather');
    const result = await getWeather.invoke({ ...call!, type: 'tool_call' });
    const second = await bound.invoke([{ role: 'user', content: 'Please use get_weather' }, first, result]);
    expect(second.tool_calls ?? []).toHaveLength(0);
    expect(String(second.content)).toContain('sunny');
  });

  it.each([['jsonSchema'], ['functionCalling']] as const)('withStructuredOutput (%s) returns an object that fits the schema', async (method) => {
    const structured = chat().withStructuredOutput(person, { method, name: 'person' });
    const object = await structured.invoke('Invent a person.');
    expect(person.safeParse(object).success).toBe(true);
  });
});
