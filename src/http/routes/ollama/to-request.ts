import type { CapabilityParams } from '../../../core/capabilities.js';
import type { ChatMessage, ContentPart, GenerationInput, GenerationRequest, ModelInfo, ReasoningOptions, ResponseFormat, SamplingOptions, ToolCall, ToolDefinition } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import type { OllamaChatRequest, OllamaGenerateRequest, OllamaMessageIn, OllamaOptions } from './schema.js';

/** The Ollama field behind each capability, for the 400 that refuses it. */
export const ollamaParams: CapabilityParams = {
  tools: 'tools',
  json_object: 'format',
  json_schema: 'format',
  reasoning_effort: 'think',
  images: 'images',
  top_k: 'options.top_k',
  min_p: 'options.min_p',
  seed: 'options.seed',
  presence_penalty: 'options.presence_penalty',
  frequency_penalty: 'options.frequency_penalty',
  repeat_penalty: 'options.repeat_penalty',
  logprobs: 'logprobs',
};

/** Ollama sends images as bare base64; the contract takes URLs. The bytes' type is sniffed from their magic number. */
function imagePart(base64: string): ContentPart {
  const type = base64.startsWith('iVBOR') ? 'image/png' : base64.startsWith('R0lG') ? 'image/gif' : base64.startsWith('UklG') ? 'image/webp' : 'image/jpeg';
  return { type: 'image', url: `data:${type};base64,${base64}` };
}

function userMessage(content: string, images: readonly string[] | undefined): ChatMessage {
  if (images === undefined || images.length === 0) return { role: 'user', content };
  return { role: 'user', content, parts: [{ type: 'text', text: content }, ...images.map(imagePart)] };
}

/**
 * Ollama's messages as the contract's. Ollama's tool calls carry no ids, and its tool messages name the tool
 * (`tool_name`), not the call: each call is given an id, and each tool message answers the first unanswered
 * call of its tool (or, without a name, the first unanswered call).
 */
function toMessages(messages: readonly OllamaMessageIn[]): ChatMessage[] {
  const unanswered: ToolCall[] = [];
  return messages.map((message, index): ChatMessage => {
    if (message.images !== undefined && message.images.length > 0 && message.role !== 'user') {
      throw new ParlanceError('invalid_request', `messages[${index}].images: only user messages can hold images.`, { param: `messages[${index}].images` });
    }
    if (message.role === 'system') return { role: 'system', content: message.content };
    if (message.role === 'user') return userMessage(message.content, message.images);
    if (message.role === 'assistant') {
      const toolCalls = (message.tool_calls ?? []).map((call, j): ToolCall => ({ id: call.id ?? `call_${index}_${j}`, name: call.function.name, arguments: JSON.stringify(call.function.arguments) }));
      unanswered.push(...toolCalls);
      return {
        role: 'assistant',
        content: message.content,
        ...(message.thinking === undefined || message.thinking === '' ? {} : { reasoning: message.thinking }),
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
      };
    }
    const at = unanswered.findIndex((call) => (message.tool_call_id !== undefined ? call.id === message.tool_call_id : message.tool_name === undefined || call.name === message.tool_name));
    const call = at < 0 ? undefined : unanswered.splice(at, 1)[0];
    const name = message.tool_name ?? call?.name;
    return { role: 'tool', content: message.content, toolCallId: call?.id ?? message.tool_call_id ?? `call_${index}`, ...(name === undefined ? {} : { name }) };
  });
}

function toSampling(options: OllamaOptions | undefined, request: Pick<OllamaChatRequest, 'logprobs' | 'top_logprobs'>): SamplingOptions {
  const o = options ?? {};
  const maxTokens = o.num_predict !== undefined && o.num_predict > 0 ? o.num_predict : undefined;
  return {
    ...(maxTokens === undefined ? {} : { maxTokens }),
    ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
    ...(o.top_p === undefined ? {} : { topP: o.top_p }),
    ...(o.top_k === undefined ? {} : { topK: o.top_k }),
    ...(o.min_p === undefined ? {} : { minP: o.min_p }),
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    ...(o.stop === undefined || o.stop.length === 0 ? {} : { stop: o.stop }),
    ...(o.repeat_penalty === undefined ? {} : { repeatPenalty: o.repeat_penalty }),
    ...(o.presence_penalty === undefined ? {} : { presencePenalty: o.presence_penalty }),
    ...(o.frequency_penalty === undefined ? {} : { frequencyPenalty: o.frequency_penalty }),
    ...(request.logprobs === true ? { logprobs: { topLogprobs: request.top_logprobs ?? 0 } } : {}),
  };
}

function toFormat(format: OllamaChatRequest['format']): ResponseFormat | undefined {
  if (format === undefined || format === '') return undefined;
  if (format === 'json') return { type: 'json_object' };
  return { type: 'json_schema', name: 'response', schema: format, strict: true };
}

/**
 * Ollama's `think`. `false` asks a reasoning model not to think; a model that never reasons honours it as it
 * is, so it is only passed on to models that do. `true` on a model without separated reasoning is refused:
 * its thinking could not come out as `thinking`.
 */
function toReasoning(think: OllamaChatRequest['think'], model: ModelInfo | undefined): ReasoningOptions | undefined {
  if (think === undefined) return undefined;
  const reasons = model?.capabilities.has('reasoning') ?? true;
  if (think === false) return reasons ? { enabled: false } : undefined;
  if (!reasons) throw new ParlanceError('unsupported_parameter', `The model '${model?.id ?? ''}' does not think; leave think out or pick a model that does.`, { param: 'think' });
  return think === true ? { enabled: true } : { enabled: true, effort: think };
}

function toTools(tools: OllamaChatRequest['tools']): ToolDefinition[] | undefined {
  if (tools === undefined || tools.length === 0) return undefined;
  return tools.map(({ function: f }) => ({ name: f.name, ...(f.description === undefined ? {} : { description: f.description }), ...(f.parameters === undefined ? {} : { parameters: f.parameters }) }));
}

function assemble(body: OllamaChatRequest | OllamaGenerateRequest, input: GenerationInput, model: ModelInfo | undefined, tools: ToolDefinition[] | undefined): GenerationRequest {
  const responseFormat = toFormat(body.format);
  const reasoning = toReasoning(body.think, model);
  return {
    model: body.model,
    input,
    sampling: toSampling(body.options, body),
    ...(tools === undefined ? {} : { tools }),
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(reasoning === undefined ? {} : { reasoning }),
  };
}

export function chatToRequest(body: OllamaChatRequest, model: ModelInfo | undefined): GenerationRequest {
  return assemble(body, { kind: 'chat', messages: toMessages(body.messages) }, model, toTools(body.tools));
}

/** `/api/generate`: the prompt as a user turn under the model's template, or as it is with `raw`. */
export function generateToRequest(body: OllamaGenerateRequest, model: ModelInfo | undefined): GenerationRequest {
  if (body.raw === true) {
    if (body.system !== undefined && body.system !== '') throw new ParlanceError('invalid_request', 'system cannot be used with raw: true (there is no template to put it in).', { param: 'system' });
    if (body.images !== undefined && body.images.length > 0) throw new ParlanceError('invalid_request', 'images cannot be used with raw: true.', { param: 'images' });
    return assemble(body, { kind: 'text', prompt: body.prompt }, model, undefined);
  }
  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== '') messages.push({ role: 'system', content: body.system });
  messages.push(userMessage(body.prompt, body.images));
  return assemble(body, { kind: 'chat', messages }, model, undefined);
}
