import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

interface Setup {
  readonly name: string;
  readonly model: string;
  start(): Promise<{ server: TestServer; upstream?: FakeUpstream }>;
}

const setups: Setup[] = [
  { name: 'the embedded tiny model', model: 'parlance-tiny', start: async () => ({ server: await startTestServer(noShedding) }) },
  {
    name: 'an OpenAI-compatible upstream',
    model: 'up-model',
    start: async () => {
      const upstream = await startFakeUpstream({ models: ['up-model'] });
      return { upstream, server: await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], ...noShedding }) };
    },
  },
];

type UpstreamMessage = { role: string; content: string };
const lastUpstreamMessages = (upstream: FakeUpstream): UpstreamMessage[] => (upstream.generations().at(-1)?.body as { messages: UpstreamMessage[] }).messages;

describe.each(setups)('the Responses API through $name', (setup) => {
  let server: TestServer;
  let upstream: FakeUpstream | undefined;
  let client: OpenAI;

  beforeAll(async () => {
    ({ server, upstream } = await setup.start());
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server.stop();
    await upstream?.close();
  });

  it('answers a non-streamed response: one message item, its text, usage, and the request echoed', async () => {
    const response = await client.responses.create({ model: setup.model, input: 'Say hello.', instructions: 'Be terse.', max_output_tokens: 12, temperature: 0.5 });
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(response.output).toHaveLength(1);
    const message = response.output[0];
    expect(message?.type).toBe('message');
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.usage?.input_tokens).toBeGreaterThan(0);
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    expect(response.usage?.total_tokens).toBe((response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0));
    expect(response).toMatchObject({ instructions: 'Be terse.', max_output_tokens: 12, temperature: 0.5, model: setup.model });
    if (upstream) {
      expect(lastUpstreamMessages(upstream)).toEqual([
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'Say hello.' },
      ]);
      expect(response.output_text).toBe('Hello from fake');
      expect(response.status).toBe('completed');
    } else {
      // The tiny model never ends a turn by itself: 12 tokens end on the limit.
      expect(response.status).toBe('incomplete');
      expect(response.incomplete_details?.reason).toBe('max_output_tokens');
      expect(response.usage?.output_tokens).toBe(12);
    }
  });

  it('streams the typed events in order, numbered, and their deltas add up to the final text', async () => {
    const stream = await client.responses.create({ model: setup.model, input: 'Count with me.', max_output_tokens: 16, stream: true });
    const types: string[] = [];
    const numbers: number[] = [];
    let deltas = '';
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      numbers.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
      if (event.type === 'response.completed' || event.type === 'response.incomplete') final = event.response;
    }
    expect(numbers).toEqual(numbers.map((_, i) => i));
    const distinct = types.filter((type, i) => type !== types[i - 1]);
    expect(distinct).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      upstream ? 'response.completed' : 'response.incomplete',
    ]);
    expect(types.filter((type) => type === 'response.output_text.delta').length).toBeGreaterThan(1);
    expect(final?.output_text ?? (final?.output[0] as { content: { text: string }[] } | undefined)?.content[0]?.text).toBe(deltas);
  });

  it('continues a stored response with previous_response_id, and keeps it for GET until DELETE', async () => {
    const first = await client.responses.create({ model: setup.model, input: 'My name is Ada.', max_output_tokens: 8 });
    const alone = await client.responses.create({ model: setup.model, input: 'What is my name?', max_output_tokens: 8, store: false });
    const second = await client.responses.create({ model: setup.model, input: 'What is my name?', previous_response_id: first.id, max_output_tokens: 8 });
    expect(second.previous_response_id).toBe(first.id);
    if (!upstream) {
      // The earlier turn went to the model: the prompt grew by it.
      expect(second.usage?.input_tokens).toBeGreaterThan(alone.usage?.input_tokens ?? Infinity);
    } else {
      expect(lastUpstreamMessages(upstream)).toEqual([
        { role: 'user', content: 'My name is Ada.' },
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: 'What is my name?' },
      ]);
    }
    const fetched = await client.responses.retrieve(second.id);
    expect(fetched.output_text).toBe(second.output_text);
    expect(fetched.usage).toEqual(second.usage);
    await client.responses.delete(second.id);
    await expect(client.responses.retrieve(second.id)).rejects.toMatchObject({ status: 404 });
  });

  it('keeps nothing with store: false: GET answers 404 and it cannot be continued', async () => {
    const response = await client.responses.create({ model: setup.model, input: 'Forget this.', max_output_tokens: 4, store: false });
    expect((response as { store?: boolean }).store).toBe(false);
    await expect(client.responses.retrieve(response.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ model: setup.model, input: 'and?', previous_response_id: response.id })).rejects.toMatchObject({ status: 404, param: 'previous_response_id' });
  });

  it('takes input items: messages with parts, an earlier assistant turn, and an item_reference to a stored item', async () => {
    const first = await client.responses.create({ model: setup.model, input: 'Remember blue.', max_output_tokens: 6 });
    const item = first.output[0];
    const second = await client.responses.create({
      model: setup.model,
      max_output_tokens: 6,
      input: [
        { role: 'developer', content: 'Answer in one word.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Remember blue.' }] },
        { type: 'item_reference', id: item?.id ?? '' },
        { role: 'user', content: [{ type: 'input_text', text: 'Which colour?' }] },
      ],
    });
    expect(second.status).not.toBe('failed');
    if (upstream) {
      expect(lastUpstreamMessages(upstream)).toEqual([
        { role: 'system', content: 'Answer in one word.' },
        { role: 'user', content: 'Remember blue.' },
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: 'Which colour?' },
      ]);
    }
    await expect(client.responses.create({ model: setup.model, input: [{ type: 'item_reference', id: 'msg_nothing' }] })).rejects.toMatchObject({ status: 404, param: 'input[0].id' });
  });

  it('refuses what it cannot honour, naming the field', async () => {
    const post = (body: unknown) => fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ background: true }, 'background'],
      [{ include: ['reasoning.encrypted_content'] }, 'include'],
      [{ truncation: 'auto' }, 'truncation'],
      [{ temperature: 3 }, 'temperature'],
      [{ max_output_tokens: 0 }, 'max_output_tokens'],
      [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'input[0].content[0]'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [{ type: 'function', name: 'a' }], tool_choice: { type: 'function', name: 'b' } }, 'tool_choice'],
    ];
    for (const [extra, param] of cases) {
      const response = await post({ model: setup.model, input: 'x', ...extra });
      expect(response.status, JSON.stringify(extra)).toBe(400);
      expect(((await response.json()) as { error: { param: string } }).error.param).toBe(param);
    }
    expect((await post({ model: 'no-such-model', input: 'x' })).status).toBe(404);
    expect((await post({ model: setup.model })).status).toBe(400);
  });

  it("serves the AI SDK's default OpenAI provider: generateText and streamText", async () => {
    const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const generated = await generateText({ model: openai(setup.model), prompt: 'Say hi.', maxOutputTokens: 10, maxRetries: 0 });
    expect(generated.text.length).toBeGreaterThan(0);
    expect(generated.usage.inputTokens).toBeGreaterThan(0);
    expect(generated.usage.outputTokens).toBeGreaterThan(0);
    const streamed = streamText({ model: openai(setup.model), prompt: 'Say hi.', maxOutputTokens: 10, maxRetries: 0 });
    const pieces: string[] = [];
    for await (const piece of streamed.textStream) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(await streamed.text);
    expect(['stop', 'length']).toContain(await streamed.finishReason);
  });
});
