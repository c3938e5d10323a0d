import type { Capability, GenerationRequest, ModelInfo } from '../engines/contract.js';
import { ParlanceError } from '../errors.js';

/** A capability a request needs, with the OpenAI field that asked for it (what a 400 names). */
export interface RequiredCapability {
  readonly capability: Capability;
  readonly param: string;
}

/**
 * What a request needs of its model beyond plain text generation. The rule behind it: no parameter is
 * silently ignored. A field that changes the output is either honoured or refused before generation.
 */
export function requiredCapabilities(request: GenerationRequest): RequiredCapability[] {
  const needs: RequiredCapability[] = [];
  const need = (capability: Capability, param: string): void => {
    needs.push({ capability, param });
  };
  const s = request.sampling;
  if (request.tools !== undefined && request.tools.length > 0) need('tools', 'tools');
  const choice = request.toolChoice;
  if (choice !== undefined && choice !== 'auto' && choice !== 'none') need('tool_choice', 'tool_choice');
  if (request.parallelToolCalls === false) need('parallel_tool_calls', 'parallel_tool_calls');
  if (request.responseFormat?.type === 'json_object') need('json_object', 'response_format');
  if (request.responseFormat?.type === 'json_schema') need('json_schema', 'response_format');
  if (request.reasoning?.effort !== undefined || request.reasoning?.budgetTokens !== undefined || request.reasoning?.enabled === false) {
    need('reasoning_effort', 'reasoning_effort');
  }
  if (request.input.kind === 'chat' && request.input.messages.some((m) => m.role === 'user' && m.parts?.some((p) => p.type === 'image'))) need('images', 'messages');
  if (s.topK !== undefined) need('top_k', 'top_k');
  if (s.minP !== undefined) need('min_p', 'min_p');
  if (s.seed !== undefined) need('seed', 'seed');
  if (s.presencePenalty !== undefined && s.presencePenalty !== 0) need('presence_penalty', 'presence_penalty');
  if (s.frequencyPenalty !== undefined && s.frequencyPenalty !== 0) need('frequency_penalty', 'frequency_penalty');
  if (s.repeatPenalty !== undefined && s.repeatPenalty !== 1) need('repeat_penalty', 'repeat_penalty');
  if (s.logitBias !== undefined && s.logitBias.size > 0) need('logit_bias', 'logit_bias');
  if (s.logprobs !== undefined) need('logprobs', 'logprobs');
  return needs;
}

/** A dialect's own spelling of the field behind each capability (Anthropic's `thinking`, Ollama's `options.top_k`). */
export type CapabilityParams = Partial<Record<Capability, string>>;

/**
 * Throws `unsupported_parameter`, naming the first field the model cannot honour: by its OpenAI name, or by the
 * name `params` gives it in the dialect the request came in.
 */
export function assertSupported(request: GenerationRequest, model: ModelInfo, params: CapabilityParams = {}): void {
  for (const need of requiredCapabilities(request)) {
    if (!model.capabilities.has(need.capability)) {
      const param = params[need.capability] ?? need.param;
      throw new ParlanceError('unsupported_parameter', `The model '${model.id}' does not support '${param}'; leave it out or pick a model that does.`, { param });
    }
  }
}
