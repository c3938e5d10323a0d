/** Rows ↔ records: how the store's records are laid out in its tables. */
import type { ConversationRecord, ConversationSettings, MessageAttachment, MessageError, MessageRecord, MessageRole, MessageStatus, MessageTimings, MessageToolCall, MessageUsage } from '../contract.js';
import type { ConversationRow, ConversationsTable, MessageInsert, MessageRow, MessagesTable } from './schema.js';
import type { Insertable } from 'kysely';

export function toConversation(row: ConversationRow): ConversationRecord {
  return {
    id: row.id,
    title: row.title,
    model: row.model,
    systemPrompt: row.system_prompt,
    // Trusted: settings are validated on the way in (create, update, import), not on every read.
    settings: JSON.parse(row.settings) as ConversationSettings,
    activeLeafId: row.active_leaf_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export function toMessage(row: MessageRow): MessageRecord {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    parentId: row.parent_id,
    role: row.role as MessageRole,
    content: row.content,
    status: row.status as MessageStatus,
    model: row.model,
    usage: row.prompt_tokens === null || row.completion_tokens === null ? null : { promptTokens: row.prompt_tokens, completionTokens: row.completion_tokens },
    timings: row.total_ms === null ? null : { firstTokenMs: row.first_token_ms, totalMs: row.total_ms },
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    reasoning: row.reasoning,
    // Trusted: tool calls are validated on the way in, as settings are.
    toolCalls: row.tool_calls === null ? [] : (JSON.parse(row.tool_calls) as MessageToolCall[]),
    finishReason: row.finish_reason,
    // Trusted: validated on the way in.
    attachments: row.attachments === null ? [] : (JSON.parse(row.attachments) as MessageAttachment[]),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** A reply as it is first stored: empty, `streaming`, nothing measured yet. */
export function streamingReply(id: string, conversationId: string, parentId: string, model: string, time: number): MessageRecord {
  return { id, conversationId, parentId, role: 'assistant', content: '', status: 'streaming', model, ...noParts, createdAt: time, updatedAt: time };
}

/** The measured and generated parts of a message that has none yet. */
export const noParts = { usage: null, timings: null, error: null, reasoning: '', toolCalls: [], finishReason: null, attachments: [] } as const satisfies Partial<MessageRecord>;

/** The tool calls column: `null` for none. */
export function toolCallsColumn(calls: readonly MessageToolCall[]): string | null {
  return calls.length === 0 ? null : JSON.stringify(calls);
}

export function usageColumns(usage: MessageUsage | null | undefined): Pick<MessagesTable, 'prompt_tokens' | 'completion_tokens'> {
  return { prompt_tokens: usage?.promptTokens ?? null, completion_tokens: usage?.completionTokens ?? null };
}

export function timingsColumns(timings: MessageTimings | null | undefined): Pick<MessagesTable, 'first_token_ms' | 'total_ms'> {
  return { first_token_ms: timings?.firstTokenMs ?? null, total_ms: timings?.totalMs ?? null };
}

export function errorColumns(error: MessageError | null | undefined): Pick<MessagesTable, 'error_code' | 'error_message'> {
  return { error_code: error?.code ?? null, error_message: error?.message ?? null };
}

/** `lease`: the instance streaming the message and when its lease runs out; null for a message stored final. */
export function messageRow(message: MessageRecord, lease: { readonly instanceId: string; readonly expiresAt: number } | null): MessageInsert {
  return {
    id: message.id,
    conversation_id: message.conversationId,
    parent_id: message.parentId,
    role: message.role,
    content: message.content,
    status: message.status,
    model: message.model,
    ...usageColumns(message.usage),
    ...timingsColumns(message.timings),
    ...errorColumns(message.error),
    reasoning: message.reasoning,
    tool_calls: toolCallsColumn(message.toolCalls),
    finish_reason: message.finishReason,
    attachments: message.attachments.length === 0 ? null : JSON.stringify(message.attachments),
    instance_id: lease?.instanceId ?? null,
    lease_expires_at: lease?.expiresAt ?? null,
    stop_requested_at: null,
    created_at: message.createdAt,
    updated_at: message.updatedAt,
  };
}

export function conversationRow(conversation: ConversationRecord): Insertable<ConversationsTable> {
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    system_prompt: conversation.systemPrompt,
    settings: JSON.stringify(conversation.settings),
    active_leaf_id: conversation.activeLeafId,
    created_at: conversation.createdAt,
    updated_at: conversation.updatedAt,
  };
}
