import type { FinishReason, Generation, TokenLogprob, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError, type ErrorCode } from '../../../errors.js';
import { cancelledByServer, openAIErrorBody } from '../../errors.js';
import type { SseStream } from '../../sse.js';
import type { OpenAIFinishReason, OpenAIToolCall, OpenAIUsage } from '../../../protocol/openai.js';

/** Random ids in OpenAI's style (`chatcmpl-…`, `cmpl-…`). */
export function responseId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll('-', '')}`;
}

export function toOpenAIUsage(usage: TokenUsage): OpenAIUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(usage.cachedPromptTokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens } }),
    ...(usage.reasoningTokens === undefined ? {} : { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }),
  };
}

/** `cancelled` only happens when the client is gone; `error` travels as an error event. */
export function toOpenAIFinish(reason: FinishReason): OpenAIFinishReason {
  return reason === 'length' || reason === 'tool_calls' ? reason : 'stop';
}

/** How one OpenAI dialect (chat or legacy completions) spells its stream chunks. */
export interface ChunkFormat {
  /** Sent once before the first event (the chat dialect announces the assistant role). */
  readonly opening?: string;
  text(text: string, logprobs: readonly TokenLogprob[] | undefined): string;
  /** Chat only: raw text input has no reasoning and no tools, so the legacy dialect never meets them. */
  reasoning?(text: string): string;
  toolCallStart?(index: number, id: string, name: string): string;
  toolCallDelta?(index: number, argumentsDelta: string): string;
  finish(reason: OpenAIFinishReason): string;
  usage(usage: OpenAIUsage): string;
}

/** Where a relay writes its events: the SSE response itself, or a writer that also logs them (resumable streams). */
export type FrameSink = Pick<SseStream, 'write' | 'end' | 'closed' | 'drained'>;

/** Relays a generation as OpenAI stream chunks, waiting on the socket when it is full. */
export async function relayOpenAIStream(sse: FrameSink, generation: Generation, format: ChunkFormat, includeUsage: boolean): Promise<void> {
  if (format.opening) sse.write(`data: ${format.opening}\n\n`);
  let usage: TokenUsage | undefined;
  for await (const event of generation) {
    if (sse.closed) continue; // keep draining so the engine's finish/usage arrive and resources are released
    let chunk: string | undefined;
    switch (event.type) {
      case 'text-delta':
        chunk = format.text(event.text, event.logprobs);
        break;
      case 'reasoning-delta':
        chunk = format.reasoning?.(event.text);
        break;
      case 'tool-call-start':
        chunk = format.toolCallStart?.(event.index, event.id, event.name);
        break;
      case 'tool-call-delta':
        chunk = format.toolCallDelta?.(event.index, event.argumentsDelta);
        break;
      case 'usage':
        usage = event.usage;
        break;
      case 'error':
        // After the first byte an error cannot change the status: it travels in the stream, and no [DONE] follows.
        sse.end(`data: ${JSON.stringify(openAIErrorBody(new ParlanceError(event.code, event.message)))}\n\n`);
        break;
      case 'finish':
        if (event.reason === 'cancelled') {
          // The client is still here, so the server stopped it (shutdown or the deadline): say so rather than end silently.
          sse.end(`data: ${JSON.stringify(openAIErrorBody(cancelledByServer))}\n\n`);
        } else if (event.reason !== 'error') {
          sse.write(`data: ${format.finish(toOpenAIFinish(event.reason))}\n\n`);
          if (includeUsage && usage) sse.write(`data: ${format.usage(toOpenAIUsage(usage))}\n\n`);
          sse.end('data: [DONE]\n\n');
        }
        break;
    }
    if (chunk !== undefined && !sse.write(`data: ${chunk}\n\n`)) await sse.drained();
  }
  sse.end();
}

export interface CollectedGeneration {
  readonly text: string;
  readonly reasoning: string;
  /** In index order; arguments whole. */
  readonly toolCalls: readonly OpenAIToolCall[];
  /** Present when the engine sent log-probabilities. */
  readonly logprobs: readonly TokenLogprob[] | undefined;
  readonly usage: TokenUsage;
  readonly reason: FinishReason;
}

/** Runs a generation to its end for a non-streaming answer; an in-stream error becomes a thrown error. */
export async function collectGeneration(generation: Generation): Promise<CollectedGeneration> {
  const parts: string[] = [];
  const reasoning: string[] = [];
  const calls = new Map<number, { id: string; name: string; args: string[] }>();
  let logprobs: TokenLogprob[] | undefined;
  let usage: TokenUsage = { promptTokens: generation.promptTokens, completionTokens: 0 };
  let reason: FinishReason = 'stop';
  let failure: { code: ErrorCode; message: string } | undefined;
  for await (const event of generation) {
    switch (event.type) {
      case 'text-delta':
        parts.push(event.text);
        if (event.logprobs !== undefined) (logprobs ??= []).push(...event.logprobs);
        break;
      case 'reasoning-delta':
        reasoning.push(event.text);
        break;
      case 'tool-call-start':
        calls.set(event.index, { id: event.id, name: event.name, args: [] });
        break;
      case 'tool-call-delta':
        calls.get(event.index)?.args.push(event.argumentsDelta);
        break;
      case 'usage':
        usage = event.usage;
        break;
      case 'error':
        failure = event;
        break;
      case 'finish':
        reason = event.reason;
        break;
    }
  }
  if (failure !== undefined) throw new ParlanceError(failure.code, failure.message);
  // Cut short by the server (shutdown, deadline): a truncated text must not pass for a whole answer.
  if (reason === 'cancelled') throw cancelledByServer;
  const toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, call]): OpenAIToolCall => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.args.join('') } }));
  return { text: parts.join(''), reasoning: reasoning.join(''), toolCalls, logprobs, usage, reason };
}
