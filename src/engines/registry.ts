import { ParlanceError } from '../core/errors.js';
import type { Engine, ModelInfo } from './contract.js';

/** Maps the `model` of a request to the engine serving it. The first engine's first model is the default. */
export class EngineRegistry {
  private readonly byModel = new Map<string, Engine>();

  constructor(readonly engines: readonly Engine[]) {
    this.refresh();
  }

  /** Rebuilds the model map (upstreams discover their models after start). Earlier engines win a shared id. */
  refresh(): void {
    this.byModel.clear();
    for (const engine of this.engines) {
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
    if (!engine) throw new ParlanceError('model_not_found', `The model '${modelId}' does not exist. GET /v1/models lists the models served here.`, { param: 'model' });
    return engine;
  }

  defaultModel(): string {
    const first = this.byModel.keys().next();
    if (first.done) throw new ParlanceError('engine_unavailable', 'no model is being served');
    return first.value;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.engines.map((engine) => engine.close()));
  }
}
