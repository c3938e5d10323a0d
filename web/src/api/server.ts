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
}

export interface Health {
  readonly notices: readonly Notice[];
  readonly loading: boolean;
}

export async function getHealth(): Promise<Health> {
  const health = await json<HealthBody>('/health');
  return { notices: health.notices ?? [], loading: health.loading === true };
}
