import { z } from 'zod';
import type { ChatMessage, ContentPart, GenerationRequest, ResponseFormat, ToolChoice, ToolDefinition } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { conversationItemSchema, type ConversationItem, type FunctionTool, type InputItem, type ResponsesRequest } from '../../../protocol/openai-responses.js';
import type { ResponseStore } from '../../../store/contract.js';

/** A request as the core runs it, and the whole conversation it answers (kept for `previous_response_id`). */
export interface PreparedRequest {
  readonly generation: GenerationRequest;
  readonly items: readonly ConversationItem[];
}

const storedItems = z.array(conversationItemSchema);

function refuse(param: string, message: string): ParlanceError {
  return new ParlanceError('unsupported_parameter', message, { param });
}

/** Fields this server cannot honour in any model, refused by name before anything runs. */
function refuseUnsupported(body: ResponsesRequest): void {
  if (body.background === true) throw refuse('background', 'background responses are not supported here; leave background out and wait for the answer (or stream it).');
  if (body.include != null && body.include.length > 0) throw refuse('include', `include ${JSON.stringify(body.include[0])} is not supported here; leave include out.`);
  if (body.truncation === 'auto') throw refuse('truncation', "truncation 'auto' is not supported: a conversation that does not fit is refused with context_length_exceeded. Use 'disabled'.");
  if (body.top_logprobs != null && body.top_logprobs > 0) throw refuse('top_logprobs', 'top_logprobs is not supported on /v1/responses here; use /v1/chat/completions.');
  if (body.max_tool_calls != null) throw refuse('max_tool_calls', 'max_tool_calls is not supported here; leave it out.');
  if (body.text?.verbosity != null) throw refuse('text.verbosity', 'text.verbosity is not supported here; leave it out.');
  for (const [index, tool] of (body.tools ?? []).entries()) {
    if (tool.type !== 'function') throw refuse(`tools[${index}].type`, `The tool type '${tool.type}' is one of OpenAI's hosted tools, which this server does not run; only function tools are supported.`);
  }
  const choice = body.tool_choice;
  if (typeof choice === 'object' && choice.type !== 'function') throw refuse('tool_choice', `tool_choice of type '${choice.type}' is not supported; use none, auto, required or a function.`);
  const names = (body.tools ?? []).map((tool) => ('name' in tool ? String(tool.name) : ''));
  if (choice === 'required' && names.length === 0) throw new ParlanceError('invalid_request', "tool_choice 'required' needs at least one tool in tools.", { param: 'tool_choice' });
  const named = chosenName(choice);
  if (named !== undefined && !names.includes(named)) throw new ParlanceError('invalid_request', `tool_choice names a function that is not in tools: ${JSON.stringify(named)}.`, { param: 'tool_choice' });
}

function textOfParts(content: string | readonly { type: string; text?: string; refusal?: string }[]): string {
  if (typeof content === 'string') return content;
  return content.map((part) => part.text ?? part.refusal ?? '').join('');
}

type MessageItem = Extract<ConversationItem, { role: string }>;

function userMessage(item: MessageItem, where: string): ChatMessage {
  if (typeof item.content === 'string') return { role: 'user', content: item.content };
  const parts: ContentPart[] = [];
  for (const [index, part] of item.content.entries()) {
    if (part.type === 'input_text' || part.type === 'output_text') parts.push({ type: 'text', text: part.text });
    else if (part.type === 'refusal') parts.push({ type: 'text', text: part.refusal });
    else if (part.type === 'input_image' && typeof part.image_url === 'string') parts.push({ type: 'image', url: part.image_url });
    else throw refuse(`${where}.content[${index}]`, `${part.type === 'input_image' ? 'an image by file_id' : `a '${part.type}' part`} is not supported here; send text, or an image as image_url.`);
  }
  const content = parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
  return parts.some((part) => part.type === 'image') ? { role: 'user', content, parts } : { role: 'user', content };
}

/**
 * The conversation as chat messages: reasoning and function calls join the assistant turn they belong to,
 * function outputs become tool messages named after their call.
 */
export function toChatMessages(instructions: string | null | undefined, items: readonly ConversationItem[], firstNew: number): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (instructions != null && instructions !== '') messages.push({ role: 'system', content: instructions });
  const callNames = new Map<string, string>();
  /** The assistant turn being built, while its items follow each other. */
  let turn: { content: string; reasoning: string; calls: { id: string; name: string; arguments: string }[] } | undefined;
  let reasoning = '';
  const closeTurn = (): void => {
    if (turn === undefined) return;
    messages.push({
      role: 'assistant',
      content: turn.content,
      ...(turn.reasoning === '' ? {} : { reasoning: turn.reasoning }),
      ...(turn.calls.length === 0 ? {} : { toolCalls: turn.calls }),
    });
    turn = undefined;
  };
  const openTurn = (): NonNullable<typeof turn> => {
    turn ??= { content: '', reasoning, calls: [] };
    reasoning = '';
    return turn;
  };
  for (const [position, item] of items.entries()) {
    const where = position >= firstNew ? `input[${position - firstNew}]` : 'previous_response_id';
    if (item.type === 'reasoning') {
      closeTurn();
      reasoning += [...item.summary, ...(item.content ?? [])].map((part) => part.text).join('\n');
    } else if (item.type === 'function_call') {
      openTurn().calls.push({ id: item.call_id, name: item.name, arguments: item.arguments });
      callNames.set(item.call_id, item.name);
    } else if (item.type === 'function_call_output') {
      closeTurn();
      reasoning = '';
      const name = callNames.get(item.call_id);
      messages.push({ role: 'tool', content: textOfParts(item.output), toolCallId: item.call_id, ...(name === undefined ? {} : { name }) });
    } else if (item.role === 'assistant') {
      // A text after calls is a new turn; a text before them opens the turn they join.
      if (turn !== undefined && turn.calls.length > 0) closeTurn();
      const open = openTurn();
      open.content += textOfParts(item.content);
    } else {
      closeTurn();
      // Reasoning that no assistant turn followed belongs to none.
      reasoning = '';
      if (item.role === 'user') messages.push(userMessage(item, where));
      else messages.push({ role: 'system', content: textOfParts(item.content) });
    }
  }
  closeTurn();
  return messages;
}

/** The key a Parlance item id carries: `msg_<key>_<n>` is output `n` of the response `resp_<key>`. */
const itemIdPattern = /^[a-z]+_([0-9a-f]{32})_(\d{1,4})$/;

function conversationOf(record: { input: readonly unknown[]; body: Readonly<Record<string, unknown>> }): ConversationItem[] {
  const input = storedItems.safeParse(record.input);
  const output = storedItems.safeParse(record.body['output'] ?? []);
  if (!input.success || !output.success) throw new ParlanceError('internal_error', 'a stored response could not be read back');
  return [...input.data, ...output.data];
}

/** Finds the item an `item_reference` names: earlier in this conversation, else in the stored response that made it. */
async function resolveReference(id: string, known: readonly ConversationItem[], store: ResponseStore, param: string): Promise<ConversationItem> {
  const here = known.find((item) => item.id === id);
  if (here !== undefined) return here;
  const match = itemIdPattern.exec(id);
  const record = match === null ? undefined : await store.getResponse(`resp_${match[1] ?? ''}`);
  const output = record === undefined ? undefined : storedItems.safeParse(record.body['output'] ?? []);
  const item = output?.success === true ? output.data[Number(match?.[2])] : undefined;
  if (item === undefined) throw new ParlanceError('not_found', `Item with id '${id}' not found (it belongs to no stored response).`, { param });
  return item;
}

function toolsOf(body: ResponsesRequest): ToolDefinition[] | undefined {
  if (body.tools === undefined || body.tools.length === 0) return undefined;
  const isFunction = (tool: NonNullable<ResponsesRequest['tools']>[number]): tool is FunctionTool => tool.type === 'function';
  return body.tools.filter(isFunction).map((fn) => {
    return {
      name: fn.name,
      ...(fn.description == null ? {} : { description: fn.description }),
      ...(fn.parameters == null ? {} : { parameters: fn.parameters }),
      ...(fn.strict == null ? {} : { strict: fn.strict }),
    };
  });
}

/** The function a `tool_choice` object names. */
function chosenName(choice: ResponsesRequest['tool_choice']): string | undefined {
  return typeof choice === 'object' && 'name' in choice ? String(choice.name) : undefined;
}

function toolChoiceOf(choice: ResponsesRequest['tool_choice']): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (typeof choice === 'string') return choice;
  return { name: chosenName(choice) ?? '' };
}

function formatOf(format: NonNullable<ResponsesRequest['text']>['format']): ResponseFormat | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', name: format.name, schema: format.schema, ...(format.strict == null ? {} : { strict: format.strict }) };
}

/** Parses a Responses request into the core's request, resolving the stored conversation it continues. */
export async function prepareRequest(body: ResponsesRequest, store: ResponseStore): Promise<PreparedRequest> {
  refuseUnsupported(body);
  let earlier: ConversationItem[] = [];
  if (body.previous_response_id != null) {
    const previous = await store.getResponse(body.previous_response_id);
    if (previous === undefined) throw new ParlanceError('not_found', `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id' });
    earlier = conversationOf(previous);
  }
  const given: readonly InputItem[] = body.input === undefined ? [] : typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
  const items = [...earlier];
  for (const [index, item] of given.entries()) {
    items.push(item.type === 'item_reference' ? await resolveReference(item.id, items, store, `input[${index}].id`) : item);
  }
  if (given.length === 0) throw new ParlanceError('invalid_request', 'input is required: a string or at least one item.', { param: 'input' });
  const tools = toolsOf(body);
  const toolChoice = toolChoiceOf(body.tool_choice);
  const responseFormat = formatOf(body.text?.format);
  const generation: GenerationRequest = {
    model: body.model,
    input: { kind: 'chat', messages: toChatMessages(body.instructions, items, earlier.length) },
    sampling: {
      ...(body.max_output_tokens == null ? {} : { maxTokens: body.max_output_tokens }),
      ...(body.temperature == null ? {} : { temperature: body.temperature }),
      ...(body.top_p == null ? {} : { topP: body.top_p }),
    },
    ...(tools === undefined ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(body.parallel_tool_calls === false ? { parallelToolCalls: false } : {}),
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(body.reasoning?.effort == null ? {} : { reasoning: { effort: body.reasoning.effort } }),
  };
  return { generation, items };
}

/** The core names chat-completions fields; a Responses client is told its own. */
const paramNames: Readonly<Record<string, string>> = {
  messages: 'input',
  max_tokens: 'max_output_tokens',
  response_format: 'text.format',
  reasoning_effort: 'reasoning.effort',
};

export function inResponsesTerms(error: unknown): unknown {
  if (!(error instanceof ParlanceError) || error.param === null) return error;
  const renamed = paramNames[error.param];
  if (renamed === undefined) return error;
  return new ParlanceError(error.code, error.message.replaceAll(`'${error.param}'`, `'${renamed}'`).replaceAll(error.param, renamed), {
    param: renamed,
    status: error.status,
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    cause: error,
  });
}
