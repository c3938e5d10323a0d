/**
 * Two real Parlance processes on one PostgreSQL, on the same host: restarting one does not touch the other's
 * live reply; a replica killed with SIGKILL mid-reply has its reply failed (partial text kept) and its followers'
 * streams ended by the surviving replica, well within 30 s (the lease is shortened here to keep the test fast);
 * a stop asked on the other replica leaves the stream, the `done` event and the store with one text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationTree, MessageRecord, ReplyDone, ReplyStart } from '../../src/protocol/conversations.js';
import { postgresForTests, startPostgres, type PostgresFixture } from '../fixtures/postgres.js';
import { parseSse } from '../fixtures/server.js';
import { postJson, readRest, readUntil, startChild, words, type ChildServer } from './helpers.js';

const postgres = postgresForTests();
const text = words(400, 'r'); // 400 tokens at 20 ms: 8 s of reply
const leaseSeconds = 1.5;

interface Health {
  instance: string;
}

describe.skipIf(postgres === undefined)('replicas on one PostgreSQL', () => {
  let database: PostgresFixture;
  let store: string;
  const children: ChildServer[] = [];
  const replica = async (): Promise<ChildServer> => {
    const child = await startChild(['--no-embedded', '--scripted', '--scripted-delay', '20', '--store', store, '--reply-lease', String(leaseSeconds), '--log-level', 'warn']);
    children.push(child);
    return child;
  };
  beforeAll(async () => {
    database = await startPostgres(postgres!);
    store = await database.newDatabase();
  }, 60_000);
  afterAll(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited(5000)));
    await database?.stop();
  });

  /** Starts a long reply on `server`; `whole` is its stream read to the end, in the background. */
  async function startReply(server: ChildServer): Promise<{ start: ReplyStart; whole: Promise<string> }> {
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: 'parlance-scripted' })).json()) as { id: string };
    const response = await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: text });
    const { text: head, reader } = await readUntil(response, (so) => (so.match(/event: delta/g) ?? []).length >= 5);
    const start = JSON.parse(parseSse(head).find((event) => event.event === 'start')?.data ?? '{}') as ReplyStart;
    return { start, whole: readRest(reader, head).catch(() => head) };
  }

  const textOf = (raw: string): string => parseSse(raw).filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
  const doneOf = (raw: string): ReplyDone | undefined => {
    const done = parseSse(raw).find((event) => event.event === 'done');
    return done === undefined ? undefined : (JSON.parse(done.data) as ReplyDone);
  };

  it('gives each process its own identity, new at every start, and a restart leaves the other replica\'s reply streaming to the end', { timeout: 90_000 }, async () => {
    const a = await replica();
    const b = await replica();
    const idA = ((await (await fetch(`${a.url}/health`)).json()) as Health).instance;
    const idB = ((await (await fetch(`${b.url}/health`)).json()) as Health).instance;
    expect(idA).not.toBe(idB);

    const { start, whole } = await startReply(b);
    a.child.kill('SIGTERM');
    await a.exited(10_000);
    const restarted = await replica();
    expect(((await (await fetch(`${restarted.url}/health`)).json()) as Health).instance).not.toBe(idA);

    const raw = await whole;
    expect(textOf(raw)).toBe(text);
    expect(doneOf(raw)?.message).toMatchObject({ status: 'complete', content: text });
    const stored = (await (await fetch(`${restarted.url}/api/conversations/${start.assistantMessage.conversationId}`)).json()) as ConversationTree;
    expect(stored.messages.find((m) => m.id === start.assistantMessage.id)).toMatchObject({ status: 'complete', content: text });
  });

  it('fails the reply of a replica killed with SIGKILL, keeping its partial text, and ends the followers\' streams on the survivor', { timeout: 90_000 }, async () => {
    const victim = await replica();
    const survivor = await replica();
    const { start } = await startReply(victim);
    const follower = await fetch(`${survivor.url}/api/messages/${start.assistantMessage.id}/events`);
    expect(follower.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 600)); // a save or two of the text reach the store
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited(5000);

    const { text: raw, reader } = await readUntil(follower, (so) => so.includes('event: done'), 30_000);
    await reader.cancel();
    const seconds = (Date.now() - killedAt) / 1000;
    const done = doneOf(raw);
    expect(done?.message.status).toBe('failed');
    expect(done?.message.error?.message).toMatch(/server stopped/i);
    expect(seconds).toBeLessThan(30);
    const stored = (await (await fetch(`${survivor.url}/api/conversations/${start.assistantMessage.conversationId}`)).json()) as ConversationTree;
    const reply = stored.messages.find((m) => m.id === start.assistantMessage.id);
    expect(reply?.status).toBe('failed');
    expect(reply?.content.length).toBeGreaterThan(0);
    expect(text.startsWith(reply?.content ?? 'x')).toBe(true);
    expect(textOf(raw)).toBe(reply?.content);
    console.info(`SIGKILLed replica's reply ended on the survivor after ${seconds.toFixed(1)} s (lease ${leaseSeconds} s)`);
  });

  it('stopped from the other replica: the stream, the done event, the stop answer and the store carry one text', { timeout: 90_000 }, async () => {
    const generating = await replica();
    const other = await replica();
    const { start, whole } = await startReply(generating);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const stopped = (await (await postJson(`${other.url}/api/messages/${start.assistantMessage.id}/stop`, {})).json()) as MessageRecord;
    const raw = await whole;
    const streamed = textOf(raw);
    const done = doneOf(raw);
    const stored = (await (await fetch(`${other.url}/api/conversations/${start.assistantMessage.conversationId}`)).json()) as ConversationTree;
    const reply = stored.messages.find((m) => m.id === start.assistantMessage.id);
    expect(stopped.status).toBe('stopped');
    expect(done?.message.status).toBe('stopped');
    expect(streamed.length).toBeGreaterThan(0);
    expect(streamed.length).toBeLessThan(text.length);
    expect({ done: done?.message.content, stopAnswer: stopped.content, store: reply?.content }).toEqual({ done: streamed, stopAnswer: streamed, store: streamed });
  });
});
