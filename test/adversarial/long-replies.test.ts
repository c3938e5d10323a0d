/**
 * A long reply costs the same order through the conversation API as through /v1: a 100k-token reply of the
 * scripted model, relayed to a client that reads as fast as it can, is timed both ways in this one process and
 * compared as a ratio (the machine is shared: no absolute time is asserted). A queue of one event per token,
 * shifted one at a time while the socket was full, once made this quadratic (6 s against 0.2 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { postJson, words } from './helpers.js';

const tokens = 100_000;
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, bodyLimit: 8 << 20, maxEventLoopDelayMs: 0 });
});
afterAll(async () => server.stop());

async function timed(work: () => Promise<string>): Promise<{ ms: number; body: string }> {
  const started = performance.now();
  const body = await work();
  return { ms: performance.now() - started, body };
}

describe('a 100k-token reply', () => {
  it('costs at most twice as much through the conversation API as through /v1', { timeout: 120_000 }, async () => {
    const text = words(tokens, 'w');
    const viaV1 = (): Promise<string> =>
      postJson(`${server.url}/v1/chat/completions`, { model: 'parlance-scripted', stream: true, messages: [{ role: 'user', content: text }] }).then((r) => r.text());
    const viaConversation = async (): Promise<string> => {
      const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: 'parlance-scripted' })).json()) as { id: string };
      return (await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: text })).text();
    };
    // Each way twice, interleaved, the faster run of each counted: a neighbour's burst hits both alike.
    const v1: number[] = [];
    const conversation: number[] = [];
    for (let round = 0; round < 2; round++) {
      v1.push((await timed(viaV1)).ms);
      const run = await timed(viaConversation);
      conversation.push(run.ms);
      const events = parseSse(run.body);
      const streamed = events.filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
      const done = JSON.parse(events.find((event) => event.event === 'done')?.data ?? '{}') as { message?: { content: string; status: string } };
      expect(streamed).toBe(text);
      expect(done.message).toMatchObject({ status: 'complete', content: text });
    }
    const ratio = Math.min(...conversation) / Math.min(...v1);
    console.info(`100k-token reply: /v1 ${Math.min(...v1).toFixed(0)} ms, conversation API ${Math.min(...conversation).toFixed(0)} ms, ratio ${ratio.toFixed(2)}`);
    expect(ratio).toBeLessThanOrEqual(2);
  });
});
