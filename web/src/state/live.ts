import type { MessageToolCall } from '../../../src/protocol/conversations.js';

/**
 * The text of replies streaming right now, kept outside React state: a delta
 * appends to a string and wakes only the one view that shows that reply
 * (which then renders at most once per animation frame), instead of
 * re-rendering the app per token.
 */
export interface LiveReply {
  readonly messageId: string;
  readonly conversationId: string;
  text: string;
  reasoning: string;
  toolCalls: readonly MessageToolCall[];
  /** When the request was sent (performance.now()). */
  readonly sentAt: number;
  /** When the first text arrived; null until then. */
  firstTextAt: number | null;
  /** Deltas received: close to the token count while streaming. */
  deltas: number;
  /** >0 while reconnecting (the attempt number). */
  reconnecting: number;
  /** Followed from the middle (after a reload): the time to first token here would mean nothing. */
  readonly resumed: boolean;
}

type Listener = () => void;

export class LiveReplies {
  private readonly replies = new Map<string, LiveReply>();
  private readonly listeners = new Map<string, Set<Listener>>();

  get(messageId: string): LiveReply | undefined {
    return this.replies.get(messageId);
  }

  start(messageId: string, conversationId: string, parts: Pick<LiveReply, 'text' | 'reasoning' | 'toolCalls'>, sentAt: number, resumed = false): LiveReply {
    const reply: LiveReply = { messageId, conversationId, ...parts, sentAt, firstTextAt: null, deltas: 0, reconnecting: 0, resumed };
    this.replies.set(messageId, reply);
    this.emit(messageId);
    return reply;
  }

  append(messageId: string, text: string): void {
    const reply = this.replies.get(messageId);
    if (!reply) return;
    reply.text += text;
    reply.deltas++;
    reply.firstTextAt ??= performance.now();
    this.emit(messageId);
  }

  appendReasoning(messageId: string, text: string): void {
    const reply = this.replies.get(messageId);
    if (!reply) return;
    reply.reasoning += text;
    reply.firstTextAt ??= performance.now();
    this.emit(messageId);
  }

  setToolCalls(messageId: string, calls: readonly MessageToolCall[]): void {
    const reply = this.replies.get(messageId);
    if (!reply) return;
    reply.toolCalls = calls;
    this.emit(messageId);
  }

  setReconnecting(messageId: string, attempt: number): void {
    const reply = this.replies.get(messageId);
    if (!reply) return;
    reply.reconnecting = attempt;
    this.emit(messageId);
  }

  end(messageId: string): void {
    this.replies.delete(messageId);
    this.emit(messageId);
  }

  subscribe(messageId: string, listener: Listener): () => void {
    let set = this.listeners.get(messageId);
    if (!set) this.listeners.set(messageId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(messageId);
    };
  }

  private emit(messageId: string): void {
    for (const listener of this.listeners.get(messageId) ?? []) listener();
  }
}
