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
 */
export class ReplyRun {
  private text_ = '';
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

  stop(): void {
    this.stopper.abort(new Error('stopped by the user'));
  }

  append(text: string): void {
    this.text_ += text;
    const event: ReplyEvent = { type: 'delta', text, offset: this.text_.length };
    for (const listener of this.listeners) listener(event);
  }

  finish(message: MessageRecord, conversation?: ConversationRecord): void {
    const event: Extract<ReplyEvent, { type: 'done' }> = conversation === undefined ? { type: 'done', message } : { type: 'done', message, conversation };
    this.final = event;
    for (const listener of this.listeners) listener(event);
    this.listeners.clear();
    this.resolveFinished(message);
  }

  /**
   * Subscribes from `offset` on: the text after it (if any) comes first as one
   * delta, then live deltas, then `done`. Returns the unsubscribe function.
   */
  subscribe(offset: number, listener: ReplyListener): () => void {
    if (offset < this.text_.length) listener({ type: 'delta', text: this.text_.slice(offset), offset: this.text_.length });
    if (this.final) {
      listener(this.final);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
