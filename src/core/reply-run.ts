import type { ConversationRecord, MessageRecord } from '../store/contract.js';

/** What a reply run tells its listeners. Offsets are UTF-16 code units of the reply text. */
export type ReplyEvent =
  | { readonly type: 'delta'; readonly text: string; readonly offset: number }
  | {
      readonly type: 'done';
      readonly message: MessageRecord;
      /** The conversation as the reply's end left it, when the run knows it (listeners read it otherwise). */
      readonly conversation?: ConversationRecord;
    };

export type ReplyListener = (event: ReplyEvent) => void;

/**
 * One assistant reply being generated in this process. It outlives the HTTP
 * request that started it: listeners come and go (a tab closes, another
 * reattaches) while the text keeps growing here, so a late listener can be
 * given exactly what it missed from the text itself.
 *
 * Listeners are given only text that is stored ({@link markSaved}): a process
 * killed mid-reply cannot take back from a reader text it had shown, because
 * it never showed text the store did not have.
 */
export class ReplyRun {
  private text_ = '';
  /** How much of the text is stored, and so may be shown. */
  private saved_ = 0;
  private stoppedBy_: 'user' | 'shutdown' | undefined;
  private final: Extract<ReplyEvent, { type: 'done' }> | undefined;
  private readonly listeners = new Set<ReplyListener>();
  private readonly stopper = new AbortController();
  private readonly finished: Promise<MessageRecord>;
  private resolveFinished!: (message: MessageRecord) => void;

  constructor(readonly message: MessageRecord) {
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  get text(): string {
    return this.text_;
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

  /** Text the engine generated; listeners get it once it is stored. */
  append(text: string): void {
    this.text_ += text;
  }

  /** The store holds the text up to `length`: listeners get what they had not been given of it. */
  markSaved(length: number): void {
    const end = Math.min(length, this.text_.length);
    if (end <= this.saved_) return;
    const event: ReplyEvent = { type: 'delta', text: this.text_.slice(this.saved_, end), offset: end };
    this.saved_ = end;
    for (const listener of this.listeners) listener(event);
  }

  /** Ends the run with the reply as stored: its text is given to listeners first, then `done`. */
  finish(message: MessageRecord, conversation?: ConversationRecord): void {
    if (message.content.startsWith(this.text_.slice(0, this.saved_))) {
      this.text_ = message.content;
      this.markSaved(message.content.length);
    }
    const event: Extract<ReplyEvent, { type: 'done' }> = conversation === undefined ? { type: 'done', message } : { type: 'done', message, conversation };
    this.final = event;
    for (const listener of this.listeners) listener(event);
    this.listeners.clear();
    this.resolveFinished(message);
  }

  /**
   * Subscribes from `offset` on: the stored text after it (if any) comes first
   * as one delta, then live deltas as they are stored, then `done`. Returns the unsubscribe function.
   */
  subscribe(offset: number, listener: ReplyListener): () => void {
    if (offset < this.saved_) listener({ type: 'delta', text: this.text_.slice(offset, this.saved_), offset: this.saved_ });
    if (this.final) {
      listener(this.final);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
