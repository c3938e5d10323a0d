/** Import: the shape of a conversation export as it is accepted, and its mapping to rows. */
import { z } from 'zod';
import { interruptedError, type ConversationRecord, type ImportOptions, type MessageRecord } from '../contract.js';
import { uuidv7 } from './ids.js';
import { messageRow } from './rows.js';
import type { MessageInsert } from './schema.js';
import { parentsFirst } from './tree.js';
import { attachmentsSchema, checkSettings, errorSchema, idSchema, invalid, millis, roleSchema, settingsSchema, statusSchema, timingsSchema, toolCallsSchema, usageSchema } from './validation.js';

export const exportSchema = z.strictObject({
  format: z.literal('parlance.conversation'),
  version: z.literal(1),
  exportedAt: millis,
  conversation: z.strictObject({
    id: idSchema,
    title: z.string(),
    model: z.string().nullable(),
    systemPrompt: z.string().nullable(),
    settings: settingsSchema,
    activeLeafId: idSchema.nullable(),
    createdAt: millis,
    updatedAt: millis,
  }),
  messages: z.array(
    z.strictObject({
      id: idSchema,
      conversationId: idSchema,
      parentId: idSchema.nullable(),
      role: roleSchema,
      content: z.string(),
      status: statusSchema,
      model: z.string().nullable(),
      usage: usageSchema.nullable(),
      timings: timingsSchema.nullable(),
      error: errorSchema.nullable(),
      // Exports made before 0004 have none of these: what such messages had.
      reasoning: z.string().default(''),
      toolCalls: toolCallsSchema.default([]),
      finishReason: z.string().nullable().default(null),
      // Exports made before 0008 have none.
      attachments: attachmentsSchema.default([]),
      createdAt: millis,
      updatedAt: millis,
    }),
  ),
});

/** Rows to insert for an import: the conversation (with its active leaf) and its messages, parents first. */
export interface PreparedImport {
  readonly conversation: ConversationRecord;
  readonly rows: readonly MessageInsert[];
}

/**
 * Validates an export and maps it to rows: new ids unless `keepIds`, replies
 * that were streaming when exported become failed (interrupted).
 */
export function prepareImport(data: unknown, options: ImportOptions): PreparedImport {
  const parsed = exportSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(issue === undefined ? 'data' : ['data', ...issue.path].join('.'), `Not a Parlance conversation export: ${issue?.message ?? 'malformed'}.`);
  }
  const source = parsed.data;
  const conversationId = source.conversation.id;
  const messages: MessageRecord[] = source.messages.map((m, index) => {
    if (m.conversationId !== conversationId) throw invalid(`data.messages.${index}.conversationId`, 'A message belongs to another conversation.');
    if ((m.status === 'failed') !== (m.error !== null)) throw invalid(`data.messages.${index}.error`, 'A message has an error if, and only if, it failed.');
    return m.status === 'streaming' ? { ...m, status: 'failed', error: interruptedError } : m;
  });
  if (new Set(messages.map((m) => m.id)).size !== messages.length) throw invalid('data.messages', 'Two messages have the same id.');
  const ordered = parentsFirst(messages);
  const leaf = source.conversation.activeLeafId;
  if (leaf !== null && !messages.some((m) => m.id === leaf)) throw invalid('data.conversation.activeLeafId', 'The active leaf is not among the messages.');

  const newId = new Map<string, string>();
  const mapId = (id: string): string => {
    if (options.keepIds === true) return id;
    let mapped = newId.get(id);
    if (mapped === undefined) {
      mapped = uuidv7();
      newId.set(id, mapped);
    }
    return mapped;
  };
  const conversation: ConversationRecord = {
    ...source.conversation,
    id: mapId(conversationId),
    settings: checkSettings(source.conversation.settings, 'data.conversation.settings'),
    activeLeafId: null,
  };
  const rows = ordered.map((m) => messageRow({ ...m, id: mapId(m.id), conversationId: conversation.id, parentId: m.parentId === null ? null : mapId(m.parentId) }, null));
  return { conversation: { ...conversation, activeLeafId: leaf === null ? null : mapId(leaf) }, rows };
}
