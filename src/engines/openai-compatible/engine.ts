import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage, type EventSourceParser, type ParseError } from 'eventsource-parser';
import { ParlanceError, type ErrorCode } from '../../errors.js';
import type {
  Capability,
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  Engine,
  EngineLoad,
  FinishReason,
  Generation,
  GenerationInput,
  GenerationRequest,
  ModelInfo,
  RerankRequest,
  RerankResult,
  TokenUsage,
} from '../contract.js';
import { relayEmbeddings, relayRerank, type UpstreamJsonCall } from './embeddings.js';

/** The request fields this relay passes upstream; the upstream then honours or refuses them itself. */
const relayedCapabilities: ReadonlySet<Capability> = new Set<Capability>(['seed', 'embeddings', 'rerank']);

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

/** Why a flight's upstream request was aborted; the first cause wins. */
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
/** Upstream text buffered for a consumer that is not reading; past this the socket is paused (TCP backpressure). */
const MAX_BUFFERED_CHARS = 256 * 1024;
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
  /** Request options shared by every generation request: where to connect and through which pool. */
  private readonly target: RequestOptions;
  private readonly send: typeof httpRequest;
  private readonly agent: HttpAgent;
  private readonly stallTimeoutMs: number;
  private readonly totalTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly capacity: number;
  private readonly configuredModels: boolean;
  private modelList: readonly ModelInfo[];
  private readonly pathPrefix: string;
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
    // node:http rather than fetch: on the relay's per-token path, WHATWG streams over undici cost about three times the
    // CPU of a plain IncomingMessage (measured in bench/relay.ts; see BENCHMARKS.md).
    const url = new URL(this.baseUrl);
    const secure = url.protocol === 'https:';
    this.send = secure ? httpsRequest : httpRequest;
    // Keep-alive with no cap: the upstream does its own queueing, and a pool limit would only add a second queue here.
    this.agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }) : new HttpAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    this.target = {
      protocol: url.protocol,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      method: 'POST',
      agent: this.agent,
    };
    this.pathPrefix = url.pathname === '/' ? '' : url.pathname;
    this.stallTimeoutMs = options.stallTimeoutMs;
    this.totalTimeoutMs = options.totalTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? options.stallTimeoutMs;
    this.capacity = options.capacity ?? Number.POSITIVE_INFINITY;
    this.configuredModels = options.models !== undefined;
    this.modelList = (options.models ?? []).map((id) => ({ id, ownedBy: options.name, capabilities: relayedCapabilities }));
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
      const text = await readFetchBounded(response, 16 * 1024 * 1024);
      if (response.status !== 200) {
        throw new ParlanceError('upstream_error', `${this.label} answered HTTP ${response.status} to GET /models`);
      }
      this.modelList = this.parseModelList(text);
      this.lastError = undefined;
    } catch (error) {
      this.lastError = error instanceof ParlanceError ? error : this.requestFailure(error, 'discovering models from');
    }
  }

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    if (this.closed) throw new ParlanceError('engine_unavailable', `${this.label} is shutting down`);
    if (signal.aborted) return cancelledGeneration();
    const input = request.input;
    const flight = new Flight(this.flights, signal, this.connectTimeoutMs, this.totalTimeoutMs);
    let response: IncomingMessage;
    try {
      response = await this.post(flight, input.kind === 'chat' ? '/chat/completions' : '/completions', requestBody(request));
    } catch (error) {
      flight.release();
      if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
      throw this.abortFailure(flight) ?? this.requestFailure(error, 'reaching');
    }

    const status = response.statusCode ?? 0;
    const contentType = response.headers['content-type'];
    if (status !== 200 || contentType === undefined || !contentType.toLowerCase().startsWith('text/event-stream')) {
      let text = '';
      try {
        text = await readBounded(response, MAX_ERROR_BODY_BYTES);
      } catch (error) {
        flight.release();
        if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
        throw this.abortFailure(flight) ?? this.requestFailure(error, 'reading an error from');
      }
      flight.release();
      throw this.statusFailure(status, response.headers, text);
    }

    flight.streaming(this.stallTimeoutMs, response);
    return new UpstreamGeneration(() => relay(flight, new BodyReader(response), input, this.label));
  }

  /**
   * Sends one POST and resolves with the response once its headers are in.
   * Rejects on a connection failure, and when the flight is aborted first
   * (the flight destroys the request; its cause says why). node:http never
   * follows redirects: a 3xx would replay our key to wherever it points, and
   * it fails as an upstream error to fix in the config.
   */
  private post(flight: Flight, path: string, body: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = this.send({
        ...this.target,
        path: this.pathPrefix + path,
        headers: { ...this.requestHeaders, 'content-length': Buffer.byteLength(body) },
      });
      // Errors after the headers (a reset mid-stream) reach the response too; this listener keeps them from being unhandled.
      request.on('error', reject);
      request.once('close', () => reject(new Error('the connection closed before the response headers')));
      request.once('response', resolve);
      flight.attach(request);
      request.end(body);
    });
  }

  embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    return relayEmbeddings(this.jsonCall(), request, signal);
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return relayRerank(this.jsonCall(), request, signal);
  }

  private jsonCall(): UpstreamJsonCall {
    if (this.closed) throw new ParlanceError('engine_unavailable', `${this.label} is shutting down`);
    const headers: Record<string, string> = this.apiKey === undefined ? {} : { authorization: `Bearer ${this.apiKey}` };
    return { baseUrl: this.baseUrl, headers, timeoutMs: this.totalTimeoutMs, label: this.label, statusFailure: (status, h, text) => this.statusFailure(status, h, text), requestFailure: (error) => this.requestFailure(error, 'reaching') };
  }

  /** Aborts every in-flight upstream request; their generations end with `finish: cancelled`. */
  close(): Promise<void> {
    this.closed = true;
    for (const flight of [...this.flights]) flight.abort('closed');
    this.agent.destroy();
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
      models.push(typeof maxModelLen === 'number' && maxModelLen > 0 ? { id, ownedBy: this.name, contextLength: maxModelLen, capabilities: relayedCapabilities } : { id, ownedBy: this.name, capabilities: relayedCapabilities });
    }
    return models;
  }

  private abortFailure(flight: Flight): ParlanceError | undefined {
    if (flight.cause === 'connect') return new ParlanceError('upstream_timeout', `${this.label} sent no response headers within ${this.connectTimeoutMs} ms`);
    if (flight.cause === 'deadline') return new ParlanceError('upstream_timeout', `${this.label} exceeded the request deadline of ${this.totalTimeoutMs} ms`);
    return undefined;
  }

  /** Maps a request failure (refused, reset, DNS, fetch's own timers) to a registry error. */
  private requestFailure(error: unknown, doing: string): ParlanceError {
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
  private statusFailure(status: number, headers: IncomingHttpHeaders, text: string): ParlanceError {
    if (status === 200) {
      return new ParlanceError('upstream_error', `${this.label} answered ${headers['content-type'] ?? 'no content type'} instead of an event stream`);
    }
    if (status === 401 || status === 403) {
      // The upstream rejected *our* credentials: not the client's fault, and its message may echo part of the key.
      return new ParlanceError('upstream_error', `${this.label} rejected Parlance's credentials (HTTP ${status}); check its API key`);
    }
    const info = parseErrorBody(text);
    const message = info.message === undefined ? undefined : this.redact(info.message);
    if (status === 429) {
      const retryAfter = parseRetryAfter(headers['retry-after'] ?? null);
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
  cause: AbortCause | undefined;
  /** When the stream last produced text; read by the stall timer, written once per network read. */
  lastProgressAt = 0;
  /** True while the relay waits on the socket; otherwise the consumer is holding us up, which is not the upstream stalling. */
  reading = false;
  private released = false;
  /** The upstream request, then its response: whatever must be destroyed to drop the connection. */
  private connection: ClientRequest | IncomingMessage | undefined;
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

  attach(request: ClientRequest): void {
    this.connection = request;
    if (this.cause !== undefined) request.destroy();
  }

  /** Headers are in: from now on only a lack of generated text counts as a stall. */
  streaming(stallTimeoutMs: number, response: IncomingMessage): void {
    this.connection = response;
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
    this.drop();
    // The socket is gone with the abort, so the slot is free even if nobody ever iterates the generation.
    this.release();
  }

  /** Closes the upstream connection, whatever state the request is in. */
  drop(): void {
    this.connection?.destroy();
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

/**
 * Pull-style reading of the upstream response: bytes are decoded as they
 * arrive and handed out as one string per `take()`, so a burst of events costs
 * one wake-up, not one per TCP segment. Past {@link MAX_BUFFERED_CHARS}
 * unread, the socket is paused until the consumer catches up.
 */
class BodyReader {
  ended = false;
  failure: Error | undefined;
  private buffered = '';
  private wake: (() => void) | undefined;
  /**
   * Created at the first chunk that ends inside a multi-byte character, and used from then on. SSE chunks nearly
   * always end with a newline, and a chunk that ends on an ASCII byte leaves nothing for the next one to complete.
   */
  private decoder: StringDecoder | undefined;

  constructor(readonly response: IncomingMessage) {
    response.on('data', this.onData);
    response.once('end', this.onEnd);
    response.on('error', this.onError);
    response.once('close', this.onClose);
  }

  /** The text that arrived since the last call; '' when none did. */
  take(): string {
    const text = this.buffered;
    if (text !== '') {
      this.buffered = '';
      if (this.response.isPaused()) this.response.resume();
    }
    return text;
  }

  /** Resolves when there is text to take, or the body ended or failed. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /** True once the whole body has been received (the connection can go back to the pool). */
  get complete(): boolean {
    return this.response.complete;
  }

  private readonly onData = (chunk: Buffer): void => {
    const text = this.decoder === undefined && (chunk[chunk.length - 1] ?? 0) < 0x80 ? chunk.toString('utf8') : (this.decoder ??= new StringDecoder('utf8')).write(chunk);
    this.buffered = this.buffered === '' ? text : this.buffered + text;
    if (this.buffered.length > MAX_BUFFERED_CHARS) this.response.pause();
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (error: Error): void => {
    this.failure ??= error;
    this.notify();
  };

  private readonly onClose = (): void => {
    if (!this.response.complete) this.failure ??= Object.assign(new Error('the connection closed mid-stream'), { code: 'ECONNRESET' });
    this.ended = true;
    this.notify();
  };

  private notify(): void {
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
  }
}

/** Reads the upstream's event stream and yields the contract's events; see the class comment for the error rules. */
async function* relay(flight: Flight, body: BodyReader, input: GenerationInput, label: string): AsyncGenerator<ChatEvent> {
  const chunks = new ChunkDecoder(input);
  const parser: EventSourceParser = createParser({ onEvent: chunks.onEvent, onError: chunks.onParseError, maxBufferSize: MAX_EVENT_CHARS });
  const pending = chunks.pending;
  let eof = false;
  let readError: unknown;
  let ended = false;
  try {
    for (;;) {
      if (flight.cause !== undefined) break;
      const text = body.take();
      if (text === '') {
        if (body.failure !== undefined) {
          readError = body.failure;
          break;
        }
        if (body.ended) {
          // An event cut off without its blank line is dropped, as the SSE spec says.
          eof = true;
          break;
        }
        flight.reading = true;
        await body.wait();
        flight.reading = false;
        continue;
      }
      const before = chunks.progress;
      parser.feed(text);
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
    } else if (!eof && flight.cause === undefined && !body.complete) {
      drainThenRelease(flight, body.response);
    }
    flight.release();
  }
}

/**
 * After `[DONE]` the body's end is usually already on its way; reading it lets
 * the connection go back to the pool. An upstream that keeps the response open
 * anyway loses the connection after a short grace period.
 */
function drainThenRelease(flight: Flight, response: IncomingMessage): void {
  flight.release();
  const timer = setTimeout(() => flight.drop(), DRAIN_AFTER_DONE_MS);
  response.removeAllListeners('data');
  response.once('end', () => clearTimeout(timer));
  response.once('close', () => clearTimeout(timer));
  response.resume();
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

/** Reads a (non-streaming) response body up to `maxBytes`, then drops the rest with the connection. */
function readBounded(response: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new TextDecoder();
    let text = '';
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.byteLength;
      text += decoder.decode(chunk, STREAM_DECODE);
      if (bytes >= maxBytes) {
        response.off('data', onData);
        response.destroy();
        resolve(text + decoder.decode());
      }
    };
    response.on('data', onData);
    response.once('end', () => resolve(text + decoder.decode()));
    response.on('error', reject);
    response.once('close', () => (response.complete ? resolve(text + decoder.decode()) : reject(new Error('the connection closed mid-response'))));
  });
}

/** fetch's `Response` for discovery: read with the same bound. */
async function readFetchBounded(response: Response, maxBytes: number): Promise<string> {
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
