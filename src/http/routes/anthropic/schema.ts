import { z } from 'zod';

/**
 * Anthropic's Messages API as Parlance accepts it (`POST /v1/messages`, `POST /v1/messages/count_tokens`).
 * Unknown fields are accepted (the SDK adds fields over time); known fields have Anthropic's documented
 * ranges and the same bounds as `/v1/chat/completions`. Fields that no engine here can honour (server tools,
 * MCP servers, documents) are refused with a 400 that names them, in `to-request.ts` or here.
 */

const cacheControl = z.object({ type: z.literal('ephemeral') }).loose().optional();

const textBlock = z.object({ type: z.literal('text'), text: z.string(), cache_control: cacheControl });

const imageSource = z.discriminatedUnion('type', [
  z.object({ type: z.literal('base64'), media_type: z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']), data: z.string().min(1) }),
  z.object({ type: z.literal('url'), url: z.url({ protocol: /^https?$/ }) }),
]);
const imageBlock = z.object({ type: z.literal('image'), source: imageSource, cache_control: cacheControl });

const toolUseBlock = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(128),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
});

const toolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1).max(256),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [textBlock, imageBlock], { error: 'a tool result holds text and image blocks' }))]).optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

const thinkingBlock = z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().optional() });
/** Another server's encrypted thinking: opaque here, so it is dropped from the prompt (no model here could read it). */
const redactedThinkingBlock = z.object({ type: z.literal('redacted_thinking'), data: z.string() });

const contentBlock = z.discriminatedUnion('type', [textBlock, imageBlock, toolUseBlock, toolResultBlock, thinkingBlock, redactedThinkingBlock], {
  error: 'must be a text, image, tool_use, tool_result, thinking or redacted_thinking block (documents and server tools are not supported here)',
});
export type ContentBlockIn = z.infer<typeof contentBlock>;

const messageParam = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(contentBlock).min(1)]),
});
export type MessageParam = z.infer<typeof messageParam>;

/** Anthropic's custom tool; its server tools (`web_search_…`, `bash_…`) have another `type` and are refused. */
const toolParam = z.object({
  type: z.literal('custom', { error: "only custom tools (no 'type', or 'custom') are supported: server tools run on Anthropic's servers" }).optional(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: 'a tool name is 1 to 64 letters, digits, _ or -' }),
  description: z.string().max(100_000).optional(),
  input_schema: z.object({ type: z.literal('object', { error: "input_schema.type must be 'object'" }) }).loose(),
  cache_control: cacheControl,
});

const toolChoice = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
    z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
    z.object({ type: z.literal('tool'), name: z.string().min(1).max(64), disable_parallel_tool_use: z.boolean().optional() }),
    z.object({ type: z.literal('none') }),
  ],
  { error: "tool_choice.type must be 'auto', 'any', 'tool' or 'none'" },
);

/** `display: "omitted"` (thinking withheld, only a signature sent) has no meaning here: thinking is plain text. */
const thinkingDisplay = z.literal('summarized', { error: "thinking.display 'omitted' is not supported here; leave it out" }).nullable().optional();

const thinking = z.discriminatedUnion(
  'type',
  [
    z.object({
      type: z.literal('enabled'),
      budget_tokens: z.number().int().min(1024, { error: 'budget_tokens must be at least 1024, as Anthropic requires' }),
      display: thinkingDisplay,
    }),
    z.object({ type: z.literal('disabled') }),
    /** The model decides whether to think (and, for `between_tools`, thinks between tool calls): its default. */
    z.object({ type: z.literal('adaptive'), display: thinkingDisplay }),
    z.object({ type: z.literal('between_tools') }),
  ],
  { error: "thinking.type must be 'enabled', 'disabled', 'adaptive' or 'between_tools'" },
);

const outputConfig = z.object({
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).nullable().optional(),
  format: z.object({ type: z.literal('json_schema', { error: "output_config.format.type must be 'json_schema'" }), schema: z.record(z.string(), z.unknown()) }).nullable().optional(),
});

const systemParam = z.union([z.string(), z.array(textBlock)]);

/** Same bound as OpenAI's `stop`: each string is matched against every token. */
const stopSequences = z.array(z.string().min(1).max(1024)).max(4, { error: 'at most 4 stop sequences' });

/** What `count_tokens` and `messages` share: the prompt. */
const promptFields = {
  model: z.string().min(1).max(256),
  messages: z.array(messageParam).min(1).max(4096),
  system: systemParam.optional(),
  tools: z.array(toolParam).max(128).optional(),
  tool_choice: toolChoice.optional(),
  thinking: thinking.optional(),
  output_config: outputConfig.optional(),
  /** Run by Anthropic's servers only; refused when non-empty. */
  mcp_servers: z.array(z.unknown()).max(0, { error: 'MCP servers are not supported here: connect tools on the client side' }).optional(),
};

export const messagesRequestSchema = z.object({
  ...promptFields,
  max_tokens: z.number({ error: 'must be given, as Anthropic requires: a whole number of tokens, at least 1' }).int().min(1),
  stop_sequences: stopSequences.optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().min(1).optional(),
  /** `user_id` is for Anthropic's abuse detection; it changes no output, so it is accepted. */
  metadata: z.object({ user_id: z.string().max(256).nullable().optional() }).loose().optional(),
  /** Which of Anthropic's capacity pools serves a request: there is one pool here, so either value is honoured. */
  service_tier: z.enum(['auto', 'standard_only']).optional(),
  container: z.null({ error: 'containers (code execution) are not supported here' }).optional(),
});
export type MessagesRequest = z.infer<typeof messagesRequestSchema>;

export const countTokensRequestSchema = z.object(promptFields);
export type CountTokensRequest = z.infer<typeof countTokensRequestSchema>;

/** The prompt part of either request, which `to-request.ts` maps. */
export type PromptRequest = CountTokensRequest;

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
}

export type ContentBlockOut =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlockOut[];
  stop_reason: StopReason;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}
