import type { CapabilityParams } from '../../../core/capabilities.js';
import type { ChatMessage, ContentPart, GenerationRequest, ModelInfo, ReasoningOptions, ToolCall, ToolChoice, ToolDefinition } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import type { ContentBlockIn, MessageParam, MessagesRequest, PromptRequest } from './schema.js';

/** The Anthropic field behind each capability of a request, for the 400 that refuses it. */
export function anthropicParams(body: PromptRequest): CapabilityParams {
  return {
    tools: 'tools',
    tool_choice: 'tool_choice',
    parallel_tool_calls: 'tool_choice.disable_parallel_tool_use',
    reasoning_effort: body.thinking === undefined && body.output_config?.effort != null ? 'output_config.effort' : 'thinking',
    json_schema: 'output_config.format',
    images: 'messages',
    top_k: 'top_k',
  };
}

type ImageBlock = Extract<ContentBlockIn, { type: 'image' }>;

function imageUrl(block: ImageBlock): string {
  return block.source.type === 'base64' ? `data:${block.source.media_type};base64,${block.source.data}` : block.source.url;
}

function toolResultText(block: Extract<ContentBlockIn, { type: 'tool_result' }>, where: string): string {
  const content = block.content ?? '';
  let text: string;
  if (typeof content === 'string') {
    text = content;
  } else {
    // The contract's tool message is text: an image returned by a tool has nowhere to go.
    if (content.some((part) => part.type === 'image')) throw new ParlanceError('unsupported_parameter', `${where}: images in a tool result are not supported; return text.`, { param: where });
    text = content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
  }
  // The contract has no error flag on a tool result: the model reads it in the text, so it is not lost.
  return block.is_error === true ? `Error: ${text}` : text;
}

/** One Anthropic message, which may hold several of the contract's (tool results become `tool` messages). */
function toMessages(message: MessageParam, index: number, toolNames: Map<string, string>): ChatMessage[] {
  if (typeof message.content === 'string') return [{ role: message.role, content: message.content }];
  const blocks = message.content;
  const where = (j: number): string => `messages[${index}].content[${j}]`;
  if (message.role === 'assistant') {
    const text: string[] = [];
    const reasoning: string[] = [];
    const toolCalls: ToolCall[] = [];
    blocks.forEach((block, j) => {
      if (block.type === 'text') text.push(block.text);
      else if (block.type === 'thinking') reasoning.push(block.thinking);
      else if (block.type === 'tool_use') {
        toolNames.set(block.id, block.name);
        toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
      } else if (block.type !== 'redacted_thinking') {
        throw new ParlanceError('invalid_request', `${where(j)}: an assistant message cannot hold a ${block.type} block.`, { param: where(j) });
      }
    });
    return [
      {
        role: 'assistant',
        content: text.join(''),
        ...(reasoning.length > 0 ? { reasoning: reasoning.join('') } : {}),
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
      },
    ];
  }
  const out: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  blocks.forEach((block, j) => {
    if (block.type === 'tool_result') {
      const name = toolNames.get(block.tool_use_id);
      out.push({ role: 'tool', toolCallId: block.tool_use_id, content: toolResultText(block, where(j)), ...(name === undefined ? {} : { name }) });
    } else if (block.type === 'text') {
      parts.push({ type: 'text', text: block.text });
    } else if (block.type === 'image') {
      parts.push({ type: 'image', url: imageUrl(block) });
    } else {
      throw new ParlanceError('invalid_request', `${where(j)}: a user message cannot hold a ${block.type} block.`, { param: where(j) });
    }
  });
  if (parts.length > 0) {
    const content = parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
    out.push(parts.some((part) => part.type === 'image') ? { role: 'user', content, parts } : { role: 'user', content });
  }
  return out;
}

function toToolChoice(choice: NonNullable<PromptRequest['tool_choice']>): ToolChoice {
  if (choice.type === 'auto') return 'auto';
  if (choice.type === 'none') return 'none';
  if (choice.type === 'any') return 'required';
  return { name: choice.name };
}

/**
 * Anthropic's thinking as the contract's reasoning. `disabled` asks a reasoning model not to think; a model that
 * never reasons honours it as it is, so it is only passed on to models that do.
 */
function toReasoning(body: PromptRequest, model: ModelInfo | undefined): ReasoningOptions | undefined {
  const thinking = body.thinking;
  // Anthropic's two highest efforts have no rung of their own in the contract: they ask for the most there is.
  const level = body.output_config?.effort;
  const effort = level == null ? {} : { effort: level === 'xhigh' || level === 'max' ? ('high' as const) : level };
  if (thinking?.type === 'enabled') return { enabled: true, budgetTokens: thinking.budget_tokens, ...effort };
  if (thinking?.type === 'disabled') return model?.capabilities.has('reasoning') === true ? { enabled: false } : undefined;
  // adaptive, between_tools or absent: the model's default, at the effort asked for.
  return level == null ? undefined : effort;
}

/** Parses the prompt of a Messages or count_tokens request into the core's request. */
export function toGenerationRequest(body: PromptRequest, model: ModelInfo | undefined, sampling: GenerationRequest['sampling'] = {}): GenerationRequest {
  const messages: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === 'string' ? body.system : body.system.map((block) => block.text).join('\n');
    if (system !== '') messages.push({ role: 'system', content: system });
  }
  const toolNames = new Map<string, string>();
  body.messages.forEach((message, index) => messages.push(...toMessages(message, index, toolNames)));
  const tools: ToolDefinition[] | undefined = body.tools?.map((tool) => ({
    name: tool.name,
    ...(tool.description === undefined ? {} : { description: tool.description }),
    parameters: tool.input_schema,
  }));
  const choice = body.tool_choice;
  if (choice !== undefined && choice.type !== 'auto' && choice.type !== 'none' && (tools === undefined || tools.length === 0)) {
    throw new ParlanceError('invalid_request', `tool_choice '${choice.type}' needs tools.`, { param: 'tool_choice' });
  }
  if (choice?.type === 'tool' && !tools?.some((tool) => tool.name === choice.name)) {
    throw new ParlanceError('invalid_request', `tool_choice names the tool '${choice.name}', which is not in tools.`, { param: 'tool_choice.name' });
  }
  const reasoning = toReasoning(body, model);
  const schema = body.output_config?.format?.schema;
  return {
    model: body.model,
    input: { kind: 'chat', messages },
    sampling,
    ...(tools === undefined || tools.length === 0 ? {} : { tools }),
    ...(choice === undefined ? {} : { toolChoice: toToolChoice(choice) }),
    ...(choice !== undefined && choice.type !== 'none' && choice.disable_parallel_tool_use === true ? { parallelToolCalls: false } : {}),
    ...(reasoning === undefined ? {} : { reasoning }),
    ...(schema == null ? {} : { responseFormat: { type: 'json_schema' as const, name: 'output', schema, strict: true } }),
  };
}

export function toSampling(body: MessagesRequest): GenerationRequest['sampling'] {
  if (body.thinking?.type === 'enabled' && body.thinking.budget_tokens >= body.max_tokens) {
    throw new ParlanceError('invalid_request', 'thinking.budget_tokens must be less than max_tokens.', { param: 'thinking.budget_tokens' });
  }
  return {
    maxTokens: body.max_tokens,
    ...(body.temperature === undefined ? {} : { temperature: body.temperature }),
    ...(body.top_p === undefined ? {} : { topP: body.top_p }),
    ...(body.top_k === undefined ? {} : { topK: body.top_k }),
    ...(body.stop_sequences === undefined || body.stop_sequences.length === 0 ? {} : { stop: body.stop_sequences }),
  };
}
