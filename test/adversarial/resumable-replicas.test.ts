/**
 * `/v1` resume across replicas: two real Parlance processes on one PostgreSQL. A client drops a resumable
 * stream on one, resumes it on the other with `Last-Event-ID`, and what it got plus what the other sent is
 * exactly the whole stream; the other replica follows the live stream from the store to `[DONE]`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastEventId, readEventsThenDrop, withoutStreamIdentity } from '../fixtures/resumable.js';
import { postgresForTests, startPostgres, type PostgresFixture } from '../fixtures/postgres.js';
import { startChild, type ChildServer } from './helpers.js';

const postgres = postgresForTests();
// 300 words at 10 ms: three seconds of stream, so the drop and the resume land while it is live.
const prompt = Array.from({ length: 300 }, (_, i) => `w${i}`).join(' ');

function post(url: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-parlance-resumable': 'true' },
    body: JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true }),
    ...(signal === undefined ? {} : { signal }),
  });
}

describe.skipIf(postgres === undefined)('resumable /v1 streams across replicas on one PostgreSQL', () => {
  let database: PostgresFixture;
  const children: ChildServer[] = [];
  let a: ChildServer;
  let b: ChildServer;
  beforeAll(async () => {
    database = await startPostgres(postgres!);
    const store = await database.newDatabase();
    const replica = async (): Promise<ChildServer> => {
      const child = await startChild(['--no-embedded', '--scripted', '--scripted-delay', '10', '--store', store, '--log-level', 'warn']);
      children.push(child);
      return child;
    };
    a = await replica();
    b = await replica();
  }, 90_000);
  afterAll(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited(5000)));
    await database?.stop();
  });

  it('drops on one replica and resumes on the other with exactly the missed bytes, following it live to [DONE]', { timeout: 60_000 }, async () => {
    const controller = new AbortController();
    const response = await post(a.url, controller.signal);
    const id = response.headers.get('x-parlance-stream-id') ?? '';
    const before = await readEventsThenDrop(response, controller, 20);
    const last = lastEventId(before);
    expect(last).toBe('20');

    const resumed = await fetch(`${b.url}/v1/chat/completions/${id}/events`, { headers: { 'last-event-id': last } });
    expect(resumed.status).toBe(200);
    const after = await resumed.text();
    expect(after.startsWith('id: 21\n')).toBe(true);
    expect(after.endsWith('data: [DONE]\n\n')).toBe(true);

    const fromStart = await (await fetch(`${b.url}/v1/chat/completions/${id}/events`)).text();
    expect(before + after).toBe(fromStart);
    const uninterrupted = await (await post(b.url)).text();
    expect(withoutStreamIdentity(before + after)).toBe(withoutStreamIdentity(uninterrupted));
  });

  it('answers 404 on either replica for an unknown id, and 400 for an id past a finished stream', { timeout: 30_000 }, async () => {
    expect((await fetch(`${b.url}/v1/chat/completions/chatcmpl-unknown/events`)).status).toBe(404);
    const response = await post(a.url);
    const id = response.headers.get('x-parlance-stream-id') ?? '';
    const whole = await response.text();
    const count = (whole.match(/^id: /gm) ?? []).length;
    // The other replica sees the stream once the last batch is stored; until then it may wait for it.
    let tail = await fetch(`${b.url}/v1/chat/completions/${id}/events`, { headers: { 'last-event-id': String(count) } });
    expect(tail.status).toBe(200);
    expect(await tail.text()).toBe('');
    tail = await fetch(`${b.url}/v1/chat/completions/${id}/events`, { headers: { 'last-event-id': String(count + 1) } });
    expect(tail.status).toBe(400);
  });

  it('refuses, on the other replica, a Last-Event-ID far ahead of a live stream', { timeout: 30_000 }, async () => {
    const controller = new AbortController();
    const response = await post(a.url, controller.signal);
    const id = response.headers.get('x-parlance-stream-id') ?? '';
    // The id reaches the client only once the stream is stored: the other replica knows it at once.
    const ahead = await fetch(`${b.url}/v1/chat/completions/${id}/events`, { headers: { 'last-event-id': '99999' } });
    expect(ahead.status).toBe(400);
    expect(((await ahead.json()) as { error: { param: string } }).error.param).toBe('Last-Event-ID');
    controller.abort();
  });
});
