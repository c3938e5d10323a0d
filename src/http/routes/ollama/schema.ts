import { z } from 'zod';

/**
 * Ollama's API as Parlance accepts it (`/api/chat`, `/api/generate`, `/api/embed`, `/api/show`). Unknown
 * fields are accepted, as ollama-js adds some over time. Every option that changes the output is honoured or
 * refused by name; the load-time hints (threads, GPU layers, mmap) change no output and are accepted, since
 * the server's own configuration decides them.
 */

/** A value that only its neutral setting may take (Ollama's defaults, which leave sampling as it is). */
const neutralOnly = <T extends number | boolean>(value: T, name: string) =>
  z.literal(value, { error: `options.${name} is not supported here; leave it out (or at its neutral value ${String(value)})` }).optional();

export const optionsSchema = z
  .object({
    /** -1: until the model stops; -2: until the context is full. Both leave the engine's own bound in force. */
    num_predict: z
      .number()
      .int()
      .min(-2)
      .refine((value) => value !== 0, { error: 'options.num_predict must be -1, -2 or at least 1' })
      .optional(),
    num_ctx: z.number().int().min(1).optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_k: z.number().int().min(1).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    min_p: z.number().min(0).max(1).optional(),
    seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).optional(),
    stop: z.array(z.string().min(1).max(1024)).max(4, { error: 'options.stop holds at most 4 strings' }).optional(),
    repeat_penalty: z.number().gt(0).max(10).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    // Sampling options no engine here has: refused unless neutral.
    typical_p: neutralOnly(1, 'typical_p'),
    tfs_z: neutralOnly(1, 'tfs_z'),
    mirostat: neutralOnly(0, 'mirostat'),
    mirostat_tau: z.number().optional(),
    mirostat_eta: z.number().optional(),
    /** Only read with a repeat penalty; the penalty looks back over llama.cpp's default of 64 tokens. */
    repeat_last_n: neutralOnly(64, 'repeat_last_n'),
    // Accepted: num_keep only matters when the context shifts (a prompt that does not fit is refused here),
    // penalize_newline is one Ollama itself no longer reads, and the rest are load-time hints.
  })
  .loose();
export type OllamaOptions = z.infer<typeof optionsSchema>;

/** `"json"`, a JSON schema, or `""` for free text. */
const format = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())], { error: "format must be \"json\" or a JSON schema object" });
const think = z.union([z.boolean(), z.enum(['low', 'medium', 'high'])], { error: 'think must be true, false, "low", "medium" or "high"' });
/** Models stay loaded here for as long as the server runs: any keep_alive is honoured by that. */
const keepAlive = z.union([z.string().max(64), z.number()]).optional();
/** Base64 images (ollama-js encodes bytes before sending). */
const images = z.array(z.string().min(1)).max(16).optional();

const streamed = {
  stream: z.boolean().optional(),
  format: format.optional(),
  think: think.optional(),
  keep_alive: keepAlive,
  options: optionsSchema.optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
};

const toolCallIn = z.object({
  id: z.string().max(256).optional(),
  function: z.object({ name: z.string().min(1).max(128), arguments: z.record(z.string(), z.unknown()).default({}) }),
});

const messageIn = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string().default(''),
  thinking: z.string().optional(),
  images,
  tool_calls: z.array(toolCallIn).max(128).optional(),
  /** The tool a `tool` message answers. */
  tool_name: z.string().max(128).optional(),
  tool_call_id: z.string().max(256).optional(),
});
export type OllamaMessageIn = z.infer<typeof messageIn>;

const toolIn = z.object({
  type: z.literal('function', { error: "a tool's type must be 'function'" }).default('function'),
  function: z.object({
    name: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, { error: 'a tool name is 1 to 64 letters, digits, _, . or -' }),
    description: z.string().max(100_000).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const chatRequestSchema = z.object({
  model: z.string().min(1).max(256),
  /** Empty (or absent): only load the model, as Ollama does, and answer `done_reason: "load"`. */
  messages: z.array(messageIn).max(4096).default([]),
  tools: z.array(toolIn).max(128).optional(),
  ...streamed,
});
export type OllamaChatRequest = z.infer<typeof chatRequestSchema>;

const refused = (name: string, why: string) => z.undefined({ error: `${name} is not supported here: ${why}` }).optional();

export const generateRequestSchema = z.object({
  model: z.string().min(1).max(256),
  prompt: z.string().default(''),
  system: z.string().optional(),
  /** true: the prompt goes to the model as it is, no chat template. */
  raw: z.boolean().optional(),
  images,
  suffix: z.literal('', { error: 'suffix (fill-in-the-middle) is not supported here' }).optional(),
  template: z.literal('', { error: "template is not supported here: the model's own chat template is used (or raw: true for none)" }).optional(),
  context: z.array(z.number()).max(0, { error: 'context (token state from an earlier answer) is not supported here: send the conversation to /api/chat' }).optional(),
  width: refused('width', 'image generation'),
  height: refused('height', 'image generation'),
  steps: refused('steps', 'image generation'),
  ...streamed,
});
export type OllamaGenerateRequest = z.infer<typeof generateRequestSchema>;

export const showRequestSchema = z
  .object({
    model: z.string().min(1).max(256).optional(),
    /** The older spelling of `model`. */
    name: z.string().min(1).max(256).optional(),
    verbose: z.boolean().optional(),
  })
  .refine((body) => body.model !== undefined || body.name !== undefined, { error: 'model is required', path: ['model'] });

export const embedRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.string()).min(1).max(2048)]),
  /** Inputs over the context are refused here, never cut: only `false` (Ollama's error) can be honoured. */
  truncate: z.literal(false, { error: 'truncate: true is not supported here: inputs longer than the context are refused, never cut' }).optional(),
  dimensions: z.number().int().min(1).optional(),
  keep_alive: keepAlive,
  options: optionsSchema.optional(),
});
export type OllamaEmbedRequest = z.infer<typeof embedRequestSchema>;

export interface OllamaToolCallOut {
  function: { name: string; arguments: Record<string, unknown> };
}

export interface OllamaErrorBody {
  error: string;
}
