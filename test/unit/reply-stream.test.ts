import { describe, expect, it } from 'vitest';
import { ReplyRun } from '../../src/core/reply-run.js';
import { relayRun } from '../../src/http/routes/conversations/reply-stream.js';
import type { SseStream } from '../../src/http/sse.js';
import type { ConversationRecord, MessageRecord } from '../../src/store/contract.js';

const message: MessageRecord = {
  id: 'm1',
  conversationId: 'c1',
  parentId: 'u1',
  role: 'assistant',
  content: '',
  status: 'streaming',
  model: 'm',
  usage: null,
  timings: null,
  error: null,
  createdAt: 1,
  updatedAt: 1,
};
const conversation: ConversationRecord = { id: 'c1', title: 't', model: null, systemPrompt: null, settings: {}, activeLeafId: 'm1', createdAt: 1, updatedAt: 2 };

/** The part of an SSE stream relayRun uses: records what is written; `full` makes writes report a full socket. */
function fakeSse() {
  const controller = new AbortController();
  const written: string[] = [];
  let drain: (() => void) | undefined;
  const fake = {
    full: false,
    ended: false,
    written,
    signal: controller.signal,
    get closed() {
      return fake.ended;
    },
    write(frame: string): boolean {
      written.push(frame);
      return !fake.full;
    },
    drained(): Promise<void> {
      return new Promise<void>((resolve) => {
        drain = resolve;
      });
    },
    end(frame?: string): void {
      if (frame !== undefined) written.push(frame);
      fake.ended = true;
    },
    /** The socket takes more again. */
    release(): void {
      fake.full = false;
      drain?.();
    },
  };
  return fake;
}

/** The `id:` of each delta frame and its text, in order. */
function deltas(frames: readonly string[]): [string, string][] {
  return frames.filter((f) => f.startsWith('event: delta')).map((f) => [/id: (\d+)/.exec(f)?.[1] ?? '', (JSON.parse(/data: (.*)/.exec(f)?.[1] ?? '{}') as { text: string }).text]);
}

describe('relayRun', () => {
  it('catches up through a full socket with one delta of what the client lacks, then writes directly again, and ends with the final frame', async () => {
    const run = new ReplyRun(message);
    const sse = fakeSse();
    const relayed = relayRun(sse as unknown as SseStream, run, 0, () => Promise.reject(new Error('not read: the run knows the conversation')));
    run.append('a');
    sse.full = true;
    run.append('b'); // written, but the socket is full now
    run.append('c'); // not queued: taken from the run's text once the socket drains
    run.append('d');
    expect(deltas(sse.written)).toEqual([['1', 'a'], ['2', 'b']]);
    sse.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(deltas(sse.written)).toEqual([['1', 'a'], ['2', 'b'], ['4', 'cd']]);
    run.append('e'); // the direct path again: written at once
    expect(deltas(sse.written).at(-1)).toEqual(['5', 'e']);
    run.finish({ ...message, content: 'abcde', status: 'complete' }, conversation);
    await relayed;
    expect(sse.ended).toBe(true);
    const done = sse.written.at(-1) ?? '';
    expect(done.startsWith('event: done')).toBe(true);
    expect(JSON.parse(/data: (.*)/.exec(done)?.[1] ?? '{}')).toEqual({ message: { ...message, content: 'abcde', status: 'complete' }, conversation });
  });

  it('sends the final frame only after the text the client lacks, when the reply ends while the socket is full', async () => {
    const run = new ReplyRun(message);
    const sse = fakeSse();
    const relayed = relayRun(sse as unknown as SseStream, run, 0, () => Promise.resolve(conversation));
    sse.full = true;
    run.append('x');
    run.append('yz');
    run.finish({ ...message, content: 'xyz', status: 'complete' }, conversation);
    expect(sse.ended).toBe(false);
    sse.release();
    await relayed;
    expect(deltas(sse.written)).toEqual([['1', 'x'], ['3', 'yz']]);
    expect(sse.written.at(-1)?.startsWith('event: done')).toBe(true);
  });

  it('resumes from an offset with exactly the missing text, and reads the conversation when the run does not know it', async () => {
    const run = new ReplyRun(message);
    run.append('hello ');
    run.append('world');
    const sse = fakeSse();
    const relayed = relayRun(sse as unknown as SseStream, run, 6, () => Promise.resolve(conversation));
    run.append('!');
    run.finish({ ...message, content: 'hello world!', status: 'complete' });
    await relayed;
    expect(deltas(sse.written)).toEqual([['11', 'world'], ['12', '!']]);
    expect(sse.written.at(-1)).toContain('"conversation":{"id":"c1"');
  });

  it('subscribing after the end gives the rest and the final frame', async () => {
    const run = new ReplyRun(message);
    run.append('done text');
    run.finish({ ...message, content: 'done text', status: 'complete' }, conversation);
    const sse = fakeSse();
    await relayRun(sse as unknown as SseStream, run, 4, () => Promise.resolve(undefined));
    expect(deltas(sse.written)).toEqual([['9', ' text']]);
    expect(sse.written.at(-1)?.startsWith('event: done')).toBe(true);
  });
});
