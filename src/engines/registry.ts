import { ParlanceError } from '../errors.js';
import type { Engine, ModelInfo } from './contract.js';

/** How long a client is told to wait before retrying while the engines load. */
export const LOADING_RETRY_SECONDS = 5;

/**
 * Maps the `model` of a request to the engine serving it. The first engine's first model is the default.
 *
 * The server listens before its engines are ready (a model may take minutes to download and load), so the
 * registry starts out `loading`: until {@link EngineRegistry.loaded} is called, a model it does not know yet
 * is answered with 503 and `Retry-After` rather than 404, since it may be the one being loaded.
 */
export class EngineRegistry {
  private readonly byModel = new Map<string, Engine>();
  private readonly engines_: Engine[];
  private loading_: boolean;

  constructor(engines: readonly Engine[] = [], options: { readonly loading?: boolean } = {}) {
    this.engines_ = [...engines];
    this.loading_ = options.loading ?? false;
    this.refresh();
  }

  get engines(): readonly Engine[] {
    return this.engines_;
  }

  /** True until every configured engine has been added. */
  get loading(): boolean {
    return this.loading_;
  }

  /** Adds an engine that finished loading; its models are served from now on. */
  add(engine: Engine): void {
    this.engines_.push(engine);
    this.refresh();
  }

  /** Marks the end of loading: from now on an unknown model is a 404. */
  loaded(): void {
    this.loading_ = false;
  }

  /** Rebuilds the model map (upstreams discover their models after start). Earlier engines win a shared id. */
  refresh(): void {
    this.byModel.clear();
    for (const engine of this.engines_) {
      for (const model of engine.models()) {
        if (!this.byModel.has(model.id)) this.byModel.set(model.id, engine);
      }
    }
  }

  models(): { model: ModelInfo; engine: Engine }[] {
    return [...this.byModel].map(([id, engine]) => ({ model: engine.models().find((m) => m.id === id) as ModelInfo, engine }));
  }

  engineFor(modelId: string): Engine {
    const engine = this.byModel.get(modelId);
    if (engine) return engine;
    if (this.loading_) throw loadingError();
    throw new ParlanceError('model_not_found', `The model '${modelId}' does not exist. GET /v1/models lists the models served here.`, { param: 'model' });
  }

  defaultModel(): string {
    const first = this.byModel.keys().next();
    if (!first.done) return first.value;
    if (this.loading_) throw loadingError();
    throw new ParlanceError('engine_unavailable', 'no model is being served');
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.engines_.map((engine) => engine.close()));
  }
}

function loadingError(): ParlanceError {
  return new ParlanceError('engine_unavailable', 'The server is still loading its model; retry in a few seconds.', { retryAfterSeconds: LOADING_RETRY_SECONDS });
}
