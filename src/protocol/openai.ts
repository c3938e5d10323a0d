import { z } from 'zod';

/**
 * The OpenAI wire shapes Parlance accepts and produces. Request schemas accept
 * the fields the official SDKs send and ignore unknown ones (SDKs add fields
 * over time); every numeric field has OpenAI's documented range. A known field
 * that an engine cannot honour is accepted here and refused later, by the
 * model's capabilities, with `unsupported_parameter`.
 */

const textPart = z.object({ type: z.literal('text'), text: z.string() }).describe('A text part.');

/** A `data:` URL or an http(s) URL; the engine that can see images reads it (llama.cpp, or the upstream). */
const imageUrl = z.string().refine((url) => /^data:image\/[\w.+-]+;base64,/i.test(url) || /^https?:\/\/\S+$/i.test(url), 'must be a data:image/…;base64 URL or an http(s) URL');

const imagePart = z
  .object({
    type: z.literal('image_url'),
    image_url: z.object({ url: imageUrl, detail: z.enum(['auto', 'low', 'high']).optional() }),
  })
  .describe('An image; refused with unsupported_parameter when the model cannot see.');

/** Text only: a string, or text parts (joined). */
const textContent = z.union([z.string(), z.array(textPart).min(1)]);
/** A user may also send images. */
const userContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [textPart, imagePart])).min(1)]);

/** OpenAI's rule for function names; every template that renders tools copes with it. */
const functionName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes');

/** A JSON Schema object; its keywords are checked by the engine that enforces it. */
const jsonSchemaObject = z.record(z.string(), z.unknown());

export const toolCallSchema = z.object({
  id: z.string().min(1).max(256),
  type: z.literal('function'),
  function: z.object({ name: functionName, arguments: z.string() }),
});

const systemMessage = z.object({ role: z.enum(['system', 'developer']), content: textContent, name: z.string().max(256).optional() });
const userMessage = z.object({ role: z.literal('user'), content: userContent, name: z.string().max(256).optional() });
const assistantMessage = z.object({
  role: z.literal('assistant'),
  /** null (or absent) when the turn was only tool calls. */
  content: textContent.nullable().optional(),
  name: z.string().max(256).optional(),
  refusal: z.string().nullable().optional(),
  tool_calls: z.array(toolCallSchema).max(128).optional(),
  /** The thinking of an earlier turn, as reasoning servers return it; templates that show it use it. */
  reasoning_content: z.string().nullable().optional(),
});
const toolMessage = z.object({ role: z.literal('tool'), content: textContent, tool_call_id: z.string().min(1).max(256) });

export const chatMessageSchema = z.discriminatedUnion('role', [systemMessage, userMessage, assistantMessage, toolMessage]);
export type ChatMessageIn = z.infer<typeof chatMessageSchema>;

export const functionToolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: functionName,
    description: z.string().max(65_536).optional(),
    parameters: jsonSchemaObject.optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

export const toolChoiceSchema = z.union([z.enum(['auto', 'none', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: functionName }) })]);

export const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes'),
      description: z.string().optional(),
      /** Absent: any JSON object. */
      schema: jsonSchemaObject.optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

/** Up to 4 stop strings (OpenAI's limit), each at most 1,024 characters: every one is matched against every token. */
const stopString = z.string().min(1).max(1024);
const stopSchema = z.union([stopString, z.array(stopString).max(4)]).nullable().optional();

/** Token id (as OpenAI writes it, a decimal string) → bias, -100..100. */
const logitBiasSchema = z
  .record(z.string().regex(/^\d{1,9}$/, 'must be token ids (decimal strings)'), z.number().min(-100).max(100))
  .refine((bias) => Object.keys(bias).length <= 1024, 'may hold at most 1024 tokens')
  .nullable()
  .optional();

const sampling = {
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  /** llama.cpp's and vLLM's extension: 0 (llama.cpp) or -1 (vLLM) turns it off. */
  top_k: z.number().int().min(-1).max(1_000_000).nullable().optional(),
  min_p: z.number().min(0).max(1).nullable().optional(),
  /** llama.cpp's multiplicative penalty; 1 is off. */
  repeat_penalty: z.number().gt(0).max(2).nullable().optional(),
  seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).nullable().optional(),
  stop: stopSchema,
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.literal(1, { error: 'only n=1 is supported' }).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: logitBiasSchema,
  user: z.string().max(256).optional(),
};

/**
 * OpenAI fields that would change the answer and that no engine here produces: refused with
 * `unsupported_parameter` when set, rather than dropped with the unknown fields.
 */
export const unsupportedChatFields = ['audio', 'prediction', 'web_search_options', 'verbosity', 'functions', 'function_call'] as const;

export const chatCompletionRequestSchema = z.object({
  ...sampling,
  messages: z.array(chatMessageSchema).min(1).max(4096),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  tools: z.array(functionToolSchema).max(128).nullable().optional().describe('Functions the model may call; needs a model with the `tools` capability.'),
  tool_choice: toolChoiceSchema.nullable().optional().describe('`auto` (default with tools), `none`, `required`, or a named function from `tools`.'),
  parallel_tool_calls: z.boolean().nullable().optional().describe('`false`: at most one call per reply.'),
  response_format: responseFormatSchema.nullable().optional().describe('`text`, `json_object`, or `json_schema` (the reply validates against `schema`).'),
  /** `none` asks the model not to think; the others set the template's effort. */
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high']).nullable().optional(),
  logprobs: z.boolean().nullable().optional().describe('Return log-probabilities of the generated tokens.'),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  /** Only text comes out of these engines. */
  modalities: z.array(z.literal('text', { error: "only 'text' is supported" })).nullable().optional(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
  verbosity: z.unknown().optional(),
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
}).describe(
  'An OpenAI chat completion request. Unknown fields are accepted and ignored, as OpenAI SDKs expect; a known field the model cannot honour is refused with 400 unsupported_parameter (docs/openai-api.md).',
);
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1, { error: 'only one prompt per request is supported' })]),
  echo: z.literal(false, { error: 'echo is not supported' }).nullable().optional(),
  suffix: z.null({ error: 'suffix is not supported' }).optional(),
  /** The legacy API's spelling: how many alternatives per position (0..5). */
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
}).describe('A legacy completion request. Unknown fields are accepted and ignored (docs/openai-api.md).');
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls';

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens served from the engine's cache rather than evaluated again. */
  prompt_tokens_details?: { cached_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number };
}

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One position of `choices[].logprobs.content` (chat). */
export interface OpenAITokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** `choices[].logprobs` of the legacy completions API. */
export interface OpenAILegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** Parlance's: where a local model is (`loaded`, `loading`, `on disk`, `failed`); absent for a model always ready. */
  state?: 'loaded' | 'loading' | 'on disk' | 'failed';
  /** Parlance's: why it failed to load, naming the file. */
  load_error?: string;
  /** Parlance's: how much of the file is read, 0 to 1, while `state` is `loading`. */
  load_progress?: number;
}
