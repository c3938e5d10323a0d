import { json } from './http.js';

/** What the page needs from `/health` and `/v1/models`. */
export interface Notice {
  readonly level: string;
  readonly message: string;
}

interface HealthBody {
  readonly notices?: readonly Notice[];
  /** True while the server is still loading its model (it listens before). */
  readonly loading?: boolean;
}

interface ModelList {
  readonly data: readonly { readonly id: string }[];
}

export interface Health {
  readonly notices: readonly Notice[];
  readonly loading: boolean;
}

export async function getHealth(): Promise<Health> {
  const health = await json<HealthBody>('/health');
  return { notices: health.notices ?? [], loading: health.loading === true };
}

export async function listModels(): Promise<readonly string[]> {
  const list = await json<ModelList>('/v1/models');
  return list.data.map((model) => model.id);
}
