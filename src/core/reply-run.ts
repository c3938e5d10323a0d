import { toolCallsSize, type ReplyCursor } from '../protocol/conversations.js';
import type { ConversationRecord, MessageRecord, MessageToolCall } from '../store/contract.js';

/**
 * How far a reader has got in a reply, part by part: the length of the answer
 * text and of the reasoning (UTF-16 code units), and the size of the tool
 * calls ({@link toolCallsSize}). Each only grows, so a reader that names its
 * cursor is given exactly what it lacks of each: no gap, no duplicate.
 */
export type { ReplyCursor };
export { toolCallsSize };

export const startCursor: ReplyCursor = { text: 0, reasoning: 0, tools: 0 };

/** What a reply run tells its listeners; each event's cursor is where a reader is once it has it. */
export type ReplyEvent =
  | { readonly type: 'delta'; readonly text: string; readonly cursor: ReplyCursor }
  | { readonly type: 'reasoning'; readonly text: string; readonly cursor: ReplyCursor }
  | { readonly type: 'tool-calls'; readonly toolCalls: readonly MessageToolCall[]; readonly cursor: ReplyCursor }
  | {
      readonly type: 'done';
      readonly message: MessageRecord;
      /** The conversation as the reply's end left it, when the run knows it (listeners read it otherwise). */
      readonly conversation?: ConversationRecord;
    };

export type ReplyListener = (event: ReplyEvent) => void;

/** A reply's parts at one moment: what is saved, and what a reader may be given. */
export interface ReplyParts {
  readonly content: string;
  readonly reasoning: string;
  readonly toolCalls: readonly MessageToolCall[];
}

/**
 * The events that take a reader from `from` to `parts`: the reasoning it
 * lacks, then the tool calls, then the answer text (the order a reply is read
 * in). Shared by a live run and a reply followed through the store.
 */
export function eventsBetween(from: ReplyCursor, parts: ReplyParts): ReplyEvent[] {
  const events: ReplyEvent[] = [];
  let cursor = from;
  if (parts.reasoning.length > cursor.reasoning) {
    cursor = { ...cursor, reasoning: parts.reasoning.length };
    events.push({ type: 'reasoning', text: parts.reasoning.slice(from.reasoning), cursor });
  }
  const tools = toolCallsSize(parts.toolCalls);
  if (tools > cursor.tools) {
    cursor = { ...cursor, tools };
    events.push({ type: 'tool-calls', toolCalls: parts.toolCalls, cursor });
  }
  if (parts.content.length > cursor.text) {
    cursor = { ...cursor, text: parts.content.length };
    events.push({ type: 'delta', text: parts.content.slice(from.text), cursor });
  }
  return events;
}

/**
 * One assistant reply being generated in this process. It outlives the HTTP
 * request that started it: listeners come and go (a tab closes, another
 * reattaches) while the reply keeps growing here, so a late listener can be
 * given exactly what it missed.
 *
 * Listeners are given only what is stored ({@link markSaved}): a process
 * killed mid-reply cannot take back from a reader text it had shown, because
 * it never showed text the store did not have.
 */
export class ReplyRun {
  private text_ = '';
  private reasoning_ = '';
  private readonly toolCalls_: { id: string; name: string; arguments: string }[];
  /** What is stored, and so may be shown. */
  private saved: ReplyParts;
  private savedCursor: ReplyCursor;
  private stoppedBy_: 'user' | 'shutdown' | undefined;
  private final: Extract<ReplyEvent, { type: 'done' }> | undefined;
  private readonly listeners = new Set<ReplyListener>();
  private readonly stopper = new AbortController();
  private readonly finished: Promise<MessageRecord>;
  private resolveFinished!: (message: MessageRecord) => void;

  /** Starts from what `message` already holds: nothing for a new reply, the text so far for a continued one. */
  constructor(readonly message: MessageRecord) {
    this.text_ = message.content;
    this.reasoning_ = message.reasoning;
    this.toolCalls_ = message.toolCalls.map(({ id, name, arguments: args }) => ({ id, name, arguments: args }));
    this.saved = { content: message.content, reasoning: message.reasoning, toolCalls: message.toolCalls };
    this.savedCursor = cursorOf(this.saved);
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  get text(): string {
    return this.text_;
  }

  get reasoning(): string {
    return this.reasoning_;
  }

  get toolCalls(): readonly MessageToolCall[] {
    return this.toolCalls_.map((call) => ({ ...call, result: null }));
  }

  /** What is stored, and so may be shown to a reader. */
  get savedParts(): ReplyParts {
    return this.saved;
  }

  /** Everything generated so far, to save. */
  parts(): ReplyParts {
    return { content: this.text_, reasoning: this.reasoning_, toolCalls: this.toolCalls };
  }

  /** Aborts when someone asked the reply to stop. */
  get stopSignal(): AbortSignal {
    return this.stopper.signal;
  }

  /** The stored reply once it ended. */
  get done(): Promise<MessageRecord> {
    return this.finished;
  }

  /** Who stopped the reply, once someone did: a person (from any tab) or the server shutting down. */
  get stoppedBy(): 'user' | 'shutdown' | undefined {
    return this.stoppedBy_;
  }

  stop(by: 'user' | 'shutdown' = 'user'): void {
    this.stoppedBy_ ??= by;
    this.stopper.abort(new Error(by === 'user' ? 'stopped by the user' : 'the server is shutting down'));
  }

  /** Answer text the engine generated; listeners get it once it is stored. */
  append(text: string): void {
    this.text_ += text;
  }

  appendReasoning(text: string): void {
    this.reasoning_ += text;
  }

  /** A tool call begins (`index` as the engine numbers them, so parallel calls interleave correctly). */
  startToolCall(index: number, id: string, name: string): void {
    this.toolCalls_[index] = { id, name, arguments: '' };
  }

  appendToolArguments(index: number, fragment: string): void {
    const call = this.toolCalls_[index];
    if (call) call.arguments += fragment;
  }

  /** The store holds `parts` (a {@link parts} snapshot): listeners get what they had not been given of it. */
  markSaved(parts: ReplyParts): void {
    const events = eventsBetween(this.savedCursor, parts);
    if (events.length === 0) return;
    this.saved = parts;
    this.savedCursor = cursorOf(parts);
    for (const event of events) for (const listener of this.listeners) listener(event);
  }

  /** Ends the run with the reply as stored: what listeners lack of it comes first, then `done`. */
  finish(message: MessageRecord, conversation?: ConversationRecord): void {
    this.markSaved({ content: message.content, reasoning: message.reasoning, toolCalls: message.toolCalls });
    const event: Extract<ReplyEvent, { type: 'done' }> = conversation === undefined ? { type: 'done', message } : { type: 'done', message, conversation };
    this.final = event;
    for (const listener of this.listeners) listener(event);
    this.listeners.clear();
    this.resolveFinished(message);
  }

  /**
   * Subscribes from `cursor` on: the stored parts after it (if any) come first,
   * then live events as they are stored, then `done`. Returns the unsubscribe function.
   */
  subscribe(cursor: ReplyCursor, listener: ReplyListener): () => void {
    for (const event of eventsBetween(cursor, this.saved)) listener(event);
    if (this.final) {
      listener(this.final);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function cursorOf(parts: ReplyParts): ReplyCursor {
  return { text: parts.content.length, reasoning: parts.reasoning.length, tools: toolCallsSize(parts.toolCalls) };
}
