import { z } from 'zod';

/**
 * The conversation API the chat page uses (`/api/*`). JSON bodies are the
 * store's records as they are (camelCase, times in epoch milliseconds, absent
 * values `null`); the record types are re-declared here so the web client
 * imports nothing but this folder.
 *
 * Routes:
 *   GET    /api/conversations?limit=&cursor=        → ConversationPage
 *   POST   /api/conversations            NewConversationBody → ConversationRecord (201)
 *   GET    /api/conversations/:id                   → ConversationTree
 *   PATCH  /api/conversations/:id        ConversationPatchBody → ConversationRecord
 *   DELETE /api/conversations/:id                   → 204
 *   POST   /api/conversations/:id/messages    SendMessageBody → SSE reply stream (see below)
 *   POST   /api/conversations/:id/messages/:messageId/regenerate  RegenerateBody → SSE reply stream
 *   POST   /api/conversations/:id/messages/:messageId/continue    (no body) → SSE reply stream of the same
 *          message, generating more of it (after `finishReason: "length"`); its text so far comes first
 *   PUT    /api/conversations/:id/branch      SelectBranchBody → ConversationTree
 *   GET    /api/messages/:messageId/events    (header Last-Event-ID) → SSE reply stream, resumed
 *   POST   /api/messages/:messageId/stop              → MessageRecord (the stopped reply)
 *   GET    /api/conversations/:id/export?format=json|markdown → the export (a download)
 *   POST   /api/conversations/import      ConversationExport → ConversationRecord (201)
 *   GET    /api/search?q=&limit=&cursor=             → SearchPage (message text, newest first)
 *   /parlance/api/settings, /parlance/api/presets…  global defaults and presets (under the prefix only): see ./settings.ts
 *
 * A reply stream (`text/event-stream`) carries these events:
 *   event: start       data: ReplyStart        (once, first; not repeated on resume)
 *   event: reasoning   data: ReplyDelta        more of the model's reasoning
 *   event: tool-calls  data: ReplyToolCalls    the reply's tool calls so far, whole (each replaces the last)
 *   event: delta       data: ReplyDelta        more of the answer text
 *   event: done        data: ReplyDone         (once, last)
 * Every event but `done` has an id, the reader's cursor once it has the
 * event: `<text>.<reasoning>.<tools>`, the lengths of the answer text and of
 * the reasoning (UTF-16 code units), and the size of the tool calls (a
 * measure that grows with every change to them). A client that lost the
 * connection reconnects to `/api/messages/:id/events` with `Last-Event-ID`
 * set to the last id it received, and gets exactly what it missed of each
 * part, then the live rest: no gaps and no duplicates. (A bare number is a
 * text length, with nothing had of the other parts.) Deltas carry text once the server has stored
 * it (the first text at once, then every save, a few times a second): text a
 * client was shown is never lost by a crash of the server. Generation of a conversation reply does not
 * stop when the client goes away; `/stop` stops it, from any tab or replica.
 */

export type MessageRole = 'system' | 'user' | 'assistant';
export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'failed';

/** Sampling settings: a conversation's overrides, the global defaults, a preset's (see docs/decisions/settings-and-presets.md). */
export interface ConversationSettings {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  /** 0 turns it off (llama.cpp's convention). */
  readonly topK?: number;
  readonly minP?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** llama.cpp's multiplicative penalty; 1 is off. */
  readonly repeatPenalty?: number;
  readonly seed?: number;
  readonly stop?: readonly string[];
}

export interface ConversationRecord {
  readonly id: string;
  readonly title: string;
  readonly model: string | null;
  readonly systemPrompt: string | null;
  readonly settings: ConversationSettings;
  readonly activeLeafId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface MessageToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON text, as the model wrote it. */
  readonly arguments: string;
  /** What the tool returned; `null` until there is a result. */
  readonly result: string | null;
}

/**
 * A file sent with a user message, stored with it (migration 0008): a text file or a document's text (`text`),
 * or an image as a `data:` URL (`image`, for models with the `images` capability). The model sees each text
 * file as a part of the message headed by its name (see `attachmentText` in src/core/attachments.ts).
 */
export type MessageAttachment =
  | { readonly type: 'text'; readonly name: string; readonly mediaType: string; readonly text: string }
  | { readonly type: 'image'; readonly name: string; readonly mediaType: string; readonly url: string };

export interface MessageRecord {
  readonly id: string;
  readonly conversationId: string;
  readonly parentId: string | null;
  readonly role: MessageRole;
  readonly content: string;
  readonly status: MessageStatus;
  readonly model: string | null;
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number } | null;
  readonly timings: { readonly firstTokenMs: number | null; readonly totalMs: number } | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  /** The model's reasoning; `''` when it gave none. */
  readonly reasoning: string;
  readonly toolCalls: readonly MessageToolCall[];
  /** Why generation ended (`stop`, `length`: cut at max tokens, `tool_calls`, `cancelled`, `error`); `null` while streaming. */
  readonly finishReason: string | null;
  /** Files sent with a user message, in order; empty when none (and always for replies). */
  readonly attachments: readonly MessageAttachment[];
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ConversationPage {
  readonly conversations: readonly ConversationRecord[];
  readonly nextCursor: string | null;
}

/** A short piece of a message around a match: plain text, and `[start, end)` UTF-16 offsets of the matched words in it. */
export interface SearchSnippet {
  readonly text: string;
  readonly highlights: readonly (readonly [number, number])[];
}

export interface SearchHit {
  readonly conversationId: string;
  readonly conversationTitle: string;
  readonly messageId: string;
  readonly role: MessageRole;
  readonly createdAt: number;
  readonly snippet: SearchSnippet;
}

export interface SearchPage {
  readonly hits: readonly SearchHit[];
  readonly nextCursor: string | null;
}

export interface ConversationTree {
  readonly conversation: ConversationRecord;
  readonly messages: readonly MessageRecord[];
  readonly activePath: readonly string[];
}

export interface ReplyStart {
  /** The user message just saved; absent on regenerate. */
  readonly userMessage?: MessageRecord;
  /** The assistant message, `streaming`, empty. */
  readonly assistantMessage: MessageRecord;
}

export interface ReplyDelta {
  readonly text: string;
}

export interface ReplyToolCalls {
  readonly toolCalls: readonly MessageToolCall[];
}

export { formatReplyCursor, parseReplyCursor, toolCallsSize, type ReplyCursor } from './reply-cursor.js';

export interface ReplyDone {
  /** The reply as stored at the end: `complete`, `stopped` or `failed` (with `error`). */
  readonly message: MessageRecord;
  /** The conversation after the reply (a generated title, a new `updatedAt`). */
  readonly conversation: ConversationRecord;
}

/** The bounds of every sampling setting, as the OpenAI dialect takes them (`src/protocol/openai.ts`). */
export const settingsSchema = z
  .object({
    maxTokens: z.number().int().min(1).max(1_048_576).optional(),
    temperature: z.number().min(0).max(2).optional(),
    topP: z.number().gt(0).max(1).optional(),
    topK: z.number().int().min(0).max(1_000_000).optional(),
    minP: z.number().min(0).max(1).optional(),
    presencePenalty: z.number().min(-2).max(2).optional(),
    frequencyPenalty: z.number().min(-2).max(2).optional(),
    repeatPenalty: z.number().gt(0).max(2).optional(),
    seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).optional(),
    stop: z.array(z.string().min(1).max(256)).max(4).optional(),
  })
  .strict();

/**
 * Control characters (C0, DEL, C1) and the bidirectional controls that can make a title read as something it
 * is not (U+202E turns the rest of the line around): a title is one line of plain text.
 */
const controlOrBidi = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** One line of plain text, 1 to `max` characters, not blank: a title, a preset's name. */
export function oneLineSchema(max: number, noun: string) {
  return z
    .string()
    .min(1)
    .max(max)
    .refine((text) => !controlOrBidi.test(text), { error: `${noun} may not contain control or bidirectional formatting characters` })
    .refine((text) => text.trim() !== '', { error: `${noun} may not be blank` });
}

export const titleSchema = oneLineSchema(200, 'a title');

const modelSchema = z.string().min(1).max(256);
export const systemPromptSchema = z.string().max(100_000);
export const idSchema = z.string().min(1).max(64);

export const newConversationBodySchema = z
  .object({
    title: titleSchema.optional(),
    model: modelSchema.nullable().optional(),
    systemPrompt: systemPromptSchema.nullable().optional(),
    settings: settingsSchema.optional(),
    /**
     * Starts from (or, in a PATCH, applies) a preset: its system prompt and settings are copied into the
     * conversation; `systemPrompt` and `settings` given beside it win over the preset's.
     */
    presetId: idSchema.optional(),
  })
  .strict();
export type NewConversationBody = z.infer<typeof newConversationBodySchema>;

export const conversationPatchBodySchema = newConversationBodySchema;
export type ConversationPatchBody = NewConversationBody;

/** The most files one message carries. */
export const ATTACHMENTS_MAX = 16;
/** The most characters of one attached text (a file, or a document's text). */
export const ATTACHMENT_TEXT_MAX_CHARS = 1_000_000;
/** The longest image `data:` URL (about 15 MB of image); the request's body limit (`--body-limit`) usually binds first. */
export const ATTACHMENT_IMAGE_MAX_CHARS = 20_000_000;

/** Image types models take (OpenAI's list); always as a base64 `data:` URL, so that the server never fetches anything. */
const imageDataUrl = z
  .string()
  .max(ATTACHMENT_IMAGE_MAX_CHARS)
  .regex(/^data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$/, { error: 'an image must be a base64 data: URL of a PNG, JPEG, GIF or WebP image' });
const attachmentName = z.string().min(1).max(255).refine((name) => !controlOrBidi.test(name), { error: 'a file name may not contain control or bidirectional formatting characters' });
const mediaType = z.string().min(1).max(255).regex(/^[\w.+-]+\/[\w.+-]+$/, { error: 'a media type such as text/plain' });

export const attachmentSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), name: attachmentName, mediaType, text: z.string().max(ATTACHMENT_TEXT_MAX_CHARS) }).strict(),
  z.object({ type: z.literal('image'), name: attachmentName, mediaType: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']), url: imageDataUrl }).strict(),
]);

export const sendMessageBodySchema = z
  .object({
    /** The typed text; may be empty when files are attached. */
    content: z.string().max(1_000_000),
    /** Files sent with the message, stored with it; see {@link MessageAttachment}. */
    attachments: z.array(attachmentSchema).max(ATTACHMENTS_MAX).optional(),
    /**
     * The message the new user message follows. Absent: the active leaf (a
     * normal turn). To edit a message and resend, pass the edited message's
     * `parentId` (`null` when it was the first): the new message becomes its
     * sibling, a new branch, and the old branch is kept.
     */
    parentId: z.string().min(1).max(64).nullable().optional(),
    /** Overrides the conversation's model for this reply. */
    model: z.string().min(1).max(256).optional(),
  })
  .strict()
  .refine((body) => body.content.trim() !== '' || (body.attachments?.length ?? 0) > 0, { error: 'a message needs text or an attached file', path: ['content'] });
export type SendMessageBody = z.infer<typeof sendMessageBodySchema>;

export const regenerateBodySchema = z.object({ model: z.string().min(1).max(256).optional() }).strict();
export type RegenerateBody = z.infer<typeof regenerateBodySchema>;

export const continueBodySchema = z.object({}).strict();

export const selectBranchBodySchema = z.object({ messageId: z.string().min(1).max(64) }).strict();
export type SelectBranchBody = z.infer<typeof selectBranchBodySchema>;

export const listConversationsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

/** Words to find in message text: letters and digits count, anything else only separates them; the last word is a prefix. */
export const searchQuerySchema = z.object({
  q: z.string().min(1).max(200),
  limit: z.coerce.number().int().min(1).max(50).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

/** Clocks of two machines may differ a little; a time further ahead than this is refused, not trusted. */
export const FUTURE_SKEW_MS = 5 * 60_000;

/** Epoch milliseconds, not in the future (a conversation updated "in 2001 years" would stay first in the list). */
const pastMillis = z
  .number()
  .int()
  .nonnegative()
  .refine((time) => time <= Date.now() + FUTURE_SKEW_MS, { error: 'a time in the future' });
const count = z.number().int().nonnegative();

/**
 * A conversation export as `POST /api/conversations/import` accepts it: the same limits as the API's own
 * bodies (titles, settings, models, system prompts, ids), so that nothing imported could not have been made
 * through the API. The store then checks the structure (one conversation, a tree, the active leaf among it).
 */
export const conversationExportSchema = z
  .object({
    format: z.literal('parlance.conversation'),
    version: z.literal(1),
    exportedAt: pastMillis,
    conversation: z
      .object({
        id: idSchema,
        title: titleSchema,
        model: modelSchema.nullable(),
        systemPrompt: systemPromptSchema.nullable(),
        settings: settingsSchema,
        activeLeafId: idSchema.nullable(),
        createdAt: pastMillis,
        updatedAt: pastMillis,
      })
      .strict(),
    messages: z.array(
      z
        .object({
          id: idSchema,
          conversationId: idSchema,
          parentId: idSchema.nullable(),
          role: z.enum(['system', 'user', 'assistant']),
          content: z.string().max(10_000_000),
          status: z.enum(['streaming', 'complete', 'stopped', 'failed']),
          model: modelSchema.nullable(),
          usage: z.object({ promptTokens: count, completionTokens: count }).strict().nullable(),
          timings: z.object({ firstTokenMs: count.nullable(), totalMs: count }).strict().nullable(),
          error: z.object({ code: z.string().min(1).max(100), message: z.string().max(10_000) }).strict().nullable(),
          // Absent in exports made before reasoning and tool calls were kept.
          reasoning: z.string().max(10_000_000).optional(),
          toolCalls: z
            .array(
              z
                .object({ id: idSchema, name: z.string().min(1).max(256), arguments: z.string().max(1_000_000), result: z.string().max(10_000_000).nullable() })
                .strict(),
            )
            .max(128)
            .optional(),
          finishReason: z.enum(['stop', 'length', 'tool_calls', 'cancelled', 'error']).nullable().optional(),
          // Absent in exports made before attachments were kept.
          attachments: z.array(attachmentSchema).max(ATTACHMENTS_MAX).optional(),
          createdAt: pastMillis,
          updatedAt: pastMillis,
        })
        .strict(),
    ),
  })
  .strict();
