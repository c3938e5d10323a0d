import type { ChatEvent, FinishReason, Generation, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { openAIErrorBody } from '../../errors.js';
import type { SseStream } from '../../sse.js';
import type { OpenAIUsage } from '../../../protocol/openai.js';

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
  };
}

/** `cancelled` only happens when the client is gone; `error` travels as an error event. */
export function toOpenAIFinish(reason: FinishReason): 'stop' | 'length' | 'tool_calls' {
  return reason === 'length' || reason === 'tool_calls' ? reason : 'stop';
}

/** How one OpenAI dialect (chat or legacy completions) spells its stream chunks. */
export interface ChunkFormat {
  /** Sent once before the first text (the chat dialect announces the assistant role). */
  readonly opening?: string;
  text(text: string): string;
  finish(reason: 'stop' | 'length' | 'tool_calls'): string;
  usage(usage: OpenAIUsage): string;
}

const cancelledByServer = new ParlanceError('engine_unavailable', 'The server stopped this generation (it is shutting down, or the generation reached its deadline).');

/** Relays a generation as OpenAI stream chunks, waiting on the socket when it is full. */
export async function relayOpenAIStream(sse: SseStream, generation: Generation, format: ChunkFormat, includeUsage: boolean): Promise<void> {
  if (format.opening) sse.write(`data: ${format.opening}\n\n`);
  let usage: TokenUsage | undefined;
  for await (const event of generation) {
    if (sse.closed) continue; // keep draining so the engine's finish/usage arrive and resources are released
    if (event.type === 'text-delta') {
      if (!sse.write(`data: ${format.text(event.text)}\n\n`)) await sse.drained();
    } else if (event.type === 'usage') {
      usage = event.usage;
    } else if (event.type === 'error') {
      // After the first byte an error cannot change the status: it travels in the stream, and no [DONE] follows.
      sse.end(`data: ${JSON.stringify(openAIErrorBody(new ParlanceError(event.code, event.message)))}\n\n`);
    } else if (event.type !== 'finish') {
      continue;
    } else if (event.reason === 'cancelled') {
      // The client is still here, so the server stopped it (shutdown or the deadline): say so rather than end silently.
      sse.end(`data: ${JSON.stringify(openAIErrorBody(cancelledByServer))}\n\n`);
    } else if (event.reason !== 'error') {
      sse.write(`data: ${format.finish(toOpenAIFinish(event.reason))}\n\n`);
      if (includeUsage && usage) sse.write(`data: ${format.usage(toOpenAIUsage(usage))}\n\n`);
      sse.end('data: [DONE]\n\n');
    }
  }
  sse.end();
}

export interface CollectedGeneration {
  readonly text: string;
  readonly usage: TokenUsage;
  readonly reason: FinishReason;
}

/** Runs a generation to its end for a non-streaming answer; an in-stream error becomes a thrown error. */
export async function collectGeneration(generation: Generation): Promise<CollectedGeneration> {
  const parts: string[] = [];
  let usage: TokenUsage = { promptTokens: generation.promptTokens, completionTokens: 0 };
  let reason: FinishReason = 'stop';
  let failure: ChatEvent | undefined;
  for await (const event of generation) {
    if (event.type === 'text-delta') parts.push(event.text);
    else if (event.type === 'usage') usage = event.usage;
    else if (event.type === 'error') failure = event;
    else if (event.type === 'finish') reason = event.reason;
  }
  if (failure?.type === 'error') throw new ParlanceError(failure.code, failure.message);
  // Cut short by the server (shutdown, deadline): a truncated text must not pass for a whole answer.
  if (reason === 'cancelled') throw cancelledByServer;
  return { text: parts.join(''), usage, reason };
}

