import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

/**
 * What a client receives from the embedded engine's streams, HTTP chunk by HTTP chunk: the server
 * sends several tokens in one chunk when they come faster than a millisecond apart (SseOptions
 * coalesceMs), and each chunk must still hold whole, separately framed SSE events. A raw socket
 * keeps the chunk boundaries of `Transfer-Encoding: chunked`, which fetch would hide.
 */

let server: TestServer;
const model = 'parlance-tiny';

beforeAll(async () => {
  server = await startTestServer({ sequences: 1 });
});
afterAll(async () => server.stop());

/** POSTs JSON over a plain socket and returns the body's HTTP chunks, decoded, in order. */
async function postForChunks(path: string, body: unknown): Promise<string[]> {
  const { hostname, port } = new URL(server.url);
  const payload = Buffer.from(JSON.stringify(body));
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const parts: Buffer[] = [];
    socket.on('data', (part) => parts.push(part));
    socket.on('end', () => resolve(Buffer.concat(parts)));
    socket.on('error', reject);
    socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`);
    socket.write(payload);
  });
  const headEnd = bytes.indexOf('\r\n\r\n');
  const head = bytes.subarray(0, headEnd).toString('latin1');
  expect(head).toMatch(/^HTTP\/1\.1 200/);
  expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
  const chunks: string[] = [];
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    const size = Number.parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) break;
    chunks.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8'));
    at = lineEnd + 2 + size + 2;
  }
  return chunks;
}

interface Chunk {
  choices: { delta?: { content?: string; role?: string }; text?: string; finish_reason: string | null }[];
  usage?: { completion_tokens: number };
}

/** The `data` of each event in one HTTP chunk; the chunk must end on an event boundary. */
function eventsOf(chunk: string): string[] {
  expect(chunk.endsWith('\n\n')).toBe(true);
  return chunk
    .slice(0, -2)
    .split('\n\n')
    .map((event) => {
      expect(event).toMatch(/^data: [^\n]*$/);
      return event.slice('data: '.length);
    });
}

describe('embedded engine streams, as HTTP chunks', () => {
  it('carries whole events in every chunk, the first token in a chunk of its own, and the same text as a non-streamed reply', async () => {
    const request = { model, messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 400, seed: 11 };
    const chunks = await postForChunks('/v1/chat/completions', { ...request, stream: true, stream_options: { include_usage: true } });
    const perChunk = chunks.map(eventsOf);

    // The role announcement opens the stream; the first text follows alone, not held back for company.
    expect(JSON.parse(perChunk[0]?.[0] ?? '{}')).toMatchObject({ choices: [{ delta: { role: 'assistant' } }] });
    const isText = (data: string): boolean => data !== '[DONE]' && (JSON.parse(data) as Chunk).choices[0]?.delta?.content !== undefined && (JSON.parse(data) as Chunk).choices[0]?.delta?.content !== '';
    const firstTextChunk = perChunk.find((events) => events.some(isText));
    expect(firstTextChunk).toHaveLength(1);

    const data = perChunk.flat();
    expect(data.at(-1)).toBe('[DONE]');
    const parsed = data.slice(0, -1).map((event) => JSON.parse(event) as Chunk);
    expect(parsed.at(-1)?.usage?.completion_tokens).toBe(400);
    const streamedText = parsed.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');

    const whole = (await (await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) })).json()) as {
      choices: { message: { content: string } }[];
    };
    expect(streamedText).toBe(whole.choices[0]?.message.content);
  });

  it('frames the legacy completions stream the same way', async () => {
    const chunks = await postForChunks('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 200, seed: 3, stream: true });
    const data = chunks.flatMap(eventsOf);
    expect(data.at(-1)).toBe('[DONE]');
    const finish = data.slice(0, -1).map((event) => (JSON.parse(event) as Chunk).choices[0]?.finish_reason);
    expect(finish.at(-1)).toBe('length');
    expect(finish.slice(0, -1).every((reason) => reason === null)).toBe(true);
  });

  it('frames the conversation reply stream the same way, and streams exactly the text it stores', async () => {
    const created = await fetch(`${server.url}/api/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, settings: { maxTokens: 300, seed: 5 } }),
    });
    const { id } = (await created.json()) as { id: string };
    const chunks = await postForChunks(`/api/conversations/${id}/messages`, { content: 'Tell me a long story.' });
    expect(chunks.every((chunk) => chunk.endsWith('\n\n'))).toBe(true);
    const events = parseSse(chunks.join(''));
    expect(events[0]?.event).toBe('start');
    expect(events.at(-1)?.event).toBe('done');
    const streamed = events.filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
    const done = JSON.parse(events.at(-1)?.data ?? '{}') as { message: { content: string; status: string } };
    expect(done.message.status).toBe('complete');
    expect(streamed.length).toBeGreaterThan(0);
    expect(streamed).toBe(done.message.content);
  });
});
