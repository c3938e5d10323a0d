/**
 * Admission and connection abuse against a real server: twice the queue at once, a frozen client beside
 * normal ones, a client that disconnects at every stage of a request, a request past its deadline, and an
 * overloaded event loop. After each: no engine sequence left busy, nothing queued, no stream left open,
 * no internal error counted, and the server still answers.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree, ReplyStart } from '../../src/protocol/conversations.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { engineLoad, expectOpenAIError, expectSettled, metricValue, openSocket, postJson, rawRequest, readRest, readUntil, sleep, waitFor, words } from './helpers.js';

const tiny = 'parlance-tiny';
const scripted = 'parlance-scripted';
const chatRequest = (maxTokens: number, stream = true, content = 'hello') => ({ model: tiny, stream, max_tokens: maxTokens, messages: [{ role: 'user', content }] });

/** After a scenario: settled, and no error the server would call its own. */
async function expectCleanAfter(server: TestServer): Promise<void> {
  await expectSettled(server.url);
  const { metrics } = await engineLoad(server.url);
  expect(metricValue(metrics, 'parlance_errors_total', { code: 'internal_error' })).toBe(0);
  expect(metricValue(metrics, 'parlance_errors_total', { code: 'generation_failed' })).toBe(0);
}

/** A full chat the server must still serve, with every token it was asked for. */
async function expectServes(server: TestServer): Promise<void> {
  const response = await postJson(`${server.url}/v1/chat/completions`, chatRequest(3, false));
  expect(response.status).toBe(200);
  expect(((await response.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
}

describe('admission on the embedded engine (1 sequence, queue of 4)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sequences: 1, queueLength: 4, contextSize: 1024, ...noShedding });
  });
  afterAll(async () => server.stop());

  it('takes 1 + 4 of twice that many at once, answers the rest 429 with Retry-After at once, and completes every one it took', async () => {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const response = await postJson(`${server.url}/v1/chat/completions`, { ...chatRequest(40, true, `request ${i}`), stream_options: { include_usage: true } });
        const answeredMs = performance.now() - started;
        const text = await response.text();
        return { status: response.status, answeredMs, text, retryAfter: response.headers.get('retry-after') };
      }),
    );
    const taken = results.filter((result) => result.status === 200);
    const refused = results.filter((result) => result.status === 429);
    expect(taken).toHaveLength(5);
    expect(refused).toHaveLength(5);
    for (const result of refused) {
      expect(result.retryAfter).toMatch(/^\d+$/);
      expect(result.answeredMs).toBeLessThan(1000); // at once, not after waiting for a sequence
      expectOpenAIError(JSON.parse(result.text), 'queue_full');
    }
    for (const result of taken) {
      const events = parseSse(result.text);
      expect(events.at(-1)?.data).toBe('[DONE]');
      const usage = events.map((event) => (event.data === '[DONE]' ? undefined : (JSON.parse(event.data) as { usage?: { completion_tokens: number } }).usage)).find(Boolean);
      expect(usage?.completion_tokens).toBe(40);
    }
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('stores a conversation reply refused for a full queue as failed, keeping the user message', async () => {
    const holders = Array.from({ length: 5 }, () => new AbortController());
    const held = holders.map((controller, i) => postJson(`${server.url}/v1/chat/completions`, chatRequest(900, true, `hold ${i}`), {}, controller.signal).then((r) => r.text()).catch(() => ''));
    await waitFor(() => engineLoad(server.url), (load) => load.busy === 1 && load.queued === 4);
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: tiny })).json()) as ConversationRecord;
    const reply = await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: 'are you there?' });
    const done = parseSse(await reply.text()).find((event) => event.event === 'done');
    expect(JSON.parse(done?.data ?? '{}')).toMatchObject({ message: { status: 'failed', error: { code: 'queue_full' } } });
    for (const controller of holders) controller.abort();
    await Promise.all(held);
    const tree = (await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    expect(tree.messages.map((m) => [m.role, m.status, m.role === 'user' ? m.content : ''])).toEqual([
      ['user', 'complete', 'are you there?'],
      ['assistant', 'failed', ''],
    ]);
    await expectCleanAfter(server);
  });
});

describe('a client that disconnects at every stage (embedded engine, 1 sequence)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sequences: 1, queueLength: 4, contextSize: 1024, ...noShedding });
  });
  afterAll(async () => server.stop());

  const body = (request: unknown) => JSON.stringify(request);
  const fullRequest = (request: unknown, path = '/v1/chat/completions') => rawRequest('POST', path, body(request));

  /** Sends `bytes` on a fresh socket, waits for `until` (received text), then drops the connection. */
  async function sendThenDrop(bytes: Buffer, until: (received: string) => boolean = () => true, timeoutMs = 10_000): Promise<string> {
    const socket: Socket = await openSocket(server.url);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('error', () => undefined);
    socket.write(bytes);
    const deadline = Date.now() + timeoutMs;
    while (!until(received) && Date.now() < deadline) await sleep(5);
    socket.destroy();
    return received;
  }

  it('in the middle of the headers', async () => {
    const bytes = fullRequest(chatRequest(50));
    await sendThenDrop(bytes.subarray(0, 40));
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('in the middle of the body', async () => {
    const bytes = fullRequest(chatRequest(50));
    await sendThenDrop(bytes.subarray(0, bytes.length - 10));
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('right after the last byte of the request', async () => {
    await sendThenDrop(fullRequest(chatRequest(900)));
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('while waiting in the queue for a sequence', async () => {
    const holder = new AbortController();
    const held = postJson(`${server.url}/v1/chat/completions`, chatRequest(900), {}, holder.signal).then((r) => r.text()).catch(() => '');
    await waitFor(() => engineLoad(server.url), (load) => load.busy === 1);
    const queuedThenLeft = sendThenDrop(fullRequest(chatRequest(50)), () => false, 400);
    const whileQueued = await waitFor(() => engineLoad(server.url), (load) => load.queued >= 1, 2000);
    expect(whileQueued.queued).toBeGreaterThanOrEqual(1);
    await queuedThenLeft;
    await waitFor(() => engineLoad(server.url), (load) => load.queued === 0, 2000);
    holder.abort();
    await held;
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('after the response headers, before reading any token', async () => {
    const received = await sendThenDrop(fullRequest(chatRequest(900)), (text) => text.startsWith('HTTP/1.1 200'));
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it.each([
    ['/v1/chat/completions', chatRequest(900)],
    ['/v1/completions', { model: tiny, stream: true, max_tokens: 900, prompt: 'Once upon a time' }],
    ['/completion', { prompt: 'hello', model: tiny }],
  ] as const)('in the middle of a %s stream', async (path, request) => {
    const received = await sendThenDrop(fullRequest(request, path), (text) => (text.match(/\ndata: /g) ?? []).length >= 5);
    expect((received.match(/\ndata: /g) ?? []).length).toBeGreaterThanOrEqual(5);
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('while a non-streamed answer is being generated: the generation stops at once', async () => {
    const dropped = sendThenDrop(fullRequest(chatRequest(900, false)), () => false, 300);
    const busy = await waitFor(() => engineLoad(server.url), (load) => load.busy === 1, 2000);
    expect(busy.busy).toBe(1);
    await dropped;
    const stoppedAt = performance.now();
    await waitFor(() => engineLoad(server.url), (load) => load.busy === 0, 3000);
    // 900 tokens take seconds; a stop takes one token.
    expect(performance.now() - stoppedAt).toBeLessThan(1000);
    await expectCleanAfter(server);
    await expectServes(server);
  });

  it('in the middle of a conversation reply: the reply goes on, is stored complete, and can be read again', async () => {
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: tiny, settings: { maxTokens: 60 } })).json()) as ConversationRecord;
    const controller = new AbortController();
    const response = await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: 'tell me a story' }, {}, controller.signal);
    const { text } = await readUntil(response, (received) => (received.match(/event: delta/g) ?? []).length >= 3);
    const start = JSON.parse(parseSse(text)[0]?.data ?? '{}') as ReplyStart;
    controller.abort();
    const final = await waitFor(
      async () => ((await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree).messages.find((m) => m.id === start.assistantMessage.id),
      (message) => message?.status !== 'streaming',
    );
    expect(final).toMatchObject({ status: 'complete', usage: { completionTokens: 60 } });
    expect(final?.content.length).toBeGreaterThan(0);
    // Reattaching gives the whole stored text and the end.
    const again = await fetch(`${server.url}/api/messages/${start.assistantMessage.id}/events`);
    const events = parseSse(await again.text());
    expect(events.filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('')).toBe(final?.content);
    expect(events.at(-1)?.event).toBe('done');
    await expectCleanAfter(server);
  });
});

describe('a frozen client beside normal ones (scripted engine, write timeout 1 s)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 0, writeTimeoutSeconds: 1 });
  });
  afterAll(async () => server.stop());

  /** A client that sends a streaming request for a reply of megabytes and never reads a byte of it. */
  async function freeze(path: string, request: unknown): Promise<Socket> {
    const socket = await openSocket(server.url);
    socket.on('error', () => undefined);
    socket.pause();
    socket.write(rawRequest('POST', path, JSON.stringify(request)));
    return socket;
  }

  // 300 KB of text in 150,000 one-letter words: over 20 MB of stream chunks, far past the socket buffers.
  const huge = Array.from({ length: 150_000 }, () => 'w').join(' ');

  it('drops the frozen stream and stops its generation, while the others finish promptly', async () => {
    const frozen = await freeze('/v1/chat/completions', { model: scripted, stream: true, messages: [{ role: 'user', content: huge }] });
    await waitFor(() => engineLoad(server.url), (load) => load.busy === 1, 2000);
    const frozenAt = performance.now();
    const durations: number[] = [];
    while (performance.now() - frozenAt < 800) {
      const results = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const t = performance.now();
          const response = await postJson(`${server.url}/v1/chat/completions`, { model: scripted, stream: true, messages: [{ role: 'user', content: `normal client ${i} says hi` }] });
          const text = await response.text();
          return { ms: performance.now() - t, complete: text.includes('data: [DONE]') && text.includes('says') };
        }),
      );
      for (const result of results) {
        expect(result.complete).toBe(true);
        durations.push(result.ms);
      }
    }
    // The frozen one is still held (its write timeout has not passed) while the normal ones come and go.
    expect((await engineLoad(server.url)).busy).toBe(1);
    expect(Math.max(...durations)).toBeLessThan(500);

    const released = await waitFor(() => engineLoad(server.url), (load) => load.busy === 0, 5000);
    expect(released.busy).toBe(0);
    expect(performance.now() - frozenAt).toBeLessThan(4000);
    frozen.destroy();
    await expectCleanAfter(server);
  });

  it('a frozen reader of a conversation reply is dropped, and the reply is still stored whole', async () => {
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: scripted })).json()) as ConversationRecord;
    const frozen = await freeze(`/api/conversations/${conversation.id}/messages`, { content: huge });
    const tree = await waitFor(
      async () => (await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree,
      (current) => current.messages.some((m) => m.role === 'assistant' && m.status !== 'streaming'),
      15_000,
    );
    const user = tree.messages.find((m) => m.role === 'user');
    const reply = tree.messages.find((m) => m.role === 'assistant');
    expect(user?.content).toBe(huge);
    expect(reply?.status).toBe('complete');
    expect(reply?.content).toBe(huge);
    await waitFor(() => engineLoad(server.url), (load) => metricValue(load.metrics, 'parlance_active_streams') === 0, 5000);
    frozen.destroy();
    await expectCleanAfter(server);
  });
});

describe('the deadline and the overloaded event loop (scripted engine)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 20, deadlineSeconds: 1, maxEventLoopDelayMs: 50 });
  });
  afterAll(async () => server.stop());

  it('ends a stream that reaches its deadline with an error event, and frees the engine', async () => {
    const started = performance.now();
    const response = await postJson(`${server.url}/v1/chat/completions`, { model: scripted, stream: true, messages: [{ role: 'user', content: words(500) }] });
    const { reader, text } = await readUntil(response, () => true);
    const events = parseSse(await readRest(reader, text));
    expect(performance.now() - started).toBeLessThan(2500);
    const last = events.at(-1);
    expect(last?.data).not.toBe('[DONE]');
    expectOpenAIError(JSON.parse(last?.data ?? '{}'), 'engine_unavailable');
    await expectCleanAfter(server);
  });

  it('answers a non-streamed request that reaches its deadline with an error, not as a complete answer', async () => {
    const started = performance.now();
    const response = await postJson(`${server.url}/v1/chat/completions`, { model: scripted, messages: [{ role: 'user', content: words(500) }] });
    const body: unknown = await response.json();
    expect(performance.now() - started).toBeLessThan(2500);
    // 503 or 504 in OpenAI's shape; a 200 with finish_reason "stop" would pass a truncated text off as whole.
    expect([503, 504], JSON.stringify(body).slice(0, 300)).toContain(response.status);
    expect(['engine_unavailable', 'upstream_timeout']).toContain((body as { error?: { code?: string } }).error?.code);
    await expectCleanAfter(server);
  });

  it('sheds new requests with 503 and Retry-After while the event loop is overloaded; /health still answers', async () => {
    const generationsBefore = metricValue((await engineLoad(server.url)).metrics, 'parlance_generations_total');
    // The overload check samples only while there is work (an idle loop has nothing to shed): a request is in
    // flight, its body still coming.
    const uploading = await openSocket(server.url);
    const head = rawRequest('POST', '/v1/chat/completions', undefined, { 'content-length': '1000' });
    uploading.write(head);
    uploading.write('{"model":');
    await sleep(100);
    // The server shares this process: hog its event loop, 150 ms at a time, until its once-a-second sample
    // sees the delay (at most 3 s).
    const until = performance.now() + 3000;
    while (performance.now() < until && !server.app.isUnderPressure()) {
      const slice = performance.now() + 150;
      while (performance.now() < slice);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(server.app.isUnderPressure()).toBe(true);
    const shed = await postJson(`${server.url}/v1/chat/completions`, { model: scripted, messages: [{ role: 'user', content: 'hello' }] });
    const health = await fetch(`${server.url}/health`);
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('5');
    expectOpenAIError(await shed.json(), 'engine_unavailable');
    expect(health.status).toBe(200);
    uploading.destroy();
    // /metrics answers too, and shows the shed request never reached its route: no generation ran for it.
    expect(metricValue((await engineLoad(server.url)).metrics, 'parlance_generations_total')).toBe(generationsBefore);
    // Once the loop is calm again (the next 1 s sample), requests are served.
    const served = await waitFor(() => postJson(`${server.url}/v1/chat/completions`, { model: scripted, messages: [{ role: 'user', content: 'again' }] }), (r) => r.status === 200, 4000);
    expect(served.status).toBe(200);
    expect(metricValue((await engineLoad(server.url)).metrics, 'parlance_generations_total')).toBe(generationsBefore + 1);
    await expectSettled(server.url);
  });
});
