import { describe, expect, it } from 'vitest';
import { ReplyRun, startCursor } from '../../src/core/reply-run.js';
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
  reasoning: '',
  toolCalls: [],
  finishReason: null,
  attachments: [],
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

/** The text cursor (`id:`'s first part) of each delta frame and its text, in order. */
function deltas(frames: readonly string[]): [string, string][] {
  return frames.filter((f) => f.startsWith('event: delta')).map((f) => [/id: (\d+)/.exec(f)?.[1] ?? '', (JSON.parse(/data: (.*)/.exec(f)?.[1] ?? '{}') as { text: string }).text]);
}

/** Generated and stored at once: what a run relays. */
function stored(run: ReplyRun, text: string): void {
  run.append(text);
  run.markSaved(run.parts());
}

const at = (text: number, reasoning = 0, tools = 0) => ({ text, reasoning, tools });

describe('relayRun', () => {
  it('catches up through a full socket with one delta of what the client lacks, then writes directly again, and ends with the final frame', async () => {
    const run = new ReplyRun(message);
    const sse = fakeSse();
    const relayed = relayRun(sse as unknown as SseStream, run, at(0), () => Promise.reject(new Error('not read: the run knows the conversation')));
    stored(run, 'a');
    sse.full = true;
    stored(run, 'b'); // written, but the socket is full now
    stored(run, 'c'); // not queued: taken from the run's stored parts once the socket drains
    stored(run, 'd');
    expect(deltas(sse.written)).toEqual([['1', 'a'], ['2', 'b']]);
    sse.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(deltas(sse.written)).toEqual([['1', 'a'], ['2', 'b'], ['4', 'cd']]);
    stored(run, 'e'); // the direct path again: written at once
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
    const relayed = relayRun(sse as unknown as SseStream, run, startCursor, () => Promise.resolve(conversation));
    stored(run, 'x');
    sse.full = true;
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
    stored(run, 'hello ');
    stored(run, 'world');
    const sse = fakeSse();
    const relayed = relayRun(sse as unknown as SseStream, run, at(6), () => Promise.resolve(conversation));
    stored(run, '!');
    run.finish({ ...message, content: 'hello world!', status: 'complete' });
    await relayed;
    expect(deltas(sse.written)).toEqual([['11', 'world'], ['12', '!']]);
    expect(sse.written.at(-1)).toContain('"conversation":{"id":"c1"');
  });

  it('subscribing after the end gives the rest and the final frame', async () => {
    const run = new ReplyRun(message);
    stored(run, 'done text');
    run.finish({ ...message, content: 'done text', status: 'complete' }, conversation);
    const sse = fakeSse();
    await relayRun(sse as unknown as SseStream, run, at(4), () => Promise.resolve(undefined));
    expect(deltas(sse.written)).toEqual([['9', ' text']]);
    expect(sse.written.at(-1)?.startsWith('event: done')).toBe(true);
  });

  it('relays only what is stored: text generated but not yet saved waits', () => {
    const run = new ReplyRun(message);
    const sse = fakeSse();
    void relayRun(sse as unknown as SseStream, run, at(0), () => Promise.resolve(conversation));
    run.append('not yet');
    expect(deltas(sse.written)).toEqual([]);
    run.markSaved(run.parts());
    expect(deltas(sse.written)).toEqual([['7', 'not yet']]);
  });

  it('resumes reasoning, tool calls and text each from the cursor, with no gap or duplicate', async () => {
    const run = new ReplyRun(message);
    const sse = fakeSse();
    void relayRun(sse as unknown as SseStream, run, at(0), () => Promise.resolve(conversation));
    run.appendReasoning('think ');
    run.startToolCall(0, 'call_1', 'lookup');
    run.appendToolArguments(0, '{"q":');
    run.markSaved(run.parts());
    run.appendReasoning('more');
    run.startToolCall(1, 'call_2', 'other');
    run.appendToolArguments(0, '"x"}');
    run.append('answer');
    run.markSaved(run.parts());
    const ids = sse.written.map((frame) => /event: (\S+)\nid: (\S+)/.exec(frame)?.slice(1, 3).join(' '));
    const size0 = 1 + 'call_1'.length + 'lookup'.length + '{"q":'.length;
    const size1 = 1 + 'call_1'.length + 'lookup'.length + '{"q":"x"}'.length + 1 + 'call_2'.length + 'other'.length;
    expect(ids).toEqual([`reasoning 0.6.0`, `tool-calls 0.6.${size0}`, `reasoning 0.10.${size0}`, `tool-calls 0.10.${size1}`, `delta 6.10.${size1}`]);

    // A reader that had the first reasoning and the first tool-call list gets the rest, each once.
    const late = fakeSse();
    void relayRun(late as unknown as SseStream, run, at(0, 6, size0), () => Promise.resolve(conversation));
    const data = late.written.map((frame) => JSON.parse(/data: (.*)/.exec(frame)?.[1] ?? '{}') as Record<string, unknown>);
    expect(data).toEqual([
      { text: 'more' },
      { toolCalls: [
        { id: 'call_1', name: 'lookup', arguments: '{"q":"x"}', result: null },
        { id: 'call_2', name: 'other', arguments: '', result: null },
      ] },
      { text: 'answer' },
    ]);
    // One that has everything gets nothing again.
    const current = fakeSse();
    void relayRun(current as unknown as SseStream, run, at(6, 10, size1), () => Promise.resolve(conversation));
    expect(current.written).toEqual([]);
  });
});
