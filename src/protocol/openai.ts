import { z } from 'zod';

/**
 * The OpenAI wire shapes Parlance accepts and produces. Request schemas accept
 * the fields the official SDKs send and ignore unknown ones (SDKs add fields
 * over time); every numeric field has OpenAI's documented range.
 */

const textPart = z.object({ type: z.literal('text'), text: z.string() });

/** Message content: a string, or an array of text parts (joined). Images are not supported by our engines. */
const messageContent = z.union([z.string(), z.array(textPart).min(1)]);

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: messageContent.nullable(),
  name: z.string().max(256).optional(),
});

/** Up to 4 stop strings (OpenAI's limit), each at most 1,024 characters: every one is matched against every token. */
const stopString = z.string().min(1).max(1024);
const stopSchema = z.union([stopString, z.array(stopString).max(4)]).nullable().optional();

const sampling = {
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).nullable().optional(),
  stop: stopSchema,
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.literal(1, { error: 'only n=1 is supported' }).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  user: z.string().max(256).optional(),
};

export const chatCompletionRequestSchema = z.object({
  ...sampling,
  messages: z.array(chatMessageSchema).min(1).max(4096),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1, { error: 'only one prompt per request is supported' })]),
  echo: z.literal(false, { error: 'echo is not supported' }).nullable().optional(),
  suffix: z.null({ error: 'suffix is not supported' }).optional(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

export type OpenAIFinishReason = 'stop' | 'length';

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens served from the engine's cache rather than evaluated again. */
  prompt_tokens_details?: { cached_tokens: number };
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}
