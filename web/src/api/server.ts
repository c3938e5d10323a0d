import { json } from './http.js';

/** What the page needs from `/health`. */
export interface Notice {
  readonly level: string;
  readonly message: string;
}

interface HealthBody {
  readonly notices?: readonly Notice[];
  /** True while the server is still loading its model (it listens before). */
  readonly loading?: boolean;
  readonly models?: readonly { readonly id: string; readonly state?: string; readonly load_progress?: number }[];
}

/** A model of the server's library being read into memory (a request for it waits meanwhile). */
export interface ModelLoad {
  readonly id: string;
  /** 0 to 1. */
  readonly progress: number;
}

export interface Health {
  readonly notices: readonly Notice[];
  readonly loading: boolean;
}

export async function getHealth(): Promise<Health> {
  const health = await json<HealthBody>('/health');
  return { notices: health.notices ?? [], loading: health.loading === true };
}
/** The models loading now, from `/health`. */
export async function loadingModels(): Promise<readonly ModelLoad[]> {
  const health = await json<HealthBody>('/health');
  return (health.models ?? []).filter((model) => model.state === 'loading').map((model) => ({ id: model.id, progress: model.load_progress ?? 0 }));
}
