import type { EventSourceMessage, ParseError } from 'eventsource-parser';
import type { ChatEvent, FinishReason, GenerationInput, TokenLogprob, TokenUsage } from '../contract.js';
import { ToolCallAssembler } from './tool-call-assembler.js';
import { describeError, describeStreamError } from './upstream-errors.js';

/** The subset of an OpenAI stream chunk (or whole answer) we read; everything is checked before use since the upstream is untrusted. */
export interface UpstreamChunk {
  readonly choices?: readonly (UpstreamChoice | null)[];
  readonly usage?: {
    readonly prompt_tokens?: unknown;
    readonly completion_tokens?: unknown;
    readonly prompt_tokens_details?: { readonly cached_tokens?: unknown } | null;
    readonly completion_tokens_details?: { readonly reasoning_tokens?: unknown } | null;
  } | null;
  readonly error?: unknown;
}

interface UpstreamDelta {
  readonly content?: unknown;
  readonly reasoning_content?: unknown;
  /** The spelling of Ollama, LM Studio and newer vLLM. */
  readonly reasoning?: unknown;
  readonly tool_calls?: unknown;
}

interface UpstreamChoice {
  readonly delta?: UpstreamDelta | null;
  /** A non-streamed answer's message; read like a delta whose tool calls are whole. */
  readonly message?: UpstreamDelta | null;
  readonly text?: unknown;
  readonly finish_reason?: unknown;
  /** vLLM's: the stop string that ended the reply (a token id when a stop token did). */
  readonly stop_reason?: unknown;
  readonly logprobs?: unknown;
}

const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value !== '';
const asNumber = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function toFinishReason(reason: string): FinishReason {
  if (reason === 'length') return 'length';
  // `function_call` is the deprecated spelling of the same thing.
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'stop';
}

/** Chat's `logprobs.content` or the legacy API's columns, as the contract's entries; undefined when absent or malformed. */
function toLogprobs(value: unknown): TokenLogprob[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { content, tokens, token_logprobs: tokenLogprobs, top_logprobs: topLogprobs } = value as Record<string, unknown>;
  if (Array.isArray(content)) {
    return content.flatMap((entry: unknown) => {
      if (typeof entry !== 'object' || entry === null) return [];
      const { token, logprob, top_logprobs: top } = entry as Record<string, unknown>;
      if (typeof token !== 'string' || asNumber(logprob) === undefined) return [];
      const alternatives = Array.isArray(top)
        ? top.flatMap((alt: unknown) => {
            const { token: altToken, logprob: altLogprob } = (typeof alt === 'object' && alt !== null ? alt : {}) as Record<string, unknown>;
            const lp = asNumber(altLogprob);
            return typeof altToken === 'string' && lp !== undefined ? [{ token: altToken, logprob: lp }] : [];
          })
        : [];
      return [{ token, logprob: logprob as number, top: alternatives }];
    });
  }
  if (Array.isArray(tokens) && Array.isArray(tokenLogprobs)) {
    return tokens.flatMap((token: unknown, i) => {
      const lp = asNumber(tokenLogprobs[i]);
      if (typeof token !== 'string' || lp === undefined) return [];
      const alts: unknown = Array.isArray(topLogprobs) ? topLogprobs[i] : undefined;
      const top = typeof alts === 'object' && alts !== null ? Object.entries(alts).flatMap(([altToken, altLp]) => (asNumber(altLp) === undefined ? [] : [{ token: altToken, logprob: altLp as number }])) : [];
      return [{ token, logprob: lp, top }];
    });
  }
  return undefined;
}

/**
 * Turns parsed SSE events (or a whole non-streamed answer) into chat events. It is the parser's callback,
 * so it runs once per upstream event: one JSON.parse, a few property reads, and one event object when
 * there is text.
 */
export class ChunkDecoder {
  readonly pending: ChatEvent[] = [];
  contentChunks = 0;
  /** Counts text, reasoning and tool-call deltas: anything that shows the model is generating. */
  progress = 0;
  usage: TokenUsage | undefined;
  sawDone = false;
  failure: string | undefined;
  /** The stop string that ended the reply, where the upstream says (vLLM's `stop_reason`). */
  stopSequence: string | undefined;
  private reason: FinishReason | undefined;
  private readonly chat: boolean;
  private readonly calls: ToolCallAssembler;

  constructor(input: GenerationInput, newCallId: () => string) {
    this.chat = input.kind === 'chat';
    this.calls = new ToolCallAssembler(this.pending, newCallId);
  }

  /** The upstream's finish reason; a reply that made calls finished with `tool_calls` whatever the upstream said (older Ollama says `stop`). */
  get finishReason(): FinishReason | undefined {
    if (this.reason === 'stop' && this.calls.count > 0) return 'tool_calls';
    return this.reason;
  }

  readonly onEvent = (event: EventSourceMessage): void => {
    if (this.sawDone || this.failure !== undefined) return;
    const type = event.event;
    if (type !== undefined && type !== 'message') {
      // Only an error is worth relaying; other event types would let an upstream push arbitrary events through us.
      if (type === 'error') this.failure = describeStreamError(event.data) ?? 'sent an error event';
      return;
    }
    const data = event.data;
    if (data === '[DONE]') {
      this.sawDone = true;
      this.end();
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      this.failure = 'sent a chunk that is not JSON';
      return;
    }
    this.onChunk(chunk);
  };

  /** One stream chunk, or a whole answer (`choices[0].message`). */
  onChunk(value: unknown): void {
    if (typeof value !== 'object' || value === null) {
      this.failure = 'sent a chunk that is not a JSON object';
      return;
    }
    const chunk = value as UpstreamChunk;
    if (chunk.error !== undefined && chunk.error !== null) {
      this.failure = describeError(chunk.error) ?? 'sent an error';
      return;
    }
    const choice = chunk.choices?.[0];
    if (typeof choice === 'object' && choice !== null) {
      if (this.chat) this.onDelta(choice);
      else if (isNonEmptyString(choice.text)) this.text(choice.text, choice.logprobs);
      const reason = choice.finish_reason;
      if (typeof reason === 'string') {
        this.reason = toFinishReason(reason);
        if (this.reason === 'stop' && isNonEmptyString(choice.stop_reason)) this.stopSequence = choice.stop_reason;
        this.end();
      }
    }
    const usage = chunk.usage;
    if (typeof usage === 'object' && usage !== null) {
      const cached = asNumber(usage.prompt_tokens_details?.cached_tokens);
      const reasoning = asNumber(usage.completion_tokens_details?.reasoning_tokens);
      this.usage = {
        promptTokens: asNumber(usage.prompt_tokens) ?? 0,
        completionTokens: asNumber(usage.completion_tokens) ?? this.contentChunks,
        ...(cached === undefined ? {} : { cachedPromptTokens: cached }),
        ...(reasoning === undefined ? {} : { reasoningTokens: reasoning }),
      };
    }
  }

  /** Unknown fields and bad `retry:` values are harmless noise; only an overflowing event ends the stream. */
  readonly onParseError = (error: ParseError): void => {
    if (error.type === 'max-buffer-size-exceeded' && this.failure === undefined) this.failure = 'sent an event larger than 8 MiB';
  };

  finalUsage(): TokenUsage {
    return this.usage ?? { promptTokens: 0, completionTokens: this.contentChunks };
  }

  private onDelta(choice: UpstreamChoice): void {
    const whole = choice.delta == null ? choice.message : undefined;
    const delta = whole ?? choice.delta;
    if (typeof delta !== 'object' || delta === null) return;
    const reasoning = isNonEmptyString(delta.reasoning_content) ? delta.reasoning_content : isNonEmptyString(delta.reasoning) ? delta.reasoning : undefined;
    if (reasoning !== undefined) {
      // Reasoning models think for a long time before any content; that is progress, not a stall.
      this.pending.push({ type: 'reasoning-delta', text: reasoning });
      this.contentChunks++;
      this.progress++;
    }
    if (isNonEmptyString(delta.content)) this.text(delta.content, choice.logprobs);
    const calls = delta.tool_calls;
    if (Array.isArray(calls) && calls.length > 0) {
      // A whole message's calls may come without indexes: their position is their index.
      calls.forEach((call: unknown, position) => this.calls.add(call, whole === undefined ? undefined : position));
      this.contentChunks++;
      this.progress++;
    }
  }

  private text(text: string, logprobs: unknown): void {
    const entries = logprobs === undefined || logprobs === null ? undefined : toLogprobs(logprobs);
    this.pending.push(entries === undefined ? { type: 'text-delta', text } : { type: 'text-delta', text, logprobs: entries });
    this.contentChunks++;
    this.progress++;
  }

  /** The upstream finished: calls still waiting on their names are whole. */
  private end(): void {
    const failure = this.calls.finish();
    if (failure !== undefined) this.failure ??= failure;
  }
}
