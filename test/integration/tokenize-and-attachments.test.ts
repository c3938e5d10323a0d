/**
 * Parlance's own model list and token counter (`/parlance/api/models`, `/parlance/api/tokenize`), and files sent
 * with a conversation message: stored with it, shown to the model, exported and imported, and images refused for
 * a model that cannot see them. Real server, `fetch`, the tiny GGUF through llama.cpp, the scripted model and a
 * fake upstream (which declares images, as a relay does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree } from '../../src/protocol/conversations.js';
import type { ModelList, TokenCount } from '../../src/protocol/parlance-models.js';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
let upstream: FakeUpstream;
let tiny: string;
const scripted = 'parlance-scripted';

beforeAll(async () => {
  upstream = await startFakeUpstream({ models: ['eyes'] });
  server = await startTestServer({ scripted: true, upstreams: [`fake=${upstream.url}`], ...noShedding });
  const list = (await (await fetch(`${server.url}/parlance/api/models`)).json()) as ModelList;
  tiny = list.models.find((model) => model.id !== scripted && model.ownedBy === 'parlance')?.id ?? '';
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

async function post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

const tokenize = (body: unknown) => post<TokenCount & { error?: { param?: string; message: string; code: string } }>('/parlance/api/tokenize', body);

describe('GET /parlance/api/models', () => {
  it("lists each model's capabilities and context, and the server's limits", async () => {
    const list = (await (await fetch(`${server.url}/parlance/api/models`)).json()) as ModelList;
    expect(list.defaultModel).toBe(tiny);
    expect(list.requestBodyBytes).toBe(1 << 20);
    const byId = new Map(list.models.map((model) => [model.id, model]));
    expect(byId.get(tiny)).toMatchObject({ contextLength: 1024, countsTokens: true });
    expect(byId.get(tiny)?.capabilities).not.toContain('images');
    expect(byId.get(scripted)?.capabilities).toContain('tools');
    expect(byId.get('eyes')).toMatchObject({ countsTokens: false, capabilities: expect.arrayContaining(['images']) as unknown });
  });
});

describe('POST /parlance/api/tokenize', () => {
  const chat = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'How many tokens does this question take, with the template around it?' },
  ];

  it("counts a chat as the engine's own prompt does: the same number as a generation's prompt_tokens", async () => {
    const counted = await tokenize({ model: tiny, messages: chat });
    expect(counted.status).toBe(200);
    expect(counted.body).toMatchObject({ model: tiny, exact: true, contextLength: 1024 });
    const completion = await post<{ usage: { prompt_tokens: number } }>('/v1/chat/completions', { model: tiny, messages: chat, max_tokens: 1 });
    expect(completion.status).toBe(200);
    expect(counted.body.tokens).toBe(completion.body.usage.prompt_tokens);
    // Anthropic's count_tokens is the same count, through the same template.
    const anthropic = await post<{ input_tokens: number }>('/v1/messages/count_tokens', { model: tiny, system: chat[0]?.content, messages: [{ role: 'user', content: chat[1]?.content }] });
    expect(anthropic.body.input_tokens).toBe(counted.body.tokens);
  });

  it('counts raw text without a template, and more text is more tokens', async () => {
    const short = await tokenize({ model: tiny, text: 'one two three' });
    const long = await tokenize({ model: tiny, text: 'one two three four five six seven eight nine ten' });
    expect(short.body.exact).toBe(true);
    expect(long.body.tokens).toBeGreaterThan(short.body.tokens);
    const templated = await tokenize({ model: tiny, messages: [{ role: 'user', content: 'one two three' }] });
    expect(templated.body.tokens).toBeGreaterThan(short.body.tokens);
  });

  it("counts a draft after a conversation's history (system prompt and branch) without sending the history", async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: scripted, systemPrompt: 'Be brief.' })).body;
    const sent = await fetch(`${server.url}/parlance/api/conversations/${conversation.id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'first words here' }) });
    await sent.text();
    const draft = { role: 'user', content: 'and a draft of five words' };
    const byConversation = await tokenize({ conversationId: conversation.id, messages: [draft] });
    const whole = await tokenize({
      model: scripted,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'first words here' }, { role: 'assistant', content: 'first words here' }, draft],
    });
    expect(byConversation.body).toMatchObject({ model: scripted, exact: true });
    expect(byConversation.body.tokens).toBe(whole.body.tokens);
  });

  it('counts attached text files as the model reads them', async () => {
    const bare = await tokenize({ model: tiny, messages: [{ role: 'user', content: 'Summarise the file.' }] });
    const withFile = await tokenize({
      model: tiny,
      messages: [{ role: 'user', content: 'Summarise the file.', attachments: [{ type: 'text', name: 'notes.txt', mediaType: 'text/plain', text: 'The quick brown fox jumps over the lazy dog.' }] }],
    });
    expect(withFile.body.tokens).toBeGreaterThan(bare.body.tokens + 10);
  });

  it('estimates, and says so, for an engine that cannot count (an upstream)', async () => {
    const counted = await tokenize({ model: 'eyes', text: 'x'.repeat(400) });
    expect(counted.status).toBe(200);
    expect(counted.body).toMatchObject({ model: 'eyes', exact: false, tokens: 100, contextLength: null });
  });

  it('refuses bad bodies with a 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ model: tiny }, 'messages'],
      [{ model: tiny, text: 'a', messages: [] }, 'messages'],
      [{ model: tiny, text: 42 }, 'text'],
      [{ model: tiny, messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0].role'],
      [{ model: tiny, messages: [{ role: 'user' }] }, 'messages[0].content'],
      [{ model: tiny, text: 'a', conversationId: 'c' }, 'conversationId'],
      [{ model: tiny, text: 'x'.repeat(4_000_001) }, 'text'],
    ];
    for (const [body, param] of cases) {
      const answer = await tokenize(body);
      expect(answer.status, JSON.stringify(body).slice(0, 80)).toBe(answer.status === 413 ? 413 : 400);
      if (answer.status === 400) expect(answer.body.error?.param, JSON.stringify(body).slice(0, 80)).toBe(param);
    }
    // An unknown field is named in the message (the whole body is the param, as for every route).
    const extra = await tokenize({ model: tiny, text: 'a', temperature: 1 });
    expect(extra.status).toBe(400);
    expect(extra.body.error?.message).toContain('temperature');
    const unknown = await tokenize({ model: 'no-such-model', text: 'a' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.param).toBe('model');
    const missing = await tokenize({ conversationId: 'no-such-conversation', messages: [] });
    expect(missing.status).toBe(404);
    expect(missing.body.error?.param).toBe('conversationId');
  });
});

describe('attachments on conversation messages', () => {
  const file = { type: 'text', name: 'notes.txt', mediaType: 'text/plain', text: 'The meeting moved to Thursday.' };
  const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const image = { type: 'image', name: 'dot.png', mediaType: 'image/png', url: pixel };

  async function send(conversationId: string, body: unknown): Promise<{ status: number; events: { event: string; data: string }[]; error?: { param?: string; code: string; message: string } }> {
    const response = await fetch(`${server.url}/parlance/api/conversations/${conversationId}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) return { status: response.status, events: [], error: (JSON.parse(text) as { error: { param?: string; code: string; message: string } }).error };
    return { status: response.status, events: parseSse(text) };
  }

  it('stores a text file with the message, shows it to the model, and keeps it through reload, export and import', async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: scripted })).body;
    const sent = await send(conversation.id, { content: 'What does it say?', attachments: [file] });
    expect(sent.status).toBe(200);
    // The scripted model echoes what it was shown: the file, under its name, then the question.
    const done = JSON.parse(sent.events.at(-1)?.data ?? '{}') as { message: { content: string } };
    expect(done.message.content).toContain('File: notes.txt');
    expect(done.message.content).toContain('The meeting moved to Thursday.');
    expect(done.message.content.trim().endsWith('What does it say?')).toBe(true);
    const tree = (await (await fetch(`${server.url}/parlance/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    const user = tree.messages.find((message) => message.role === 'user');
    expect(user?.content).toBe('What does it say?');
    expect(user?.attachments).toEqual([file]);
    const exported = (await (await fetch(`${server.url}/parlance/api/conversations/${conversation.id}/export`)).json()) as unknown;
    const imported = await post<ConversationRecord>('/parlance/api/conversations/import', exported);
    expect(imported.status).toBe(201);
    const copy = (await (await fetch(`${server.url}/parlance/api/conversations/${imported.body.id}`)).json()) as ConversationTree;
    expect(copy.messages.find((message) => message.role === 'user')?.attachments).toEqual([file]);
    const markdown = await (await fetch(`${server.url}/parlance/api/conversations/${conversation.id}/export?format=markdown`)).text();
    expect(markdown).toContain('File: notes.txt');
  });

  it('takes a message of files alone, titled by their names', async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: scripted })).body;
    const sent = await send(conversation.id, { content: '', attachments: [file] });
    expect(sent.status).toBe(200);
    const tree = (await (await fetch(`${server.url}/parlance/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    expect(tree.conversation.title).toBe('notes.txt');
    const empty = await send(conversation.id, { content: '  ' });
    expect(empty.status).toBe(400);
    expect(empty.error?.param).toBe('content');
  });

  it('refuses an image for a model that cannot see, before anything is stored', async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: scripted })).body;
    const refused = await send(conversation.id, { content: 'What is this?', attachments: [image] });
    expect(refused.status).toBe(400);
    expect(refused.error).toMatchObject({ code: 'unsupported_parameter', param: 'attachments' });
    expect(refused.error?.message).toContain('does not accept images');
    const tree = (await (await fetch(`${server.url}/parlance/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    expect(tree.messages).toEqual([]);
  });

  it('sends an image to a model that takes images, as an image part after the text files', async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: 'eyes' })).body;
    const before = upstream.generations().length;
    const sent = await send(conversation.id, { content: 'What is this?', attachments: [file, image] });
    expect(sent.status).toBe(200);
    const request = upstream.generations()[before]?.body as { messages: { role: string; content: unknown }[] };
    const user = request.messages.find((message) => message.role === 'user');
    expect(user?.content).toEqual([
      { type: 'text', text: expect.stringContaining('The meeting moved to Thursday.') as unknown },
      { type: 'image_url', image_url: { url: pixel } },
      { type: 'text', text: 'What is this?' },
    ]);
    // A count leaves images out, and says how many: the one in the history and the one in the draft.
    const counted = await tokenize({ conversationId: conversation.id, messages: [{ role: 'user', content: 'And this?', attachments: [image] }] });
    expect(counted.status).toBe(200);
    expect(counted.body.imagesNotCounted).toBe(2);
    expect((await tokenize({ conversationId: conversation.id, messages: [{ role: 'user', content: 'And this?' }] })).body.imagesNotCounted).toBe(1);
    expect((await tokenize({ model: 'eyes', messages: [{ role: 'user', content: 'No pictures.', attachments: [file] }] })).body.imagesNotCounted).toBe(0);
  });

  it('refuses what is not a base64 image data: URL, naming the field', async () => {
    const conversation = (await post<ConversationRecord>('/parlance/api/conversations', { model: 'eyes' })).body;
    const remote = await send(conversation.id, { content: 'x', attachments: [{ ...image, url: 'https://example.com/cat.png' }] });
    expect(remote.status).toBe(400);
    expect(remote.error?.param).toBe('attachments[0].url');
  });
});
