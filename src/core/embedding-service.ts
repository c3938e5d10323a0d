import type { Capability, EmbeddingRequest, EmbeddingResult, Engine, ModelInfo, RerankRequest, RerankResult, TokenUsage } from '../engines/contract.js';
import { ParlanceError, isParlanceError } from '../errors.js';
import { BoundedRuns } from './bounded-runs.js';
import type { EngineLookup } from './chat-service.js';

/** Most texts in one embeddings request (OpenAI's limit) and most documents in one rerank request. */
export const MAX_EMBEDDING_INPUTS = 2048;
export const MAX_RERANK_DOCUMENTS = 1024;

export interface EmbeddingServiceOptions {
  /** The longest one request may run; it is then cancelled with `upstream_timeout`. */
  readonly deadlineMs?: number;
  /** Told the tokens of each answered request (metrics, the per-key token limit). */
  readonly onUsage?: (engine: string, usage: TokenUsage, model: string) => void;
  /** Told each refusal by an engine (the rejections metric). */
  readonly onRejected?: (engine: string, error: ParlanceError) => void;
}

/** What a model cannot do, as every dialect says it. */
function cannot(model: string, what: string, param: string): ParlanceError {
  return new ParlanceError('unsupported_parameter', `The model '${model}' cannot ${what}; pick a model that can (GET /v1/models).`, { param });
}

/**
 * The core path for embeddings and rerank, which every dialect (OpenAI's `/v1/embeddings`, Ollama's
 * `/api/embed`, `/v1/rerank`) goes through: it picks the engine, refuses a model without the capability,
 * bounds the batch and the time, and ties each request to the server's lifetime. The engine admits the
 * request as it admits a generation (its queue bound answers `queue_full`, a 429).
 */
export class EmbeddingService {
  private readonly runs: BoundedRuns;

  constructor(
    private readonly engines: EngineLookup,
    private readonly options: EmbeddingServiceOptions = {},
  ) {
    this.runs = new BoundedRuns(options.deadlineMs, `The request reached its deadline (${Math.round((options.deadlineMs ?? 0) / 1000)} s).`);
  }

  async embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    if (request.inputs.length === 0) throw new ParlanceError('invalid_request', 'input must hold at least one text.', { param: 'input' });
    if (request.inputs.length > MAX_EMBEDDING_INPUTS) {
      throw new ParlanceError('invalid_request', `input holds ${request.inputs.length} texts; at most ${MAX_EMBEDDING_INPUTS} are accepted per request.`, { param: 'input' });
    }
    const engine = this.engineWith(request.model, 'embeddings');
    const embed = engine.embed?.bind(engine);
    if (!embed) throw cannot(request.model, 'embed text', 'model');
    const result = await this.run(engine, (inner) => embed(request, inner), signal);
    if (result.vectors.length !== request.inputs.length) {
      throw new ParlanceError('upstream_error', `${engine.name} answered ${result.vectors.length} vectors for ${request.inputs.length} inputs.`);
    }
    this.options.onUsage?.(engine.name, { promptTokens: result.promptTokens, completionTokens: 0 }, request.model);
    return result;
  }

  async rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    if (request.documents.length > MAX_RERANK_DOCUMENTS) {
      throw new ParlanceError('invalid_request', `documents holds ${request.documents.length} texts; at most ${MAX_RERANK_DOCUMENTS} are accepted per request.`, { param: 'documents' });
    }
    const engine = this.engineWith(request.model, 'rerank');
    const rerank = engine.rerank?.bind(engine);
    if (!rerank) throw cannot(request.model, 'rerank', 'model');
    if (request.documents.length === 0) return { scores: [], promptTokens: 0 };
    const result = await this.run(engine, (inner) => rerank(request, inner), signal);
    if (result.scores.length !== request.documents.length) {
      throw new ParlanceError('upstream_error', `${engine.name} answered ${result.scores.length} scores for ${request.documents.length} documents.`);
    }
    this.options.onUsage?.(engine.name, { promptTokens: result.promptTokens, completionTokens: 0 }, request.model);
    return result;
  }

  /** Cancels the running requests (and those queued) and refuses new ones. */
  stopAll(): void {
    this.runs.stopAll();
  }

  private engineWith(modelId: string, capability: Capability): Engine {
    this.runs.assertOpen();
    const engine = this.engines.engineFor(modelId);
    const model: ModelInfo | undefined = engine.models().find((candidate) => candidate.id === modelId);
    if (model && !model.capabilities.has(capability)) throw cannot(modelId, capability === 'rerank' ? 'rerank' : 'embed text', 'model');
    return engine;
  }

  /** Runs one call under its own bounds: aborted by the caller, the deadline or shutdown. */
  private async run<T>(engine: Engine, call: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    const run = this.runs.start(signal);
    try {
      return await call(run.signal);
    } catch (error) {
      // The engine's own error wins; a bare abort is told by the reason it was aborted for.
      const reason: unknown = run.signal.aborted && !isParlanceError(error) ? run.signal.reason : error;
      if (isParlanceError(reason)) this.options.onRejected?.(engine.name, reason);
      throw reason;
    } finally {
      run.release();
    }
  }
}
