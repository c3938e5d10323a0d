import type { MessageRecord } from '../../../src/protocol/conversations.js';

/** Helpers over a conversation's message tree (messages name their parent; branches are siblings). */

export function byId(messages: readonly MessageRecord[]): Map<string, MessageRecord> {
  return new Map(messages.map((message) => [message.id, message]));
}

/** The ids from a root down to `leafId` (empty for null or an unknown id). */
export function pathTo(messages: readonly MessageRecord[], leafId: string | null | undefined): string[] {
  const index = byId(messages);
  const path: string[] = [];
  const seen = new Set<string>();
  for (let id = leafId ?? null; id !== null && !seen.has(id); ) {
    const message = index.get(id);
    if (!message) break;
    seen.add(id);
    path.unshift(id);
    id = message.parentId;
  }
  return path;
}

/** Messages sharing `message`'s parent and role, oldest first: the versions the branch switcher steps through. */
export function siblingsOf(messages: readonly MessageRecord[], message: MessageRecord): MessageRecord[] {
  return messages
    .filter((candidate) => candidate.parentId === message.parentId && candidate.role === message.role)
    .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Inserts or replaces records by id. */
export function upsertMessages(messages: readonly MessageRecord[], records: readonly MessageRecord[]): MessageRecord[] {
  const next = [...messages];
  for (const record of records) {
    const at = next.findIndex((message) => message.id === record.id);
    if (at >= 0) next[at] = record;
    else next.push(record);
  }
  return next;
}
