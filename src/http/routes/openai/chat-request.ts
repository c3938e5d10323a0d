import type { ChatMessage, ContentPart, GenerationRequest, ReasoningOptions, ResponseFormat, SamplingOptions, ToolChoice, ToolDefinition } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { unsupportedChatFields, type ChatCompletionRequest, type ChatMessageIn, type CompletionRequest } from '../../../protocol/openai.js';

/**
 * OpenAI's chat request → the engine contract's request. Shapes were checked by the zod schema; what is
 * checked here is what spans fields (a named tool that is not in `tools`, `top_logprobs` without
 * `logprobs`). Whether the model can honour a field is the core's to decide (core/capabilities.ts).
 */

type TextContent = string | readonly { readonly type: 'text'; readonly text: string }[];

function textOf(content: TextContent | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text).join('');
}

function userMessage(content: Extract<ChatMessageIn, { role: 'user' }>['content']): ChatMessage {
  if (typeof content === 'string') return { role: 'user', content };
  const parts: ContentPart[] = content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : { type: 'image', url: part.image_url.url }));
  const text = parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
  return parts.some((part) => part.type === 'image') ? { role: 'user', content: text, parts } : { role: 'user', content: text };
}

export function toMessages(messages: readonly ChatMessageIn[]): ChatMessage[] {
  // Tool results name the function they answer, for templates that show it; the call's id says which.
  const callNames = new Map<string, string>();
  return messages.map((message): ChatMessage => {
    switch (message.role) {
      // OpenAI's newer `developer` role means what `system` means to a chat template.
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(message.content) };
      case 'user':
        return userMessage(message.content);
      case 'assistant': {
        const toolCalls = (message.tool_calls ?? []).map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments }));
        for (const call of toolCalls) callNames.set(call.id, call.name);
        return {
          role: 'assistant',
          content: textOf(message.content),
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
          ...(message.reasoning_content ? { reasoning: message.reasoning_content } : {}),
        };
      }
      case 'tool': {
        const name = callNames.get(message.tool_call_id);
        return { role: 'tool', content: textOf(message.content), toolCallId: message.tool_call_id, ...(name === undefined ? {} : { name }) };
      }
    }
  });
}

/** `logit_bias` keys are token ids written as decimal strings. */
function toLogitBias(bias: Readonly<Record<string, number>> | null | undefined): ReadonlyMap<number, number> | undefined {
  if (bias == null) return undefined;
  const entries = Object.entries(bias);
  return entries.length === 0 ? undefined : new Map(entries.map(([token, value]) => [Number(token), value]));
}

/** Sampling fields shared by chat and legacy completions, with OpenAI's nulls dropped. */
export function toSampling(body: ChatCompletionRequest | CompletionRequest, maxTokens: number | null | undefined): SamplingOptions {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const logitBias = toLogitBias(body.logit_bias);
  return {
    ...(maxTokens == null ? {} : { maxTokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.top_k == null ? {} : { topK: body.top_k }),
    ...(body.min_p == null ? {} : { minP: body.min_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stop === undefined ? {} : { stop }),
    ...(body.presence_penalty == null ? {} : { presencePenalty: body.presence_penalty }),
    ...(body.frequency_penalty == null ? {} : { frequencyPenalty: body.frequency_penalty }),
    ...(body.repeat_penalty == null ? {} : { repeatPenalty: body.repeat_penalty }),
    ...(logitBias === undefined ? {} : { logitBias }),
  };
}

function toTools(body: ChatCompletionRequest): ToolDefinition[] | undefined {
  if (body.tools == null || body.tools.length === 0) return undefined;
  const seen = new Set<string>();
  return body.tools.map(({ function: fn }, index) => {
    if (seen.has(fn.name)) throw new ParlanceError('invalid_request', `'tools[${index}].function.name': a tool named '${fn.name}' is already defined.`, { param: `tools[${index}].function.name` });
    seen.add(fn.name);
    return {
      name: fn.name,
      ...(fn.description === undefined ? {} : { description: fn.description }),
      ...(fn.parameters === undefined ? {} : { parameters: fn.parameters }),
      ...(fn.strict == null ? {} : { strict: fn.strict }),
    };
  });
}

function toToolChoice(body: ChatCompletionRequest, tools: readonly ToolDefinition[] | undefined): ToolChoice | undefined {
  const choice = body.tool_choice;
  if (choice == null) return undefined;
  if (choice === 'auto' || choice === 'none') return choice;
  if (tools === undefined) throw new ParlanceError('invalid_request', "'tool_choice' asks for a tool call, but 'tools' lists none.", { param: 'tool_choice' });
  if (choice === 'required') return choice;
  const name = choice.function.name;
  if (!tools.some((tool) => tool.name === name)) {
    throw new ParlanceError('invalid_request', `'tool_choice.function.name': no tool named '${name}' in 'tools'.`, { param: 'tool_choice.function.name' });
  }
  return { name };
}

function toResponseFormat(format: ChatCompletionRequest['response_format']): ResponseFormat | undefined {
  if (format == null || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const { name, schema, strict } = format.json_schema;
  // No schema means any JSON object, which is what json_object asks for.
  if (schema === undefined) return { type: 'json_object' };
  return { type: 'json_schema', name, schema, ...(strict == null ? {} : { strict }) };
}

function toReasoning(effort: ChatCompletionRequest['reasoning_effort']): ReasoningOptions | undefined {
  if (effort == null) return undefined;
  return effort === 'none' ? { enabled: false } : { effort };
}

export function toChatGenerationRequest(body: ChatCompletionRequest): GenerationRequest {
  for (const field of unsupportedChatFields) {
    if (body[field] != null) throw new ParlanceError('unsupported_parameter', `'${field}' is not supported by Parlance; leave it out.`, { param: field });
  }
  if (body.top_logprobs != null && body.logprobs !== true) {
    throw new ParlanceError('invalid_request', "'top_logprobs' needs 'logprobs': true.", { param: 'top_logprobs' });
  }
  const tools = toTools(body);
  const toolChoice = toToolChoice(body, tools);
  const responseFormat = toResponseFormat(body.response_format);
  const reasoning = toReasoning(body.reasoning_effort);
  const sampling = toSampling(body, body.max_completion_tokens ?? body.max_tokens);
  return {
    model: body.model,
    input: { kind: 'chat', messages: toMessages(body.messages) },
    sampling: body.logprobs === true ? { ...sampling, logprobs: { topLogprobs: body.top_logprobs ?? 0 } } : sampling,
    ...(tools === undefined ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(body.parallel_tool_calls == null || tools === undefined ? {} : { parallelToolCalls: body.parallel_tool_calls }),
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(reasoning === undefined ? {} : { reasoning }),
  };
}

/** The legacy API: raw text, the sampling set, and its integer `logprobs`. */
export function toCompletionGenerationRequest(body: CompletionRequest): GenerationRequest {
  const prompt = typeof body.prompt === 'string' ? body.prompt : (body.prompt[0] ?? '');
  const sampling = toSampling(body, body.max_tokens ?? 16);
  return {
    model: body.model,
    input: { kind: 'text', prompt },
    sampling: body.logprobs == null ? sampling : { ...sampling, logprobs: { topLogprobs: body.logprobs } },
  };
}
