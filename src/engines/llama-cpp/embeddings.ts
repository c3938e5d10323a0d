import type { GgufInsights, LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { Capability, EmbeddingRequest, EmbeddingResult, RerankRequest, RerankResult } from '../contract.js';
import { SlotPool } from './sequence-pool.js';

export interface LlamaEmbeddingsOptions {
  /** Tokens one input (or one query plus document) may take; capped by what the model was trained on. */
  readonly contextSize: number;
  readonly threads: number;
  /** Requests that may wait for the embedding context before new ones get `queue_full`. */
  readonly queueLength: number;
}

/** Encoder-decoder models embed nothing; only models with a ranking head rerank. Read from the file alone, so a model on disk has it too. */
export function embeddingCapabilities(insights: Pick<GgufInsights, 'hasEncoder' | 'hasDecoder' | 'supportsRanking'>): Capability[] {
  const out: Capability[] = [];
  if (!(insights.hasEncoder && insights.hasDecoder)) out.push('embeddings');
  if (insights.supportsRanking) out.push('rerank');
  return out;
}

/** Most tokens one request may embed in all (OpenAI's per-request bound): a batch cannot hold the context for long. */
export const MAX_BATCH_TOKENS = 300_000;

/** Unit length, as OpenAI's vectors are and llama.cpp's server makes them by default (`--embd-normalize 2`). */
function normalised(vector: readonly number[]): Float32Array {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = (vector[i] ?? 0) * scale;
  return out;
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/**
 * Embeddings and reranking for the embedded model, each through its own llama.cpp context (an embedding
 * context pools the model's last hidden states as the GGUF declares; a ranking context reads a reranker's
 * classification head). Each context is created on first use, so a server that never embeds never pays
 * for a second KV cache, and serves one request at a time: more wait in a bounded queue, as chats do.
 */
export class LlamaEmbeddings {
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private rankingContext: Promise<LlamaRankingContext> | undefined;
  private readonly queue: SlotPool<true>;
  private readonly contextSize: number;

  constructor(
    private readonly model: LlamaModel,
    private readonly options: LlamaEmbeddingsOptions,
  ) {
    this.queue = new SlotPool([true], options.queueLength);
    this.contextSize = Math.min(options.contextSize, model.trainContextSize);
  }

  /** What this model can do here: encoder-decoder models embed nothing; only models with a ranking head rerank. */
  get capabilities(): readonly Capability[] {
    return embeddingCapabilities(this.model.fileInsights);
  }

  async embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    await this.queue.acquire(signal);
    try {
      const context = await (this.embeddingContext ??= this.model.createEmbeddingContext({ contextSize: this.contextSize, batchSize: this.contextSize, threads: this.options.threads }));
      // Tokenized once: the context would otherwise tokenize each text again to embed it.
      const tokens = request.inputs.map((input) => this.model.tokenize(input, false));
      const lengths = tokens.map((input) => context.calculateInputLength(input));
      this.checkBounds(lengths, 'input');
      const vectors: Float32Array[] = [];
      for (const input of tokens) {
        throwIfAborted(signal);
        vectors.push(normalised((await context.getEmbeddingFor(input)).vector));
      }
      return { vectors, promptTokens: lengths.reduce((sum, length) => sum + length, 0) };
    } finally {
      this.queue.release(true);
    }
  }

  async rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    if (!this.model.fileInsights.supportsRanking) throw new ParlanceError('unsupported_parameter', 'This model cannot rerank.', { param: 'model' });
    await this.queue.acquire(signal);
    try {
      const context = await (this.rankingContext ??= this.model.createRankingContext({ contextSize: this.contextSize, batchSize: this.contextSize, threads: this.options.threads }));
      // As the context tokenizes them (leading space trimmed), once each.
      const query = this.model.tokenize(request.query, false, 'trimLeadingSpace');
      const documents = request.documents.map((document) => this.model.tokenize(document, false, 'trimLeadingSpace'));
      const lengths = documents.map((document) => context.calculateInputLength(query, document));
      this.checkBounds(lengths, 'documents');
      const scores: number[] = [];
      for (const document of documents) {
        throwIfAborted(signal);
        scores.push(await context.rank(query, document));
      }
      return { scores, promptTokens: lengths.reduce((sum, length) => sum + length, 0) };
    } finally {
      this.queue.release(true);
    }
  }

  /** Refuses, before anything is evaluated, an input that cannot fit the context or a batch over the token bound. */
  private checkBounds(lengths: readonly number[], param: string): void {
    let total = 0;
    for (const [index, length] of lengths.entries()) {
      if (length >= this.contextSize) {
        throw new ParlanceError('context_length_exceeded', `${param}[${index}] takes ${length} tokens; this model embeds at most ${this.contextSize - 1} at once. Split the text.`, { param: `${param}[${index}]` });
      }
      total += length;
    }
    if (total > MAX_BATCH_TOKENS) {
      throw new ParlanceError('invalid_request', `The request takes ${total} tokens in all; at most ${MAX_BATCH_TOKENS} are accepted per request. Send fewer texts.`, { param });
    }
  }

  async close(): Promise<void> {
    this.queue.close();
    const contexts = await Promise.allSettled([this.embeddingContext, this.rankingContext]);
    for (const context of contexts) if (context.status === 'fulfilled') await context.value?.dispose();
  }
}
