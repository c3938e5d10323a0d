import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationPage, ConversationRecord, ConversationTree, MessageRecord, ReplyDone, ReplyStart } from '../../src/protocol/conversations.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
const model = 'parlance-scripted';

beforeAll(async () => {
  // The scripted model echoes the user's message word by word, 30 ms apart: slow enough to interrupt.
  server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 30 });
});
afterAll(async () => server.stop());

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads SSE events from a response as they arrive; `until` may stop early (the connection is then dropped). */
async function readEvents(response: Response, until?: (events: SseEvent[]) => boolean, abort?: AbortController): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) events.push({ event, id, data: data.join('\n') });
    }
    if (until?.(events)) {
      abort?.abort();
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return events;
}

const textOf = (events: SseEvent[]) => events.filter((e) => e.event === 'delta').map((e) => (JSON.parse(e.data) as { text: string }).text).join('');
const doneOf = (events: SseEvent[]) => {
  const done = events.find((e) => e.event === 'done');
  return done ? (JSON.parse(done.data) as ReplyDone) : undefined;
};

async function createConversation(extra: Record<string, unknown> = {}): Promise<ConversationRecord> {
  const created = await api<ConversationRecord>('POST', '/api/conversations', { model, ...extra });
  expect(created.status).toBe(201);
  return created.body;
}

function send(conversationId: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/conversations/${conversationId}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
}

describe('conversations', () => {
  it('stores the exchange: start, deltas with text offsets as ids, done with the stored reply', async () => {
    const conversation = await createConversation();
    const response = await send(conversation.id, { content: 'hello brave new world' });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(response);
    expect(events[0]?.event).toBe('start');
    const start = JSON.parse(events[0]!.data) as ReplyStart;
    expect(start.userMessage?.content).toBe('hello brave new world');
    expect(start.assistantMessage.status).toBe('streaming');
    const deltas = events.filter((e) => e.event === 'delta');
    // Deltas carry text as it is stored (the first at once, then each save), so they batch tokens.
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    let offset = 0;
    let text = '';
    for (const delta of deltas) {
      const piece = (JSON.parse(delta.data) as { text: string }).text;
      offset += piece.length;
      text += piece;
      expect(delta.id).toBe(`${offset}.0.0`); // the cursor: text, reasoning, tool calls
    }
    expect(text).toBe('hello brave new world');
    const done = doneOf(events)!;
    expect(done.message).toMatchObject({ id: start.assistantMessage.id, status: 'complete', content: 'hello brave new world', model });
    expect(done.message.usage?.completionTokens).toBe(4);
    expect(done.message.timings?.firstTokenMs).toBeGreaterThan(0);
    // The echo model is not asked for a title (it would echo the request): the first message names it.
    expect(done.conversation.title).toBe('hello brave new world');

    const tree = await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`);
    expect(tree.body.messages.map((m) => [m.role, m.status, m.content])).toEqual([
      ['user', 'complete', 'hello brave new world'],
      ['assistant', 'complete', 'hello brave new world'],
    ]);
    expect(tree.body.activePath).toEqual([start.userMessage!.id, start.assistantMessage.id]);
  });

  it('sends the earlier turns and the system prompt to the model', async () => {
    const conversation = await createConversation({ systemPrompt: 'Be kind.' });
    await readEvents(await send(conversation.id, { content: 'first turn' }));
    const second = doneOf(await readEvents(await send(conversation.id, { content: 'second turn' })))!;
    // The echo model counts every word it was given as a prompt token (plus 4 per message): system + 3 turns.
    expect(second.message.usage?.promptTokens).toBe(2 + 4 + 2 + 4 + 2 + 4 + 2 + 4);
  });

  it('lists newest first, with pagination; renames; deletes', async () => {
    const a = await createConversation({ title: 'Alpha' });
    const b = await createConversation({ title: 'Beta' });
    const first = await api<ConversationPage>('GET', '/api/conversations?limit=1');
    expect(first.body.conversations.map((c) => c.id)).toEqual([b.id]);
    const second = await api<ConversationPage>('GET', `/api/conversations?limit=1&cursor=${encodeURIComponent(first.body.nextCursor!)}`);
    expect(second.body.conversations.map((c) => c.id)).toEqual([a.id]);
    const renamed = await api<ConversationRecord>('PATCH', `/api/conversations/${a.id}`, { title: 'Renamed' });
    expect(renamed.body.title).toBe('Renamed');
    const top = await api<ConversationPage>('GET', '/api/conversations?limit=1');
    expect(top.body.conversations[0]?.id).toBe(a.id);
    expect((await api('DELETE', `/api/conversations/${a.id}`)).status).toBe(204);
    expect((await api('GET', `/api/conversations/${a.id}`)).status).toBe(404);
  });

  it('keeps generating when the client goes away, and a reconnect with Last-Event-ID gets exactly the rest', async () => {
    const conversation = await createConversation();
    const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
    const abort = new AbortController();
    const early = await readEvents(await send(conversation.id, { content: words }, abort.signal), (events) => events.filter((e) => e.event === 'delta').length >= 3, abort);
    const start = JSON.parse(early[0]!.data) as ReplyStart;
    const lastId = early.filter((e) => e.event === 'delta').at(-1)!.id!;
    await new Promise((resolve) => setTimeout(resolve, 200)); // the reply goes on meanwhile
    const resumed = await readEvents(await fetch(`${server.url}/api/messages/${start.assistantMessage.id}/events`, { headers: { 'last-event-id': lastId } }));
    expect(resumed.some((e) => e.event === 'start')).toBe(false);
    const text = textOf(early) + textOf(resumed);
    const done = doneOf(resumed)!;
    expect(done.message.status).toBe('complete');
    expect(text).toBe(done.message.content);
    expect(text).toBe(words);
  });

  it('streams and stores the reasoning apart from the answer, and resumes each part from the cursor', async () => {
    const conversation = await createConversation();
    const events = await readEvents(await send(conversation.id, { content: '/think alpha beta gamma' }));
    const reasoning = events.filter((e) => e.event === 'reasoning').map((e) => (JSON.parse(e.data) as { text: string }).text).join('');
    expect(reasoning).toBe('Thinking about: alpha beta gamma');
    expect(textOf(events)).toBe('alpha beta gamma');
    const done = doneOf(events)!;
    expect(done.message).toMatchObject({ content: 'alpha beta gamma', reasoning: 'Thinking about: alpha beta gamma', finishReason: 'stop' });
    const tree = await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`);
    expect(tree.body.messages.find((m) => m.role === 'assistant')?.reasoning).toBe('Thinking about: alpha beta gamma');
    // A reader that had 9 characters of the reasoning and none of the answer gets exactly the rest of both.
    const id = done.message.id;
    const again = await readEvents(await fetch(`${server.url}/api/messages/${id}/events`, { headers: { 'last-event-id': '0.9.0' } }));
    expect(again.filter((e) => e.event === 'reasoning').map((e) => (JSON.parse(e.data) as { text: string }).text)).toEqual(['about: alpha beta gamma']);
    expect(textOf(again)).toBe('alpha beta gamma');
    const bad = await fetch(`${server.url}/api/messages/${id}/events`, { headers: { 'last-event-id': '1.x.2' } });
    expect(bad.status).toBe(400);
  });

  it('records a reply cut at max tokens as such, and continues it into the same message', async () => {
    const conversation = await createConversation({ settings: { maxTokens: 3 } });
    const first = doneOf(await readEvents(await send(conversation.id, { content: 'one two three four five six seven' })))!;
    expect(first.message).toMatchObject({ status: 'complete', content: 'one two three', finishReason: 'length' });
    const more = await readEvents(await fetch(`${server.url}/api/conversations/${conversation.id}/messages/${first.message.id}/continue`, { method: 'POST' }));
    expect(more[0]?.event).toBe('start');
    const done = doneOf(more)!;
    expect(done.message).toMatchObject({ id: first.message.id, status: 'complete', content: 'one two three four five six', finishReason: 'length' });
    expect(textOf(more)).toBe('one two three four five six'); // the text so far first, then the rest
    expect(done.message.usage?.completionTokens).toBe(6);
    const tree = await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`);
    expect(tree.body.messages).toHaveLength(2);
    // Only a reply can be continued.
    const user = tree.body.messages.find((m) => m.role === 'user')!;
    const refused = await fetch(`${server.url}/api/conversations/${conversation.id}/messages/${user.id}/continue`, { method: 'POST' });
    expect(refused.status).toBe(400);
  });

  it('replays a finished reply to a late reconnect', async () => {
    const conversation = await createConversation();
    const events = await readEvents(await send(conversation.id, { content: 'one two three' }));
    const id = (JSON.parse(events[0]!.data) as ReplyStart).assistantMessage.id;
    const again = await readEvents(await fetch(`${server.url}/api/messages/${id}/events`, { headers: { 'last-event-id': '4' } }));
    expect(textOf(again)).toBe('one two three'.slice(4));
    expect(doneOf(again)?.message.status).toBe('complete');
  });

  it('stops a reply from another request, keeping its partial text', async () => {
    const conversation = await createConversation();
    const words = Array.from({ length: 100 }, (_, i) => `s${i}`).join(' ');
    const response = await send(conversation.id, { content: words });
    const stream = readEvents(response);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const tree = await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`);
    const streaming = tree.body.messages.find((m) => m.role === 'assistant')!;
    expect(streaming.status).toBe('streaming');
    const stopped = await api<MessageRecord>('POST', `/api/messages/${streaming.id}/stop`);
    expect(stopped.body.status).toBe('stopped');
    expect(stopped.body.content.length).toBeGreaterThan(0);
    expect(words.startsWith(stopped.body.content)).toBe(true);
    expect(stopped.body.content.length).toBeLessThan(words.length);
    const events = await stream;
    expect(doneOf(events)?.message.status).toBe('stopped');
    expect(textOf(events)).toBe(stopped.body.content);
  });

  it('regenerates as a sibling, edits as a new branch, and switches branches', async () => {
    const conversation = await createConversation();
    const firstEvents = await readEvents(await send(conversation.id, { content: 'original question' }));
    const first = JSON.parse(firstEvents[0]!.data) as ReplyStart;
    const response = await fetch(`${server.url}/api/conversations/${conversation.id}/messages/${first.assistantMessage.id}/regenerate`, { method: 'POST' });
    expect(response.status).toBe(200);
    const regenerated = await readEvents(response);
    const second = JSON.parse(regenerated[0]!.data) as ReplyStart;
    expect(second.userMessage).toBeUndefined();
    expect(second.assistantMessage.parentId).toBe(first.userMessage!.id);
    // The new reply answers the same history as the first: the old reply is not part of its prompt.
    expect(doneOf(regenerated)?.message.usage?.promptTokens).toBe(doneOf(firstEvents)?.message.usage?.promptTokens);
    const edited = await readEvents(await send(conversation.id, { content: 'edited question', parentId: null }));
    const third = JSON.parse(edited[0]!.data) as ReplyStart;
    let tree = (await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`)).body;
    expect(tree.messages).toHaveLength(5);
    expect(tree.activePath).toEqual([third.userMessage!.id, third.assistantMessage.id]);
    tree = (await api<ConversationTree>('PUT', `/api/conversations/${conversation.id}/branch`, { messageId: first.assistantMessage.id })).body;
    expect(tree.activePath).toEqual([first.userMessage!.id, first.assistantMessage.id]);
  });

  it('exports as JSON and Markdown, and imports the JSON back', async () => {
    const conversation = await createConversation({ title: 'Export me', systemPrompt: 'sys' });
    await readEvents(await send(conversation.id, { content: 'to export' }));
    const json = await fetch(`${server.url}/api/conversations/${conversation.id}/export`);
    expect(json.headers.get('content-disposition')).toContain('attachment');
    const data = (await json.json()) as { conversation: ConversationRecord; messages: MessageRecord[] };
    expect(data.messages.map((m) => m.content)).toEqual(['to export', 'to export']);
    const markdown = await (await fetch(`${server.url}/api/conversations/${conversation.id}/export?format=markdown`)).text();
    expect(markdown).toContain('**User:**');
    expect(markdown).toContain('to export');
    const imported = await api<ConversationRecord>('POST', '/api/conversations/import', data);
    expect(imported.status).toBe(201);
    expect(imported.body.id).not.toBe(conversation.id);
    const tree = (await api<ConversationTree>('GET', `/api/conversations/${imported.body.id}`)).body;
    expect(tree.messages.map((m) => m.content)).toEqual(['to export', 'to export']);
  });

  it('answers bad ids with 404 and bad bodies with 400 naming the field, writing nothing', async () => {
    const before = (await api<ConversationPage>('GET', '/api/conversations?limit=100')).body.conversations.length;
    expect((await api('GET', '/api/conversations/nope')).status).toBe(404);
    expect((await send('nope', { content: 'x' })).status).toBe(404);
    expect((await api('POST', '/api/messages/nope/stop')).status).toBe(404);
    const bad = await api<{ error: { param: string } }>('POST', '/api/conversations', { title: 5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('title');
    const unknownModel = await api<{ error: { code: string } }>('POST', '/api/conversations', { model: 'no-such' });
    expect(unknownModel.body.error.code).toBe('model_not_found');
    const conversation = await createConversation();
    const empty = await send(conversation.id, { content: '' });
    expect(empty.status).toBe(400);
    const wrongParent = await send(conversation.id, { content: 'x', parentId: 'missing' });
    expect(wrongParent.status).toBe(404);
    const badImport = await api('POST', '/api/conversations/import', { format: 'parlance.conversation', version: 1, conversation: {}, messages: 'no' });
    expect(badImport.status).toBe(400);
    const tree = (await api<ConversationTree>('GET', `/api/conversations/${conversation.id}`)).body;
    expect(tree.messages).toHaveLength(0);
    expect((await api<ConversationPage>('GET', '/api/conversations?limit=100')).body.conversations.length).toBe(before + 1);
  });
});
