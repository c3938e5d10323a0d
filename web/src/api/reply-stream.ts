import type { MessageToolCall, ReplyDelta, ReplyDone, ReplyStart, ReplyToolCalls } from '../../../src/protocol/conversations.js';
import { formatReplyCursor, parseReplyCursor, type ReplyCursor } from '../../../src/protocol/reply-cursor.js';
import { ApiError, errorFrom, isAbort, request } from './http.js';
import { resumePath } from './conversations.js';
import { SseParser, type SseEvent } from './sse.js';

/**
 * Reads a reply stream (see src/protocol/conversations.ts): `start`, then
 * `reasoning`, `tool-calls` and `delta` events whose ids are the reader's
 * cursor (text, reasoning and tool-call progress), then `done`. When the
 * connection drops before `done`, it reconnects to `GET /parlance/api/messages/:id/events`
 * with `Last-Event-ID` set to the cursor it has, so nothing is lost or
 * repeated; after a page reload, `followReply` does the same from the stored reply.
 */
export interface ReplyCallbacks {
  onStart?(start: ReplyStart): void;
  /** More of the answer text. */
  onDelta(text: string): void;
  /** More of the reasoning. */
  onReasoning?(text: string): void;
  /** The reply's tool calls so far, whole. */
  onToolCalls?(calls: readonly MessageToolCall[]): void;
  /** The connection dropped and is being re-established (`attempt` from 1), or is back (`attempt` 0). */
  onReconnect?(attempt: number): void;
}

export interface ReplyStreamOptions {
  readonly signal?: AbortSignal;
  /** Reconnection attempts before giving up (each waits longer, up to 5 s). */
  readonly maxReconnects?: number;
  /** First reconnection delay in ms. */
  readonly retryDelayMs?: number;
}

interface Progress {
  messageId: string | undefined;
  cursor: ReplyCursor;
  done: ReplyDone | undefined;
}

/** The part of `text` that lies past `had`, given that it ends at `end`. */
function fresh(text: string, end: number, had: number): string {
  const begin = end - text.length;
  return begin < had ? text.slice(had - begin) : text;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('aborted', 'AbortError'));
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new DOMException('aborted', 'AbortError'));
      },
      { once: true },
    );
  });

function handle(event: SseEvent, progress: Progress, callbacks: ReplyCallbacks): void {
  if (event.event === 'start') {
    const start = JSON.parse(event.data) as ReplyStart;
    progress.messageId = start.assistantMessage.id;
    callbacks.onStart?.(start);
  } else if (event.event === 'delta' || event.event === 'reasoning' || event.event === 'tool-calls') {
    const next = event.id === undefined ? undefined : parseReplyCursor(event.id);
    if (next === undefined) return; // not an event of this protocol
    const had = progress.cursor;
    progress.cursor = { text: Math.max(had.text, next.text), reasoning: Math.max(had.reasoning, next.reasoning), tools: Math.max(had.tools, next.tools) };
    if (event.event === 'delta') {
      if (next.text > had.text) callbacks.onDelta(fresh((JSON.parse(event.data) as ReplyDelta).text, next.text, had.text));
    } else if (event.event === 'reasoning') {
      if (next.reasoning > had.reasoning) callbacks.onReasoning?.(fresh((JSON.parse(event.data) as ReplyDelta).text, next.reasoning, had.reasoning));
    } else if (next.tools > had.tools) callbacks.onToolCalls?.((JSON.parse(event.data) as ReplyToolCalls).toolCalls);
  } else if (event.event === 'done') {
    progress.done = JSON.parse(event.data) as ReplyDone;
  }
}

/** Reads one response to its end; answers normally when the body ended, throws on a network error mid-body. */
async function read(response: Response, progress: Progress, callbacks: ReplyCallbacks): Promise<void> {
  const body = response.body;
  if (!body) return;
  const parser = new SseParser((event) => handle(event, progress, callbacks));
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(value);
      if (progress.done) return;
    }
  } finally {
    reader.releaseLock();
  }
}

async function follow(first: Response | undefined, progress: Progress, callbacks: ReplyCallbacks, options: ReplyStreamOptions): Promise<ReplyDone> {
  const maxReconnects = options.maxReconnects ?? 12;
  const baseDelay = options.retryDelayMs ?? 400;
  let response = first;
  let attempt = 0;
  for (;;) {
    if (response) {
      try {
        await read(response, progress, callbacks);
      } catch (error) {
        if (isAbort(error) || options.signal?.aborted) throw new DOMException('aborted', 'AbortError');
        // a network error mid-stream: reconnect below
      }
      if (progress.done) return progress.done;
    }
    if (progress.messageId === undefined) throw new ApiError('The reply stream ended before it started.', 0, null);
    attempt++;
    if (attempt > maxReconnects) throw new ApiError('Lost the connection to the reply and could not get it back.', 0, null);
    const lostOne = response !== undefined || attempt > 1; // the first connection of followReply is not a reconnection
    if (lostOne) callbacks.onReconnect?.(attempt);
    if (response) await sleep(Math.min(5000, baseDelay * 2 ** (attempt - 1)), options.signal);
    response = undefined;
    try {
      const next = await request(resumePath(progress.messageId), {
        headers: { accept: 'text/event-stream', 'last-event-id': formatReplyCursor(progress.cursor) },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (next.ok) {
        response = next;
        if (lostOne) callbacks.onReconnect?.(0);
        attempt = 0;
      } else if (next.status >= 400 && next.status < 500) throw await errorFrom(next);
      else await sleep(Math.min(5000, baseDelay * 2 ** (attempt - 1)), options.signal);
    } catch (error) {
      if (error instanceof ApiError && !error.isNetwork) throw error;
      if (isAbort(error)) throw error;
      await sleep(Math.min(5000, baseDelay * 2 ** (attempt - 1)), options.signal);
    }
  }
}

/** POSTs `body` to a reply-starting route and follows the reply to its end. Rejects with ApiError when it is refused. */
export async function startReply(path: string, body: unknown, callbacks: ReplyCallbacks, options: ReplyStreamOptions = {}): Promise<ReplyDone> {
  const response = await request(path, {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok) throw await errorFrom(response);
  return follow(response, { messageId: undefined, cursor: { text: 0, reasoning: 0, tools: 0 }, done: undefined }, callbacks, options);
}

/** Follows a reply already under way (after a reload, or from another tab) from `cursor` on. */
export function followReply(messageId: string, cursor: ReplyCursor, callbacks: ReplyCallbacks, options: ReplyStreamOptions = {}): Promise<ReplyDone> {
  return follow(undefined, { messageId, cursor, done: undefined }, callbacks, options);
}
