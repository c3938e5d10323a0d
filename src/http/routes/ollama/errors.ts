import { ParlanceError, isParlanceError } from '../../../errors.js';
import type { EngineRegistry } from '../../../engines/registry.js';
import { servedModel, type ServedModel } from '../../served-model.js';
import type { OllamaErrorBody } from './schema.js';

/** `{"error": "…"}`, the body of every error this dialect answers (ollama-js shows `error` as the message). */
export function ollamaErrorBody(error: ParlanceError): OllamaErrorBody {
  return { error: error.message };
}

/** The model a request names, or Ollama's own 404 for one nobody serves: `model 'x' not found`. */
export function ollamaModel(engines: EngineRegistry, id: string): ServedModel {
  try {
    return servedModel(engines, id);
  } catch (error) {
    if (isParlanceError(error) && error.code === 'model_not_found') throw new ParlanceError('model_not_found', `model '${id}' not found`, { param: 'model', cause: error });
    throw error;
  }
}
