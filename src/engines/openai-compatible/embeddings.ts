import type { IncomingHttpHeaders } from 'node:http';
import { ParlanceError } from '../../errors.js';
import type { UpstreamCallTracer } from './flight.js';
import type { EmbeddingRequest, EmbeddingResult, RerankRequest, RerankResult } from '../contract.js';

/** Largest answer read from an upstream's `/embeddings` or `/rerank` (2,048 vectors of 4,096 floats as JSON fit). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** How to reach one upstream for a JSON request, and how its failures read (the engine's own mapping). */
export interface UpstreamJsonCall {
  /** The API root, without a trailing slash. */
  readonly baseUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly label: string;
  /** A non-200 answer as the engine maps it (a 4xx keeps its status and message). */
  readonly statusFailure: (status: number, headers: IncomingHttpHeaders, text: string) => ParlanceError;
  /** A connection failure as the engine maps it. */
  readonly requestFailure: (error: unknown) => ParlanceError;
  /** The upstream's name, and what traces each call to it (see the engine's options). */
  readonly upstream: string;
  readonly tracer: UpstreamCallTracer | undefined;
}

async function postJson(call: UpstreamJsonCall, path: string, body: Readonly<Record<string, unknown>> & { readonly model: string }, signal: AbortSignal): Promise<unknown> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const trace = call.tracer?.start({ upstream: call.upstream, method: 'POST', url: call.baseUrl + path, model: body.model });
  let response: Response | undefined;
  let text: string;
  try {
    response = await fetch(`${call.baseUrl}${path}`, {
      method: 'POST',
      headers: { ...call.headers, ...trace?.headers, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, timeout]),
      redirect: 'manual',
    });
    const length = Number(response.headers.get('content-length') ?? 0);
    if (length > MAX_ANSWER_BYTES) throw new ParlanceError('upstream_error', `${call.label} answered ${length} bytes to ${path}, more than ${MAX_ANSWER_BYTES}`);
    text = await response.text();
  } catch (error) {
    trace?.end({ status: response?.status ?? 0, aborted: signal.aborted ? 'client' : timeout.aborted ? 'deadline' : 'failed' });
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (timeout.aborted) throw new ParlanceError('upstream_timeout', `${call.label} did not answer ${path} within ${call.timeoutMs} ms`, { cause: error });
    throw call.requestFailure(error);
  }
  trace?.end({ status: response.status });
  if (response.status !== 200) throw call.statusFailure(response.status, Object.fromEntries(response.headers), text);
  try {
    return JSON.parse(text);
  } catch {
    throw new ParlanceError('upstream_error', `${call.label} answered ${path} with something that is not JSON`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function promptTokensOf(body: Record<string, unknown>): number {
  const usage = body['usage'];
  const tokens = isRecord(usage) ? (usage['prompt_tokens'] ?? usage['total_tokens']) : undefined;
  return typeof tokens === 'number' && Number.isFinite(tokens) && tokens >= 0 ? tokens : 0;
}

/** Relays `/embeddings` (as floats, whatever the client asked: the dialect encodes). */
export async function relayEmbeddings(call: UpstreamJsonCall, request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
  const body = await postJson(call, '/embeddings', { model: request.model, input: request.inputs, encoding_format: 'float' }, signal);
  const data = isRecord(body) ? body['data'] : undefined;
  if (!isRecord(body) || !Array.isArray(data) || data.length !== request.inputs.length) {
    throw new ParlanceError('upstream_error', `${call.label} answered /embeddings without one vector per input`);
  }
  const vectors: number[][] = new Array<number[]>(data.length);
  for (const [position, item] of data.entries()) {
    const index = isRecord(item) && typeof item['index'] === 'number' ? item['index'] : position;
    const embedding = isRecord(item) ? item['embedding'] : undefined;
    if (!Number.isInteger(index) || index < 0 || index >= data.length || !Array.isArray(embedding) || !embedding.every((value) => typeof value === 'number')) {
      throw new ParlanceError('upstream_error', `${call.label} answered /embeddings with a malformed vector`);
    }
    vectors[index] = embedding as number[];
  }
  return { vectors, promptTokens: promptTokensOf(body) };
}

/** Relays `/rerank` in the Jina/Cohere shape llama.cpp's server speaks, asking for every document's score. */
export async function relayRerank(call: UpstreamJsonCall, request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
  const body = await postJson(call, '/rerank', { model: request.model, query: request.query, documents: request.documents, top_n: request.documents.length }, signal);
  const results = isRecord(body) ? body['results'] : undefined;
  if (!isRecord(body) || !Array.isArray(results)) throw new ParlanceError('upstream_error', `${call.label} answered /rerank without results`);
  const scores = new Array<number>(request.documents.length).fill(Number.NaN);
  for (const item of results) {
    const index = isRecord(item) ? item['index'] : undefined;
    const score = isRecord(item) ? (item['relevance_score'] ?? item['score']) : undefined;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= scores.length || typeof score !== 'number') {
      throw new ParlanceError('upstream_error', `${call.label} answered /rerank with a malformed result`);
    }
    scores[index] = score;
  }
  if (scores.some(Number.isNaN)) throw new ParlanceError('upstream_error', `${call.label} answered /rerank without a score for every document`);
  return { scores, promptTokens: promptTokensOf(body) };
}
