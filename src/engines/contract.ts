/**
 * The engine contract: the only thing the rest of Parlance knows about how a
 * model is run.
 *
 * An engine turns a {@link GenerationRequest} into a stream of typed
 * {@link ChatEvent}s. It happens in two phases so that callers can tell errors
 * that happen *before* anything was produced (they become an HTTP status) from
 * errors that happen *during* a stream (they travel inside the stream):
 *
 * 1. `engine.open(request, signal)` admits the request. It resolves once the
 *    engine has capacity for it and has checked it (the prompt fits the
 *    context, the upstream answered 200, ...). It rejects with a
 *    `ParlanceError` (see `core/errors.ts`) when it cannot run at all:
 *    `context_length_exceeded`, `queue_full`, `model_not_found`, an upstream
 *    4xx, ... Nothing has been generated when it rejects.
 * 2. The returned {@link Generation} is an `AsyncIterable<ChatEvent>`. It yields
 *    zero or more `text-delta` events, then exactly one `usage` event, then
 *    exactly one `finish` event, then ends. Failures after admission are
 *    reported as an `error` event followed by `finish` with reason `error`;
 *    the iterator itself does not throw.
 *
 * Cancellation: when `signal` aborts (client went away, user pressed stop,
 * server shutting down) the engine stops within one token, yields `usage` and
 * `finish` with reason `cancelled`, and frees whatever it held (a context
 * sequence, an upstream socket). Breaking out of the `for await` loop also
 * releases the engine's resources, through the iterator's `return()`.
 */

import type { ErrorCode } from '../core/errors.js';

/** A chat message as the engine sees it: already validated, text only. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** Sampling and length controls. Absent fields mean "the engine's default". */
export interface SamplingOptions {
  /** Upper bound on generated tokens. Absent: as many as the context allows. */
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Generation stops before any of these strings; the stop text is not emitted. */
  readonly stop?: readonly string[];
}

/** What to generate from: a chat (templated by the model) or raw text (legacy completions). */
export type GenerationInput =
  | { readonly kind: 'chat'; readonly messages: readonly ChatMessage[] }
  | { readonly kind: 'text'; readonly prompt: string };

export interface GenerationRequest {
  /** The model id the client asked for, as listed by {@link Engine.models}. */
  readonly model: string;
  readonly input: GenerationInput;
  readonly sampling: SamplingOptions;
}

/** Why a generation ended. Mirrors OpenAI's `finish_reason` plus the two cases it lacks. */
export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** The events of one generation, in order: text-delta*, usage, finish. */
export type ChatEvent =
  | { readonly type: 'text-delta'; readonly text: string }
  | { readonly type: 'usage'; readonly usage: TokenUsage }
  | { readonly type: 'error'; readonly code: ErrorCode; readonly message: string }
  | { readonly type: 'finish'; readonly reason: FinishReason };

/** An admitted generation: iterate it once. */
export interface Generation extends AsyncIterable<ChatEvent> {
  /** Tokens in the prompt after templating, known at admission. */
  readonly promptTokens: number;
}

export interface ModelInfo {
  /** The id clients send as `model`. */
  readonly id: string;
  /** Who serves it, shown in `/v1/models` as `owned_by`. */
  readonly ownedBy: string;
  /** Maximum context in tokens, when known. */
  readonly contextLength?: number;
}

/** A point-in-time view of an engine's load, for `/health` and metrics. */
export interface EngineLoad {
  readonly active: number;
  readonly queued: number;
  readonly capacity: number;
}

export interface Engine {
  /** Stable name used in logs, metrics and config (`llama`, `scripted`, an upstream's name). */
  readonly name: string;
  /**
   * How many milliseconds a streaming consumer may hold this engine's events to send several in one
   * write (an HTTP stream's `coalesceMs`). Set it when events can come faster than a socket write is
   * worth and the engine's next step competes with that write: an in-process model that decodes a
   * token in under a millisecond. Absent: send each event at once (an upstream's bursts are already
   * batched per tick, and its latency targets rely on that). Only a hint: consumers may ignore it.
   */
  readonly streamCoalesceMs?: number;
  /** The models this engine serves. */
  models(): readonly ModelInfo[];
  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation>;
  load(): EngineLoad;
  /** Waits for running generations to end (they should have been aborted), then frees everything. */
  close(): Promise<void>;
}
