import type { ModelList, TokenCount, TokenizeBody } from '../../../src/protocol/parlance-models.js';
import { json } from './http.js';

/** Parlance's own model list: capabilities and context length per model, and the server's body limit. */
export function getModelList(): Promise<ModelList> {
  return json<ModelList>('/parlance/api/models');
}

/** Counts a prompt's tokens with the model's own tokenizer (or an estimate, `exact: false`). */
export function countTokens(body: TokenizeBody, signal?: AbortSignal): Promise<TokenCount> {
  return json<TokenCount>('/parlance/api/tokenize', { method: 'POST', body, ...(signal ? { signal } : {}) });
}
