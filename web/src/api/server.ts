import { json } from './http.js';

/** What the page needs from `/health` and `/v1/models`. */
export interface Notice {
  readonly level: string;
  readonly message: string;
}

interface HealthBody {
  readonly notices?: readonly Notice[];
}

interface ModelList {
  readonly data: readonly { readonly id: string }[];
}

export async function getNotices(): Promise<readonly Notice[]> {
  const health = await json<HealthBody>('/health');
  return health.notices ?? [];
}

export async function listModels(): Promise<readonly string[]> {
  const list = await json<ModelList>('/v1/models');
  return list.data.map((model) => model.id);
}
