/**
 * The ConversationStore contract, run against every dialect: SQLite (a temp
 * file per test) and PostgreSQL (a fresh database per test on a throwaway
 * server from test/fixtures/postgres.ts). Under CI a missing PostgreSQL fails
 * this file; locally its half is skipped with a message.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { interruptedError, type ConversationExport, type ConversationStore, type MessageRecord } from '../../src/store/contract.js';
import { openStore, type OpenStoreOptions } from '../../src/store/kysely/dialects.js';
import { migrations } from '../../src/store/kysely/migrations/index.js';
import { postgresForTests, startPostgres } from '../fixtures/postgres.js';

/** Where a dialect's databases come from: each `newUrl()` is an empty database. */
interface StoreTarget {
  readonly name: string;
  start(): Promise<{ newUrl(): Promise<string>; stop(): Promise<void> }>;
}

/** Every migration, in the order they run, and the last one (what a fresh database reports as current). */
const allMigrations = Object.keys(migrations);
const latestMigration = allMigrations.at(-1);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const dialectsModule = new URL('../../src/store/kysely/dialects.ts', import.meta.url).href;

const sqliteTarget: StoreTarget = {
  name: 'sqlite',
  async start() {
    const dir = await mkdtemp(join(tmpdir(), 'parlance-sqlite-'));
    let n = 0;
    return {
      newUrl: () => Promise.resolve(`sqlite:${join(dir, `store-${(n += 1)}.db`)}`),
      stop: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

const postgres = postgresForTests();
const postgresTarget: StoreTarget | undefined =
  postgres === undefined
    ? undefined
    : {
        name: 'postgres',
        async start() {
          const server = await startPostgres(postgres);
          return { newUrl: () => server.newDatabase(), stop: () => server.stop() };
        },
      };

storeContract(sqliteTarget);
if (postgresTarget !== undefined) storeContract(postgresTarget);
else describe.skip('ConversationStore on postgres (PostgreSQL not installed; see the warning above)', () => it('runs', () => undefined));

// ---------------------------------------------------------------------------

/** A child process running against the same database: `crash` mode waits to be killed mid-stream, `streams` mode streams replies. */
const childScript = `
const [mode, url, ...rest] = process.argv.slice(2);
const { openStore } = await import(${JSON.stringify(dialectsModule)});
const store = await openStore(url, { instanceId: 'child' });
if (mode === 'crash') {
  const conversation = await store.createConversation({ title: 'crash' });
  const user = await store.appendMessage({ conversationId: conversation.id, parentId: null, role: 'user', content: 'hello' });
  const reply = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
  await store.updateStreamingText(reply.id, 'partial');
  await store.updateStreamingText(reply.id, 'partial reply');
  console.log(JSON.stringify({ conversationId: conversation.id, messageId: reply.id }));
  setInterval(() => undefined, 1000);
} else {
  const [conversationId, parentId, count] = rest;
  console.log(JSON.stringify({ ready: true }));
  await Promise.all(Array.from({ length: Number(count) }, async (_, i) => {
    const reply = await store.startAssistantMessage({ conversationId, parentId, model: 'child' });
    let text = '';
    for (let j = 0; j < 20; j += 1) {
      text += 'child-' + i + '-' + j + ' ';
      await store.updateStreamingText(reply.id, text);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
    }
    await store.finishMessage(reply.id, { status: 'complete', content: text + 'end' });
  }));
  await store.close();
  console.log(JSON.stringify({ done: true }));
}
`;

function storeContract(target: StoreTarget): void {
  describe(`ConversationStore on ${target.name}`, () => {
    let env: Awaited<ReturnType<StoreTarget['start']>>;
    let scratch: string;
    const opened: ConversationStore[] = [];

    beforeAll(async () => {
      env = await target.start();
      scratch = await mkdtemp(join(tmpdir(), 'parlance-store-test-'));
      await writeFile(join(scratch, 'child.mts'), childScript);
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });
    afterAll(async () => {
      await env?.stop();
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    });

    async function open(url: string, options: OpenStoreOptions = {}): Promise<ConversationStore> {
      const store = await openStore(url, options);
      opened.push(store);
      return store;
    }

    /** A migrated store on a new, empty database. */
    async function fresh(options: OpenStoreOptions = {}): Promise<{ store: ConversationStore; url: string }> {
      const url = await env.newUrl();
      const store = await open(url, options);
      await store.migrate();
      return { store, url };
    }

    /** Runs a child process against `url`; resolves with its stdout lines as they come. */
    function child(args: readonly string[]): { lines: AsyncIterator<string>; kill(): void; exited: Promise<number | null> } {
      const proc = spawn(process.execPath, ['--import', 'tsx', join(scratch, 'child.mts'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      return { lines: createInterface({ input: proc.stdout })[Symbol.asyncIterator](), kill: () => proc.kill('SIGKILL'), exited };
    }

    async function nextJson(lines: AsyncIterator<string>): Promise<Record<string, unknown>> {
      const line = await lines.next();
      if (line.done === true) throw new Error('the child process ended without output');
      return JSON.parse(line.value) as Record<string, unknown>;
    }

    /** A user message and two regenerated replies, the second active. */
    async function conversationWithReplies(store: ConversationStore) {
      const conversation = await store.createConversation({ title: 'branches' });
      const user = await store.appendMessage({ conversationId: conversation.id, parentId: null, role: 'user', content: 'question' });
      const first = await store.appendMessage({ conversationId: conversation.id, parentId: user.id, role: 'assistant', content: 'answer 1', model: 'm' });
      const second = await store.appendMessage({ conversationId: conversation.id, parentId: user.id, role: 'assistant', content: 'answer 2', model: 'm' });
      return { conversation, user, first, second };
    }

    const ids = (messages: readonly MessageRecord[] | undefined): string[] => (messages ?? []).map((m) => m.id);

    describe('migrations', () => {
      it('applies the migrations once and reports them; a second open applies none', async () => {
        const url = await env.newUrl();
        const first = await open(url);
        await expect(first.migrate()).resolves.toEqual({ applied: allMigrations, current: latestMigration });
        await expect(first.migrate()).resolves.toEqual({ applied: [], current: latestMigration });
        const conversation = await first.createConversation({ title: 'kept' });
        await first.close();
        const second = await open(url);
        await expect(second.migrate()).resolves.toEqual({ applied: [], current: latestMigration });
        await expect(second.getConversation(conversation.id)).resolves.toEqual(conversation);
      });

      if (target.name === 'postgres') {
        it('lets several replicas migrate the same database at once', async () => {
          const url = await env.newUrl();
          const replicas = await Promise.all([open(url), open(url), open(url)]);
          const reports = await Promise.all(replicas.map((r) => r.migrate()));
          expect(reports.flatMap((r) => r.applied)).toEqual(allMigrations);
          expect(reports.map((r) => r.current)).toEqual([latestMigration, latestMigration, latestMigration]);
        });
      }
    });

    describe('resumable stream logs', () => {
      it('stores batches in order, shows a count only with its events, ends, and forgets ended streams past their retention', async () => {
        const { store } = await fresh();
        await store.streamLogs.createStream('s1', 'main', 1000);
        await expect(store.streamLogs.getStream('s1')).resolves.toEqual({ owner: 'main', eventCount: 0, createdAt: 1000, endedAt: null });
        await store.streamLogs.appendEvents('s1', 1, ['id: 1\ndata: a\n\n', 'id: 2\ndata: b\n\n'], null);
        // A batch retried after it was in fact stored changes nothing.
        await store.streamLogs.appendEvents('s1', 1, ['id: 1\ndata: a\n\n', 'id: 2\ndata: b\n\n'], null);
        await store.streamLogs.appendEvents('s1', 3, ['id: 3\ndata: [DONE]\n\n'], 5000);
        await expect(store.streamLogs.getStream('s1')).resolves.toEqual({ owner: 'main', eventCount: 3, createdAt: 1000, endedAt: 5000 });
        await expect(store.streamLogs.readEvents('s1', 1, 10)).resolves.toEqual(['id: 2\ndata: b\n\n', 'id: 3\ndata: [DONE]\n\n']);
        await expect(store.streamLogs.readEvents('s1', 0, 1)).resolves.toEqual(['id: 1\ndata: a\n\n']);
        await store.streamLogs.createStream('live', null, 2000);
        await store.streamLogs.deleteEnded(6000);
        await expect(store.streamLogs.getStream('s1')).resolves.toBeUndefined();
        await expect(store.streamLogs.readEvents('s1', 0, 10)).resolves.toEqual([]);
        await expect(store.streamLogs.getStream('live')).resolves.toMatchObject({ owner: null, endedAt: null });
      });
    });

    describe('conversations', () => {
      it('creates with defaults and reads back', async () => {
        const { store } = await fresh();
        const before = Date.now();
        const conversation = await store.createConversation();
        expect(conversation).toMatchObject({ title: 'New conversation', model: null, systemPrompt: null, settings: {}, activeLeafId: null });
        expect(conversation.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(conversation.createdAt).toBeGreaterThanOrEqual(before);
        expect(conversation.updatedAt).toBe(conversation.createdAt);
        await expect(store.getConversation(conversation.id)).resolves.toEqual(conversation);
        await expect(store.getConversation('nope')).resolves.toBeUndefined();

        const full = await store.createConversation({ title: 'T', model: 'tiny', systemPrompt: 'Be brief.', settings: { temperature: 0.2, topP: 0.9, maxTokens: 64, seed: 7, stop: ['\n\n'] } });
        await expect(store.getConversation(full.id)).resolves.toEqual(full);
        expect(full.settings).toEqual({ temperature: 0.2, topP: 0.9, maxTokens: 64, seed: 7, stop: ['\n\n'] });
      });

      it('gives time-sortable ids: creation order is id order', async () => {
        const { store } = await fresh();
        const created: string[] = [];
        for (let i = 0; i < 30; i += 1) created.push((await store.createConversation()).id);
        expect([...created].sort()).toEqual(created);
      });

      it('refuses invalid input with invalid_request', async () => {
        const { store } = await fresh();
        await expect(store.createConversation({ settings: { temperature: -1 } })).rejects.toMatchObject({ code: 'invalid_request', param: 'settings.temperature' });
        await expect(store.createConversation({ settings: { bogus: 1 } as never })).rejects.toMatchObject({ code: 'invalid_request' });
        await expect(store.listConversations({ limit: 0 })).rejects.toMatchObject({ code: 'invalid_request', param: 'limit' });
        await expect(store.listConversations({ cursor: 'garbage' })).rejects.toMatchObject({ code: 'invalid_request', param: 'cursor' });
        await expect(store.listConversations()).resolves.toEqual({ conversations: [], nextCursor: null });
      });

      it('lists newest first by updatedAt, in pages', async () => {
        const { store } = await fresh();
        const created = [];
        for (let i = 0; i < 7; i += 1) created.push(await store.createConversation({ title: `c${i}` }));
        const pages = [];
        let cursor: string | undefined;
        do {
          const page = await store.listConversations({ limit: 3, ...(cursor === undefined ? {} : { cursor }) });
          pages.push(page.conversations.map((c) => c.title));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        expect(pages).toEqual([['c6', 'c5', 'c4'], ['c3', 'c2', 'c1'], ['c0']]);
        const exact = await store.listConversations({ limit: 7 });
        expect(exact.conversations).toHaveLength(7);
        expect(exact.nextCursor).toBeNull();
      });

      it('moves a conversation up when a message is added or a reply finishes, not on streaming text', async () => {
        const { store } = await fresh();
        const a = await store.createConversation({ title: 'a' });
        const b = await store.createConversation({ title: 'b' });
        const titles = async () => (await store.listConversations()).conversations.map((c) => c.title);
        expect(await titles()).toEqual(['b', 'a']);
        const user = await store.appendMessage({ conversationId: a.id, parentId: null, role: 'user', content: 'hi' });
        expect(await titles()).toEqual(['a', 'b']);
        const reply = await store.startAssistantMessage({ conversationId: b.id, parentId: (await store.appendMessage({ conversationId: b.id, parentId: null, role: 'user', content: 'x' })).id, model: 'm' });
        expect(await titles()).toEqual(['b', 'a']);
        await store.appendMessage({ conversationId: a.id, parentId: user.id, role: 'assistant', content: 'hello' });
        expect(await titles()).toEqual(['a', 'b']);
        const updatedAt = (await store.getConversation(a.id))?.updatedAt;
        await store.updateStreamingText(reply.id, 'growing');
        expect(await titles()).toEqual(['a', 'b']);
        await store.finishMessage(reply.id, { status: 'complete' });
        expect(await titles()).toEqual(['b', 'a']);
        expect((await store.getConversation(a.id))?.updatedAt).toBe(updatedAt);
      });

      it('renames and updates settings, moving updatedAt; not_found for an unknown id', async () => {
        const { store } = await fresh();
        const conversation = await store.createConversation({ title: 'old', model: 'm1', systemPrompt: 'p' });
        const renamed = await store.updateConversation(conversation.id, { title: 'new' });
        expect(renamed).toEqual({ ...conversation, title: 'new', updatedAt: renamed.updatedAt });
        expect(renamed.updatedAt).toBeGreaterThan(conversation.updatedAt);
        const changed = await store.updateConversation(conversation.id, { model: null, systemPrompt: null, settings: { seed: 1 } });
        expect(changed).toMatchObject({ title: 'new', model: null, systemPrompt: null, settings: { seed: 1 } });
        await expect(store.getConversation(conversation.id)).resolves.toEqual(changed);
        await expect(store.updateConversation('nope', { title: 'x' })).rejects.toMatchObject({ code: 'not_found' });
      });

      it('deletes a conversation with all its messages, and only those', async () => {
        const { store } = await fresh();
        const doomed = await conversationWithReplies(store);
        const kept = await conversationWithReplies(store);
        await store.deleteConversation(doomed.conversation.id);
        await expect(store.getConversation(doomed.conversation.id)).resolves.toBeUndefined();
        await expect(store.getTree(doomed.conversation.id)).resolves.toBeUndefined();
        for (const m of [doomed.user, doomed.first, doomed.second]) await expect(store.getMessage(m.id)).resolves.toBeUndefined();
        for (const m of [kept.user, kept.first, kept.second]) await expect(store.getMessage(m.id)).resolves.toEqual(m);
        expect((await store.listConversations()).conversations.map((c) => c.id)).toEqual([kept.conversation.id]);
        await expect(store.deleteConversation(doomed.conversation.id)).rejects.toMatchObject({ code: 'not_found' });
      });
    });

    describe('the message tree', () => {
      it('keeps regenerated replies as siblings and switches the active branch', async () => {
        const { store } = await fresh();
        const { conversation, user, first, second } = await conversationWithReplies(store);
        const tree = await store.getTree(conversation.id);
        expect(ids(tree?.messages)).toEqual([user.id, first.id, second.id]);
        expect(tree?.messages.filter((m) => m.parentId === user.id).map((m) => m.content)).toEqual(['answer 1', 'answer 2']);
        expect(tree?.activePath).toEqual([user.id, second.id]);
        expect(tree?.conversation.activeLeafId).toBe(second.id);

        expect(ids(await store.selectBranch(conversation.id, first.id))).toEqual([user.id, first.id]);
        expect(ids(await store.getActivePath(conversation.id))).toEqual([user.id, first.id]);
        expect((await store.getConversation(conversation.id))?.activeLeafId).toBe(first.id);

        // A regeneration while streaming is a third sibling, active at once.
        const third = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        expect(ids(await store.getActivePath(conversation.id))).toEqual([user.id, third.id]);
      });

      it('keeps an edited user message as a sibling branch; the active path runs root to leaf', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const append = (parentId: string | null, role: 'user' | 'assistant', content: string) => store.appendMessage({ conversationId: c.id, parentId, role, content });
        const u1 = await append(null, 'user', 'u1');
        const a1 = await append(u1.id, 'assistant', 'a1');
        const u2 = await append(a1.id, 'user', 'u2');
        const a2 = await append(u2.id, 'assistant', 'a2');
        const u2edit = await append(a1.id, 'user', 'u2 edited');
        const a2edit = await append(u2edit.id, 'assistant', 'a2 for the edit');
        const path = await store.getActivePath(c.id);
        expect(path?.map((m) => m.content)).toEqual(['u1', 'a1', 'u2 edited', 'a2 for the edit']);
        expect(path?.every((m, i) => m.parentId === (i === 0 ? null : path[i - 1]?.id))).toBe(true);

        // Selecting the old user message goes down to its (only) reply.
        expect(ids(await store.selectBranch(c.id, u2.id))).toEqual([u1.id, a1.id, u2.id, a2.id]);
        // Selecting a shared ancestor follows the newest child at each step.
        expect(ids(await store.selectBranch(c.id, a1.id))).toEqual([u1.id, a1.id, u2edit.id, a2edit.id]);
        // Editing the first message makes a second root.
        const u1edit = await append(null, 'user', 'u1 edited');
        expect(ids(await store.getActivePath(c.id))).toEqual([u1edit.id]);
        expect((await store.getTree(c.id))?.messages.filter((m) => m.parentId === null).map((m) => m.id)).toEqual([u1.id, u1edit.id]);
        expect(ids(await store.selectBranch(c.id, u1.id))).toEqual([u1.id, a1.id, u2edit.id, a2edit.id]);
      });

      it('refuses parents and branches from elsewhere, writing nothing', async () => {
        const { store } = await fresh();
        const one = await conversationWithReplies(store);
        const other = await conversationWithReplies(store);
        const before = await store.getTree(one.conversation.id);
        await expect(store.appendMessage({ conversationId: one.conversation.id, parentId: other.user.id, role: 'user', content: 'x' })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        await expect(store.startAssistantMessage({ conversationId: one.conversation.id, parentId: 'nope', model: 'm' })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        await expect(store.appendMessage({ conversationId: 'nope', parentId: null, role: 'user', content: 'x' })).rejects.toMatchObject({ code: 'not_found', param: 'conversationId' });
        await expect(store.selectBranch(one.conversation.id, other.first.id)).rejects.toMatchObject({ code: 'not_found', param: 'messageId' });
        await expect(store.selectBranch('nope', one.first.id)).rejects.toMatchObject({ code: 'not_found' });
        await expect(store.appendMessage({ conversationId: one.conversation.id, parentId: null, role: 'robot' as never, content: 'x' })).rejects.toMatchObject({ code: 'invalid_request', param: 'role' });
        await expect(store.getTree(one.conversation.id)).resolves.toEqual(before);
        await expect(store.getActivePath('nope')).resolves.toBeUndefined();
      });
    });

    describe('streaming replies', () => {
      it('goes streaming → text updates → complete with usage and timings', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const user = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'hi' });
        const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: user.id, model: 'tiny' });
        expect(reply).toMatchObject({ role: 'assistant', status: 'streaming', content: '', model: 'tiny', usage: null, timings: null, error: null, parentId: user.id });
        await expect(store.getMessage(reply.id)).resolves.toEqual(reply);
        await expect(store.updateStreamingText(reply.id, 'Hel')).resolves.toBe(true);
        await expect(store.updateStreamingText(reply.id, 'Hello, wor')).resolves.toBe(true);
        expect(await store.getMessage(reply.id)).toMatchObject({ status: 'streaming', content: 'Hello, wor' });
        const done = await store.finishMessage(reply.id, {
          status: 'complete',
          content: 'Hello, world!',
          usage: { promptTokens: 12, completionTokens: 5 },
          timings: { firstTokenMs: 40, totalMs: 180 },
        });
        expect(done).toEqual({
          ...reply,
          status: 'complete',
          content: 'Hello, world!',
          usage: { promptTokens: 12, completionTokens: 5 },
          timings: { firstTokenMs: 40, totalMs: 180 },
          updatedAt: done.updatedAt,
        });
        await expect(store.getMessage(reply.id)).resolves.toEqual(done);
        // Ended: further updates are refused, not applied.
        await expect(store.updateStreamingText(reply.id, 'late')).resolves.toBe(false);
        await expect(store.finishMessage(reply.id, { status: 'stopped' })).rejects.toMatchObject({ code: 'invalid_request' });
        await expect(store.finishMessage('nope', { status: 'stopped' })).rejects.toMatchObject({ code: 'not_found' });
        await expect(store.updateStreamingText('nope', 'x')).resolves.toBe(false);
        await expect(store.getMessage(reply.id)).resolves.toEqual(done);
      });

      it('keeps reasoning, tool calls with their results and the finish reason: saved while streaming, finished, exported, imported', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const user = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'hi' });
        expect(user).toMatchObject({ reasoning: '', toolCalls: [], finishReason: null });
        const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: user.id, model: 'tiny' });
        expect(reply).toMatchObject({ reasoning: '', toolCalls: [], finishReason: null });
        const call = { id: 'call_1', name: 'lookup', arguments: '{"q":"x"}', result: null };
        await expect(store.updateStreamingTexts([{ messageId: reply.id, content: 'so', reasoning: 'thinking ünï', toolCalls: [call] }])).resolves.toEqual([]);
        expect(await store.getMessage(reply.id)).toMatchObject({ status: 'streaming', content: 'so', reasoning: 'thinking ünï', toolCalls: [call] });
        // A text-only save leaves them as they were.
        await store.updateStreamingText(reply.id, 'so far');
        expect(await store.getMessage(reply.id)).toMatchObject({ content: 'so far', reasoning: 'thinking ünï', toolCalls: [call] });
        await expect(store.updateStreamingTexts([{ messageId: reply.id, content: 'x', toolCalls: [{ id: '', name: 'n', arguments: '', result: null }] }])).rejects.toMatchObject({ code: 'invalid_request' });
        const answered = { ...call, result: '42' };
        const done = await store.finishMessage(reply.id, { status: 'complete', content: 'so far, done', reasoning: 'thinking ünï hard', toolCalls: [answered], finishReason: 'length' });
        expect(done).toMatchObject({ status: 'complete', content: 'so far, done', reasoning: 'thinking ünï hard', toolCalls: [answered], finishReason: 'length' });
        await expect(store.getMessage(reply.id)).resolves.toEqual(done);

        const exported: unknown = JSON.parse(JSON.stringify(await store.exportConversation(c.id)));
        const copy = await store.importConversation(exported);
        const imported = (await store.getTree(copy.id))?.messages.find((m) => m.role === 'assistant');
        expect(imported).toMatchObject({ reasoning: 'thinking ünï hard', toolCalls: [answered], finishReason: 'length' });
        // An export made before messages had these parts imports with none of them.
        const old = exported as { messages: Record<string, unknown>[] };
        const before = { ...old, messages: old.messages.map(({ reasoning: _r, toolCalls: _t, finishReason: _f, ...rest }) => rest) };
        const older = await store.importConversation(before);
        expect((await store.getTree(older.id))?.messages.find((m) => m.role === 'assistant')).toMatchObject({ content: 'so far, done', reasoning: '', toolCalls: [], finishReason: null });
      });

      it("keeps a user message's files through the tree, a later turn's history, export and import", async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const files = [
          { type: 'text' as const, name: 'notes.md', mediaType: 'text/markdown', text: '# Plan\nünï 🎉' },
          { type: 'image' as const, name: 'dot.png', mediaType: 'image/png', url: 'data:image/png;base64,iVBORw0KGgo=' },
        ];
        const first = await store.startExchange({ conversationId: c.id, parentId: null, content: 'see files', attachments: files, model: 'tiny' });
        expect(first.userMessage.attachments).toEqual(files);
        expect(first.assistantMessage.attachments).toEqual([]);
        await store.finishMessage(first.assistantMessage.id, { status: 'complete', content: 'seen' });
        await expect(store.getMessage(first.userMessage.id)).resolves.toMatchObject({ attachments: files });
        // The next turn's history (remembered or read again) carries them.
        const second = await store.startExchange({ conversationId: c.id, parentId: first.assistantMessage.id, content: 'and?', model: 'tiny' });
        expect(second.path[0]?.attachments).toEqual(files);
        expect((await store.getActivePath(c.id))?.[0]?.attachments).toEqual(files);
        const exported: unknown = JSON.parse(JSON.stringify(await store.exportConversation(c.id)));
        const copy = await store.importConversation(exported);
        expect((await store.getTree(copy.id))?.messages.find((m) => m.content === 'see files')?.attachments).toEqual(files);
        // Exports made before files were kept import with none.
        const old = exported as { messages: Record<string, unknown>[] };
        const older = await store.importConversation({ ...old, messages: old.messages.map(({ attachments: _a, ...rest }) => rest) });
        expect((await store.getTree(older.id))?.messages.every((m) => m.attachments.length === 0)).toBe(true);
        await expect(store.startExchange({ conversationId: c.id, parentId: null, content: 'x', attachments: [{ type: 'image', name: 'x', mediaType: 'image/png', url: 'https://x' }], model: 'tiny' })).rejects.toMatchObject({
          code: 'invalid_request',
          param: 'attachments',
        });
      });

      it('continues a finished reply: streaming again with its text, error and finish reason cleared; refuses others', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const user = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'hi' });
        const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: user.id, model: 'tiny' });
        await expect(store.continueMessage(reply.id)).rejects.toMatchObject({ code: 'invalid_request' }); // streaming already
        await store.finishMessage(reply.id, { status: 'complete', content: 'cut', finishReason: 'length', usage: { promptTokens: 1, completionTokens: 1 } });
        const again = await store.continueMessage(reply.id);
        expect(again).toMatchObject({ id: reply.id, status: 'streaming', content: 'cut', finishReason: null, error: null, usage: { promptTokens: 1, completionTokens: 1 } });
        await store.updateStreamingText(reply.id, 'cut short');
        expect(await store.finishMessage(reply.id, { status: 'complete', finishReason: 'stop' })).toMatchObject({ content: 'cut short', finishReason: 'stop' });
        await expect(store.continueMessage(user.id)).rejects.toMatchObject({ code: 'invalid_request' });
        await expect(store.continueMessage('nope')).rejects.toMatchObject({ code: 'not_found' });
      });

      it('keeps the partial text when stopped', async () => {
        const { store } = await fresh();
        const { conversation, user } = await conversationWithReplies(store);
        const reply = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await store.updateStreamingText(reply.id, 'Once upon');
        const stopped = await store.finishMessage(reply.id, { status: 'stopped', usage: { promptTokens: 3, completionTokens: 2 }, timings: { firstTokenMs: null, totalMs: 50 } });
        expect(stopped).toMatchObject({ status: 'stopped', content: 'Once upon', error: null, usage: { promptTokens: 3, completionTokens: 2 }, timings: { firstTokenMs: null, totalMs: 50 } });
      });

      it('keeps the error and the partial text when failed', async () => {
        const { store } = await fresh();
        const { conversation, user } = await conversationWithReplies(store);
        const reply = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await store.updateStreamingText(reply.id, 'The ans');
        const failed = await store.finishMessage(reply.id, { status: 'failed', content: 'The answ', error: { code: 'upstream_error', message: 'upstream closed the connection' } });
        expect(failed).toMatchObject({ status: 'failed', content: 'The answ', error: { code: 'upstream_error', message: 'upstream closed the connection' }, usage: null, timings: null });
        await expect(store.getMessage(reply.id)).resolves.toEqual(failed);
      });

      it('starts an exchange in one step: the user message, the streaming reply, the branch, the title', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const first = await store.startExchange({ conversationId: c.id, parentId: null, content: 'hi', model: 'tiny', title: 'Greetings' });
        expect(first.userMessage).toMatchObject({ conversationId: c.id, parentId: null, role: 'user', content: 'hi', status: 'complete', model: null });
        expect(first.assistantMessage).toMatchObject({ parentId: first.userMessage.id, role: 'assistant', status: 'streaming', content: '', model: 'tiny', error: null });
        expect(first.assistantMessage.createdAt).toBeGreaterThan(first.userMessage.createdAt);
        expect(ids(first.path)).toEqual([first.userMessage.id]);
        await expect(store.getMessage(first.userMessage.id)).resolves.toEqual(first.userMessage);
        await expect(store.getMessage(first.assistantMessage.id)).resolves.toEqual(first.assistantMessage);
        expect(await store.getConversation(c.id)).toMatchObject({ title: 'Greetings', activeLeafId: first.assistantMessage.id, updatedAt: first.assistantMessage.createdAt });
        await store.finishMessage(first.assistantMessage.id, { status: 'complete', content: 'hello' });

        // The next turn's branch is the whole path, root first, with the finished reply's text; the title stays.
        const second = await store.startExchange({ conversationId: c.id, parentId: first.assistantMessage.id, content: 'again', model: 'tiny' });
        expect(second.path.map((m) => [m.role, m.content])).toEqual([['user', 'hi'], ['assistant', 'hello'], ['user', 'again']]);
        expect(ids(second.path)).toEqual([...ids(await store.getActivePath(c.id)).slice(0, 3)]);
        expect(ids(await store.getActivePath(c.id))).toEqual([first.userMessage.id, first.assistantMessage.id, second.userMessage.id, second.assistantMessage.id]);
        expect((await store.getConversation(c.id))?.title).toBe('Greetings');
      });

      it('refuses an exchange with a parent from elsewhere or no conversation, writing nothing', async () => {
        const { store } = await fresh();
        const one = await conversationWithReplies(store);
        const other = await conversationWithReplies(store);
        const before = await store.getTree(one.conversation.id);
        await expect(store.startExchange({ conversationId: one.conversation.id, parentId: other.user.id, content: 'x', model: 'm', title: 'no' })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        await expect(store.startExchange({ conversationId: one.conversation.id, parentId: 'nope', content: 'x', model: 'm' })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        await expect(store.startExchange({ conversationId: 'nope', parentId: null, content: 'x', model: 'm' })).rejects.toMatchObject({ code: 'not_found', param: 'conversationId' });
        await expect(store.startExchange({ conversationId: one.conversation.id, parentId: null, content: 42 as never, model: 'm' })).rejects.toMatchObject({ code: 'invalid_request', param: 'content' });
        await expect(store.getTree(one.conversation.id)).resolves.toEqual(before);
      });

      it('decides an exchange from the conversation inside its transaction; a throw or no conversation writes nothing', async () => {
        const { store } = await fresh();
        const c = await store.createConversation({ model: 'tiny', systemPrompt: 'be brief' });
        const seen: unknown[] = [];
        const first = await store.startExchange({
          conversationId: c.id,
          content: 'hi',
          decide: (conversation) => {
            seen.push(conversation);
            return { parentId: conversation.activeLeafId, model: conversation.model ?? 'none', title: 'Decided' };
          },
        });
        expect(seen).toEqual([c]);
        expect(first.conversation).toEqual(c);
        expect(first.userMessage).toMatchObject({ parentId: null, content: 'hi', role: 'user' });
        expect(first.assistantMessage).toMatchObject({ model: 'tiny', status: 'streaming' });
        expect(await store.getConversation(c.id)).toMatchObject({ title: 'Decided', activeLeafId: first.assistantMessage.id });
        await store.finishReply(first.assistantMessage.id, { status: 'complete', content: 'hello' });

        const second = await store.startExchange({ conversationId: c.id, content: 'again', decide: (conversation) => ({ parentId: conversation.activeLeafId, model: 'm' }) });
        expect(second.conversation?.activeLeafId).toBe(first.assistantMessage.id);
        expect(second.path.map((m) => m.content)).toEqual(['hi', 'hello', 'again']);
        expect((await store.getConversation(c.id))?.title).toBe('Decided');

        const before = await store.getTree(c.id);
        await expect(
          store.startExchange({
            conversationId: c.id,
            content: 'x',
            decide: () => {
              throw new Error('no such model');
            },
          }),
        ).rejects.toThrow('no such model');
        await expect(store.startExchange({ conversationId: c.id, content: 'x', decide: () => ({ parentId: 'nope', model: 'm' }) })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        await expect(store.startExchange({ conversationId: c.id, content: 42 as never, decide: () => ({ parentId: null, model: 'm' }) })).rejects.toMatchObject({ code: 'invalid_request', param: 'content' });
        await expect(store.getTree(c.id)).resolves.toEqual(before);
        const missing = store.startExchange({ conversationId: 'nope', content: 'x', decide: () => ({ parentId: null, model: 'm' }) });
        await expect(missing).rejects.toMatchObject({ code: 'not_found' });
        await expect(missing).rejects.not.toHaveProperty('param', 'conversationId');
      });

      it('checks an exchange\'s parent even right after its reply ended here (another conversation, a deleted one)', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const other = await store.createConversation();
        const first = await store.startExchange({ conversationId: c.id, parentId: null, content: 'hi', model: 'm' });
        await store.finishReply(first.assistantMessage.id, { status: 'stopped', content: 'partial' });
        await expect(store.startExchange({ conversationId: other.id, parentId: first.assistantMessage.id, content: 'x', model: 'm' })).rejects.toMatchObject({ code: 'not_found', param: 'parentId' });
        const second = await store.startExchange({ conversationId: c.id, parentId: first.assistantMessage.id, content: 'on', model: 'm' });
        expect(second.path.map((m) => [m.content, m.status])).toEqual([['hi', 'complete'], ['partial', 'stopped'], ['on', 'complete']]);
        await store.deleteConversation(c.id);
        await expect(store.startExchange({ conversationId: c.id, parentId: first.assistantMessage.id, content: 'x', model: 'm' })).rejects.toMatchObject({ code: 'not_found', param: 'conversationId' });
      });

      it('saves several replies\' text at once, reporting those no longer streaming', async () => {
        const { store } = await fresh();
        const { conversation, user } = await conversationWithReplies(store);
        const a = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        const b = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        const ended = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await store.finishMessage(ended.id, { status: 'stopped', content: 'kept' });
        const updatedAt = (await store.getConversation(conversation.id))?.updatedAt;
        await expect(
          store.updateStreamingTexts([
            { messageId: a.id, content: 'text of a' },
            { messageId: ended.id, content: 'late' },
            { messageId: 'nope', content: 'x' },
            { messageId: b.id, content: 'text of b' },
          ]),
        ).resolves.toEqual([ended.id, 'nope']);
        expect(await store.getMessage(a.id)).toMatchObject({ status: 'streaming', content: 'text of a' });
        expect(await store.getMessage(b.id)).toMatchObject({ status: 'streaming', content: 'text of b' });
        expect(await store.getMessage(ended.id)).toMatchObject({ status: 'stopped', content: 'kept' });
        // Streaming text does not move the conversation, batched or not.
        expect((await store.getConversation(conversation.id))?.updatedAt).toBe(updatedAt);
        await expect(store.updateStreamingTexts([])).resolves.toEqual([]);
      });

      it('finishes a reply answering the conversation as the finish left it', async () => {
        const { store } = await fresh();
        const c = await store.createConversation({ title: 'finish' });
        const { assistantMessage } = await store.startExchange({ conversationId: c.id, parentId: null, content: 'q', model: 'm' });
        const finished = await store.finishReply(assistantMessage.id, { status: 'complete', content: 'a', usage: { promptTokens: 1, completionTokens: 1 } });
        expect(finished.message).toMatchObject({ id: assistantMessage.id, status: 'complete', content: 'a' });
        await expect(store.getMessage(assistantMessage.id)).resolves.toEqual(finished.message);
        await expect(store.getConversation(c.id)).resolves.toEqual(finished.conversation);
        expect(finished.conversation.updatedAt).toBe(finished.message.updatedAt);
        await expect(store.finishReply(assistantMessage.id, { status: 'stopped' })).rejects.toMatchObject({ code: 'invalid_request' });
      });

      it('runs 50 concurrent streams of 20 updates each without lock errors', async () => {
        const { store } = await fresh();
        const c = await store.createConversation();
        const user = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'go' });
        const finals = await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: user.id, model: 'm' });
            let text = '';
            for (let j = 0; j < 20; j += 1) {
              text += `${i}:${j} `;
              expect(await store.updateStreamingText(reply.id, text)).toBe(true);
              await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
            }
            return store.finishMessage(reply.id, { status: 'complete', content: `${text}end`, usage: { promptTokens: 1, completionTokens: 20 } });
          }),
        );
        const tree = await store.getTree(c.id);
        const replies = tree?.messages.filter((m) => m.role === 'assistant') ?? [];
        expect(replies).toHaveLength(50);
        expect(replies.every((m) => m.status === 'complete')).toBe(true);
        expect(new Map(replies.map((m) => [m.id, m.content]))).toEqual(new Map(finals.map((m) => [m.id, m.content])));
        finals.forEach((m, i) => expect(m.content).toBe(`${Array.from({ length: 20 }, (_, j) => `${i}:${j} `).join('')}end`));
      });

      it('streams from two processes into one database at once without lock errors', async () => {
        const { store, url } = await fresh();
        const c = await store.createConversation();
        const user = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'go' });
        const other = child(['streams', url, c.id, user.id, '25']);
        expect(await nextJson(other.lines)).toEqual({ ready: true });
        await Promise.all(
          Array.from({ length: 25 }, async (_, i) => {
            const reply = await store.startAssistantMessage({ conversationId: c.id, parentId: user.id, model: 'parent' });
            let text = '';
            for (let j = 0; j < 20; j += 1) {
              text += `parent-${i}-${j} `;
              await store.updateStreamingText(reply.id, text);
              await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
            }
            await store.finishMessage(reply.id, { status: 'complete', content: `${text}end` });
          }),
        );
        expect(await nextJson(other.lines)).toEqual({ done: true });
        expect(await other.exited).toBe(0);
        const replies = (await store.getTree(c.id))?.messages.filter((m) => m.role === 'assistant') ?? [];
        expect(replies).toHaveLength(50);
        for (const who of ['parent', 'child']) {
          const texts = replies.filter((m) => m.model === who).map((m) => m.content).sort();
          const expected = Array.from({ length: 25 }, (_, i) => `${Array.from({ length: 20 }, (_, j) => `${who}-${i}-${j} `).join('')}end`).sort();
          expect(texts).toEqual(expected);
        }
        expect(replies.every((m) => m.status === 'complete')).toBe(true);
      });
    });

    describe('crash recovery', () => {
      it('fails a reply left streaming by a store closed mid-stream, keeping its partial text', async () => {
        const url = await env.newUrl();
        const first = await open(url);
        await first.migrate();
        const { conversation, user } = await conversationWithReplies(first);
        const reply = await first.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await first.updateStreamingText(reply.id, 'half a thou');
        await first.close();

        const second = await open(url);
        await second.migrate();
        await expect(second.recoverInterrupted()).resolves.toEqual({ failed: [reply.id] });
        expect(await second.getMessage(reply.id)).toMatchObject({ status: 'failed', content: 'half a thou', error: interruptedError });
        await expect(second.recoverInterrupted()).resolves.toEqual({ failed: [] });
        // Other messages are untouched.
        expect((await second.getTree(conversation.id))?.messages.filter((m) => m.status !== 'complete').map((m) => m.id)).toEqual([reply.id]);
      });

      it('fails a reply whose process was killed with SIGKILL mid-stream', async () => {
        const { store, url } = await fresh();
        await store.close();
        const victim = child(['crash', url]);
        const { conversationId, messageId } = (await nextJson(victim.lines)) as { conversationId: string; messageId: string };
        victim.kill();
        await victim.exited;

        const restarted = await open(url);
        await restarted.migrate();
        await expect(restarted.recoverInterrupted()).resolves.toEqual({ failed: [messageId] });
        const path = await restarted.getActivePath(conversationId);
        expect(path?.map((m) => [m.role, m.status, m.content])).toEqual([
          ['user', 'complete', 'hello'],
          ['assistant', 'failed', 'partial reply'],
        ]);
        expect(path?.[1]?.error).toEqual(interruptedError);
      });

      it('with scope "instance", fails only its own instance\'s streams, and others once stale', async () => {
        const url = await env.newUrl();
        const setup = await open(url);
        await setup.migrate();
        const { conversation, user } = await conversationWithReplies(setup);
        await setup.close();
        const start = async (instanceId: string): Promise<string> => {
          const replica = await open(url, { instanceId });
          const reply = await replica.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: instanceId });
          await replica.close();
          return reply.id;
        };
        const mine = await start('replica-1');
        const theirs = await start('replica-2');
        const restarted = await open(url, { instanceId: 'replica-1' });
        await expect(restarted.recoverInterrupted({ scope: 'instance' })).resolves.toEqual({ failed: [mine] });
        expect((await restarted.getMessage(theirs))?.status).toBe('streaming');
        await expect(restarted.recoverInterrupted({ scope: 'instance', staleAfterMs: 60_000 })).resolves.toEqual({ failed: [] });
        await new Promise((resolve) => setTimeout(resolve, 50));
        await expect(restarted.recoverInterrupted({ scope: 'instance', staleAfterMs: 25 })).resolves.toEqual({ failed: [theirs] });
      });
    });

    describe('reply leases', () => {
      it('with scope "expired", fails the replies whose lease ran out, and keeps those renewed', async () => {
        const { store: setup, url } = await fresh();
        const { conversation, user } = await conversationWithReplies(setup);
        const alive = await open(url, { instanceId: 'alive', leaseMs: 150 });
        const dead = await open(url, { instanceId: 'dead', leaseMs: 150 });
        const kept = await alive.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        const orphan = await dead.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await dead.updateStreamingText(orphan.id, 'partial');
        await expect(setup.recoverInterrupted({ scope: 'expired' })).resolves.toEqual({ failed: [] });
        for (let beat = 0; beat < 4; beat++) {
          await new Promise((resolve) => setTimeout(resolve, 75));
          await expect(alive.renewLeases()).resolves.toEqual([]);
        }
        // The dead replica's lease (150 ms from its start) has run out; the living one's was just renewed.
        await expect(setup.recoverInterrupted({ scope: 'expired' })).resolves.toEqual({ failed: [orphan.id] });
        expect(await setup.getMessage(orphan.id)).toMatchObject({ status: 'failed', content: 'partial', error: interruptedError });
        expect((await setup.getMessage(kept.id))?.status).toBe('streaming');
      });

      it('hands a stop asked by another replica to the one generating, which finishes the reply with its own text', async () => {
        const { store: setup, url } = await fresh();
        const { conversation, user } = await conversationWithReplies(setup);
        const generating = await open(url, { instanceId: 'generating' });
        const other = await open(url, { instanceId: 'other' });
        const reply = await generating.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await generating.updateStreamingText(reply.id, 'saved');
        await expect(generating.renewLeases()).resolves.toEqual([]);
        await expect(other.requestStop(reply.id)).resolves.toBe(true);
        expect((await other.getMessage(reply.id))?.status).toBe('streaming');
        await expect(other.renewLeases()).resolves.toEqual([]); // not its reply
        await expect(generating.renewLeases()).resolves.toEqual([reply.id]);
        const finished = await generating.finishMessage(reply.id, { status: 'stopped', content: 'saved and streamed since' });
        expect(finished).toMatchObject({ status: 'stopped', content: 'saved and streamed since' });
        await expect(generating.renewLeases()).resolves.toEqual([]);
        await expect(other.requestStop(reply.id)).resolves.toBe(false);
        await expect(other.requestStop('no-such-message')).resolves.toBe(false);
      });
    });

    describe('export and import', () => {
      /** A conversation with branches, a failed reply and settings. */
      async function richConversation(store: ConversationStore) {
        const c = await store.createConversation({ title: 'rich', model: 'tiny', systemPrompt: 'Be kind.', settings: { temperature: 0.7, stop: ['END'] } });
        const u1 = await store.appendMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'u1' });
        const a1 = await store.startAssistantMessage({ conversationId: c.id, parentId: u1.id, model: 'tiny' });
        await store.updateStreamingText(a1.id, 'a1 partial');
        await store.finishMessage(a1.id, { status: 'failed', error: { code: 'generation_failed', message: 'boom' } });
        const a1b = await store.appendMessage({ conversationId: c.id, parentId: u1.id, role: 'assistant', content: 'a1b', model: 'tiny', usage: { promptTokens: 4, completionTokens: 2 }, timings: { firstTokenMs: 5, totalMs: 9 } });
        const u2 = await store.appendMessage({ conversationId: c.id, parentId: a1b.id, role: 'user', content: 'u2 ünïcødé 🎉' });
        await store.appendMessage({ conversationId: c.id, parentId: a1b.id, role: 'user', content: 'u2 edited' });
        await store.selectBranch(c.id, u2.id);
        return c;
      }

      /** The export with ids replaced by positions, to compare structure across new ids. */
      function shape(data: ConversationExport | undefined) {
        if (data === undefined) return undefined;
        const at = new Map(data.messages.map((m, i) => [m.id, i]));
        const pos = (id: string | null) => (id === null ? null : at.get(id));
        return {
          conversation: { ...data.conversation, id: 'conversation', activeLeafId: pos(data.conversation.activeLeafId) },
          messages: data.messages.map((m) => ({ ...m, id: pos(m.id), parentId: pos(m.parentId), conversationId: 'conversation' })),
        };
      }

      it('round-trips with the same ids after a delete', async () => {
        const { store } = await fresh();
        const c = await richConversation(store);
        const exported = await store.exportConversation(c.id);
        expect(exported).toMatchObject({ format: 'parlance.conversation', version: 1 });
        expect(exported?.messages).toHaveLength(5);
        // Through JSON, as a file would carry it.
        const data: unknown = JSON.parse(JSON.stringify(exported));
        await expect(store.importConversation(data, { keepIds: true })).rejects.toBeDefined(); // the original is still there
        await store.deleteConversation(c.id);
        const imported = await store.importConversation(data, { keepIds: true });
        expect(imported).toEqual(exported?.conversation);
        const again = await store.exportConversation(c.id);
        expect({ ...again, exportedAt: 0 }).toEqual({ ...exported, exportedAt: 0 });
      });

      it('imports next to the original with new ids and the same structure', async () => {
        const { store } = await fresh();
        const c = await richConversation(store);
        const exported = await store.exportConversation(c.id);
        const imported = await store.importConversation(JSON.parse(JSON.stringify(exported)));
        expect(imported.id).not.toBe(c.id);
        const copy = await store.exportConversation(imported.id);
        expect(shape(copy)).toEqual(shape(exported));
        const originalIds = new Set(exported?.messages.map((m) => m.id));
        expect(copy?.messages.some((m) => originalIds.has(m.id))).toBe(false);
        expect((await store.getActivePath(imported.id))?.map((m) => m.content)).toEqual(['u1', 'a1b', 'u2 ünïcødé 🎉']);
        expect((await store.listConversations()).conversations).toHaveLength(2);
      });

      it('imports a reply still streaming in the export as failed', async () => {
        const { store } = await fresh();
        const { conversation, user } = await conversationWithReplies(store);
        const reply = await store.startAssistantMessage({ conversationId: conversation.id, parentId: user.id, model: 'm' });
        await store.updateStreamingText(reply.id, 'so far');
        const exported = await store.exportConversation(conversation.id);
        const imported = await store.importConversation(exported);
        const leaf = (await store.getActivePath(imported.id))?.at(-1);
        expect(leaf).toMatchObject({ status: 'failed', content: 'so far', error: interruptedError });
        await expect(store.recoverInterrupted()).resolves.toEqual({ failed: [reply.id] });
      });

      it('refuses invalid data with invalid_request and writes nothing', async () => {
        const { store } = await fresh();
        const c = await richConversation(store);
        const exported = await store.exportConversation(c.id);
        if (exported === undefined) throw new Error('no export');
        const [root, ...rest] = exported.messages;
        if (root === undefined) throw new Error('no messages');
        const broken: unknown[] = [
          null,
          { ...exported, format: 'something-else' },
          { ...exported, version: 2 },
          { ...exported, messages: rest }, // the root is missing: orphans
          { ...exported, messages: [...exported.messages, { ...root }] }, // a duplicate id
          { ...exported, messages: [{ ...root, parentId: exported.messages.at(-1)?.id ?? null }, ...rest] }, // a cycle
          { ...exported, messages: [{ ...root, role: 'robot' }, ...rest] },
          { ...exported, messages: [{ ...root, conversationId: 'other' }, ...rest] },
          { ...exported, conversation: { ...exported.conversation, activeLeafId: 'nowhere' } },
          { ...exported, conversation: { ...exported.conversation, settings: { temperature: 'hot' } } },
        ];
        for (const data of broken) {
          await expect(store.importConversation(data), JSON.stringify(data)?.slice(0, 80)).rejects.toMatchObject({ code: 'invalid_request' });
          await expect(store.importConversation(data, { keepIds: true })).rejects.toMatchObject({ code: 'invalid_request' });
        }
        expect((await store.listConversations()).conversations.map((conversation) => conversation.id)).toEqual([c.id]);
      });

      it('rolls a failing multi-row import back completely', async () => {
        const { store } = await fresh();
        const existing = await conversationWithReplies(store);
        // 600 messages, inserted in more than one statement; the 550th collides with a message already stored.
        const time = Date.now();
        const conversationId = 'import-conversation';
        const messages: MessageRecord[] = Array.from({ length: 600 }, (_, i) => ({
          id: i === 549 ? existing.first.id : `import-message-${String(i).padStart(4, '0')}`,
          conversationId,
          parentId: i === 0 ? null : `import-message-${String(i - 1).padStart(4, '0')}`,
          role: i % 2 === 0 ? 'user' : 'assistant',
          content: `m${i}`,
          status: 'complete',
          model: null,
          usage: null,
          timings: null,
          error: null,
          reasoning: '',
          toolCalls: [],
          finishReason: null,
          attachments: [],
          createdAt: time + i,
          updatedAt: time + i,
        }));
        messages[550] = { ...(messages[550] as MessageRecord), parentId: existing.first.id };
        const data: ConversationExport = {
          format: 'parlance.conversation',
          version: 1,
          exportedAt: time,
          conversation: { id: conversationId, title: 'doomed', model: null, systemPrompt: null, settings: {}, activeLeafId: 'import-message-0599', createdAt: time, updatedAt: time + 600 },
          messages,
        };
        await expect(store.importConversation(data, { keepIds: true })).rejects.toThrow();
        await expect(store.getConversation(conversationId)).resolves.toBeUndefined();
        await expect(store.getMessage('import-message-0000')).resolves.toBeUndefined();
        await expect(store.getMessage('import-message-0500')).resolves.toBeUndefined();
        await expect(store.getMessage(existing.first.id)).resolves.toEqual(existing.first);
        expect((await store.listConversations()).conversations.map((c) => c.id)).toEqual([existing.conversation.id]);
        // The same data with new ids goes in whole.
        const imported = await store.importConversation(data);
        expect((await store.getActivePath(imported.id))?.length).toBe(600);
      });

      it('answers undefined for an unknown conversation', async () => {
        const { store } = await fresh();
        await expect(store.exportConversation('nope')).resolves.toBeUndefined();
      });
    });
  });
}
