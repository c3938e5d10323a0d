import { assertSupported, type CapabilityParams } from '../core/capabilities.js';
import type { Engine, GenerationRequest, ModelInfo } from '../engines/contract.js';
import type { EngineRegistry } from '../engines/registry.js';

/** A model a dialect's request names: the engine serving it, and what the engine says about it. */
export interface ServedModel {
  readonly engine: Engine;
  /** Absent when the engine serves the id without listing it (nothing is then known to refuse). */
  readonly info: ModelInfo | undefined;
}

/** Looks the model up (404 `model_not_found` when nobody serves it), before anything is admitted. */
export function servedModel(engines: EngineRegistry, id: string): ServedModel {
  const engine = engines.engineFor(id);
  return { engine, info: engine.models().find((model) => model.id === id) };
}

/**
 * Refuses a request its model cannot honour, naming the field as the dialect spells it. The core checks again
 * in `ChatService.open`, by OpenAI's names; checking here first is what makes the 400 speak the dialect.
 */
export function refuseUnsupported(request: GenerationRequest, model: ServedModel, params: CapabilityParams): void {
  if (model.info !== undefined) assertSupported(request, model.info, params);
}
