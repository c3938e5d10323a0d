/**
 * The Responses API driving an agent: function calls forced and chosen, streamed and not, their outputs sent
 * back (by previous_response_id and by a stateless replay of the items), reasoning as summary items, and
 * text.format json_schema. Through the official openai client and the AI SDK's default provider, against the
 * scripted model, an OpenAI-compatible upstream acting as a model, and the embedded tiny GGUF (held to the
 * schemas by grammars).
 */
import { createOpenAI } from '@ai-sdk/openai';
import { Ajv } from 'ajv';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFromSchema } from '../../src/engines/scripted/schema-example.js';
import { agentScript, startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
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

// Enums only: the tiny model's random weights, held to the schema by a grammar, would fill a free string for
// as long as they are let (tool parameters cannot bound a string's length).
const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const tools: OpenAI.Responses.FunctionTool[] = [
  { type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters, strict: true },
  { type: 'function', name: 'get_time', description: 'The time in a zone', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false }, strict: true },
];
const validWeather = ajv.compile(weatherParameters);

describe.each(['parlance-scripted', 'up-model', 'parlance-tiny'])('function calls on %s', (model) => {
  it('makes a forced call whose arguments fit the schema, and answers from its output by previous_response_id', async () => {
    const call = await client.responses.create({ model, input: 'What is the weather in Paris?', tools, tool_choice: { type: 'function', name: 'get_weather' }, max_output_tokens: 200 });
    const items = call.output.filter((item) => item.type === 'function_call');
    expect(items).toHaveLength(1);
    const item = items[0];
    if (item?.type !== 'function_call') throw new Error('no call');
    expect(item.name).toBe('get_weather');
    expect(item.call_id.length).toBeGreaterThan(0);
    expect(validWeather(JSON.parse(item.arguments))).toBe(true);
    const answer = await client.responses.create({ model, previous_response_id: call.id, tools, input: [{ type: 'function_call_output', call_id: item.call_id, output: 'sunny, 21 C' }], max_output_tokens: 12 });
    expect(answer.output.some((output) => output.type === 'message')).toBe(true);
    if (model !== 'parlance-tiny') expect(answer.output_text).toContain('sunny, 21 C');
  });

  it('streams a call: the item, its argument deltas, and done events that agree with them', async () => {
    const stream = await client.responses.create({ model, input: 'Weather in Rome?', tools, tool_choice: 'required', stream: true, max_output_tokens: 200 });
    let deltas = '';
    let done: OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent | undefined;
    let added: OpenAI.Responses.ResponseOutputItem | undefined;
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === 'response.output_item.added' && event.item.type === 'function_call') added = event.item;
      if (event.type === 'response.function_call_arguments.delta') deltas += event.delta;
      if (event.type === 'response.function_call_arguments.done') done = event;
      if (event.type === 'response.completed') final = event.response;
    }
    expect(added?.type).toBe('function_call');
    expect(done?.arguments).toBe(deltas);
    expect(final?.output.find((item) => item.type === 'function_call')).toMatchObject({ arguments: deltas, status: 'completed' });
    expect(JSON.parse(deltas)).toBeTypeOf('object');
  });

  it("drives the AI SDK's tool loop to the tool's answer, streamed and not", async () => {
    const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const executed: unknown[] = [];
    const getWeather = tool({
      description: 'The weather in a city',
      inputSchema: jsonSchema<{ city: string; unit: string }>(weatherParameters),
      execute: async (input) => {
        executed.push(input);
        return 'cloudy';
      },
    });
    const result = await generateText({ model: openai(model), prompt: 'Use get_weather for Oslo.', tools: { get_weather: getWeather }, toolChoice: { type: 'tool', toolName: 'get_weather' }, stopWhen: stepCountIs(1), maxOutputTokens: 200, maxRetries: 0 });
    expect(result.toolCalls[0]?.toolName).toBe('get_weather');
    expect(validWeather(result.toolCalls[0]?.input)).toBe(true);
    expect(executed).toHaveLength(1);
    const streamed = streamText({ model: openai(model), prompt: 'Use get_weather for Oslo.', tools: { get_weather: getWeather }, toolChoice: 'required', stopWhen: stepCountIs(1), maxOutputTokens: 200, maxRetries: 0 });
    const calls = await streamed.toolCalls;
    expect(calls[0]?.toolName).toBe('get_weather');
    if (model !== 'parlance-tiny') {
      // Two steps: the call, then the answer from its result (sent back as a function_call_output item).
      const loop = await generateText({ model: openai(model), prompt: 'Use get_weather for Oslo.', tools: { get_weather: getWeather }, stopWhen: stepCountIs(2), maxRetries: 0 });
      expect(loop.steps).toHaveLength(2);
      expect(loop.text).toContain('cloudy');
    }
  });

  it('answers JSON that fits text.format json_schema', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string', maxLength: 20 }, ok: { type: 'boolean' } }, required: ['answer', 'ok'], additionalProperties: false };
    const response = await client.responses.create({ model, input: 'Rate this.', text: { format: { type: 'json_schema', name: 'rating', schema, strict: true } }, max_output_tokens: 200 });
    expect(ajv.compile(schema)(JSON.parse(response.output_text))).toBe(true);
  });
});

describe('reasoning', () => {
  it('streams the scripted model’s reasoning as a reasoning item before the message, and the AI SDK reads it', async () => {
    const stream = await client.responses.create({ model: 'parlance-scripted', input: '/think hello there', stream: true });
    const kinds: string[] = [];
    let summary = '';
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === 'response.output_item.added') kinds.push(event.item.type);
      if (event.type === 'response.reasoning_summary_text.delta') summary += event.delta;
      if (event.type === 'response.completed') final = event.response;
    }
    expect(kinds).toEqual(['reasoning', 'message']);
    expect(summary.length).toBeGreaterThan(0);
    expect(final?.output_text ?? (final?.output[1] as { content: { text: string }[] } | undefined)?.content[0]?.text).toBe('hello there');
    const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const result = await generateText({ model: openai('parlance-scripted'), prompt: '/think hello there', maxRetries: 0 });
    expect(result.reasoningText).toBe(summary);
    expect(result.text).toBe('hello there');
  });
});
