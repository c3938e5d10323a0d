/**
 * The search part of the store contract (`searchMessages`), on SQLite and, when its binaries are
 * installed, PostgreSQL, as test/conformance/store.contract.test.ts runs the rest.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationStore, SearchHit } from '../../src/store/contract.js';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { openStore } from '../../src/store/kysely/dialects.js';
import { streamingStep } from '../../src/store/kysely/migrations/0005_message_search.js';
import { migrationProvider, migrations } from '../../src/store/kysely/migrations/index.js';
import { storeTargets, type StoreTarget } from '../fixtures/store-targets.js';

const targets = storeTargets('searchMessages');

/** The matched words of a hit, as the page would mark them. */
const marked = (hit: SearchHit | undefined): string[] => (hit?.snippet.highlights ?? []).map(([start, end]) => hit?.snippet.text.slice(start, end) ?? '');

describe.each(targets)('searchMessages on $name', (target) => {
  let env: Awaited<ReturnType<StoreTarget['start']>>;
  const opened: ConversationStore[] = [];

  beforeAll(async () => {
    env = await target.start();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function fresh(): Promise<ConversationStore> {
    const store = await openStore(await env.newUrl());
    opened.push(store);
    await store.migrate();
    return store;
  }

  async function conversation(store: ConversationStore, title: string, ...texts: string[]) {
    const record = await store.createConversation({ title });
    let parentId: string | null = null;
    const messages = [];
    for (const [i, content] of texts.entries()) {
      const message = await store.appendMessage({ conversationId: record.id, parentId, role: i % 2 === 0 ? 'user' : 'assistant', content, model: i % 2 === 0 ? null : 'm' });
      messages.push(message);
      parentId = message.id;
    }
    return { conversation: record, messages };
  }

  it('indexes the messages stored before the index existed (the migration fills it)', async () => {
    const url = await env.newUrl();
    const db = new Kysely<unknown>({
      dialect: target.name === 'sqlite' ? new SqliteDialect({ database: new Database(url.slice('sqlite:'.length)) }) : new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
    });
    try {
      const { error } = await new Migrator({ db, provider: migrationProvider }).migrateTo('0004_message_parts');
      expect(error).toBeUndefined();
      await sql`insert into conversations (id, title, settings, created_at, updated_at) values ('c1', 'Old', '{}', 1, 1)`.execute(db);
      await sql`insert into messages (id, conversation_id, role, content, status, created_at, updated_at) values ('m1', 'c1', 'user', 'an ancient ammonite', 'complete', 1, 1)`.execute(db);
    } finally {
      await db.destroy();
    }
    const store = await openStore(url);
    opened.push(store);
    await expect(store.migrate()).resolves.toMatchObject({ applied: Object.keys(migrations).filter((name) => name > '0004_message_parts') });
    expect((await store.searchMessages({ query: 'ammonite' })).hits).toMatchObject([{ messageId: 'm1', conversationId: 'c1', conversationTitle: 'Old', createdAt: 1 }]);
  });

  it('finds a word in a message, and only in the messages that have it', async () => {
    const store = await fresh();
    const a = await conversation(store, 'Cooking', 'How long do I boil an egg?', 'About nine minutes for a hard-boiled egg.');
    await conversation(store, 'Travel', 'What is the capital of Portugal?', 'Lisbon.');
    const page = await store.searchMessages({ query: 'egg' });
    expect(page.hits.map((h) => h.messageId)).toEqual([a.messages[1]?.id, a.messages[0]?.id]);
    expect(page.hits[0]).toMatchObject({ conversationId: a.conversation.id, conversationTitle: 'Cooking', role: 'assistant' });
    expect(page.nextCursor).toBeNull();
    expect((await store.searchMessages({ query: 'lisbon' })).hits.map((h) => h.conversationId)).not.toContain(a.conversation.id);
    expect((await store.searchMessages({ query: 'submarine' })).hits).toEqual([]);
  });

  it('needs every word, any case, the last one as a prefix', async () => {
    const store = await fresh();
    const { messages } = await conversation(store, 't', 'The Quick brown fox', 'a quick hare', 'brown bread');
    expect((await store.searchMessages({ query: 'QUICK brown' })).hits.map((h) => h.messageId)).toEqual([messages[0]?.id]);
    expect((await store.searchMessages({ query: 'qui' })).hits.map((h) => h.messageId)).toEqual([messages[1]?.id, messages[0]?.id]);
  });

  it('marks the matched words in a short snippet of the message', async () => {
    const store = await fresh();
    const filler = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
    await conversation(store, 't', `${filler} the zebra crossing ${filler}`);
    const [hit] = (await store.searchMessages({ query: 'zebra' })).hits;
    expect(hit?.snippet.text).toContain('the zebra crossing');
    expect(hit?.snippet.text.length).toBeLessThan(400);
    expect(marked(hit)).toEqual(['zebra']);
  });

  it('keeps up with a streaming reply as its text grows, and with its finish', async () => {
    const store = await fresh();
    const { conversation: c, messages } = await conversation(store, 't', 'tell me a story');
    const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: messages[0]?.id ?? '', model: 'm' });
    expect((await store.searchMessages({ query: 'dragon' })).hits).toEqual([]);
    // Streaming text is re-indexed in steps of streamingStep characters (the contract's bound on the lag).
    const long = `Once upon a time ${'and then '.repeat(Math.ceil(streamingStep / 9))}`;
    await store.updateStreamingText(reply.id, long);
    await store.updateStreamingTexts([{ messageId: reply.id, content: `${long}a dragon ${'flew '.repeat(Math.ceil(streamingStep / 5))}` }]);
    expect((await store.searchMessages({ query: 'dragon' })).hits.map((h) => h.messageId)).toEqual([reply.id]);
    await store.finishMessage(reply.id, { status: 'complete', content: 'Once upon a time a knight' });
    expect((await store.searchMessages({ query: 'dragon' })).hits).toEqual([]);
    expect((await store.searchMessages({ query: 'knight' })).hits.map((h) => h.messageId)).toEqual([reply.id]);
  });

  it('indexes all of a reply once it ends, its last saved text included', async () => {
    const store = await fresh();
    const { conversation: c, messages } = await conversation(store, 't', 'a question');
    const stopped = await store.startAssistantMessage({ conversationId: c.id, parentId: messages[0]?.id ?? '', model: 'm' });
    await store.updateStreamingText(stopped.id, 'a short phoenix');
    await store.finishMessage(stopped.id, { status: 'stopped' });
    expect((await store.searchMessages({ query: 'phoenix' })).hits.map((h) => h.messageId)).toEqual([stopped.id]);
    const recovered = await store.startAssistantMessage({ conversationId: c.id, parentId: messages[0]?.id ?? '', model: 'm' });
    await store.updateStreamingTexts([{ messageId: recovered.id, content: 'an unlucky griffin' }]);
    await store.recoverInterrupted();
    expect((await store.searchMessages({ query: 'griffin' })).hits.map((h) => h.messageId)).toEqual([recovered.id]);
  });

  it('forgets a deleted conversation, and finds an imported one', async () => {
    const store = await fresh();
    const { conversation: c } = await conversation(store, 't', 'remember the walrus');
    const exported = await store.exportConversation(c.id);
    await store.deleteConversation(c.id);
    expect((await store.searchMessages({ query: 'walrus' })).hits).toEqual([]);
    const imported = await store.importConversation(exported);
    expect((await store.searchMessages({ query: 'walrus' })).hits.map((h) => h.conversationId)).toEqual([imported.id]);
  });

  it('reads query syntax characters as separators, never as syntax', async () => {
    const store = await fresh();
    const { messages } = await conversation(store, 't', 'a "quoted" NEAR(term) with-dash and key:value AND more');
    for (const query of ['"', '*', '-', ':', '(', ')', "'", '\\', '"quoted', 'term*', '-dash', 'key:value', '(term', 'NEAR(', 'AND', 'OR NOT', "'; drop table messages; --", '\u0002x\u0003']) {
      const page = await store.searchMessages({ query });
      expect(Array.isArray(page.hits), query).toBe(true);
    }
    expect((await store.searchMessages({ query: 'key:value' })).hits.map((h) => h.messageId)).toEqual([messages[0]?.id]);
    expect((await store.searchMessages({ query: '"quoted' })).hits.map((h) => h.messageId)).toEqual([messages[0]?.id]);
    expect((await store.searchMessages({ query: 'AND' })).hits.map((h) => h.messageId)).toEqual([messages[0]?.id]);
  });

  it('never lets message text forge a highlight', async () => {
    const store = await fresh();
    await conversation(store, 't', 'fake \u0002mark\u0003 and a real needle');
    const [hit] = (await store.searchMessages({ query: 'needle' })).hits;
    expect(marked(hit)).toEqual(['needle']);
    expect(hit?.snippet.text).not.toMatch(/[\u0002\u0003]/);
  });

  it('pages newest first with a cursor', async () => {
    const store = await fresh();
    const { messages } = await conversation(store, 't', ...Array.from({ length: 5 }, (_, i) => `page item ${i}`));
    const first = await store.searchMessages({ query: 'item', limit: 2 });
    const second = await store.searchMessages({ query: 'item', limit: 2, cursor: first.nextCursor ?? '' });
    const third = await store.searchMessages({ query: 'item', limit: 2, cursor: second.nextCursor ?? '' });
    expect([...first.hits, ...second.hits, ...third.hits].map((h) => h.messageId)).toEqual(messages.map((m) => m.id).reverse());
    expect(third.nextCursor).toBeNull();
  });

  it('refuses input out of bounds, naming it', async () => {
    const store = await fresh();
    await expect(store.searchMessages({ query: '' })).rejects.toMatchObject({ code: 'invalid_request', param: 'query' });
    await expect(store.searchMessages({ query: 'x'.repeat(201) })).rejects.toMatchObject({ code: 'invalid_request', param: 'query' });
    await expect(store.searchMessages({ query: 'x', limit: 51 })).rejects.toMatchObject({ code: 'invalid_request', param: 'limit' });
    await expect(store.searchMessages({ query: 'x', cursor: 'nonsense' })).rejects.toMatchObject({ code: 'invalid_request', param: 'cursor' });
  });
});
