import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree, MessageRecord, ReplyStart } from '../../src/protocol/conversations.js';
import { postgresForTests, startPostgres, type PostgresFixture } from '../fixtures/postgres.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { freePort } from '../fixtures/net.js';

async function startChild(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--port', String(port), '--log-level', 'warn', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('Parlance did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, url };
}

const json = async <T>(response: Response): Promise<T> => (await response.json()) as T;
const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Reads a reply stream until its start event, and returns it with the still-open response. */
async function startReply(response: Response): Promise<ReplyStart> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  while (!buffer.includes('\n\n')) buffer += (await reader.read()).value ?? '';
  const data = buffer.split('\n').find((line) => line.startsWith('data: '))!.slice(6);
  // Keep reading in the background so the server is never blocked on us; a killed server just ends it.
  void (async () => {
    try {
      while (!(await reader.read()).done);
    } catch {
      // the connection died with the server: expected in the crash test
    }
  })();
  return JSON.parse(data) as ReplyStart;
}

const words = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');

describe('a crash mid-reply (kill -9) and a restart', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('keeps the user message and marks the interrupted reply failed with its partial text', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'parlance-crash-'));
    dirs.push(dataDir);
    const args = ['--no-embedded', '--scripted', '--scripted-delay', '20', '--data-dir', dataDir];
    const first = await startChild(args);
    const conversation = await json<ConversationRecord>(await post(`${first.url}/api/conversations`, { model: 'parlance-scripted' }));
    const start = await startReply(await post(`${first.url}/api/conversations/${conversation.id}/messages`, { content: words }));
    await new Promise((resolve) => setTimeout(resolve, 900)); // several text saves (every 250 ms) happen meanwhile
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));

    const second = await startChild(args);
    try {
      const tree = await json<ConversationTree>(await fetch(`${second.url}/api/conversations/${conversation.id}`));
      const user = tree.messages.find((m) => m.id === start.userMessage?.id);
      const reply = tree.messages.find((m) => m.id === start.assistantMessage.id);
      expect(user).toMatchObject({ role: 'user', status: 'complete', content: words });
      expect(reply?.status).toBe('failed');
      expect(reply?.error?.message).toMatch(/server stopped/i);
      expect(reply?.content.length).toBeGreaterThan(0);
      expect(reply?.content.length).toBeLessThan(words.length);
      expect(words.startsWith(reply!.content)).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
    }
  });
});

const postgres = postgresForTests();
describe.skipIf(postgres === undefined)('two Parlance replicas on one PostgreSQL', () => {
  let database: PostgresFixture | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await database?.stop();
  });

  it('writes through one and reads, continues and stops through the other', async () => {
    database = await startPostgres(postgres!);
    const store = await database.newDatabase();
    a = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 20, store });
    b = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 20, store });

    const conversation = await json<ConversationRecord>(await post(`${a.url}/api/conversations`, { model: 'parlance-scripted', title: 'Shared' }));
    const firstReply = await post(`${a.url}/api/conversations/${conversation.id}/messages`, { content: 'short question' });
    await firstReply.text();
    const seenByB = await json<ConversationTree>(await fetch(`${b.url}/api/conversations/${conversation.id}`));
    expect(seenByB.messages.map((m) => [m.role, m.status, m.content])).toEqual([
      ['user', 'complete', 'short question'],
      ['assistant', 'complete', 'short question'],
    ]);

    // Continue through B: a long reply generated by B, stopped through A.
    const start = await startReply(await post(`${b.url}/api/conversations/${conversation.id}/messages`, { content: words }));
    await new Promise((resolve) => setTimeout(resolve, 600));
    const stopped = await json<MessageRecord>(await post(`${a.url}/api/messages/${start.assistantMessage.id}/stop`, {}));
    expect(stopped.status).toBe('stopped');
    // B notices at its next save and stops generating; the stored text stays a prefix of the echo.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const final = await json<ConversationTree>(await fetch(`${b.url}/api/conversations/${conversation.id}`));
    const reply = final.messages.find((m) => m.id === start.assistantMessage.id)!;
    expect(reply.status).toBe('stopped');
    expect(reply.content.length).toBeGreaterThan(0);
    expect(reply.content.length).toBeLessThan(words.length);
    expect(words.startsWith(reply.content)).toBe(true);
    const health = await json<{ engines: { name: string; active: number }[] }>(await fetch(`${b.url}/health`));
    expect(health.engines.find((e) => e.name === 'scripted')?.active).toBe(0);
  });
});
