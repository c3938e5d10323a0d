import type { FinishReason, Generation, TokenLogprob, TokenUsage } from '../engines/contract.js';
import { ParlanceError } from '../errors.js';
import { cancelledByServer } from './errors.js';

/** A piece of a reply as dialects with content blocks show it (Anthropic's blocks, Ollama's message fields). */
export type CollectedBlock =
  | { readonly kind: 'text'; text: string }
  | { readonly kind: 'thinking'; text: string }
  | { readonly kind: 'tool'; readonly id: string; readonly name: string; json: string };

export interface CollectedReply {
  /** In order of first appearance: text after a tool call is a block of its own; parallel calls one block each. */
  readonly blocks: readonly CollectedBlock[];
  readonly usage: TokenUsage;
  readonly reason: FinishReason;
  readonly stopSequence: string | undefined;
  /** The text's token log-probabilities, when the request asked for them. */
  readonly logprobs: readonly TokenLogprob[];
}

/** Runs a generation to its end for a non-streamed answer; an in-stream error, or a cut by the server, is thrown. */
export async function collectBlocks(generation: Generation): Promise<CollectedReply> {
  const blocks: CollectedBlock[] = [];
  const calls = new Map<number, Extract<CollectedBlock, { kind: 'tool' }>>();
  const logprobs: TokenLogprob[] = [];
  let usage: TokenUsage = { promptTokens: generation.promptTokens, completionTokens: 0 };
  let reason: FinishReason = 'stop';
  let stopSequence: string | undefined;
  let failure: ParlanceError | undefined;
  const append = (kind: 'text' | 'thinking', text: string): void => {
    const last = blocks.at(-1);
    if (last !== undefined && last.kind === kind) last.text += text;
    // Spelled twice so that each literal is its own variant of the union.
    else blocks.push(kind === 'text' ? { kind, text } : { kind, text });
  };
  for await (const event of generation) {
    if (event.type === 'text-delta') {
      append('text', event.text);
      if (event.logprobs) logprobs.push(...event.logprobs);
    } else if (event.type === 'reasoning-delta') append('thinking', event.text);
    else if (event.type === 'tool-call-start') {
      const block = { kind: 'tool' as const, id: event.id, name: event.name, json: '' };
      calls.set(event.index, block);
      blocks.push(block);
    } else if (event.type === 'tool-call-delta') {
      const call = calls.get(event.index);
      if (call) call.json += event.argumentsDelta;
    } else if (event.type === 'usage') usage = event.usage;
    else if (event.type === 'error') failure = new ParlanceError(event.code, event.message);
    else if (event.type === 'finish') {
      reason = event.reason;
      stopSequence = event.stopSequence;
    }
  }
  if (failure) throw failure;
  if (reason === 'cancelled') throw cancelledByServer;
  return { blocks, usage, reason, stopSequence, logprobs };
}

/**
 * A tool call's arguments as the object dialects without JSON text (Anthropic's `input`, Ollama's `arguments`)
 * send. `undefined` when the reply was cut by its token limit mid-arguments: the call is incomplete, and is left
 * out (the stop reason says the reply was cut). Arguments that do not parse otherwise are the engine's failure.
 */
export function toolArguments(json: string, reason: FinishReason): Record<string, unknown> | undefined {
  if (json.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    if (reason === 'length') return undefined;
    throw new ParlanceError('generation_failed', 'The model produced tool-call arguments that are not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ParlanceError('generation_failed', 'The model produced tool-call arguments that are not a JSON object.');
  return value as Record<string, unknown>;
}
