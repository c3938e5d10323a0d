import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { ParlanceError, type ErrorCode } from '../../errors.js';
import type { Capability, ChatEvent, EmbeddingRequest, EmbeddingResult, Engine, EngineLoad, Generation, GenerationInput, GenerationRequest, ModelInfo, RerankRequest, RerankResult } from '../contract.js';
import { BodyReader, readBounded, readFetchBounded } from './body-reader.js';
import { ChunkDecoder } from './chunk-decoder.js';
import { relayEmbeddings, relayRerank, type UpstreamJsonCall } from './embeddings.js';
import { Flight, type UpstreamCallTracer } from './flight.js';
import { requestBody } from './request-body.js';
import { MAX_MESSAGE_CHARS, errorCodeOf, parseErrorBody, parseRetryAfter, streamReadFailure } from './upstream-errors.js';

export { parseRetryAfter } from './upstream-errors.js';

/**
 * What the relay passes upstream unchanged, for the upstream to honour or refuse itself: everything a chat
 * request can carry, and embeddings and rerank (relayed to the upstream's own routes).
 */
const relayedCapabilities: ReadonlySet<Capability> = new Set<Capability>([
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'json_object',
  'json_schema',
  'reasoning',
  'reasoning_effort',
  'images',
  'top_k',
  'min_p',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'repeat_penalty',
  'logit_bias',
  'logprobs',
  'embeddings',
  'rerank',
]);

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
  /** Traces each request sent upstream (telemetry's child span and `traceparent`); absent: not traced. */
  readonly tracer?: UpstreamCallTracer;
}


/** Error bodies are read for their message only; a misbehaving upstream must not make us buffer megabytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** A whole answer from an upstream that ignored `stream: true`. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** An endless line or event from a broken upstream must not grow our memory without bound. */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;
/** After `[DONE]` we wait this long for the body's end so the connection can be reused, then drop it. */
const DRAIN_AFTER_DONE_MS = 1000;

/** Ids for calls an upstream sent without one (Ollama's older versions). */
const newCallId = (): string => `call_${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`;

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
  private readonly tracer: UpstreamCallTracer | undefined;
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
    this.tracer = options.tracer;
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
    const body = requestBody(request);
    const path = input.kind === 'chat' ? '/chat/completions' : '/completions';
    const trace = this.tracer?.start({ upstream: this.name, method: 'POST', url: this.baseUrl + path, model: request.model });
    const flight = new Flight(this.flights, signal, this.connectTimeoutMs, this.totalTimeoutMs, trace);
    let response: IncomingMessage;
    try {
      response = await this.post(flight, path, body, trace?.headers);
    } catch (error) {
      flight.release();
      if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
      throw this.abortFailure(flight) ?? this.requestFailure(error, 'reaching');
    }

    const status = response.statusCode ?? 0;
    flight.status = status;
    const contentType = response.headers['content-type']?.toLowerCase() ?? '';
    // Some servers answer tool requests in one piece whatever `stream` says (Ollama did): that is an answer too.
    const whole = status === 200 && contentType.startsWith('application/json');
    if (status !== 200 || !contentType.startsWith('text/event-stream')) {
      let text = '';
      try {
        text = await readBounded(response, whole ? MAX_ANSWER_BYTES : MAX_ERROR_BODY_BYTES);
      } catch (error) {
        flight.release();
        if (flight.cause === 'client' || flight.cause === 'closed') return cancelledGeneration();
        throw this.abortFailure(flight) ?? this.requestFailure(error, 'reading an error from');
      }
      flight.release();
      if (whole) return this.wholeAnswer(input, text);
      throw this.statusFailure(status, response.headers, text);
    }

    flight.streaming(this.stallTimeoutMs, response);
    return new UpstreamGeneration(() => relay(flight, new BodyReader(response), input, this.label));
  }

  /** A non-streamed `chat.completion` (or `text_completion`), relayed as the events a stream of it would give. */
  private wholeAnswer(input: GenerationInput, text: string): Generation {
    const chunks = new ChunkDecoder(input, newCallId);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new ParlanceError('upstream_error', `${this.label} answered with JSON that does not parse (or is over 16 MiB)`);
    }
    chunks.onChunk(answer);
    if (chunks.failure !== undefined) throw new ParlanceError('upstream_error', `${this.label} ${chunks.failure}`);
    const events: ChatEvent[] = [...chunks.pending, { type: 'usage', usage: chunks.finalUsage() }, finishEvent(chunks)];
    return new UpstreamGeneration(async function* () {
      yield* events;
    });
  }

  /**
   * Sends one POST and resolves with the response once its headers are in.
   * Rejects on a connection failure, and when the flight is aborted first
   * (the flight destroys the request; its cause says why). node:http never
   * follows redirects: a 3xx would replay our key to wherever it points, and
   * it fails as an upstream error to fix in the config.
   */
  private post(flight: Flight, path: string, body: string, traceHeaders: Readonly<Record<string, string>> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = this.send({
        ...this.target,
        path: this.pathPrefix + path,
        headers: { ...this.requestHeaders, ...traceHeaders, 'content-length': Buffer.byteLength(body) },
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
    return { baseUrl: this.baseUrl, headers, timeoutMs: this.totalTimeoutMs, label: this.label, upstream: this.name, tracer: this.tracer, statusFailure: (status, h, text) => this.statusFailure(status, h, text), requestFailure: (error) => this.requestFailure(error, 'reaching') };
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


/** Reads the upstream's event stream and yields the contract's events; see the class comment for the error rules. */
async function* relay(flight: Flight, body: BodyReader, input: GenerationInput, label: string): AsyncGenerator<ChatEvent> {
  const chunks = new ChunkDecoder(input, newCallId);
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
    yield finishEvent(chunks);
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

/** The normal end of a reply: the upstream's finish reason, and its stop string where it said which. */
function finishEvent(chunks: ChunkDecoder): ChatEvent {
  const reason = chunks.finishReason ?? 'stop';
  return reason === 'stop' && chunks.stopSequence !== undefined ? { type: 'finish', reason, stopSequence: chunks.stopSequence } : { type: 'finish', reason };
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

