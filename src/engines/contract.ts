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
 *    `ParlanceError` (see `src/errors.ts`) when it cannot run at all:
 *    `context_length_exceeded`, `queue_full`, `model_not_found`, an upstream
 *    4xx, ... Nothing has been generated when it rejects.
 * 2. The returned {@link Generation} is an `AsyncIterable<ChatEvent>`. It yields
 *    zero or more content events (`text-delta`, `reasoning-delta`,
 *    `tool-call-start`, `tool-call-delta`), then exactly one `usage` event, then
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

import type { ErrorCode } from '../errors.js';

/** A piece of a message's content. Text now; images where a model declares the `images` capability. */
export type ContentPart =
  | { readonly type: 'text'; readonly text: string }
  /** `url` is a `data:` URL (base64) or an http(s) URL the engine fetches itself. */
  | { readonly type: 'image'; readonly url: string };

/** A function call the model made, as a dialect relays it: arguments are a JSON text, as OpenAI sends them. */
export interface ToolCall {
  /** Unique within the conversation (`call_…` when the engine makes it up). */
  readonly id: string;
  readonly name: string;
  /** A JSON object as text. Engines that constrain calls by grammar guarantee it parses and fits the schema. */
  readonly arguments: string;
}

/**
 * A chat message as the engine sees it, already validated. `content` is always the message's text (the
 * text parts joined); `parts` is there only when the message has more than text (an image), in order.
 */
export type ChatMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: string; readonly parts?: readonly ContentPart[] }
  | {
      readonly role: 'assistant';
      readonly content: string;
      /** The thinking text of an earlier turn; templates that show past reasoning use it, the rest drop it. */
      readonly reasoning?: string;
      readonly toolCalls?: readonly ToolCall[];
    }
  /** The result of a tool call, answering the assistant's call with the same id. */
  | { readonly role: 'tool'; readonly content: string; readonly toolCallId: string; readonly name?: string };

export type ChatRole = ChatMessage['role'];

/** A JSON Schema, as clients send it (an object; validated where it is used). */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** A function the model may call. */
export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  /** The arguments' schema (an `object` schema). Absent: no arguments. */
  readonly parameters?: JsonSchema;
  /** OpenAI's `strict`: arguments must match the schema exactly (grammar-constrained engines always do). */
  readonly strict?: boolean;
}

/**
 * Whether and which tool the model must call. `auto`: the model chooses; `none`: no call (tools are still in
 * the prompt); `required`: at least one call; `{ name }`: exactly that function.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

/** The shape the reply's text must have. */
export type ResponseFormat =
  | { readonly type: 'text' }
  /** Any JSON object. */
  | { readonly type: 'json_object' }
  /** JSON that validates against `schema`. */
  | { readonly type: 'json_schema'; readonly name: string; readonly schema: JsonSchema; readonly strict?: boolean };

/** Reasoning ("thinking") controls for models whose template has them. */
export interface ReasoningOptions {
  /** false: ask the model not to think (Ollama's `think: false`). Absent: the model's default. */
  readonly enabled?: boolean;
  readonly effort?: 'minimal' | 'low' | 'medium' | 'high';
  /** Most tokens of thinking before the answer is forced (Anthropic's `budget_tokens`). */
  readonly budgetTokens?: number;
}

/** Sampling and length controls. Absent fields mean "the engine's default". */
export interface SamplingOptions {
  /** Upper bound on generated tokens. Absent: as many as the context allows. */
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly seed?: number;
  /** Generation stops before any of these strings; the stop text is not emitted. */
  readonly stop?: readonly string[];
  /** OpenAI's penalties, -2..2: subtract once per token seen (presence) or per occurrence (frequency). */
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** llama.cpp's multiplicative repeat penalty (1 = off). */
  readonly repeatPenalty?: number;
  /** Token id → bias added to its logit, -100..100 (-100 bans the token, 100 forces it). */
  readonly logitBias?: ReadonlyMap<number, number>;
  /** Return each generated token's log-probability, and this many alternatives per position (0..20). */
  readonly logprobs?: { readonly topLogprobs: number };
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
  /** Functions the model may call (chat input only). Absent or empty: no tools. */
  readonly tools?: readonly ToolDefinition[];
  /** Absent: `auto` when there are tools. */
  readonly toolChoice?: ToolChoice;
  /** false: at most one call per reply. Absent: the engine's default (several allowed). */
  readonly parallelToolCalls?: boolean;
  /** Absent: free text. */
  readonly responseFormat?: ResponseFormat;
  readonly reasoning?: ReasoningOptions;
}

/**
 * What a model can honour. A dialect or the core refuses a request that needs a capability its model lacks
 * with a 400 `unsupported_parameter` naming the field, before anything is generated ({@link requiredCapabilities}
 * in core/capabilities.ts maps a request to what it needs). An upstream relay declares what it passes through.
 */
export type Capability =
  | 'tools'
  | 'tool_choice' // `required` and named functions, enforced
  | 'parallel_tool_calls'
  | 'json_object'
  | 'json_schema'
  | 'reasoning' // reasoning deltas are separated from the answer
  | 'reasoning_effort'
  | 'images'
  | 'top_k'
  | 'min_p'
  | 'seed'
  | 'presence_penalty'
  | 'frequency_penalty'
  | 'repeat_penalty'
  | 'logit_bias'
  | 'logprobs'
  | 'embeddings'
  | 'rerank';

/** Why a generation ended. Mirrors OpenAI's `finish_reason` plus the two cases it lacks. */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled' | 'error';

export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens that were already in the engine's cache and not evaluated again (OpenAI's `cached_tokens`). */
  readonly cachedPromptTokens?: number;
  /** Completion tokens spent on reasoning (OpenAI's `reasoning_tokens`). */
  readonly reasoningTokens?: number;
}

/** One generated token's log-probability, with the most likely alternatives at its position. */
export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly top: readonly { readonly token: string; readonly logprob: number }[];
}

/**
 * The events of one generation, in order: any mix of text, reasoning and tool-call events, then usage, then
 * finish.
 *
 * Tool calls: `tool-call-start` carries a call's index (0, 1, … in the order calls begin), its id and its
 * whole name; then `tool-call-delta` events append fragments of its arguments' JSON text. Calls are keyed by
 * index, so two parallel calls may interleave their deltas. A generation that made calls finishes with
 * `tool_calls`. Engines that learn a name in pieces (an upstream) buffer it until it is whole.
 */
export type ChatEvent =
  | { readonly type: 'text-delta'; readonly text: string; readonly logprobs?: readonly TokenLogprob[] }
  | { readonly type: 'reasoning-delta'; readonly text: string }
  | { readonly type: 'tool-call-start'; readonly index: number; readonly id: string; readonly name: string }
  | { readonly type: 'tool-call-delta'; readonly index: number; readonly argumentsDelta: string }
  | { readonly type: 'usage'; readonly usage: TokenUsage }
  | { readonly type: 'error'; readonly code: ErrorCode; readonly message: string }
  /** `stopSequence`: with reason `stop`, the request's stop string that ended it, where the engine knows (Anthropic's `stop_sequence`). */
  | { readonly type: 'finish'; readonly reason: FinishReason; readonly stopSequence?: string };

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
  /** What requests for this model may ask for (see {@link Capability}). */
  readonly capabilities: ReadonlySet<Capability>;
  /**
   * Where a model library holds it: in memory (`loaded`), being read (`loading`), a file only (`on disk`, loaded by
   * the first request for it), or a file that could not be loaded (`failed`, see `loadError`). Absent: always ready.
   */
  readonly state?: ModelState;
  /** Why the last load failed, with the file's path (state `failed`). */
  readonly loadError?: string;
  /** The size of the model's file in bytes, where it is a local file. */
  readonly sizeBytes?: number;
  /** How much of the model's file is read, 0 to 1, while its state is `loading`. */
  readonly loadProgress?: number;
}

export type ModelState = 'loaded' | 'loading' | 'on disk' | 'failed';

export interface EmbeddingRequest {
  readonly model: string;
  /** At least one text; dialects bound the count and the tokens. */
  readonly inputs: readonly string[];
}

export interface EmbeddingResult {
  /** One vector per input, in order, pooled and normalised as the model declares. */
  readonly vectors: readonly Float32Array[] | readonly (readonly number[])[];
  readonly promptTokens: number;
}

export interface RerankRequest {
  readonly model: string;
  readonly query: string;
  readonly documents: readonly string[];
}

export interface RerankResult {
  /** One score per document, in the documents' order (higher is more relevant). */
  readonly scores: readonly number[];
  readonly promptTokens: number;
}

/** A point-in-time view of an engine's load, for `/health` and metrics. */
export interface EngineLoad {
  readonly active: number;
  readonly queued: number;
  readonly capacity: number;
}

/** What runs an in-process engine's models, for an operator (`/health`): the embedded engine's llama.cpp binary. */
export interface EngineRuntime {
  /** `local build`: compiled on this machine by `parlance engine build`; `prebuilt`: the npm package's. */
  readonly binary: 'local build' | 'prebuilt';
  /** The backend: `cuda`, `vulkan`, `metal`, or false for the CPU. */
  readonly gpu: string | false;
  /** The llama.cpp release the binding names for its source. */
  readonly release: string;
  /** The binding's batch dispatch loop: as shipped, or patched by `parlance engine build`. */
  readonly dispatchLoop: 'patched' | 'as shipped' | 'unknown';
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
  /** Tokens the request's prompt takes after templating (Anthropic's count_tokens, the page's context meter). */
  countTokens?(request: GenerationRequest, signal: AbortSignal): Promise<number>;
  /** For models with the `embeddings` capability; admitted and bounded like `open`. */
  embed?(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult>;
  /** For models with the `rerank` capability. */
  rerank?(request: RerankRequest, signal: AbortSignal): Promise<RerankResult>;
  load(): EngineLoad;
  /** What runs the models, for an in-process engine (absent for upstreams). */
  runtime?(): EngineRuntime | undefined;
  /** One model's share of {@link load}, for an engine that serves several (a model library); undefined when it is not in memory. */
  modelLoad?(modelId: string): EngineLoad | undefined;
  /** Waits for running generations to end (they should have been aborted), then frees everything. */
  close(): Promise<void>;
}
