import { ParlanceError } from '../../errors.js';
import type { ChatMessage, GenerationRequest, ResponseFormat, ToolChoice } from '../contract.js';

/**
 * The upstream request body: the contract's request in OpenAI's wire shapes, every field passed as the
 * client meant it, so the upstream honours or refuses it itself. Absent fields are left out (a server's
 * default is not always OpenAI's), and the stream always asks for usage.
 */

type WireMessage = Record<string, unknown>;

function wireMessage(message: ChatMessage): WireMessage {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      if (message.parts === undefined) return { role: 'user', content: message.content };
      return { role: 'user', content: message.parts.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : { type: 'image_url', image_url: { url: part.url } })) };
    case 'assistant': {
      const calls = message.toolCalls ?? [];
      return {
        role: 'assistant',
        // OpenAI's shape for a turn that was only calls.
        content: calls.length > 0 && message.content === '' ? null : message.content,
        ...(calls.length === 0 ? {} : { tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })) }),
        ...(message.reasoning === undefined ? {} : { reasoning_content: message.reasoning }),
      };
    }
    case 'tool':
      return { role: 'tool', content: message.content, tool_call_id: message.toolCallId };
  }
}

function wireToolChoice(choice: ToolChoice): unknown {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

function wireResponseFormat(format: ResponseFormat): unknown {
  if (format.type !== 'json_schema') return { type: format.type };
  return { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, ...(format.strict === undefined ? {} : { strict: format.strict }) } };
}

export function requestBody(request: GenerationRequest): string {
  const { input, sampling } = request;
  const chat = input.kind === 'chat';
  const body: Record<string, unknown> = { model: request.model };
  if (chat) body['messages'] = input.messages.map(wireMessage);
  else body['prompt'] = input.prompt;
  body['stream'] = true;
  body['stream_options'] = { include_usage: true };
  if (sampling.maxTokens !== undefined) body['max_tokens'] = sampling.maxTokens;
  if (sampling.temperature !== undefined) body['temperature'] = sampling.temperature;
  if (sampling.topP !== undefined) body['top_p'] = sampling.topP;
  if (sampling.topK !== undefined) body['top_k'] = sampling.topK;
  if (sampling.minP !== undefined) body['min_p'] = sampling.minP;
  if (sampling.seed !== undefined) body['seed'] = sampling.seed;
  // Some servers reject an empty stop list, and it means the same as none.
  if (sampling.stop !== undefined && sampling.stop.length > 0) body['stop'] = sampling.stop;
  if (sampling.presencePenalty !== undefined) body['presence_penalty'] = sampling.presencePenalty;
  if (sampling.frequencyPenalty !== undefined) body['frequency_penalty'] = sampling.frequencyPenalty;
  if (sampling.repeatPenalty !== undefined) body['repeat_penalty'] = sampling.repeatPenalty;
  if (sampling.logitBias !== undefined) body['logit_bias'] = Object.fromEntries([...sampling.logitBias].map(([token, bias]) => [String(token), bias]));
  if (sampling.logprobs !== undefined) {
    // The legacy API spells it as the number of alternatives.
    if (chat) {
      body['logprobs'] = true;
      body['top_logprobs'] = sampling.logprobs.topLogprobs;
    } else body['logprobs'] = sampling.logprobs.topLogprobs;
  }
  if (request.tools !== undefined && request.tools.length > 0) {
    body['tools'] = request.tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        ...(tool.parameters === undefined ? {} : { parameters: tool.parameters }),
        ...(tool.strict === undefined ? {} : { strict: tool.strict }),
      },
    }));
  }
  if (request.toolChoice !== undefined) body['tool_choice'] = wireToolChoice(request.toolChoice);
  if (request.parallelToolCalls !== undefined) body['parallel_tool_calls'] = request.parallelToolCalls;
  if (request.responseFormat !== undefined) body['response_format'] = wireResponseFormat(request.responseFormat);
  const reasoning = request.reasoning;
  if (reasoning?.budgetTokens !== undefined) {
    // OpenAI's API has no thinking budget, and the servers behind it spell theirs differently or not at all.
    throw new ParlanceError('unsupported_parameter', `The model '${request.model}' is served by an OpenAI-compatible upstream, which takes no thinking budget; use an effort instead.`, { param: 'budget_tokens' });
  }
  if (reasoning?.enabled === false) body['reasoning_effort'] = 'none';
  else if (reasoning?.effort !== undefined) body['reasoning_effort'] = reasoning.effort;
  return JSON.stringify(body);
}
