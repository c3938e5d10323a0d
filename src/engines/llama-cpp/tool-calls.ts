import { randomUUID } from 'node:crypto';
import type { ChatModelFunctions, ChatWrapper, ChatWrapperGenerateContextStateOptions, ChatWrapperGeneratedContextState, GbnfJsonSchema } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { ChatEvent, ToolChoice, ToolDefinition } from '../contract.js';
import { toGrammarSchema } from './json-schema.js';

/** What node-llama-cpp's function calling needs for one request. */
export interface FunctionsPlan {
  /** The functions in node-llama-cpp's shape; their parameter schemas already checked for the grammar. */
  readonly functions: ChatModelFunctions;
  /** The model must call (a grammar holds it to a call from the first token). */
  readonly forced: boolean;
  /** At most this many calls in one reply (`parallel_tool_calls: false`). */
  readonly maxCalls?: number;
}

/** node-llama-cpp builds a grammar from each name and refuses names with whitespace; a 400 says so first. */
const validName = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The request's tools as node-llama-cpp functions, all of them (the prompt documents every tool). */
export function toFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  tools.forEach((tool, i) => {
    if (!validName.test(tool.name)) {
      throw new ParlanceError('invalid_request', `tools[${i}].function.name must be 1 to 64 letters, digits, '_', '-', '.' or ':', got ${JSON.stringify(tool.name)}.`, { param: 'tools' });
    }
    if (tool.name in functions) throw new ParlanceError('invalid_request', `Two tools are named '${tool.name}'.`, { param: 'tools' });
    functions[tool.name] = {
      ...(tool.description === undefined ? {} : { description: tool.description }),
      ...(tool.parameters === undefined ? {} : { params: toGrammarSchema(tool.parameters, { param: 'tools', path: `tools[${i}].function.parameters`, toolArguments: true }) }),
    };
  });
  return functions;
}

/**
 * How the request's tools and tool choice map onto node-llama-cpp's function calling; undefined when the model
 * may not call (no tools, or `none`).
 *
 * A named choice passes only that function, so the name grammar can produce nothing else; the others are not
 * shown to the model either (node-llama-cpp documents exactly the functions it can call).
 */
export function planFunctions(tools: readonly ToolDefinition[] | undefined, choice: ToolChoice | undefined, parallel: boolean | undefined): FunctionsPlan | undefined {
  if (tools === undefined || tools.length === 0 || choice === 'none') return undefined;
  const all = toFunctions(tools);
  const maxCalls = parallel === false ? { maxCalls: 1 } : {};
  if (choice === undefined || choice === 'auto') return { functions: all, forced: false, ...maxCalls };
  if (choice === 'required') return { functions: all, forced: true, ...maxCalls };
  const named = all[choice.name];
  if (named === undefined) throw new ParlanceError('invalid_request', `tool_choice names the function '${choice.name}', which is not in tools.`, { param: 'tool_choice' });
  return { functions: { [choice.name]: named }, forced: true, ...maxCalls };
}

/**
 * The model's chat wrapper, but every reply starts inside a function call: node-llama-cpp's "initially engaged"
 * function mode (what Functionary's template does natively) injects the wrapper's own call prefix and holds the
 * model to a function name and then to arguments that fit the schema, so `required` holds by construction.
 * Prefix triggers and rerenders (a template's choice between channels, as gpt-oss has) would let the model
 * leave, so they go.
 */
export function forcingCalls(wrapper: ChatWrapper): ChatWrapper {
  const generateContextState = (options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState => {
    const { contextText, stopGenerationTriggers, ignoreStartText } = wrapper.generateContextState(options);
    return {
      contextText,
      stopGenerationTriggers,
      ...(ignoreStartText === undefined ? {} : { ignoreStartText }),
      functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
    };
  };
  return new Proxy(wrapper, {
    get(target, property, receiver) {
      if (property === 'generateContextState') return generateContextState;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/** An id in OpenAI's shape: `call_` and 24 letters and digits. */
export function newCallId(): string {
  return `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

/**
 * Turns node-llama-cpp's function-call callbacks into the contract's events: `tool-call-start` (id and whole
 * name) when a call's arguments begin, then `tool-call-delta` fragments.
 *
 * node-llama-cpp's argument grammar ends every call with four newlines, which it strips when it parses the
 * call, and which arrive in the last chunks. JSON never has a raw newline inside a string, so trailing newlines
 * are held back until something else follows them, and dropped when the call ends.
 */
export class ToolCallEvents {
  private readonly calls: { readonly id: string; readonly name: string; held: string; sent: string; done: boolean }[] = [];

  constructor(private readonly push: (event: ChatEvent) => void) {}

  get count(): number {
    return this.calls.length;
  }

  /** The text of every call the model generated (names and arguments), to count its tokens. */
  text(): string {
    return this.calls.map((call) => call.name + call.sent).join('');
  }

  private start(index: number, name: string): NonNullable<(typeof this.calls)[number]> {
    let call = this.calls[index];
    if (call === undefined) {
      call = { id: newCallId(), name, held: '', sent: '', done: false };
      this.calls[index] = call;
      this.push({ type: 'tool-call-start', index, id: call.id, name });
    }
    return call;
  }

  private send(index: number, text: string): void {
    const call = this.calls[index];
    if (call === undefined || text === '') return;
    call.sent += text;
    this.push({ type: 'tool-call-delta', index, argumentsDelta: text });
  }

  onParamsChunk(chunk: { readonly callIndex: number; readonly functionName: string; readonly paramsChunk: string }): void {
    const call = this.start(chunk.callIndex, chunk.functionName);
    const text = call.held + chunk.paramsChunk;
    const body = text.replace(/\n+$/, '');
    call.held = text.slice(body.length);
    this.send(chunk.callIndex, body);
  }

  /** A whole call: starts it when no argument chunk did (a function without parameters) and closes it. */
  onCall(name: string): void {
    const index = this.calls.findIndex((call) => !call.done);
    const open = index >= 0 ? index : this.calls.length;
    const call = this.start(open, name);
    if (call.sent === '') this.send(open, '{}');
    call.held = '';
    call.done = true;
  }
}
