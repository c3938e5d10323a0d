import type { FinishReason, Generation, TokenLogprob, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError, isParlanceError } from '../../../errors.js';
import { toolArguments } from '../../collect-blocks.js';
import { cancelledByServer } from '../../errors.js';
import type { SseStream } from '../../sse.js';
import { ollamaErrorBody } from './errors.js';
import type { OllamaToolCallOut } from './schema.js';

/** Ollama's `done_reason`: it says `stop` after tool calls too. */
export function toDoneReason(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

/**
 * When each phase of one request ended, in `process.hrtime` nanoseconds, for Ollama's durations: `load` is the
 * wait for the engine to admit the request, `prompt_eval` until the first output, `eval` the rest.
 */
export class RequestClock {
  private readonly started = process.hrtime.bigint();
  private admittedAt = this.started;
  private firstOutputAt: bigint | undefined;

  admitted(): void {
    this.admittedAt = process.hrtime.bigint();
  }

  output(): void {
    this.firstOutputAt ??= process.hrtime.bigint();
  }

  /** The counts and durations of a done object, in Ollama's names. */
  stats(usage: TokenUsage | undefined, promptTokens: number): OllamaStats {
    const end = process.hrtime.bigint();
    const first = this.firstOutputAt ?? end;
    return {
      total_duration: Number(end - this.started),
      load_duration: Number(this.admittedAt - this.started),
      prompt_eval_count: usage?.promptTokens ?? promptTokens,
      prompt_eval_duration: Number(first - this.admittedAt),
      eval_count: usage?.completionTokens ?? 0,
      eval_duration: Number(end - first),
    };
  }
}

export interface OllamaStats {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

/** How one Ollama route spells the content of its objects: `/api/chat` in a `message`, `/api/generate` at the top. */
export interface OllamaShape {
  /** JSON members for a piece of text or thinking, the logprobs of the text, and tool calls (chat only). */
  content(text: string, thinking: string, logprobs: readonly TokenLogprob[] | undefined, calls?: readonly OllamaToolCallOut[]): string;
  readonly toolCalls: boolean;
}

const logprobsMember = (logprobs: readonly TokenLogprob[] | undefined): string =>
  logprobs === undefined || logprobs.length === 0
    ? ''
    : `,"logprobs":${JSON.stringify(logprobs.map((entry) => ({ token: entry.token, logprob: entry.logprob, top_logprobs: entry.top.map((alt) => ({ token: alt.token, logprob: alt.logprob })) })))}`;

const thinkingMember = (thinking: string): string => (thinking === '' ? '' : `,"thinking":${JSON.stringify(thinking)}`);

export const chatShape: OllamaShape = {
  toolCalls: true,
  content: (text, thinking, logprobs, calls) =>
    `"message":{"role":"assistant","content":${JSON.stringify(text)}${thinkingMember(thinking)}${calls === undefined || calls.length === 0 ? '' : `,"tool_calls":${JSON.stringify(calls)}`}}${logprobsMember(logprobs)}`,
};

/** Generate has no tools: its input is a prompt. */
export const generateShape: OllamaShape = {
  toolCalls: false,
  content: (text, thinking, logprobs) => `"response":${JSON.stringify(text)}${thinkingMember(thinking)}${logprobsMember(logprobs)}`,
};

/** The last object of an answer: `done`, why, and the counts and durations. */
export function doneObject(head: () => string, content: string, reason: FinishReason, stats: OllamaStats): string {
  return `${head()}${content},"done":true,"done_reason":"${toDoneReason(reason)}",${JSON.stringify(stats).slice(1)}`;
}

/** The head every object of one answer starts with: the model, then the time it was written. */
export function objectHead(model: string): () => string {
  const start = `{"model":${JSON.stringify(model)},"created_at":"`;
  return () => `${start}${new Date().toISOString()}",`;
}

interface PendingCall {
  readonly name: string;
  json: string;
}

/**
 * Relays a generation as Ollama's NDJSON stream: one object per piece of text or thinking, the tool calls in
 * one object once their arguments are whole (Ollama sends parsed arguments, not fragments), then the `done`
 * object with the counts and durations. An error after the first byte is an `{"error": …}` line.
 */
export async function relayOllamaStream(stream: SseStream, generation: Generation, model: string, shape: OllamaShape, clock: RequestClock): Promise<void> {
  const head = objectHead(model);
  const calls = new Map<number, PendingCall>();
  let usage: TokenUsage | undefined;
  for await (const event of generation) {
    if (stream.closed) continue; // keep draining so the engine's finish/usage arrive and resources are released
    let line: string | undefined;
    switch (event.type) {
      case 'text-delta':
        clock.output();
        line = `${head()}${shape.content(event.text, '', event.logprobs)},"done":false}\n`;
        break;
      case 'reasoning-delta':
        clock.output();
        line = `${head()}${shape.content('', event.text, undefined)},"done":false}\n`;
        break;
      case 'tool-call-start':
        clock.output();
        calls.set(event.index, { name: event.name, json: '' });
        break;
      case 'tool-call-delta': {
        const call = calls.get(event.index);
        if (call) call.json += event.argumentsDelta;
        break;
      }
      case 'usage':
        usage = event.usage;
        break;
      case 'error':
        stream.end(`${JSON.stringify(ollamaErrorBody(new ParlanceError(event.code, event.message)))}\n`);
        break;
      case 'finish':
        if (event.reason === 'cancelled') stream.end(`${JSON.stringify(ollamaErrorBody(cancelledByServer))}\n`);
        else if (event.reason !== 'error') stream.end(finalLines(head, shape, calls, event.reason, usage, generation.promptTokens, clock));
        break;
    }
    if (line !== undefined && !stream.write(line)) await stream.drained();
  }
  stream.end();
}

function finalLines(head: () => string, shape: OllamaShape, calls: ReadonlyMap<number, PendingCall>, reason: FinishReason, usage: TokenUsage | undefined, promptTokens: number, clock: RequestClock): string {
  let out = '';
  if (calls.size > 0 && shape.toolCalls) {
    try {
      const parsed: OllamaToolCallOut[] = [];
      for (const call of calls.values()) {
        // Cut off by the token limit: left out, as done_reason `length` says.
        const args = toolArguments(call.json, reason);
        if (args !== undefined) parsed.push({ function: { name: call.name, arguments: args } });
      }
      if (parsed.length > 0) out += `${head()}${shape.content('', '', undefined, parsed)},"done":false}\n`;
    } catch (error) {
      if (!isParlanceError(error)) throw error;
      return `${JSON.stringify(ollamaErrorBody(error))}\n`;
    }
  }
  return `${out}${doneObject(head, shape.content('', '', undefined), reason, clock.stats(usage, promptTokens))}\n`;
}
