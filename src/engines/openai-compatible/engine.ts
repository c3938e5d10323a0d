import { createParser, type EventSourceMessage, type EventSourceParser, type ParseError } from 'eventsource-parser';
import { ParlanceError, type ErrorCode } from '../../core/errors.js';
import type {
  ChatEvent,
  Engine,
  EngineLoad,
  FinishReason,
  Generation,
  GenerationInput,
  GenerationRequest,
  ModelInfo,
  TokenUsage,
} from '../contract.js';

export interface OpenAICompatibleEngineOptions {
  /** Names the upstream in logs, metrics and error messages. */
  readonly name: string;
  /** The API root, e.g. `http://host:8000/v1` (no trailing `/chat/completions`). */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never appears in any message we produce. */
  readonly apiKey?: string;
  /** The model ids this upstream serves; when absent, {@link OpenAICompatibleEngine.discover} asks it. */
  readonly models?: readonly string[];
  /** Longest wait for the next piece of generated text once the stream has started. */
  readonly stallTimeoutMs: number;
  /** Deadline for one whole request, headers and stream together. */
  readonly totalTimeoutMs: number;
  /** Longest wait for response headers. Default: `stallTimeoutMs`, since both mean "no sign of progress". */
  readonly connectTimeoutMs?: number;
  /** Reported by `load()` only; the upstream does its own queueing. Default: Infinity. */
  readonly capacity?: number;
}

/** Why a flight's upstream fetch was aborted; the first cause wins. */
type AbortCause = 'client' | 'closed' | 'consumer' | 'connect' | 'stall' | 'deadline';

/** The subset of an OpenAI stream chunk we read; everything is checked before use since the upstream is untrusted. */
interface StreamChunk {
  readonly choices?: readonly (StreamChoice | null)[];
  readonly usage?: { readonly prompt_tokens?: unknown; readonly completion_tokens?: unknown } | null;
  readonly error?: unknown;
}

interface StreamChoice {
  readonly delta?: { readonly content?: unknown; readonly reasoning_content?: unknown; readonly reasoning?: unknown } | null;
  readonly text?: unknown;
  readonly finish_reason?: unknown;
}

interface UpstreamErrorInfo {
  readonly message?: string;
  readonly param?: string;
  readonly code?: string;
}

const STREAM_DECODE = { stream: true } as const;
/** Error bodies are read for their message only; a misbehaving upstream must not make us buffer megabytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_MESSAGE_CHARS = 500;
/** An endless line or event from a broken upstream must not grow our memory without bound. */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;
/** After `[DONE]` we wait this long for the body's end so the connection can be reused, then drop it. */
const DRAIN_AFTER_DONE_MS = 1000;

const noop = (): void => {};

/**
 * An engine that relays generation to an OpenAI-compatible server (vLLM,
 * llama.cpp's server, Ollama, hosted APIs) over streaming HTTP.
 *
 * Errors before the upstream's 200 become `open()` rejections that keep what
 * the upstream said (4xx pass through; 5xx, refusals and timeouts become 502,
 * 503 and 504 naming the upstream). After that, every failure is an in-stream
 * `error` event followed by `finish: error`; an upstream stream that simply
 * stops is never turned into a normal finish.
 */
export class OpenAICompatibleEngine implements Engine {
  readonly name: string;
  /** Why the last discovery failed, if it did; cleared by a successful one. */
  lastError: ParlanceError | undefined;

  private readonly baseUrl: string;
  private readonly label: string;
  private readonly apiKey: string | undefined;
  private readonly requestHeaders: Record<string, string>;
  private readonly stallTimeoutMs: number;
  private readonly totalTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly capacity: number;
  private readonly configuredModels: boolean;
  private modelList: readonly ModelInfo[];
  private readonly flights = new Set<Flight>();
  private closed = false;

  constructor(options: OpenAICompatibleEngineOptions) {
    this.name = options.name;
    this.baseUrl = options.baseUrl.endsWith('/') ? options.baseUrl.slice(0, -1) : options.baseUrl;
    // URL.host leaves out any user:password, so the label is always safe to show to clients.
    this.label = `upstream "${options.name}" (${new URL(this.baseUrl).host})`;
    this.apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.requestHeaders = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (this.apiKey !== undefined) this.requestHeaders['authorization'] = `Bearer ${this.apiKey}`;
    this.stallTimeoutMs = options.stallTimeoutMs;
    this.totalTimeoutMs = options.totalTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? options.stallTimeoutMs;
    this.capacity = options.capacity ?? Number.POSITIVE_INFINITY;
    this.configuredModels = options.models !== undefined;
    this.modelList = (options.models ?? []).map((id) => ({ id, ownedBy: options.name }));
    this.lastError = undefined;
  }

  models(): readonly ModelInfo[] {
    return this.modelList;
  }

  load(): EngineLoad {
    return { active: this.flights.size, queued: 0, capacity: this.capacity };
  }

  /**
   * Asks the upstream for its models (`GET /models`) unless they were configured.
   * Never throws: an upstream that is down at start-up must not stop Parlance
   * from starting, so a failure is kept in `lastError` and leaves the list as
   * it was: empty at start-up, the last known one on a later rediscovery (a
   * blip should make requests fail over, not make the models vanish).
   */
  async discover(): Promise<void> {
    if (this.configuredModels) return;
    try {
      const response = await fetch(`${this.baseUrl}/models`, {
        headers: this.apiKey === undefined ? {} : { authorization: `Bearer ${this.apiKey}` },
        signal: AbortSignal.timeout(this.connectTimeoutMs),
        redirect: 'manual',
      });
      const text = await readBounded(response, 16 * 1024 * 1024);
      if (response.status !== 200) {
        throw new ParlanceError('upstream_error', `${this.label} answered HTTP ${response.status} to GET /models`);
      }
      this.modelList = this.parseModelList(text);
      this.lastError = undefined;
    } catch (error) {
      this.lastError = error instanceof ParlanceError ? error : this.fetchFailure(error, 'discovering models from');
    }
  }

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    if (this.closed) throw new ParlanceError('engine_unavailable', `${this.label} is shutting down`);
    if (signal.aborted) return cancelledGeneration();
    const input = request.input;
    const flight = new Flight(this.flights, signal, this.connectTimeoutMs, this.totalTimeoutMs);
    let response: Response;
    try {
      response = await fetch(input.kind === 'chat' ? `${this.baseUrl}/chat/completions` : `${this.baseUrl}/completions`, {
        method: 'POST',
        headers: this.requestHeaders,
        body: requestBody(request),
        signal: flight.controller.signal,
        // A redirect would replay our key to wherever it points; a moved API is a config error to fix, not follow.
        redirect: 'manual',
      });
    } catch (error) {
      flight.release();
      if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
      throw this.abortFailure(flight) ?? this.fetchFailure(error, 'reaching');
    }

    const contentType = response.headers.get('content-type');
    if (response.status !== 200 || response.body === null || contentType === null || !contentType.toLowerCase().startsWith('text/event-stream')) {
      let text = '';
      try {
        text = await readBounded(response, MAX_ERROR_BODY_BYTES);
      } catch (error) {
        flight.release();
        if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
        throw this.abortFailure(flight) ?? this.fetchFailure(error, 'reading an error from');
      }
      flight.release();
      throw this.statusFailure(response, text, contentType);
    }

    flight.streaming(this.stallTimeoutMs);
    return new UpstreamGeneration(() => relay(flight, response.body as ReadableStream<Uint8Array>, input, this.label));
  }

  /** Aborts every in-flight upstream request; their generations end with `finish: cancelled`. */
  close(): Promise<void> {
    this.closed = true;
    for (const flight of [...this.flights]) flight.abort('closed');
    return Promise.resolve();
  }

  private parseModelList(text: string): ModelInfo[] {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ParlanceError('upstream_error', `${this.label} answered GET /models with something that is not JSON`);
    }
    const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
    if (!Array.isArray(data)) throw new ParlanceError('upstream_error', `${this.label} answered GET /models without a "data" list`);
    const models: ModelInfo[] = [];
    for (const entry of data as unknown[]) {
      if (typeof entry !== 'object' || entry === null) continue;
      const { id, max_model_len: maxModelLen } = entry as { id?: unknown; max_model_len?: unknown };
      if (typeof id !== 'string' || id === '') continue;
      // vLLM reports the context it actually serves; other servers' fields describe training context, so they are not used.
      models.push(typeof maxModelLen === 'number' && maxModelLen > 0 ? { id, ownedBy: this.name, contextLength: maxModelLen } : { id, ownedBy: this.name });
    }
    return models;
  }

  private abortFailure(flight: Flight): ParlanceError | undefined {
    if (flight.cause === 'connect') return new ParlanceError('upstream_timeout', `${this.label} sent no response headers within ${this.connectTimeoutMs} ms`);
    if (flight.cause === 'deadline') return new ParlanceError('upstream_timeout', `${this.label} exceeded the request deadline of ${this.totalTimeoutMs} ms`);
    return undefined;
  }

  /** Maps a fetch rejection (refused, reset, DNS, our own timers) to a registry error. */
  private fetchFailure(error: unknown, doing: string): ParlanceError {
    if (error instanceof ParlanceError) return error;
    const code = errorCodeOf(error);
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new ParlanceError('upstream_timeout', `${this.label} did not answer in time`, { cause: error });
    }
    const detail = code ?? (error instanceof Error ? error.message : String(error));
    return new ParlanceError('engine_unavailable', `error ${doing} ${this.label}: ${detail}`, { cause: error });
  }

  /** Maps a non-200 (or non-SSE) upstream answer to a registry error, keeping a 4xx's status and message. */
  private statusFailure(response: Response, text: string, contentType: string | null): ParlanceError {
    const status = response.status;
    if (status === 200) {
      return new ParlanceError('upstream_error', `${this.label} answered ${contentType ?? 'no content type'} instead of an event stream`);
    }
    if (status === 401 || status === 403) {
      // The upstream rejected *our* credentials: not the client's fault, and its message may echo part of the key.
      return new ParlanceError('upstream_error', `${this.label} rejected Parlance's credentials (HTTP ${status}); check its API key`);
    }
    const info = parseErrorBody(text);
    const message = info.message === undefined ? undefined : this.redact(info.message);
    if (status === 429) {
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      return new ParlanceError('queue_full', message ?? `${this.label} is rate limiting requests`, {
        status: 429,
        ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
      });
    }
    if (status >= 400 && status < 500) {
      if (status === 404) {
        // Without an OpenAI error body a 404 means a wrong baseUrl, not a client mistake.
        if (message === undefined) return new ParlanceError('upstream_error', `${this.label} answered HTTP 404; check its base URL`);
        return new ParlanceError('model_not_found', message, { status: 404, param: info.param ?? 'model' });
      }
      return new ParlanceError('invalid_request', message ?? `${this.label} rejected the request (HTTP ${status})`, {
        status,
        ...(info.param === undefined ? {} : { param: info.param }),
      });
    }
    const suffix = message === undefined ? '' : `: ${message}`;
    return new ParlanceError('upstream_error', `${this.label} failed with HTTP ${status}${suffix}`);
  }

  private redact(text: string): string {
    const clipped = text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
    return this.apiKey !== undefined && clipped.includes(this.apiKey) ? clipped.split(this.apiKey).join('[redacted]') : clipped;
  }
}

/**
 * One upstream request's lifetime: its AbortController, its timers and its
 * place in the engine's in-flight set. Every way a request can end funnels
 * through `abort()` and `release()`, both idempotent.
 */
class Flight {
  readonly controller = new AbortController();
  cause: AbortCause | undefined;
  /** When the stream last produced text; read by the stall timer, written once per network read. */
  lastProgressAt = 0;
  /** True while the relay waits on the socket; otherwise the consumer is holding us up, which is not the upstream stalling. */
  reading = false;
  private released = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly totalTimer: NodeJS.Timeout;
  stallTimeoutMs = 0;
  private readonly onClientAbort = (): void => this.abort('client');

  constructor(
    private readonly flights: Set<Flight>,
    private readonly signal: AbortSignal,
    connectTimeoutMs: number,
    totalTimeoutMs: number,
  ) {
    flights.add(this);
    signal.addEventListener('abort', this.onClientAbort, { once: true });
    this.connectTimer = setTimeout(() => this.abort('connect'), connectTimeoutMs);
    this.totalTimer = setTimeout(() => this.abort('deadline'), totalTimeoutMs);
  }

  /** Headers are in: from now on only a lack of generated text counts as a stall. */
  streaming(stallTimeoutMs: number): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.stallTimeoutMs = stallTimeoutMs;
    this.lastProgressAt = Date.now();
    this.stallTimer = setTimeout(this.checkStall, stallTimeoutMs);
  }

  // Re-arming for the remaining time, rather than resetting a timer on every chunk, keeps per-token work to one Date.now().
  private readonly checkStall = (): void => {
    if (this.released) return;
    if (!this.reading) {
      // A slow client (backpressure) keeps us from reading; restart the clock rather than blame the upstream.
      this.lastProgressAt = Date.now();
      this.stallTimer = setTimeout(this.checkStall, this.stallTimeoutMs);
      return;
    }
    const idle = Date.now() - this.lastProgressAt;
    if (idle >= this.stallTimeoutMs) this.abort('stall');
    else if (!this.released) this.stallTimer = setTimeout(this.checkStall, this.stallTimeoutMs - idle);
  };

  abort(cause: AbortCause): void {
    if (this.cause !== undefined) return;
    this.cause = cause;
    this.controller.abort();
    // The socket is gone with the abort, so the slot is free even if nobody ever iterates the generation.
    this.release();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.flights.delete(this);
    this.signal.removeEventListener('abort', this.onClientAbort);
    clearTimeout(this.connectTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.totalTimer);
  }
}

class UpstreamGeneration implements Generation {
  /** Upstreams report prompt tokens only in their final usage chunk, so nothing is known at admission. */
  readonly promptTokens = 0;
  private started = false;

  constructor(private readonly start: () => AsyncGenerator<ChatEvent>) {}

  [Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
    if (this.started) throw new Error('a Generation can be iterated only once');
    this.started = true;
    return this.start();
  }
}

function cancelledGeneration(): Generation {
  return new UpstreamGeneration(async function* () {
    yield { type: 'usage', usage: { promptTokens: 0, completionTokens: 0 } };
    yield { type: 'finish', reason: 'cancelled' };
  });
}

/**
 * Turns parsed SSE events into chat events. It is the parser's callback, so it
 * runs once per upstream event: one JSON.parse, a few property reads, and one
 * event object when there is text.
 */
class ChunkDecoder {
  readonly pending: ChatEvent[] = [];
  contentChunks = 0;
  /** Counts text and reasoning deltas: anything that shows the model is generating. */
  progress = 0;
  usage: TokenUsage | undefined;
  finishReason: FinishReason | undefined;
  sawDone = false;
  failure: string | undefined;
  private readonly chat: boolean;

  constructor(input: GenerationInput) {
    this.chat = input.kind === 'chat';
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
      return;
    }
    let chunk: StreamChunk | null;
    try {
      chunk = JSON.parse(data) as StreamChunk | null;
    } catch {
      this.failure = 'sent a chunk that is not JSON';
      return;
    }
    if (typeof chunk !== 'object' || chunk === null) {
      this.failure = 'sent a chunk that is not a JSON object';
      return;
    }
    if (chunk.error !== undefined && chunk.error !== null) {
      this.failure = describeError(chunk.error) ?? 'sent an error';
      return;
    }
    const choice = chunk.choices?.[0];
    if (typeof choice === 'object' && choice !== null) {
      if (this.chat) {
        const delta = choice.delta;
        if (typeof delta === 'object' && delta !== null) {
          const text = delta.content;
          if (typeof text === 'string' && text !== '') {
            this.pending.push({ type: 'text-delta', text });
            this.contentChunks++;
            this.progress++;
          } else if (isNonEmptyString(delta.reasoning_content) || isNonEmptyString(delta.reasoning)) {
            // Reasoning models think for a long time before any content; that is progress, not a stall.
            this.progress++;
          }
        }
      } else {
        const text = choice.text;
        if (typeof text === 'string' && text !== '') {
          this.pending.push({ type: 'text-delta', text });
          this.contentChunks++;
          this.progress++;
        }
      }
      const reason = choice.finish_reason;
      if (typeof reason === 'string') this.finishReason = reason === 'length' ? 'length' : 'stop';
    }
    const usage = chunk.usage;
    if (typeof usage === 'object' && usage !== null) {
      const prompt = usage.prompt_tokens;
      const completion = usage.completion_tokens;
      this.usage = {
        promptTokens: typeof prompt === 'number' ? prompt : 0,
        completionTokens: typeof completion === 'number' ? completion : this.contentChunks,
      };
    }
  };

  /** Unknown fields and bad `retry:` values are harmless noise; only an overflowing event ends the stream. */
  readonly onParseError = (error: ParseError): void => {
    if (error.type === 'max-buffer-size-exceeded' && this.failure === undefined) this.failure = 'sent an event larger than 8 MiB';
  };

  finalUsage(): TokenUsage {
    return this.usage ?? { promptTokens: 0, completionTokens: this.contentChunks };
  }
}

/** Reads the upstream's event stream and yields the contract's events; see the class comment for the error rules. */
async function* relay(flight: Flight, body: ReadableStream<Uint8Array>, input: GenerationInput, label: string): AsyncGenerator<ChatEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const chunks = new ChunkDecoder(input);
  const parser: EventSourceParser = createParser({ onEvent: chunks.onEvent, onError: chunks.onParseError, maxBufferSize: MAX_EVENT_CHARS });
  const pending = chunks.pending;
  let eof = false;
  let readError: unknown;
  let ended = false;
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      flight.reading = true;
      try {
        result = await reader.read();
      } catch (error) {
        readError = error;
        break;
      } finally {
        flight.reading = false;
      }
      if (flight.cause !== undefined) break;
      if (result.done) {
        // An event cut off without its blank line is dropped, as the SSE spec says.
        eof = true;
        break;
      }
      const before = chunks.progress;
      parser.feed(decoder.decode(result.value, STREAM_DECODE));
      if (chunks.progress !== before) flight.lastProgressAt = Date.now();
      if (pending.length !== 0) {
        for (let i = 0; i < pending.length; i++) {
          if (flight.cause !== undefined) break;
          yield pending[i] as ChatEvent;
        }
        pending.length = 0;
      }
      if (chunks.sawDone || chunks.failure !== undefined || flight.cause !== undefined) break;
    }

    const cause = flight.cause;
    if (cause === 'client' || cause === 'closed') {
      ended = true;
      yield { type: 'usage', usage: chunks.finalUsage() };
      yield { type: 'finish', reason: 'cancelled' };
      return;
    }
    let error: { code: ErrorCode; message: string } | undefined;
    if (cause === 'stall') error = { code: 'upstream_timeout', message: `${label} stalled: no text for ${flight.stallTimeoutMs} ms` };
    else if (cause === 'deadline') error = { code: 'upstream_timeout', message: `${label} exceeded the request deadline` };
    else if (chunks.failure !== undefined) error = { code: 'upstream_error', message: `${label} ${chunks.failure}` };
    else if (readError !== undefined) error = streamReadFailure(readError, label);
    else if (eof && !chunks.sawDone && chunks.finishReason === undefined) {
      error = { code: 'upstream_error', message: `${label} ended the stream without finishing the generation` };
    }
    ended = true;
    if (error !== undefined) {
      yield { type: 'error', code: error.code, message: error.message };
      yield { type: 'usage', usage: chunks.finalUsage() };
      yield { type: 'finish', reason: 'error' };
      return;
    }
    yield { type: 'usage', usage: chunks.finalUsage() };
    yield { type: 'finish', reason: chunks.finishReason ?? 'stop' };
  } finally {
    if (!ended || (!eof && !chunks.sawDone)) {
      // The consumer left early (return()), something threw, or the upstream erred mid-stream: it must stop generating for nobody.
      flight.abort('consumer');
    } else if (!eof && flight.cause === undefined) {
      drainThenRelease(flight, reader);
    }
    flight.release();
  }
}

/**
 * After `[DONE]` the body's end is usually already on its way; reading it lets
 * the connection go back to the pool. An upstream that keeps the response open
 * anyway loses the connection after a short grace period.
 */
function drainThenRelease(flight: Flight, reader: ReadableStreamDefaultReader<Uint8Array>): void {
  flight.release();
  const timer = setTimeout(() => flight.controller.abort(), DRAIN_AFTER_DONE_MS);
  reader.read().then(
    (result) => {
      clearTimeout(timer);
      if (!result.done) flight.controller.abort();
    },
    () => clearTimeout(timer),
  );
}

function streamReadFailure(error: unknown, label: string): { code: ErrorCode; message: string } {
  const code = errorCodeOf(error);
  if (code === 'UND_ERR_BODY_TIMEOUT') return { code: 'upstream_timeout', message: `${label} stopped sending data` };
  return { code: 'upstream_error', message: `${label} closed the connection mid-stream${code === undefined ? '' : ` (${code})`}` };
}

function requestBody(request: GenerationRequest): string {
  const input = request.input;
  const sampling = request.sampling;
  const body: Record<string, unknown> = { model: request.model };
  if (input.kind === 'chat') body['messages'] = input.messages;
  else body['prompt'] = input.prompt;
  body['stream'] = true;
  body['stream_options'] = { include_usage: true };
  if (sampling.maxTokens !== undefined) body['max_tokens'] = sampling.maxTokens;
  if (sampling.temperature !== undefined) body['temperature'] = sampling.temperature;
  if (sampling.topP !== undefined) body['top_p'] = sampling.topP;
  if (sampling.seed !== undefined) body['seed'] = sampling.seed;
  // Some servers reject an empty stop list, and it means the same as none.
  if (sampling.stop !== undefined && sampling.stop.length > 0) body['stop'] = sampling.stop;
  return JSON.stringify(body);
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    text += decoder.decode(value, STREAM_DECODE);
    if (bytes >= maxBytes) {
      await reader.cancel().catch(noop);
      break;
    }
  }
  return text + decoder.decode();
}

/** Reads OpenAI's `{error:{message,param,code}}`, Ollama's `{error:"…"}` and older vLLM's top-level `{message,…}`. */
function parseErrorBody(text: string): UpstreamErrorInfo {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof body !== 'object' || body === null) return {};
  const error = (body as { error?: unknown }).error;
  if (typeof error === 'string') return { message: error };
  const source = typeof error === 'object' && error !== null ? error : body;
  const { message, param, code } = source as { message?: unknown; param?: unknown; code?: unknown };
  return {
    ...(typeof message === 'string' && message !== '' ? { message } : {}),
    ...(typeof param === 'string' && param !== '' ? { param } : {}),
    ...(typeof code === 'string' && code !== '' ? { code } : {}),
  };
}

function describeError(error: unknown): string | undefined {
  if (typeof error === 'string') return `sent an error: ${clip(error)}`;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return `sent an error: ${clip(message)}`;
  }
  return undefined;
}

function describeStreamError(data: string): string | undefined {
  try {
    const body: unknown = JSON.parse(data);
    if (typeof body === 'object' && body !== null && 'error' in body) return describeError((body as { error: unknown }).error);
    return describeError(body);
  } catch {
    return data === '' ? undefined : `sent an error: ${clip(data)}`;
  }
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}

function isNonEmptyString(value: unknown): boolean {
  return typeof value === 'string' && value !== '';
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** undici puts the system error (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET, …) on `cause.code`. */
function errorCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
