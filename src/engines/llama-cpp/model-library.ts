import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { Capability, EmbeddingRequest, EmbeddingResult, Engine, EngineLoad, EngineRuntime, Generation, GenerationRequest, ModelInfo, ModelState, RerankRequest, RerankResult } from '../contract.js';
import { llamaCapabilities } from './engine.js';
import { listCachedModels } from './model-cache.js';

/** A GGUF the library can serve. */
export interface LibraryModel {
  readonly id: string;
  readonly path: string;
}

export interface ModelLibraryOptions {
  /** Models always listed (the `--model` entry), before the directory's; an id here wins over a file's. */
  readonly models: readonly LibraryModel[];
  /** Every `*.gguf` under it is served too (`--models-dir`); read by {@link ModelLibrary.scan}. */
  readonly directory?: string;
  /** Models in memory at once, counting those loading (`--models-max`). */
  readonly maxLoaded: number;
  /** A loaded model nobody used for this long is unloaded (`--model-keep-alive`); 0: never. */
  readonly keepAliveMs: number;
  /** Requests that may wait for a model to load before new ones get 429 (`--queue-length`). */
  readonly queueLength: number;
  /** What a model on disk will be able to do, from its file (model-inspect.ts); absent or failing: {@link onDiskCapabilities}. */
  readonly inspect?: (path: string) => Promise<ReadonlySet<Capability>>;
  /** Loads one model, telling `onProgress` how much of it is read (0 to 1); its engine serves exactly that model (its own `models()` id is replaced by the library's). */
  readonly load: (model: LibraryModel, onProgress: (fraction: number) => void) => Promise<Engine>;
  /** The memory the models loaded at once may take, in bytes (`--models-memory`); absent: no budget but `maxLoaded`. */
  readonly memoryBudgetBytes?: number;
  /** The memory a model will take once loaded, in bytes, from its file (model-inspect.ts); needed with a budget. */
  readonly estimateMemory?: (model: LibraryModel) => Promise<number>;
  /** Told when a model is loaded or unloaded, for the log. */
  readonly onChange?: (model: LibraryModel, event: 'loaded' | 'unloaded' | 'failed', detail?: string) => void;
  /** The llama.cpp binary the shared binding loaded, for `/health`. */
  readonly runtime?: EngineRuntime;
  /** Called last on close (the shared llama.cpp binding). */
  readonly dispose?: () => Promise<void>;
}

interface Entry {
  readonly model: LibraryModel;
  state: ModelState;
  engine: Engine | undefined;
  loading: Promise<Engine> | undefined;
  /** Requests waiting for `loading`. */
  waiting: number;
  /** Calls between choosing this model and the engine having admitted them (the engine's own load counts after). */
  pending: number;
  lastUsed: number;
  /** Read once, at scan: listing the models is on every request's path. */
  readonly sizeBytes: number | undefined;
  /** What {@link ModelLibraryOptions.inspect} read from the file. */
  capabilities: ReadonlySet<Capability> | undefined;
  /** Inspected already (successfully or not), or loaded before it could be: never read again. */
  inspected: boolean;
  /** How much of the file the load under way has read (0 to 1). */
  progress: number;
  /** What {@link ModelLibraryOptions.estimateMemory} said at its last load: counted against the budget while it is in memory. */
  memoryBytes: number;
  /** What the model said of itself when last loaded: kept for the listing once it is unloaded. */
  info: ModelInfo | undefined;
  failure: { readonly error: ParlanceError; readonly fileStamp: string } | undefined;
}

/** What a model whose file could not be inspected is taken to do until loaded: the engine's own set. */
const onDiskCapabilities = new Set(llamaCapabilities);

/** Identifies a version of a file, so that a failed model is tried again once the file changed. */
function fileStamp(path: string): string {
  try {
    const stats = statSync(path);
    return `${stats.size}:${stats.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/**
 * Many local GGUF models behind one engine, loaded on the first request for each: at most `maxLoaded` in memory,
 * the least recently used idle one unloaded to make room, and any idle longer than `keepAliveMs` unloaded. A
 * model that fails to load answers `model_load_failed` naming the file, and the others keep serving.
 */
export class ModelLibrary implements Engine {
  readonly name = 'llama';
  readonly streamCoalesceMs = 2;
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ModelLibraryOptions) {
    // Listed at once, so that the `--model` one can start loading before the directory is read.
    for (const model of options.models) this.add(model);
    if (options.keepAliveMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(5000, Math.max(100, options.keepAliveMs / 4)));
      this.sweeper.unref();
    }
  }

  /** Picks up GGUF files added to the directory since (downloads laid out by the cache included); removed files stay listed and fail to load. */
  async scan(): Promise<void> {
    // The `--model` entries, listed since the start: unless one is loading or loaded already, and says what it
    // does itself (reading its header too, the chat template's jinja resolution above all, would slow its load).
    for (const entry of this.entries.values()) {
      if (entry.inspected || entry.state !== 'on disk' || entry.info !== undefined) continue;
      entry.inspected = true;
      entry.capabilities = await this.options.inspect?.(entry.model.path).catch(() => undefined);
    }
    if (this.options.directory === undefined) return;
    for (const cached of await listCachedModels(this.options.directory)) {
      const model = { id: cached.id, path: cached.path };
      if (this.knows(model)) continue;
      // Inspected before it is listed, so that its first request is checked against what it can do.
      const capabilities = await this.options.inspect?.(model.path).catch(() => undefined);
      this.add(model, capabilities);
    }
  }

  private knows(model: LibraryModel): boolean {
    return this.entries.has(model.id) || [...this.entries.values()].some((entry) => resolve(entry.model.path) === resolve(model.path));
  }

  private add(model: LibraryModel, capabilities?: ReadonlySet<Capability>): void {
    if (this.knows(model)) return;
    this.entries.set(model.id, { model, state: 'on disk', engine: undefined, loading: undefined, waiting: 0, pending: 0, lastUsed: 0, sizeBytes: fileSize(model.path), capabilities, inspected: capabilities !== undefined, progress: 0, memoryBytes: 0, info: undefined, failure: undefined });
  }

  /** Loads a model now (the `--model` one, at start), rejecting with the load's own error. */
  async preload(modelId: string): Promise<void> {
    const entry = this.entries.get(modelId);
    if (!entry) throw new Error(`no model ${modelId} in the library`);
    await this.ready(entry, new AbortController().signal).catch((error: unknown) => {
      throw error instanceof ParlanceError && error.code === 'model_load_failed' ? error.cause : error;
    });
  }

  models(): readonly ModelInfo[] {
    return [...this.entries.values()].map((entry) => this.infoOf(entry));
  }

  private infoOf(entry: Entry): ModelInfo {
    const sizeBytes = entry.sizeBytes;
    const own = entry.engine?.models()[0] ?? entry.info;
    return {
      ...(own ?? { ownedBy: 'parlance', capabilities: entry.capabilities ?? onDiskCapabilities }),
      id: entry.model.id,
      state: entry.state,
      ...(entry.failure ? { loadError: entry.failure.error.message } : {}),
      ...(entry.state === 'loading' ? { loadProgress: entry.progress } : {}),
      ...(sizeBytes === undefined ? {} : { sizeBytes }),
    };
  }

  runtime(): EngineRuntime | undefined {
    return this.options.runtime;
  }

  modelLoad(modelId: string): EngineLoad | undefined {
    return this.entries.get(modelId)?.engine?.load();
  }

  load(): EngineLoad {
    let active = 0;
    let queued = 0;
    let capacity = 0;
    for (const entry of this.entries.values()) {
      queued += entry.waiting;
      if (!entry.engine) continue;
      const load = entry.engine.load();
      active += load.active;
      queued += load.queued;
      capacity += load.capacity;
    }
    return { active, queued, capacity };
  }

  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    return this.using(request.model, signal, (engine) => engine.open(request, signal));
  }

  countTokens(request: GenerationRequest, signal: AbortSignal): Promise<number> {
    return this.using(request.model, signal, (engine) => {
      if (!engine.countTokens) throw new ParlanceError('unsupported_parameter', `The model '${request.model}' cannot count tokens.`, { param: 'model' });
      return engine.countTokens(request, signal);
    });
  }

  embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    return this.using(request.model, signal, (engine) => {
      if (!engine.embed) throw new ParlanceError('unsupported_parameter', `The model '${request.model}' cannot embed text.`, { param: 'model' });
      return engine.embed(request, signal);
    });
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return this.using(request.model, signal, (engine) => {
      if (!engine.rerank) throw new ParlanceError('unsupported_parameter', `The model '${request.model}' cannot rerank.`, { param: 'model' });
      return engine.rerank(request, signal);
    });
  }

  /** Runs `call` on the model's engine, loading it first; the model counts as busy (never unloaded) until the call resolves. */
  private async using<T>(modelId: string, signal: AbortSignal, call: (engine: Engine) => Promise<T>): Promise<T> {
    const entry = this.entries.get(modelId);
    if (!entry) throw new ParlanceError('model_not_found', `The model '${modelId}' does not exist. GET /v1/models lists the models served here.`, { param: 'model' });
    entry.pending++;
    entry.lastUsed = performance.now();
    try {
      const engine = await this.ready(entry, signal);
      return await call(engine);
    } finally {
      entry.pending--;
      entry.lastUsed = performance.now();
    }
  }

  /** The model's engine once loaded: loads it (making room) or waits for the load under way, bounded by the queue. */
  private async ready(entry: Entry, signal: AbortSignal): Promise<Engine> {
    if (this.closed) throw new ParlanceError('engine_unavailable', 'The server is shutting down.');
    if (entry.engine) return entry.engine;
    if (entry.failure) {
      if (entry.failure.fileStamp === fileStamp(entry.model.path)) throw entry.failure.error;
      entry.failure = undefined;
      entry.state = 'on disk';
    }
    // The request that starts a load is not queued; those that come during it are, as for a free sequence.
    if (entry.loading !== undefined && entry.waiting >= this.options.queueLength) {
      throw new ParlanceError('queue_full', `Too many requests are waiting for the model '${entry.model.id}' to load; retry in a moment.`, { retryAfterSeconds: 1 });
    }
    const loading = entry.loading ?? this.startLoading(entry);
    entry.waiting++;
    try {
      return await abortable(loading, signal);
    } finally {
      entry.waiting--;
    }
  }

  private startLoading(entry: Entry): Promise<Engine> {
    entry.state = 'loading';
    entry.progress = 0;
    const stamp = fileStamp(entry.model.path);
    const loading = (async (): Promise<Engine> => {
      // A file that is no GGUF fails on its header, before any other model is unloaded for it.
      await readGgufFileInfo(entry.model.path, { readTensorInfo: false, sourceType: 'filesystem', ignoreKeys: ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'tokenizer.ggml.scores'], logWarnings: false }).catch(
        (error: unknown) => {
          throw this.failed(entry, error, stamp);
        },
      );
      entry.memoryBytes = await this.memoryOf(entry, stamp);
      let freed: Promise<void>[];
      try {
        freed = this.makeRoom(entry);
      } catch (error) {
        entry.state = 'on disk';
        throw error;
      }
      // The models unloaded to make room free their memory before this one takes its own.
      await Promise.all(freed);
      const onProgress = (fraction: number): void => {
        entry.progress = Math.max(entry.progress, Math.min(1, fraction));
      };
      const engine = await this.options.load(entry.model, onProgress).catch((error: unknown) => {
        throw this.failed(entry, error, stamp);
      });
      if (this.closed) {
        await engine.close();
        throw new ParlanceError('engine_unavailable', 'The server is shutting down.');
      }
      entry.engine = engine;
      entry.info = engine.models()[0];
      entry.state = 'loaded';
      entry.lastUsed = performance.now();
      this.options.onChange?.(entry.model, 'loaded');
      return engine;
    })();
    entry.loading = loading;
    void loading.then(
      () => (entry.loading = undefined),
      () => (entry.loading = undefined),
    );
    return loading;
  }

  /**
   * What the model will take in memory, with a budget (0 without one); one that cannot fit even alone is refused
   * as a failed load (remembered until its file changes), naming both figures.
   */
  private async memoryOf(entry: Entry, stamp: string): Promise<number> {
    const budget = this.options.memoryBudgetBytes;
    if (budget === undefined || budget <= 0 || this.options.estimateMemory === undefined) return 0;
    const needed = await this.options.estimateMemory(entry.model).catch((error: unknown) => {
      throw this.failed(entry, error, stamp);
    });
    if (needed > budget) {
      throw this.failed(entry, new Error(`it needs about ${megabytes(needed)} with its context, more than the memory budget of ${megabytes(budget)} (--models-memory)`), stamp);
    }
    return needed;
  }

  /** Records why the model cannot be loaded; it is tried again once its file changes. */
  private failed(entry: Entry, error: unknown, stamp: string): ParlanceError {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.trim() || 'unknown error';
    const failure = new ParlanceError('model_load_failed', `The model '${entry.model.id}' could not be loaded from ${entry.model.path}: ${reason}. The other models are still served.`, { cause: error });
    entry.failure = { error: failure, fileStamp: stamp };
    entry.state = 'failed';
    this.options.onChange?.(entry.model, 'failed', reason);
    return failure;
  }

  /**
   * Unloads least recently used idle models until one more fits, in number (`maxLoaded`) and in memory (the
   * budget); refuses (503, retry) when every model still in the way is busy.
   */
  private makeRoom(wanted: Entry): Promise<void>[] {
    const freed: Promise<void>[] = [];
    const inMemory = (): Entry[] => [...this.entries.values()].filter((entry) => entry !== wanted && (entry.engine !== undefined || entry.loading !== undefined));
    const budget = this.options.memoryBudgetBytes ?? 0;
    const overBudget = (held: readonly Entry[]): boolean => budget > 0 && held.reduce((sum, entry) => sum + entry.memoryBytes, wanted.memoryBytes) > budget;
    let held = inMemory();
    while (held.length >= this.options.maxLoaded || overBudget(held)) {
      const victim = held.filter((entry) => entry.engine !== undefined && !this.busy(entry)).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        const limit = held.length >= this.options.maxLoaded ? `--models-max ${this.options.maxLoaded}` : `--models-memory ${megabytes(budget)}`;
        throw new ParlanceError('engine_unavailable', `Every loaded model is busy (${limit}), so '${wanted.model.id}' cannot be loaded yet; retry in a moment.`, { retryAfterSeconds: 1 });
      }
      freed.push(this.unload(victim));
      held = inMemory();
    }
    return freed;
  }

  private busy(entry: Entry): boolean {
    if (entry.pending > 0 || entry.waiting > 0) return true;
    const load = entry.engine?.load();
    return load !== undefined && load.active + load.queued > 0;
  }

  /** Drops the model from the library at once (new requests load it again) and frees its memory in the background. */
  private unload(entry: Entry): Promise<void> {
    const engine = entry.engine;
    if (!engine) return Promise.resolve();
    entry.engine = undefined;
    entry.state = 'on disk';
    const closing: Promise<void> = engine
      .close()
      .catch(() => undefined)
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
    this.options.onChange?.(entry.model, 'unloaded');
    return closing;
  }

  private readonly closing = new Set<Promise<void>>();

  private sweep(): void {
    const now = performance.now();
    for (const entry of this.entries.values()) {
      if (!entry.engine) continue;
      if (this.busy(entry)) entry.lastUsed = now;
      else if (now - entry.lastUsed >= this.options.keepAliveMs) this.unload(entry);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.entries.values()].map((entry) => entry.loading));
    await Promise.allSettled([...this.entries.values()].map((entry) => entry.engine?.close()));
    await Promise.allSettled([...this.closing]);
    await this.options.dispose?.();
  }
}

function megabytes(bytes: number): string {
  return `${Math.ceil(bytes / 1e6)} MB`;
}

/** The promise's value, or the signal's abort reason, whichever comes first (the load itself goes on for others). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolveValue, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolveValue(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
