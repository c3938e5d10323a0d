/** Walks of a conversation's message tree, in memory. */
import type { MessageRecord } from '../contract.js';
import { invalid } from './validation.js';

export function byAge(a: MessageRecord, b: MessageRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The path from a root to `leafId`, root first; empty when `leafId` is null or unknown. */
export function pathTo(leafId: string | null, messages: readonly MessageRecord[]): MessageRecord[] {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const path: MessageRecord[] = [];
  const seen = new Set<string>();
  for (let m = leafId === null ? undefined : byId.get(leafId); m !== undefined && !seen.has(m.id); m = m.parentId === null ? undefined : byId.get(m.parentId)) {
    seen.add(m.id);
    path.push(m);
  }
  return path.reverse();
}

/** Goes down from `id`, taking the newest child at each step. */
export function newestLeafUnder(id: string, messages: readonly MessageRecord[]): string {
  const newestChild = new Map<string, MessageRecord>();
  for (const m of messages) {
    if (m.parentId === null) continue;
    const current = newestChild.get(m.parentId);
    if (current === undefined || byAge(current, m) < 0) newestChild.set(m.parentId, m);
  }
  let leaf = id;
  const seen = new Set<string>();
  for (let child = newestChild.get(leaf); child !== undefined && !seen.has(child.id); child = newestChild.get(leaf)) {
    seen.add(child.id);
    leaf = child.id;
  }
  return leaf;
}

/**
 * Orders messages so that every parent comes before its children, oldest first
 * among those ready. Throws `invalid_request` when a parent is missing or the
 * parents form a cycle.
 */
export function parentsFirst(messages: readonly MessageRecord[]): MessageRecord[] {
  const sorted = [...messages].sort(byAge);
  const ids = new Set(sorted.map((m) => m.id));
  const children = new Map<string | null, MessageRecord[]>();
  for (const m of sorted) {
    if (m.parentId !== null && !ids.has(m.parentId)) throw invalid('messages', `Message ${m.id} names a parent (${m.parentId}) that is not among the messages.`);
    const list = children.get(m.parentId) ?? [];
    list.push(m);
    children.set(m.parentId, list);
  }
  const ordered: MessageRecord[] = [];
  const stack = [...(children.get(null) ?? [])].reverse();
  while (stack.length > 0) {
    const m = stack.pop();
    if (m === undefined) break;
    ordered.push(m);
    stack.push(...[...(children.get(m.id) ?? [])].reverse());
  }
  if (ordered.length !== sorted.length) throw invalid('messages', 'The messages do not form a tree: their parents form a cycle.');
  return ordered;
}
