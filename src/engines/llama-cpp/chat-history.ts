import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { ChatMessage } from '../contract.js';

/** A tool result as the chat wrapper renders it: JSON when the tool answered JSON, the text otherwise. */
function resultValue(content: string): unknown {
  try {
    return JSON.parse(content) as unknown;
  } catch {
    return content;
  }
}

function argumentsValue(call: { readonly id: string; readonly arguments: string }): unknown {
  try {
    return JSON.parse(call.arguments) as unknown;
  } catch {
    throw new ParlanceError('invalid_request', `The arguments of tool call '${call.id}' are not JSON: ${call.arguments.slice(0, 80)}`, { param: 'messages' });
  }
}

/**
 * The messages as node-llama-cpp's chat history, ending on the model turn to generate.
 *
 * node-llama-cpp keeps a function call and its result in one item of the model's response, and the model's
 * answer after the results continues that same response. So an assistant message's tool calls become
 * `functionCall` items, each `tool` message fills in its call's result, and an assistant message right after
 * the results continues the response instead of starting a turn. A request that ends on tool results asks for
 * that continuation: the next step of a tool loop.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  /** Calls made but not yet answered, by id. */
  const open = new Map<string, ChatModelFunctionCall>();
  /** The model response that tool results (and the answer after them) belong to. */
  let toolTurn: ChatModelResponse | undefined;

  for (const message of messages) {
    if (message.role === 'tool') {
      const call = open.get(message.toolCallId);
      if (call === undefined) {
        throw new ParlanceError('invalid_request', `A tool message answers tool_call_id '${message.toolCallId}', which no earlier assistant message made (or which was answered already).`, { param: 'messages' });
      }
      call.result = resultValue(message.content);
      open.delete(message.toolCallId);
      continue;
    }
    if (open.size > 0) {
      throw new ParlanceError('invalid_request', `The assistant's tool call '${[...open.keys()][0] ?? ''}' must be answered by a tool message before the next message.`, { param: 'messages' });
    }
    if (message.role === 'system') {
      toolTurn = undefined;
      history.push({ type: 'system', text: message.content });
    } else if (message.role === 'user') {
      toolTurn = undefined;
      history.push({ type: 'user', text: message.content });
    } else {
      const response: ChatModelResponse['response'] = [];
      if (message.reasoning) response.push({ type: 'segment', segmentType: 'thought', text: message.reasoning, ended: true });
      if (message.content) response.push(message.content);
      for (const toolCall of message.toolCalls ?? []) {
        const call: ChatModelFunctionCall = { type: 'functionCall', name: toolCall.name, params: argumentsValue(toolCall), result: undefined };
        open.set(toolCall.id, call);
        response.push(call);
      }
      if (toolTurn !== undefined) {
        toolTurn.response.push(...response);
      } else {
        const item: ChatModelResponse = { type: 'model', response };
        history.push(item);
        toolTurn = item;
      }
      if (!message.toolCalls?.length) toolTurn = undefined;
    }
  }
  if (open.size > 0) {
    throw new ParlanceError('invalid_request', `The assistant's tool call '${[...open.keys()][0] ?? ''}' has no tool message answering it.`, { param: 'messages' });
  }
  // The reply is generated as the continuation of the last model turn; when the client ended on an assistant
  // message (or on tool results) it asked us to continue that one.
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}
