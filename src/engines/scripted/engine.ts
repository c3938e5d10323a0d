import { setTimeout as sleep } from 'node:timers/promises';
import type { Capability, ChatEvent, ChatMessage, Engine, EngineLoad, FinishReason, Generation, GenerationInput, GenerationRequest, ModelInfo, ToolDefinition } from '../contract.js';
import { exampleFromSchema } from './schema-example.js';

/**
 * What the script honours, each by construction: a script is deterministic (seed), it calls the tools it is
 * told to (tool choice, parallel calls), its JSON is built from the schema (response formats), and its
 * reasoning steps come out as reasoning.
 */
const scriptedCapabilities: ReadonlySet<Capability> = new Set<Capability>(['seed', 'tools', 'tool_choice', 'parallel_tool_calls', 'json_object', 'json_schema', 'reasoning']);

/** One step of a script: a piece of text (of the answer, or of its reasoning), or a whole tool call; and how long to wait before it. */
export type ScriptStep =
  | { readonly text: string; readonly delayMs: number; readonly kind?: 'text' | 'reasoning' }
  | { readonly toolCall: { readonly name: string; readonly arguments: string }; readonly delayMs: number };

export interface ScriptedEngineOptions {
  readonly name?: string;
  readonly modelId?: string;
  /** Builds the reply for a request. Default: {@link defaultScript}. */
  readonly script?: (input: GenerationInput, request: GenerationRequest) => readonly ScriptStep[];
  /** Delay before each token of the default script. */
  readonly tokenDelayMs?: number;
}

/** Splits text into word-sized tokens that keep their leading whitespace, so joining them gives the text back. */
export function wordTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

function lastUserText(input: GenerationInput): string {
  if (input.kind === 'text') return input.prompt;
  for (let i = input.messages.length - 1; i >= 0; i--) {
    const message = input.messages[i];
    if (message?.role === 'user') return message.content;
  }
  return '';
}

function inputTokenCount(input: GenerationInput): number {
  if (input.kind === 'text') return wordTokens(input.prompt).length;
  return input.messages.reduce((sum, message) => sum + wordTokens(message.content).length + 4, 0);
}

/** A user message starting with this asks the default script to think aloud first. */
export const THINK_PREFIX = '/think ';

/** The tools a reply calls: those the user's message names (in order of mention), else the forced one. */
function toolsToCall(request: GenerationRequest, userText: string): ToolDefinition[] {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? 'auto';
  if (tools.length === 0 || choice === 'none') return [];
  if (typeof choice === 'object') return tools.filter((tool) => tool.name === choice.name);
  const named = tools.filter((tool) => userText.includes(tool.name)).sort((a, b) => userText.indexOf(a.name) - userText.indexOf(b.name));
  const calls = named.length > 0 ? named : choice === 'required' ? tools.slice(0, 1) : [];
  return request.parallelToolCalls === false ? calls.slice(0, 1) : calls;
}

/** The answer after tool results: what each tool returned, so a tool loop's last step is predictable. */
function afterToolResults(messages: readonly ChatMessage[]): string | undefined {
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== 'tool') break;
    results.unshift(`${message.name ?? message.toolCallId} returned ${message.content}`);
  }
  return results.length === 0 ? undefined : `${results.join('; ')}.`;
}

/**
 * The default script, deterministic in every branch:
 * - with tools, it calls those the last user message names, or the first (`required`) or named one; the
 *   arguments are built from each tool's schema (see {@link exampleFromSchema});
 * - right after tool results (and with no call forced), it says what each tool returned;
 * - with a JSON response format, it answers JSON built from the schema (`json_object`: `{"echo": …}`);
 * - otherwise it echoes the last user message word by word; a message that starts with `/think ` is
 *   echoed without the prefix, after reasoning steps "Thinking about: …".
 */
export function defaultScript(request: GenerationRequest, delayMs: number): ScriptStep[] {
  const input = request.input;
  const userText = lastUserText(input);
  if (input.kind === 'chat') {
    const forced = request.toolChoice === 'required' || typeof request.toolChoice === 'object';
    const results = forced ? undefined : afterToolResults(input.messages);
    if (results !== undefined) return wordTokens(results).map((text) => ({ text, delayMs }));
    const calls = toolsToCall(request, userText);
    if (calls.length > 0) {
      return calls.map((tool) => ({ toolCall: { name: tool.name, arguments: JSON.stringify(exampleFromSchema(tool.parameters ?? { type: 'object' })) }, delayMs }));
    }
  }
  const format = request.responseFormat;
  if (format?.type === 'json_schema') return jsonSteps(exampleFromSchema(format.schema), delayMs);
  if (format?.type === 'json_object') return jsonSteps({ echo: userText }, delayMs);
  if (userText.startsWith(THINK_PREFIX)) {
    const answer = userText.slice(THINK_PREFIX.length);
    const thinking = wordTokens(`Thinking about: ${answer}`).map((text) => ({ text, delayMs, kind: 'reasoning' as const }));
    return [...thinking, ...wordTokens(answer).map((text) => ({ text, delayMs }))];
  }
  const echo = wordTokens(userText).map((text) => ({ text, delayMs }));
  // A chat that ends with an assistant message asks for more of it: the echo goes on from where it stopped.
  const last = input.kind === 'chat' ? input.messages.at(-1) : undefined;
  if (last?.role === 'assistant' && last.content !== '') {
    let written = 0;
    let steps = 0;
    while (steps < echo.length && written < last.content.length) written += echo[steps++]?.text.length ?? 0;
    return echo.slice(steps);
  }
  return echo;
}

/** JSON text in pieces of a few characters, as a model would stream it. */
function jsonSteps(value: unknown, delayMs: number): ScriptStep[] {
  return splitEvery(JSON.stringify(value), 8).map((text) => ({ text, delayMs }));
}

function splitEvery(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length; at += size) pieces.push(text.slice(at, at + size));
  return pieces;
}

/**
 * A deterministic engine: no model, just a script. It serves `/stream-example`,
 * the UI tests (which need text they can predict) and the benchmarks (which
 * measure Parlance, not a model). It honours max tokens, stop strings, tool
 * choice, response formats and cancellation exactly as a real engine must.
 */
export class ScriptedEngine implements Engine {
  readonly name: string;
  private readonly modelId: string;
  private readonly script: (input: GenerationInput, request: GenerationRequest) => readonly ScriptStep[];
  private active = 0;
  private calls = 0;

  constructor(options: ScriptedEngineOptions = {}) {
    this.name = options.name ?? 'scripted';
    this.modelId = options.modelId ?? 'parlance-scripted';
    const delayMs = options.tokenDelayMs ?? 0;
    this.script = options.script ?? ((_input, request) => defaultScript(request, delayMs));
  }

  models(): readonly ModelInfo[] {
    return [{ id: this.modelId, ownedBy: 'parlance', capabilities: scriptedCapabilities }];
  }

  load(): EngineLoad {
    return { active: this.active, queued: 0, capacity: Number.POSITIVE_INFINITY };
  }

  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    const steps = this.script(request.input, request);
    const promptTokens = inputTokenCount(request.input);
    const engine = this;
    async function* run(): AsyncGenerator<ChatEvent> {
      engine.active++;
      let completionTokens = 0;
      let reasoningTokens = 0;
      let reason: FinishReason = 'stop';
      let emitted = '';
      let toolCalls = 0;
      let stopSequence: string | undefined;
      const stops = request.sampling.stop ?? [];
      try {
        for (const step of steps) {
          if (request.sampling.maxTokens !== undefined && completionTokens >= request.sampling.maxTokens) {
            reason = 'length';
            break;
          }
          if (step.delayMs > 0) await sleep(step.delayMs, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) {
            reason = 'cancelled';
            break;
          }
          completionTokens++;
          if ('toolCall' in step) {
            const index = toolCalls++;
            yield { type: 'tool-call-start', index, id: `call_${(++engine.calls).toString(36).padStart(6, '0')}`, name: step.toolCall.name };
            // In fragments, as models stream arguments, so consumers meet the split shape.
            for (const piece of splitEvery(step.toolCall.arguments, 8)) yield { type: 'tool-call-delta', index, argumentsDelta: piece };
            continue;
          }
          if (step.kind === 'reasoning') {
            reasoningTokens++;
            yield { type: 'reasoning-delta', text: step.text };
            continue;
          }
          const candidate = emitted + step.text;
          const stopAt = firstStop(candidate, stops);
          if (stopAt) {
            const text = candidate.slice(emitted.length, stopAt.index);
            if (text) yield { type: 'text-delta', text };
            stopSequence = stopAt.stop;
            break;
          }
          emitted = candidate;
          yield { type: 'text-delta', text: step.text };
        }
        if (reason === 'stop' && toolCalls > 0) reason = 'tool_calls';
        yield { type: 'usage', usage: { promptTokens, completionTokens, ...(reasoningTokens > 0 ? { reasoningTokens } : {}) } };
        yield stopSequence === undefined ? { type: 'finish', reason } : { type: 'finish', reason, stopSequence };
      } finally {
        engine.active--;
      }
    }
    const generation: Generation = { promptTokens, [Symbol.asyncIterator]: run };
    return Promise.resolve(generation);
  }

  countTokens(request: GenerationRequest): Promise<number> {
    return Promise.resolve(inputTokenCount(request.input));
  }

  async close(): Promise<void> {}
}

/** The earliest stop string in `text`, and where it starts. */
function firstStop(text: string, stops: readonly string[]): { index: number; stop: string } | undefined {
  let best: { index: number; stop: string } | undefined;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (best === undefined || index < best.index)) best = { index, stop };
  }
  return best;
}
