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

/** Past this many characters a batch is sent at once rather than at the end of the tick. */
const MAX_BATCH_CHARS = 64 * 1024;

/**
 * One open Server-Sent Events response. The frames written during one tick of
 * the event loop go to the socket together, as one HTTP chunk, when the tick
 * ends: an upstream burst of tokens costs one socket write instead of one
 * per token, and a lone token is not delayed (nothing else runs before the
 * flush). `write` reports backpressure so the caller waits for `drained()`
 * instead of buffering without bound. When the client goes away, `signal`
 * aborts: that is the signal handed to the engine.
 */
export class SseStream {
  private readonly controller = new AbortController();
  private readonly raw: ServerResponse;
  private readonly keepAlive: NodeJS.Timeout;
  private wroteSinceTick = false;
  private finished = false;
  /** Frames written since the last flush. */
  private pending = '';
  private flushScheduled = false;
  private readonly writeTimeoutMs: number;

  constructor(reply: FastifyReply, options: SseOptions) {
    this.writeTimeoutMs = options.writeTimeoutMs ?? 30_000;
    reply.hijack();
    this.raw = reply.raw;
    const fromHooks = reply.getHeaders() as Record<string, string | number | string[]>;
    this.raw.writeHead(200, {
      ...fromHooks,
      'content-type': 'text/event-stream; charset=utf-8',
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
      options.onClose?.();
    });
    this.keepAlive = setInterval(() => {
      if (!this.wroteSinceTick) this.raw.write(': keep-alive\n\n');
      this.wroteSinceTick = false;
    }, options.keepAliveMs);
    this.keepAlive.unref();
  }

  /** Aborts when the client disconnects before the stream ended. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.finished || this.raw.destroyed;
  }

  /** Queues raw SSE bytes for the end of this tick; false means the socket buffer is full and the caller should await `drained()`. */
  write(frame: string): boolean {
    if (this.closed) return true;
    this.wroteSinceTick = true;
    this.pending = this.pending === '' ? frame : this.pending + frame;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    else this.scheduleFlush();
    return !this.raw.writableNeedDrain;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A tick callback runs once the current microtask queue is empty, so every frame a burst of events produces is in.
    process.nextTick(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.raw.destroyed) return;
    if (this.pending !== '') {
      const batch = this.pending;
      this.pending = '';
      this.raw.write(batch);
    } else if (!this.raw.headersSent && !this.finished) {
      this.raw.flushHeaders();
    }
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
    const last = finalFrame === undefined ? this.pending : this.pending + finalFrame;
    this.pending = '';
    if (!this.raw.destroyed) this.raw.end(last === '' ? undefined : last);
  }
}
