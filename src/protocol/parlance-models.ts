import { z } from 'zod';
import { attachmentSchema, ATTACHMENTS_MAX } from './conversations.js';

/**
 * Parlance's own view of its models and their prompts (`/parlance/api/models`, `/parlance/api/tokenize`): what
 * OpenAI's `/v1/models` shape has no room for, for the chat page and any client that wants it.
 *
 *   GET  /parlance/api/models                  → ModelList
 *   POST /parlance/api/tokenize  TokenizeBody  → TokenCount
 */

/** One served model: what a request may ask of it, and how long a prompt it takes. */
export interface ModelSummary {
  readonly id: string;
  readonly ownedBy: string;
  /** Tokens of context per request, when the engine knows it; `null` when not (an upstream that does not say). */
  readonly contextLength: number | null;
  /** The engine's capabilities for it (`images`, `tools`, `json_schema`, …), sorted. */
  readonly capabilities: readonly string[];
  /** Whether `/parlance/api/tokenize` counts its prompts with its own tokenizer (else it estimates). */
  readonly countsTokens: boolean;
}

export interface ModelList {
  /** The model a conversation without one uses. */
  readonly defaultModel: string | null;
  /** The largest request body this server takes, in bytes (`--body-limit`): a message and its files must fit. */
  readonly requestBodyBytes: number;
  readonly models: readonly ModelSummary[];
}

/** The most characters of text (all messages' text and attached text together) one tokenize request counts. */
export const TOKENIZE_MAX_CHARS = 4_000_000;

const tokenizeMessageSchema = z
  .object({
    role: z.enum(['system', 'user', 'assistant']),
    content: z.string().max(TOKENIZE_MAX_CHARS),
    /** Text files of a user message, counted as the model is shown them; images are not counted (see `imagesNotCounted`). */
    attachments: z.array(attachmentSchema).max(ATTACHMENTS_MAX).optional(),
  })
  .strict();
export type TokenizeMessage = z.infer<typeof tokenizeMessageSchema>;

/**
 * What to count: `text` (raw, no template) or `messages` (a chat, through the model's chat template). With
 * `conversationId`, the active branch of that conversation (its system prompt first) comes before `messages`:
 * the chat page counts a draft that way without sending the history back.
 */
export const tokenizeBodySchema = z
  .object({
    /** Absent: the conversation's model, else the server's default. */
    model: z.string().min(1).max(256).optional(),
    text: z.string().max(TOKENIZE_MAX_CHARS).optional(),
    messages: z.array(tokenizeMessageSchema).max(1000).optional(),
    conversationId: z.string().min(1).max(64).optional(),
  })
  .strict()
  .refine((body) => (body.text === undefined) !== (body.messages === undefined), { error: 'give either text or messages', path: ['messages'] })
  .refine((body) => body.text === undefined || body.conversationId === undefined, { error: 'conversationId goes with messages, not text', path: ['conversationId'] });
export type TokenizeBody = z.infer<typeof tokenizeBodySchema>;

export interface TokenCount {
  readonly model: string;
  readonly tokens: number;
  /**
   * `true`: counted by the model's own tokenizer and chat template, what a generation's prompt takes. `false`:
   * the engine cannot count (an upstream relay), and `tokens` is an estimate from the text's length.
   */
  readonly exact: boolean;
  readonly contextLength: number | null;
  /**
   * Images in what was counted (the conversation's history and the messages given) that `tokens` leaves out: no
   * engine here can say what an image costs the model. A count with images in it is short by that much.
   */
  readonly imagesNotCounted: number;
}
