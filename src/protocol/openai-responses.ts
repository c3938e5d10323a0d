import { z } from 'zod';

/**
 * The OpenAI Responses API (`POST /v1/responses`) as Parlance accepts it. Fields the SDKs send that change
 * nothing here (`service_tier`, `prompt_cache_key`, `safety_identifier`, `stream_options`) are accepted and
 * ignored, as unknown fields are; fields that would change the answer are honoured or refused by name.
 */

const inputText = z.object({ type: z.literal('input_text'), text: z.string() });
const outputText = z.object({ type: z.literal('output_text'), text: z.string() });
const refusal = z.object({ type: z.literal('refusal'), refusal: z.string() });
const inputImage = z.object({
  type: z.literal('input_image'),
  image_url: z.string().max(20 * 1024 * 1024).nullish(),
  file_id: z.string().nullish(),
  detail: z.enum(['low', 'high', 'auto']).optional(),
});
/** Files are not read here; the part parses so that the answer can name it. */
const inputFile = z.object({ type: z.literal('input_file') }).loose();
const contentPart = z.union([inputText, outputText, refusal, inputImage, inputFile]);

export const messageItemSchema = z.object({
  type: z.literal('message').optional(),
  id: z.string().max(256).optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(contentPart).max(1024)]),
  status: z.string().optional(),
});

export const functionCallItemSchema = z.object({
  type: z.literal('function_call'),
  id: z.string().max(256).optional(),
  call_id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  arguments: z.string(),
  status: z.string().optional(),
});

export const functionCallOutputItemSchema = z.object({
  type: z.literal('function_call_output'),
  id: z.string().max(256).optional(),
  call_id: z.string().min(1).max(256),
  output: z.union([z.string(), z.array(z.union([inputText, outputText])).max(1024)]),
  status: z.string().optional(),
});

export const reasoningItemSchema = z.object({
  type: z.literal('reasoning'),
  id: z.string().max(256).optional(),
  summary: z.array(z.object({ type: z.literal('summary_text'), text: z.string() })).max(1024).default([]),
  content: z.array(z.object({ type: z.literal('reasoning_text'), text: z.string() })).max(1024).optional(),
  encrypted_content: z.string().nullish(),
  status: z.string().optional(),
});

export const itemReferenceSchema = z.object({ type: z.literal('item_reference'), id: z.string().min(1).max(256) });

export const inputItemSchema = z.union([messageItemSchema, functionCallItemSchema, functionCallOutputItemSchema, reasoningItemSchema, itemReferenceSchema]);
export type InputItem = z.infer<typeof inputItemSchema>;
/** The items Parlance keeps and continues from: every input item but a reference. */
export type ConversationItem = Exclude<InputItem, z.infer<typeof itemReferenceSchema>>;
export const conversationItemSchema = z.union([messageItemSchema, functionCallItemSchema, functionCallOutputItemSchema, reasoningItemSchema]);

export const functionToolSchema = z.object({
  type: z.literal('function'),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: 'a function name is 1 to 64 letters, digits, _ or -' }),
  description: z.string().max(16_384).nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
export type FunctionTool = z.infer<typeof functionToolSchema>;
/** Hosted tools (web search, file search, …) are OpenAI's own services; the tool parses so that the answer can name it. */
const otherTool = z.object({ type: z.string() }).loose();

const textFormat = z.union([
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
    strict: z.boolean().nullish(),
  }),
]);

export const responsesRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(inputItemSchema).max(4096)]).optional(),
  instructions: z.string().nullish(),
  previous_response_id: z.string().max(256).nullish(),
  tools: z.array(z.union([functionToolSchema, otherTool])).max(128).optional(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), name: z.string() }), z.object({ type: z.string() }).loose()])
    .optional(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.object({ format: textFormat.optional(), verbosity: z.enum(['low', 'medium', 'high']).nullish() }).optional(),
  reasoning: z.object({ effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(), summary: z.enum(['auto', 'concise', 'detailed']).nullish() }).nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  store: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
  user: z.string().max(256).optional(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  include: z.array(z.string()).nullish(),
  background: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  max_tool_calls: z.number().int().min(1).nullish(),
});
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;
