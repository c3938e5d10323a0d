import type { ModelSummary } from '../../../src/protocol/parlance-models.js';
import { useAppState, type AppState } from '../state/store.js';

/** The model the next message goes to: the conversation's, or the new chat's choice, else the server's default. */
export function currentModelId(state: AppState): string | null {
  const chosen = state.tree !== null && state.tree.conversation.id === state.currentId ? state.tree.conversation.model : state.currentId === null ? state.draft.model : null;
  return chosen ?? state.modelList?.defaultModel ?? null;
}

/** What the server says of that model; undefined until the list is loaded, or for a model it no longer serves. */
export function useCurrentModel(): ModelSummary | undefined {
  const id = useAppState(currentModelId);
  const list = useAppState((state) => state.modelList);
  return list?.models.find((model) => model.id === id);
}
