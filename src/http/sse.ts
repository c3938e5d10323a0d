import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

export interface SseOptions {
  /** Interval of `: keep-alive` comments while nothing else is written. */
  readonly keepAliveMs: number;
  /** A client that reads nothing for this long while the socket is full is dropped (its generation stops). */
  readonly writeTimeoutMs?: number;
  /** Extra response headers (request id, ...). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Called once when the stream opens and once when it closes, for the open-streams gauge. */
  readonly onOpen?: () => void;
  readonly onClose?: () => void;
  /**
   * After the first frame that follows the opening, hold frames for up to this many milliseconds (at
   * least 1: Node's timers have no finer grain) and send them together. Absent or 0: each tick's
   * frames go out at the end of that tick. For producers whose events come faster than a socket write
   * is worth (an in-process model decoding a token in under a millisecond); see {@link SseStream}.
   */
  readonly coalesceMs?: number;
  /** The response's content type; default `text/event-stream`. NDJSON dialects (Ollama's) reuse the writer. */
  readonly contentType?: string;
  /** What is written when nothing else was for `keepAliveMs`; default an SSE comment, '' for none (NDJSON has no comments). */
  readonly keepAliveFrame?: string;
}

/** Frames one SSE event. Multi-line data becomes one `data:` line per line, as the spec requires. */
export function formatEvent(data: string, event?: string, id?: string): string {
  let frame = '';
  if (event !== undefined) frame += `event: ${event}\n`;
  if (id !== undefined) frame += `id: ${id}\n`;
  if (data.includes('\n') || data.includes('\r')) {
    for (const line of data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  } else {
    frame += `data: ${data}\n`;
  }
  return `${frame}\n`;
}

/** Past this many characters a batch is sent at once rather than at the end of the tick or the hold. */
const MAX_BATCH_CHARS = 64 * 1024;

/**
 * One open Server-Sent Events response. The frames written during one tick of
 * the event loop go to the socket together, as one HTTP chunk, when the tick
 * ends: an upstream burst of tokens costs one socket write instead of one
 * per token, and a lone token is not delayed (nothing else runs before the
 * flush). `write` reports backpressure so the caller waits for `drained()`
 * instead of buffering without bound. When the client goes away, `signal`
 * aborts: that is the signal handed to the engine.
 *
 * With `coalesceMs`, frames wait on a timer for up to `coalesceMs` and go
 * out together, except the opening batch (headers, a role or start frame) and
 * the batch after it (the first token), which go at the end of their tick so
 * that time to first token does not grow. The embedded engine needs this: on
 * a small model a token takes ~0.55 ms, and one socket write per token
 * (~80 µs of the server's CPU, plus a read in the client, both on a machine
 * whose cores also decode) sits between tokens, since node-llama-cpp starts
 * the next decode from `setImmediate`, after the tick's callbacks. A timer
 * runs in a later turn of the loop, while the next token decodes, and takes
 * every token that came meanwhile. On a slower model each token still goes
 * out alone, at most `coalesceMs` later: its rate does not change.
 */
export class SseStream {
  private readonly controller = new AbortController();
  private readonly raw: ServerResponse;
  private readonly keepAlive: NodeJS.Timeout | undefined;
  private wroteSinceTick = false;
  private finished = false;
  /** Frames written since the last flush. */
  private pending = '';
  private flushScheduled = false;
  private readonly writeTimeoutMs: number;
  private readonly coalesceMs: number;
  /** The hold timer while frames wait for their batch (coalescing only). */
  private holdTimer: NodeJS.Timeout | undefined;
  /** Batches sent, the opening one (headers, with any frames of the opening tick) included; counted up to 2. */
  private batchesSent = 0;

  constructor(reply: FastifyReply, options: SseOptions) {
    this.writeTimeoutMs = options.writeTimeoutMs ?? 30_000;
    const coalesceMs = options.coalesceMs ?? 0;
    // Node runs a timer of under 1 ms after 1 ms anyway; saying so keeps the documented bound true.
    this.coalesceMs = coalesceMs > 0 ? Math.max(1, coalesceMs) : 0;
    reply.hijack();
    this.raw = reply.raw;
    const fromHooks = reply.getHeaders() as Record<string, string | number | string[]>;
    this.raw.writeHead(200, {
      ...fromHooks,
      'content-type': options.contentType ?? 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...options.headers,
    });
    // The headers go out at the end of this tick (with the first frames, when the caller writes some at once):
    // clients and proxies see the stream open before the first token either way.
    this.scheduleFlush();
    options.onOpen?.();
    this.raw.on('close', () => {
      if (!this.finished) this.controller.abort(new Error('client disconnected'));
      clearInterval(this.keepAlive);
      this.cancelHold();
      options.onClose?.();
    });
    const keepAliveFrame = options.keepAliveFrame ?? ': keep-alive\n\n';
    this.keepAlive =
      keepAliveFrame === ''
        ? undefined
        : setInterval(() => {
            if (!this.wroteSinceTick) this.raw.write(keepAliveFrame);
            this.wroteSinceTick = false;
          }, options.keepAliveMs);
    this.keepAlive?.unref();
  }

  /** Aborts when the client disconnects before the stream ended. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.finished || this.raw.destroyed;
  }

  /**
   * Queues raw SSE bytes for the end of this tick (or the hold, when coalescing); false means the
   * socket buffer is full and the caller should await `drained()`.
   */
  write(frame: string): boolean {
    if (this.closed) return true;
    this.wroteSinceTick = true;
    this.pending = this.pending === '' ? frame : this.pending + frame;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    else this.scheduleFlush();
    return !this.raw.writableNeedDrain;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.holdTimer !== undefined) return;
    if (this.coalesceMs > 0 && this.batchesSent >= 2) {
      this.holdTimer = setTimeout(this.flush, this.coalesceMs);
      return;
    }
    this.flushScheduled = true;
    // A tick callback runs once the current microtask queue is empty, so every frame a burst of events produces is in.
    process.nextTick(this.flush);
  }

  private cancelHold(): void {
    if (this.holdTimer === undefined) return;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.cancelHold();
    if (this.raw.destroyed) return;
    if (this.pending !== '') {
      const batch = this.pending;
      this.pending = '';
      this.raw.write(batch);
    } else if (!this.raw.headersSent && !this.finished) {
      this.raw.flushHeaders();
    } else {
      return;
    }
    if (this.batchesSent < 2) this.batchesSent++;
  };

  /**
   * Resolves when the socket can take more, or when the client is gone. A
   * client frozen for `writeTimeoutMs` is disconnected: that aborts `signal`,
   * so its generation stops instead of holding a sequence and buffering forever.
   */
  drained(): Promise<void> {
    if (this.closed || !this.raw.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const frozen = setTimeout(() => this.raw.destroy(), this.writeTimeoutMs);
      const done = (): void => {
        clearTimeout(frozen);
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.once('drain', done);
      this.raw.once('close', done);
    });
  }

  end(finalFrame?: string): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.keepAlive);
    this.cancelHold();
    const last = finalFrame === undefined ? this.pending : this.pending + finalFrame;
    this.pending = '';
    if (!this.raw.destroyed) this.raw.end(last === '' ? undefined : last);
  }
}
