/**
 * The cursor of a reply stream (see conversations.ts): where a reader is in a
 * reply, part by part. Apart from the zod schemas so that the page can use it
 * without bundling them.
 */
import type { MessageToolCall } from './conversations.js';

/** Where a reader is in a reply (the ids of a reply stream, see conversations.ts). */
export interface ReplyCursor {
  readonly text: number;
  readonly reasoning: number;
  readonly tools: number;
}

/**
 * A measure of a reply's tool calls that grows with every change to them (a
 * new call, more arguments, a result). Tool calls are sent whole, so a
 * reader whose measure is below the reply's lacks something and is sent the
 * list again; parallel calls that interleave need no finer bookkeeping.
 */
export function toolCallsSize(calls: readonly MessageToolCall[]): number {
  let size = 0;
  for (const call of calls) size += 1 + call.id.length + call.name.length + call.arguments.length + (call.result === null ? 0 : 1 + call.result.length);
  return size;
}

export function formatReplyCursor(cursor: ReplyCursor): string {
  return `${cursor.text}.${cursor.reasoning}.${cursor.tools}`;
}

/** Reads an event id back into a cursor; undefined when it is not one. */
export function parseReplyCursor(id: string): ReplyCursor | undefined {
  // Only the canonical spelling this server sends: `0x10`, `1e3`, `5.0`, `007`, ` 5` or an empty id are not ids.
  const parts = id.split('.');
  if (parts.length !== 1 && parts.length !== 3) return undefined;
  const numbers = parts.map((part) => (/^(?:0|[1-9]\d{0,14})$/.test(part) ? Number(part) : NaN));
  if (numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  const [text = 0, reasoning = 0, tools = 0] = numbers;
  return { text, reasoning, tools };
}
