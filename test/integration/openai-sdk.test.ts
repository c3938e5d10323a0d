import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
let client: OpenAI;
const model = 'parlance-tiny';

beforeAll(async () => {
  server = await startTestServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => server.stop());

describe('the official openai client against the embedded engine', () => {
  it('lists the served model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain(model);
    const one = await client.models.retrieve(model);
    expect(one).toMatchObject({ id: model, object: 'model' });
  });

  it('answers a non-streamed chat with text, finish_reason and exact usage', async () => {
    const completion = await client.chat.completions.create({
      model,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Say hello.' },
      ],
      max_tokens: 12,
      seed: 7,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    const choice = completion.choices[0];
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.message.content?.length).toBeGreaterThan(0);
    // The tiny model never samples end-of-turn, so 12 tokens always end on the length limit.
    expect(choice?.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBe(12);
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(5);
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + 12);
  });

  it('counts the system prompt: a longer one costs more prompt tokens', async () => {
    const ask = (system: string) =>
      client.chat.completions.create({ model, max_tokens: 1, messages: [{ role: 'system', content: system }, { role: 'user', content: 'hi' }] });
    const short = await ask('Be brief.');
    const long = await ask('Be brief. Answer in English, use short words, and never use more than ten words in a reply.');
    expect(long.usage!.prompt_tokens).toBeGreaterThan(short.usage!.prompt_tokens);
  });

  it('streams chunks whose text equals the non-streamed answer for the same seed', async () => {
    const request = { model, messages: [{ role: 'user' as const, content: 'Tell me a story.' }], max_tokens: 16, seed: 42, temperature: 0.9 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    const deltas: string[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(whole.choices[0]?.message.content);
    expect(finish).toBe('length');
    const { prompt_tokens_details: _, ...counts } = whole.usage ?? { prompt_tokens: 0 };
    expect(usage).toMatchObject(counts);
    // The same prompt again comes from the sequence's cache, all but its last token (evaluated for its logits).
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe((whole.usage?.prompt_tokens ?? 0) - 1);
  });

  it('stops before a stop sequence and reports finish_reason stop', async () => {
    const request = { model, messages: [{ role: 'user' as const, content: 'Go on.' }], max_tokens: 40, seed: 3, temperature: 0 };
    const free = (await client.chat.completions.create(request)).choices[0]?.message.content ?? '';
    // Pick a piece of the free-running answer as the stop sequence: the reply must end right before it.
    const stop = free.slice(10, 13);
    expect(stop.trim().length).toBeGreaterThan(0);
    const stopped = await client.chat.completions.create({ ...request, stop: [stop] });
    const text = stopped.choices[0]?.message.content ?? '';
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
    expect(text).not.toContain(stop);
    expect(free.startsWith(text)).toBe(true);
    expect(free.indexOf(stop)).toBe(text.length);
  });

  it('serves the legacy completions endpoint, streamed and not', async () => {
    const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]?.text.length).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBe(5);
    const stream = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  it('surfaces a bad parameter as a typed 400 naming the field', async () => {
    const error = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(apiError.status).toBe(400);
    expect(apiError.param).toBe('temperature');
    expect(apiError.code).toBe('invalid_request');
  });

  it('surfaces an unknown model as a typed 404', async () => {
    const error = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('refuses a prompt that cannot fit the context with context_length_exceeded, before generating', async () => {
    const huge = 'hello world '.repeat(2000);
    const error = await client.chat.completions.create({ model, messages: [{ role: 'user', content: huge }], stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
    const tooMany = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 100_000 }).catch((e: unknown) => e);
    expect((tooMany as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
    expect((tooMany as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('max_tokens');
  });
});
