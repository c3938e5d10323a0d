/** The opaque cursors of the conversation list and of search results: a time and an id, the keyset to continue after. */
import type { ConversationRecord } from '../contract.js';
import { invalid } from './validation.js';

export function encodeKey(time: number, id: string): string {
  return Buffer.from(`${time}.${id}`, 'utf8').toString('base64url');
}

export function encodeCursor(conversation: ConversationRecord): string {
  return encodeKey(conversation.updatedAt, conversation.id);
}

export function decodeCursor(cursor: string): { updatedAt: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const dot = text.indexOf('.');
  const updatedAt = Number(text.slice(0, dot));
  const id = text.slice(dot + 1);
  if (dot <= 0 || !Number.isSafeInteger(updatedAt) || id === '') throw invalid('cursor', 'The cursor is not one this server returned.');
  return { updatedAt, id };
}
