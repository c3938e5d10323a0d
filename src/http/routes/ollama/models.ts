import { createHash } from 'node:crypto';
import type { Engine, ModelInfo } from '../../../engines/contract.js';

/**
 * The Ollama API release whose shapes this dialect follows. Clients gate features on `/api/version` (structured
 * outputs from 0.5, `think` from 0.9), so it names the API spoken here, not Parlance's own version.
 */
export const OLLAMA_API_VERSION = '0.12.0';

/** Models have no file date here: the time the server started stands in for `modified_at`. */
const startedAt = new Date().toISOString();
/** Models stay loaded for as long as the server runs; Ollama's clients expect a time, so: far away. */
const neverExpires = '9999-12-31T23:59:59Z';

function details(engine: Engine) {
  return { parent_model: '', format: engine.name === 'llama' ? 'gguf' : '', family: '', families: null, parameter_size: '', quantization_level: '' };
}

/** A stable id in Ollama's digest format; there is no blob to hash, so the model id is. */
function digestOf(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** One entry of `/api/tags`. */
export function tagOf(model: ModelInfo, engine: Engine) {
  return { name: model.id, model: model.id, modified_at: startedAt, size: model.sizeBytes ?? 0, digest: digestOf(model.id), details: details(engine) };
}

/** Whether `/api/ps` lists it: a model library's loaded ones, and every model of the other engines. */
export function isRunning(model: ModelInfo): boolean {
  return model.state === undefined || model.state === 'loaded';
}

/** One entry of `/api/ps`. */
export function runningOf(model: ModelInfo, engine: Engine) {
  return { ...tagOf(model, engine), expires_at: neverExpires, size_vram: 0, ...(model.contextLength === undefined ? {} : { context_length: model.contextLength }) };
}

/** Ollama's names for what a model can do, as `/api/show` lists them. */
function ollamaCapabilities(model: ModelInfo): string[] {
  const out = ['completion'];
  if (model.capabilities.has('tools')) out.push('tools');
  if (model.capabilities.has('reasoning')) out.push('thinking');
  if (model.capabilities.has('images')) out.push('vision');
  if (model.capabilities.has('embeddings')) out.push('embedding');
  return out;
}

/** `/api/show`. Clients read the context length at `model_info[<general.architecture>.context_length]`. */
export function showOf(model: ModelInfo, engine: Engine) {
  return {
    modelfile: '',
    parameters: '',
    template: '',
    details: details(engine),
    model_info: { 'general.architecture': 'parlance', 'general.name': model.id, ...(model.contextLength === undefined ? {} : { 'parlance.context_length': model.contextLength }) },
    capabilities: ollamaCapabilities(model),
    modified_at: startedAt,
  };
}
