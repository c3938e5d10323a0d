/** The branches this process's replies ended, remembered for the next turn. */
import type { MessageRecord } from '../contract.js';

/**
 * The branches this process's replies ended, by the id of the reply that ends
 * each: the next turn of a conversation answers that reply, and its history is
 * that branch plus the new message, without reading it again (the read grows
 * with the conversation). Sound because a branch never changes once its last
 * message is final: messages are only added, a final message is never written
 * again, and parents never change; only a whole conversation is deleted (its
 * branches are forgotten then, and after that no message of it can be a parent).
 * One branch per conversation, least recently used first out, bounded by the
 * text it holds.
 */
export class BranchMemory {
  readonly #byLeaf = new Map<string, { readonly path: readonly MessageRecord[]; readonly chars: number }>();
  /** The leaf remembered for each conversation. */
  readonly #leafOf = new Map<string, string>();
  /** Branches of replies still streaming, by reply id, until they end. */
  readonly #streaming = new Map<string, readonly MessageRecord[]>();
  #chars = 0;

  constructor(
    private readonly maxChars: number,
    private readonly maxStreaming: number,
  ) {}

  /** The branch ending with `leafId`, root first, if remembered. */
  get(leafId: string): readonly MessageRecord[] | undefined {
    const entry = this.#byLeaf.get(leafId);
    if (entry === undefined) return undefined;
    this.#byLeaf.delete(leafId); // re-inserted: now the most recently used
    this.#byLeaf.set(leafId, entry);
    return entry.path;
  }

  /** A reply started: `path` is the branch it answers, its last message the reply's parent. */
  started(replyId: string, path: readonly MessageRecord[]): void {
    if (path.some((m) => m.status === 'streaming')) return; // a branch with a reply still growing is not final
    if (this.#streaming.size >= this.maxStreaming) {
      const oldest = this.#streaming.keys().next();
      if (oldest.done !== true) this.#streaming.delete(oldest.value);
    }
    this.#streaming.set(replyId, path);
  }

  /** A reply ended: its branch, with the final reply, is the conversation's latest. */
  finished(reply: MessageRecord): void {
    const above = this.#streaming.get(reply.id);
    if (above === undefined) return;
    this.#streaming.delete(reply.id);
    this.forget(reply.conversationId);
    const path = [...above, reply];
    const chars = path.reduce((n, m) => n + m.content.length + m.attachments.reduce((size, file) => size + (file.type === 'text' ? file.text.length : file.url.length), 0), 0);
    if (chars > this.maxChars) return;
    this.#byLeaf.set(reply.id, { path, chars });
    this.#leafOf.set(reply.conversationId, reply.id);
    this.#chars += chars;
    for (const [leaf, entry] of this.#byLeaf) {
      if (this.#chars <= this.maxChars) break;
      this.#byLeaf.delete(leaf);
      this.#chars -= entry.chars;
      const conversationId = entry.path.at(-1)?.conversationId;
      if (conversationId !== undefined && this.#leafOf.get(conversationId) === leaf) this.#leafOf.delete(conversationId);
    }
  }

  /** Forgets a conversation's branch (it is deleted, or has a newer one). */
  forget(conversationId: string): void {
    const leaf = this.#leafOf.get(conversationId);
    if (leaf === undefined) return;
    this.#leafOf.delete(conversationId);
    const entry = this.#byLeaf.get(leaf);
    if (entry === undefined) return;
    this.#byLeaf.delete(leaf);
    this.#chars -= entry.chars;
  }
}
