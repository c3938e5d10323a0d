/**
 * Out-of-range and wrong-typed parameters on every dialect, and prompts that do not fit the context,
 * against the real server (embedded llama.cpp on the tiny GGUF with a 1024-token context, plus the
 * scripted model). Every refusal is a 400 whose `param` names the field; nothing reaches an engine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree } from '../../src/protocol/conversations.js';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, expectSettled, postJson, readUntil, words } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ scripted: true, contextSize: 1024 });
});
afterAll(async () => server.stop());
afterEach(async () => expectSettled(server.url));

const scripted = 'parlance-scripted';
const tiny = 'parlance-tiny';
const userSays = (content: unknown) => [{ role: 'user', content }];

async function expectRefused(path: string, body: unknown, param: string): Promise<void> {
  const response = await postJson(`${server.url}${path}`, body);
  const answer: unknown = await response.json();
  expect(response.status, `${path} ${JSON.stringify(body).slice(0, 200)} → ${JSON.stringify(answer)}`).toBe(400);
  const { error } = expectOpenAIError(answer, 'invalid_request');
  expect(error.param ?? '', JSON.stringify(answer)).toMatch(new RegExp(`^${param.replace(/[.[\]]/g, '\\$&')}`));
  expect(error.message).toContain(param.split('.')[0]!.split('[')[0]!);
}

describe('OpenAI parameters out of range or of the wrong type', () => {
  const cases: [field: string, value: unknown, param?: string][] = [
    ['max_tokens', -1],
    ['max_tokens', 0],
    ['max_tokens', 1.5],
    ['max_tokens', '5'],
    ['max_tokens', 1e308],
    ['max_tokens', true],
    ['max_completion_tokens', -5],
    ['max_completion_tokens', 2 ** 60],
    ['temperature', -0.1],
    ['temperature', 2.5],
    ['temperature', 'hot'],
    ['temperature', 1e308],
    ['top_p', 0],
    ['top_p', 1.5],
    ['top_p', '1'],
    ['seed', 1.5],
    ['seed', 2 ** 60],
    ['seed', 'lucky'],
    ['stop', ['a', 'b', 'c', 'd', 'e']],
    ['stop', ''],
    ['stop', ['']],
    ['stop', [1]],
    ['stop', 5],
    ['stop', ['x'.repeat(1025)]],
    ['stop', 'y'.repeat(1025)],
    ['n', 2],
    ['n', 0],
    ['presence_penalty', 3],
    ['frequency_penalty', -3],
    ['stream', 'yes'],
    ['stream_options', { include_usage: 'y' }, 'stream_options.include_usage'],
    ['model', ''],
    ['model', 'x'.repeat(300)],
    ['model', 5],
    ['user', 'x'.repeat(300)],
    ['messages', []],
    ['messages', 'hi'],
    ['messages', [{ role: 'robot', content: 'x' }], 'messages[0].role'],
    ['messages', [{ role: 'user', content: 5 }], 'messages[0].content'],
    ['messages', [{ role: 'user' }], 'messages[0].content'],
    ['messages', [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], 'messages[0].content'],
    ['messages', Array.from({ length: 4097 }, () => ({ role: 'user', content: 'x' }))],
  ];

  it.each(cases)('/v1/chat/completions refuses %s = %j with 400 naming the field', async (field, value, param) => {
    await expectRefused('/v1/chat/completions', { model: scripted, messages: userSays('hi'), [field]: value }, param ?? field);
  });

  it.each([
    ['prompt', 5],
    ['prompt', ['a', 'b']],
    ['prompt', []],
    ['echo', true],
    ['suffix', 'x'],
    ['max_tokens', 0],
    ['temperature', 9],
  ] as const)('/v1/completions refuses %s = %j with 400 naming the field', async (field, value) => {
    await expectRefused('/v1/completions', { model: scripted, prompt: 'hi', [field]: value }, field);
  });

  it('names the field for the conversation API and the seed endpoints too', async () => {
    await expectRefused('/api/conversations', { settings: { temperature: 5 } }, 'settings.temperature');
    await expectRefused('/api/conversations', { settings: { maxTokens: 0 } }, 'settings.maxTokens');
    await expectRefused('/api/conversations', { settings: { stop: ['a', 'b', 'c', 'd', 'e'] } }, 'settings.stop');
    await expectRefused('/api/conversations', { settings: { seed: 'x' } }, 'settings.seed');
    await expectRefused('/api/conversations', { title: 'x'.repeat(201) }, 'title');
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: scripted })).json()) as ConversationRecord;
    await expectRefused(`/api/conversations/${conversation.id}/messages`, { content: '' }, 'content');
    await expectRefused(`/api/conversations/${conversation.id}/messages`, { content: 5 }, 'content');
    await expectRefused(`/api/conversations/${conversation.id}/messages`, { content: 'hi', parentId: 5 }, 'parentId');
    for (const limit of ['0', 'abc', '101', '1e9', '-1']) {
      const response = await fetch(`${server.url}/api/conversations?limit=${limit}`);
      expect(response.status, limit).toBe(400);
      expectOpenAIError(await response.json(), 'invalid_request', 'limit');
    }
    await expectRefused('/completion', { prompt: '' }, 'prompt');
    await expectRefused('/completion', { prompt: 5 }, 'prompt');
    const seed = await postJson(`${server.url}/prompt_data`, { prompt: 5 });
    expect(seed.status).toBe(422);
    expect(await seed.json()).toMatchObject({ detail: [{ loc: ['body', 'prompt'], type: 'string_type' }] });
    // Nothing refused was stored: the conversation has no messages.
    const tree = (await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    expect(tree.messages).toEqual([]);
  });

  it('accepts the edges of every range', async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: scripted,
      messages: userSays('edge'),
      max_tokens: 1,
      temperature: 2,
      top_p: 1,
      seed: Number.MIN_SAFE_INTEGER,
      stop: ['a', 'b', 'c', 'd'],
      n: 1,
      // Penalties are in range but the scripted model cannot honour them: see openai-validation.test.ts.
      presence_penalty: 0,
      frequency_penalty: 0,
      stream: false,
      user: 'u'.repeat(256),
    });
    expect(response.status, await response.clone().text()).toBe(200);
  });
});

describe('prompts and limits that do not fit the context', () => {
  const long = words(1500, 'w'); // well over 1024 tokens however the tiny vocabulary splits it

  async function contextLength(): Promise<number> {
    const health = (await (await fetch(`${server.url}/health`)).json()) as { models: { id: string; context_length: number | null }[] };
    return health.models.find((model) => model.id === tiny)?.context_length ?? 0;
  }

  it('answers a prompt longer than the context with 400 context_length_exceeded on every dialect', async () => {
    const chat = await postJson(`${server.url}/v1/chat/completions`, { model: tiny, messages: userSays(long) });
    expect(chat.status).toBe(400);
    expect(expectOpenAIError(await chat.json(), 'context_length_exceeded', 'messages').error.message).toMatch(/maximum context length is \d+ tokens/);

    const streamed = await postJson(`${server.url}/v1/chat/completions`, { model: tiny, stream: true, messages: userSays(long) });
    expect(streamed.status).toBe(400);
    expectOpenAIError(await streamed.json(), 'context_length_exceeded');

    const legacy = await postJson(`${server.url}/v1/completions`, { model: tiny, prompt: long });
    expect(legacy.status).toBe(400);
    expectOpenAIError(await legacy.json(), 'context_length_exceeded');

    const seed = await postJson(`${server.url}/completion`, { prompt: long, model: tiny });
    expect(seed.status).toBe(400);
    expectOpenAIError(await seed.json(), 'context_length_exceeded');
  });

  it('keeps the user message of a conversation whose prompt does not fit, and stores the reply as failed with the reason', async () => {
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: tiny })).json()) as ConversationRecord;
    const response = await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: long });
    expect(response.status).toBe(200);
    const done = parseSse(await response.text()).find((event) => event.event === 'done');
    const message = (JSON.parse(done?.data ?? '{}') as { message?: { status: string; error: { code: string } | null } }).message;
    expect(message).toMatchObject({ status: 'failed', error: { code: 'context_length_exceeded' } });
    const tree = (await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    expect(tree.messages.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'failed'],
    ]);
    expect(tree.messages[0]?.content).toBe(long);
  });

  it('admits max_tokens up to what the context holds, and refuses one more with 400 naming max_tokens', async () => {
    const limit = await contextLength();
    expect(limit).toBeGreaterThanOrEqual(1024);
    const probe = (await (await postJson(`${server.url}/v1/chat/completions`, { model: tiny, max_tokens: 1, messages: userSays('hello') })).json()) as { usage: { prompt_tokens: number } };
    const room = limit - probe.usage.prompt_tokens;

    const tooMany = await postJson(`${server.url}/v1/chat/completions`, { model: tiny, max_tokens: room + 1, messages: userSays('hello') });
    expect(tooMany.status).toBe(400);
    expectOpenAIError(await tooMany.json(), 'context_length_exceeded', 'max_tokens');
    const farTooMany = await postJson(`${server.url}/v1/chat/completions`, { model: tiny, max_completion_tokens: 1_000_000, messages: userSays('hello') });
    expect(farTooMany.status).toBe(400);
    expectOpenAIError(await farTooMany.json(), 'context_length_exceeded', 'max_tokens');

    // Exactly what fits is admitted: read the first token, then leave (the sequence must come back).
    const controller = new AbortController();
    const fits = await postJson(`${server.url}/v1/chat/completions`, { model: tiny, stream: true, max_tokens: room, messages: userSays('hello') }, {}, controller.signal);
    expect(fits.status).toBe(200);
    await readUntil(fits, (text) => text.includes('"content":"') && /"content":"[^"]/.test(text));
    controller.abort();
  });
});
