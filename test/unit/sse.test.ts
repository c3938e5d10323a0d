import { Writable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SseStream, formatEvent } from '../../src/http/sse.js';

describe('formatEvent', () => {
  it('frames a single line', () => {
    expect(formatEvent('hello')).toBe('data: hello\n\n');
  });

  it('gives every line of multi-line data its own data field, whatever the line ending', () => {
    expect(formatEvent('a\nb\r\nc\rd')).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(formatEvent('\n')).toBe('data: \ndata: \n\n');
  });

  it('puts the event name and id before the data', () => {
    expect(formatEvent('{}', 'end', '7')).toBe('event: end\nid: 7\ndata: {}\n\n');
  });
});

/**
 * The part of a ServerResponse that SseStream uses, over a Writable that records each write: one
 * recorded write is one socket write, i.e. one HTTP chunk the client receives. `stall()` makes it a
 * client that reads nothing (writes stay unacknowledged), so the buffer fills as a real socket's does.
 */
class RecordingResponse extends Writable {
  readonly writes: string[] = [];
  ended = false;
  headersSent = false;
  private stalled: (() => void)[] | undefined;

  constructor() {
    super({ decodeStrings: false, highWaterMark: 1024 });
    this.on('finish', () => {
      this.ended = true;
    });
  }

  writeHead(): this {
    return this;
  }

  flushHeaders(): void {
    this.headersSent = true;
  }

  override _write(chunk: string, _encoding: BufferEncoding, callback: () => void): void {
    this.headersSent = true;
    this.writes.push(chunk);
    if (this.stalled) this.stalled.push(callback);
    else callback();
  }

  stall(): void {
    this.stalled = [];
  }

  /** The client reads again: everything buffered is acknowledged. */
  resume(): void {
    const waiting = this.stalled ?? [];
    this.stalled = undefined;
    for (const callback of waiting) callback();
  }
}

function open(coalesceMs?: number): { sse: SseStream; raw: RecordingResponse } {
  const raw = new RecordingResponse();
  const reply = { hijack: () => undefined, raw, getHeaders: () => ({}) } as unknown as FastifyReply;
  return { sse: new SseStream(reply, { keepAliveMs: 60_000, ...(coalesceMs === undefined ? {} : { coalesceMs }) }), raw };
}

/** Lets the current tick, and the tick callbacks it queued, run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A stream holding frames for 5 ms, opened, and past its first token (sent at once): later frames are held. */
async function pastFirstToken(): Promise<{ sse: SseStream; raw: RecordingResponse }> {
  const opened = open(5);
  await nextTurn();
  opened.sse.write(frame('first'));
  await nextTurn();
  return opened;
}

const frame = (text: string): string => `data: ${JSON.stringify({ text })}\n\n`;

/** The events of one write, as a client splits them. */
function events(write: string | undefined): string[] {
  return (write ?? '').split('\n\n').filter((event) => event !== '');
}

describe('SseStream without coalescing', () => {
  it("sends each tick's frames together at the end of that tick", async () => {
    const { sse, raw } = open();
    sse.write(frame('a'));
    sse.write(frame('b'));
    await nextTurn();
    sse.write(frame('c'));
    await nextTurn();
    expect(raw.writes).toEqual([frame('a') + frame('b'), frame('c')]);
    sse.end();
  });
});

describe('SseStream with coalesceMs', () => {
  beforeEach(() => {
    // Only the hold timer is faked: tick callbacks and setImmediate stay real, so "the end of the tick" is real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends the opening frame and the first token at once, then later tokens together, each still its own event', async () => {
    const { sse, raw } = open(5);
    sse.write('data: {"role":"assistant"}\n\n');
    await nextTurn();
    sse.write(frame('first'));
    await nextTurn();
    expect(raw.writes).toEqual(['data: {"role":"assistant"}\n\n', frame('first')]);

    sse.write(frame('second'));
    await nextTurn();
    sse.write(frame('third'));
    await nextTurn();
    expect(raw.writes).toHaveLength(2);

    vi.advanceTimersByTime(5);
    expect(raw.writes).toHaveLength(3);
    expect(events(raw.writes[2])).toEqual([frame('second').trimEnd(), frame('third').trimEnd()]);
    sse.end();
  });

  it('counts the headers-only opening as the opening: the first token of a stream with no opening frame is not held', async () => {
    const { sse, raw } = open(5);
    await nextTurn();
    sse.write(frame('first'));
    await nextTurn();
    expect(raw.writes).toEqual([frame('first')]);
    sse.end();
  });

  it('sends a held batch at once when it reaches 64 KiB', async () => {
    const { sse, raw } = await pastFirstToken();
    sse.write(frame('held'));
    const big = frame('x'.repeat(64 * 1024));
    sse.write(big);
    expect(raw.writes).toEqual([frame('first'), frame('held') + big]);
    sse.end();
  });

  it('sends held frames with the final frame on end, and nothing after it', async () => {
    const { sse, raw } = await pastFirstToken();
    sse.write(frame('held'));
    sse.end('data: [DONE]\n\n');
    vi.advanceTimersByTime(10);
    await nextTurn();
    expect(raw.writes).toEqual([frame('first'), `${frame('held')}data: [DONE]\n\n`]);
    expect(raw.ended).toBe(true);
  });

  it('still reports a full socket while frames are held, and drained() waits for the client', async () => {
    const { sse, raw } = await pastFirstToken();
    raw.stall();
    let accepted = true;
    for (let i = 0; i < 10 && accepted; i++) {
      accepted = sse.write(frame('y'.repeat(200)));
      vi.advanceTimersByTime(5);
    }
    expect(accepted).toBe(false);
    let drained = false;
    const waiting = sse.drained().then(() => {
      drained = true;
    });
    await nextTurn();
    expect(drained).toBe(false);
    raw.resume();
    await waiting;
    expect(drained).toBe(true);
    sse.end();
  });

  it('drops held frames when the client goes away, and aborts the signal', async () => {
    const { sse, raw } = await pastFirstToken();
    sse.write(frame('held'));
    raw.destroy();
    await nextTurn();
    vi.advanceTimersByTime(10);
    expect(raw.writes).toEqual([frame('first')]);
    expect(sse.signal.aborted).toBe(true);
    expect(sse.closed).toBe(true);
  });
});
