import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ModelInfo } from '../../../engines/contract.js';
import type { OpenAIModel } from '../../../protocol/openai.js';
import type { HttpDeps } from '../../deps.js';

/** Unix seconds the process started: models have no creation date of their own here. */
const startedAt = Math.floor(Date.now() / 1000);

function toOpenAIModel(model: ModelInfo): OpenAIModel {
  return {
    id: model.id,
    object: 'model',
    created: startedAt,
    owned_by: model.ownedBy,
    ...(model.state === undefined ? {} : { state: model.state }),
    ...(model.loadError === undefined ? {} : { load_error: model.loadError }),
    ...(model.loadProgress === undefined ? {} : { load_progress: model.loadProgress }),
  };
}

export const modelsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.get('/v1/models', async () => ({ object: 'list', data: deps.engines.models().map(({ model }) => toOpenAIModel(model)) }));
  app.withTypeProvider<ZodTypeProvider>().get('/v1/models/:model', { schema: { params: z.object({ model: z.string() }) } }, async (request) => {
    const engine = deps.engines.engineFor(request.params.model);
    const model = engine.models().find((candidate) => candidate.id === request.params.model);
    return toOpenAIModel(model ?? { id: request.params.model, ownedBy: engine.name, capabilities: new Set() });
  });
};
