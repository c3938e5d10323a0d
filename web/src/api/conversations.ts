import type {
  ConversationPage,
  ConversationPatchBody,
  ConversationRecord,
  ConversationTree,
  MessageRecord,
  NewConversationBody,
  SearchPage,
} from '../../../src/protocol/conversations.js';
import { authHeaders, json, request } from './http.js';

/** The conversation API (`/parlance/api/*`, see src/protocol/conversations.ts), one function per route. */

const enc = encodeURIComponent;

export function listConversations(cursor?: string, limit = 50): Promise<ConversationPage> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  return json<ConversationPage>(`/parlance/api/conversations?${query.toString()}`);
}

/** Messages whose text has the query's words, newest first. */
export function searchMessages(q: string, signal?: AbortSignal, limit = 20): Promise<SearchPage> {
  const query = new URLSearchParams({ q, limit: String(limit) });
  return json<SearchPage>(`/api/search?${query.toString()}`, signal ? { signal } : {});
}

export function createConversation(body: NewConversationBody): Promise<ConversationRecord> {
  return json<ConversationRecord>('/parlance/api/conversations', { method: 'POST', body });
}

export function getConversation(id: string, signal?: AbortSignal): Promise<ConversationTree> {
  return json<ConversationTree>(`/parlance/api/conversations/${enc(id)}`, signal ? { signal } : {});
}

export function updateConversation(id: string, patch: ConversationPatchBody): Promise<ConversationRecord> {
  return json<ConversationRecord>(`/parlance/api/conversations/${enc(id)}`, { method: 'PATCH', body: patch });
}

export function deleteConversation(id: string): Promise<void> {
  return json<undefined>(`/parlance/api/conversations/${enc(id)}`, { method: 'DELETE' });
}

/** Sends the delete even while the page unloads (the undo window was still open). */
export function deleteConversationOnUnload(id: string): void {
  void fetch(`/parlance/api/conversations/${enc(id)}`, { method: 'DELETE', keepalive: true, headers: authHeaders() }).catch(() => undefined);
}

export function selectBranch(id: string, messageId: string): Promise<ConversationTree> {
  return json<ConversationTree>(`/parlance/api/conversations/${enc(id)}/branch`, { method: 'PUT', body: { messageId } });
}

export function stopReply(messageId: string): Promise<MessageRecord> {
  return json<MessageRecord>(`/parlance/api/messages/${enc(messageId)}/stop`, { method: 'POST' });
}

export function exportUrl(id: string, format: 'json' | 'markdown'): string {
  return `/parlance/api/conversations/${enc(id)}/export?format=${format}`;
}

/** Downloads an export with the API key (a plain link cannot send one): fetched, then saved from a blob URL. */
export async function downloadExport(id: string, format: 'json' | 'markdown'): Promise<void> {
  const response = await request(exportUrl(id, format));
  if (!response.ok) throw new Error(`The export failed (${response.status}).`);
  const disposition = response.headers.get('content-disposition') ?? '';
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1];
  const name = (utf8 === undefined ? undefined : decodeURIComponent(utf8)) ?? /filename="([^"]+)"/.exec(disposition)?.[1] ?? `conversation.${format === 'json' ? 'json' : 'md'}`;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Imports a conversation export (a file the person picked); answers the new conversation. */
export function importConversation(data: unknown): Promise<ConversationRecord> {
  return json<ConversationRecord>('/parlance/api/conversations/import', { method: 'POST', body: data });
}

export function messagePath(conversationId: string): string {
  return `/parlance/api/conversations/${enc(conversationId)}/messages`;
}

export function regeneratePath(conversationId: string, messageId: string): string {
  return `/parlance/api/conversations/${enc(conversationId)}/messages/${enc(messageId)}/regenerate`;
}

export function continuePath(conversationId: string, messageId: string): string {
  return `/parlance/api/conversations/${enc(conversationId)}/messages/${enc(messageId)}/continue`;
}

export function resumePath(messageId: string): string {
  return `/parlance/api/messages/${enc(messageId)}/events`;
}
