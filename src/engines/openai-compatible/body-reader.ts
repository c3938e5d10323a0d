import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';

/** Upstream text buffered for a consumer that is not reading; past this the socket is paused (TCP backpressure). */
const MAX_BUFFERED_CHARS = 256 * 1024;
const STREAM_DECODE = { stream: true } as const;
const noop = (): void => {};

/**
 * Pull-style reading of the upstream response: bytes are decoded as they
 * arrive and handed out as one string per `take()`, so a burst of events costs
 * one wake-up, not one per TCP segment. Past {@link MAX_BUFFERED_CHARS}
 * unread, the socket is paused until the consumer catches up.
 */
export class BodyReader {
  ended = false;
  failure: Error | undefined;
  private buffered = '';
  private wake: (() => void) | undefined;
  /**
   * Created at the first chunk that ends inside a multi-byte character, and used from then on. SSE chunks nearly
   * always end with a newline, and a chunk that ends on an ASCII byte leaves nothing for the next one to complete.
   */
  private decoder: StringDecoder | undefined;

  constructor(readonly response: IncomingMessage) {
    response.on('data', this.onData);
    response.once('end', this.onEnd);
    response.on('error', this.onError);
    response.once('close', this.onClose);
  }

  /** The text that arrived since the last call; '' when none did. */
  take(): string {
    const text = this.buffered;
    if (text !== '') {
      this.buffered = '';
      if (this.response.isPaused()) this.response.resume();
    }
    return text;
  }

  /** Resolves when there is text to take, or the body ended or failed. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /** True once the whole body has been received (the connection can go back to the pool). */
  get complete(): boolean {
    return this.response.complete;
  }

  private readonly onData = (chunk: Buffer): void => {
    const text = this.decoder === undefined && (chunk[chunk.length - 1] ?? 0) < 0x80 ? chunk.toString('utf8') : (this.decoder ??= new StringDecoder('utf8')).write(chunk);
    this.buffered = this.buffered === '' ? text : this.buffered + text;
    if (this.buffered.length > MAX_BUFFERED_CHARS) this.response.pause();
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (error: Error): void => {
    this.failure ??= error;
    this.notify();
  };

  private readonly onClose = (): void => {
    if (!this.response.complete) this.failure ??= Object.assign(new Error('the connection closed mid-stream'), { code: 'ECONNRESET' });
    this.ended = true;
    this.notify();
  };

  private notify(): void {
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
  }
}


/** Reads a (non-streaming) response body up to `maxBytes`, then drops the rest with the connection. */
export function readBounded(response: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new TextDecoder();
    let text = '';
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.byteLength;
      text += decoder.decode(chunk, STREAM_DECODE);
      if (bytes >= maxBytes) {
        response.off('data', onData);
        response.destroy();
        resolve(text + decoder.decode());
      }
    };
    response.on('data', onData);
    response.once('end', () => resolve(text + decoder.decode()));
    response.on('error', reject);
    response.once('close', () => (response.complete ? resolve(text + decoder.decode()) : reject(new Error('the connection closed mid-response'))));
  });
}

/** fetch's `Response` for discovery: read with the same bound. */
export async function readFetchBounded(response: Response, maxBytes: number): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    text += decoder.decode(value, STREAM_DECODE);
    if (bytes >= maxBytes) {
      await reader.cancel().catch(noop);
      break;
    }
  }
  return text + decoder.decode();
}

