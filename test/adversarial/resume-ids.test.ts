/**
 * `Last-Event-ID` (and `?after=`) on the reply events route: only the canonical decimal ids this server sends,
 * and never beyond the reply's text, on a live reply and on a finished one alike (400 naming the header).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, postJson, readRest, readUntil, words } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 15 });
});
afterAll(async () => server.stop());

const malformed = ['0x10', '1e3', '5.0', '', '+5', '-1', '01', '9007199254740993', 'abc', '1_0'];

async function startReply(content: string): Promise<{ id: string; reader: ReadableStreamDefaultReader<Uint8Array>; text: string }> {
  const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: 'parlance-scripted' })).json()) as { id: string };
  const response = await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content });
  const { text, reader } = await readUntil(response, (so) => (so.match(/event: delta/g) ?? []).length >= 3);
  const start = parseSse(text).find((event) => event.event === 'start');
  return { id: (JSON.parse(start?.data ?? '{}') as { assistantMessage: { id: string } }).assistantMessage.id, reader, text };
}

const events = (id: string, headers: Record<string, string>, query = ''): Promise<Response> => fetch(`${server.url}/api/messages/${id}/events${query}`, { headers });

describe('Last-Event-ID', () => {
  it('refuses malformed ids and ids beyond the text of a live reply, and resumes from a valid one', async () => {
    const live = await startReply(words(200));
    for (const value of malformed) {
      const response = await events(live.id, { 'last-event-id': value });
      expect(response.status, JSON.stringify(value)).toBe(400);
      expectOpenAIError(await response.json(), 'invalid_request', 'Last-Event-ID');
    }
    const ahead = await events(live.id, { 'last-event-id': '50000' });
    expect(ahead.status).toBe(400);
    expect(expectOpenAIError(await ahead.json(), 'invalid_request', 'Last-Event-ID').error.message).toContain('beyond');
    const badAfter = await events(live.id, {}, '?after=1e3');
    expect(badAfter.status).toBe(400);
    expectOpenAIError(await badAfter.json(), 'invalid_request', 'after');

    const resumed = await events(live.id, { 'last-event-id': '3' });
    expect(resumed.status).toBe(200);
    const rest = parseSse(await resumed.text());
    const done = JSON.parse(rest.find((event) => event.event === 'done')?.data ?? '{}') as { message: { content: string } };
    const text = rest.filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
    expect(text).toBe(done.message.content.slice(3));
    await readRest(live.reader);
  });

  it('refuses the same on a finished reply, and accepts its exact length (nothing left but the end)', async () => {
    const finished = await startReply('one two three four');
    await readRest(finished.reader);
    for (const value of [...malformed, '19', '500']) {
      const response = await events(finished.id, { 'last-event-id': value });
      expect(response.status, JSON.stringify(value)).toBe(400);
      expectOpenAIError(await response.json(), 'invalid_request', 'Last-Event-ID');
    }
    const atEnd = parseSse(await (await events(finished.id, { 'last-event-id': '18' })).text());
    expect(atEnd.filter((event) => event.event === 'delta')).toEqual([]);
    expect(atEnd.at(-1)?.event).toBe('done');
  });
});
