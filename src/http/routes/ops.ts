import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../deps.js';

/** `/health` (alive, plus what an operator or the page's banner needs), `/ready` (can serve) and `/metrics`. */
export const opsRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.get('/health', async () => ({
    status: 'ok',
    demo: deps.demo,
    auth: { required: deps.config.apiKeys.length > 0 },
    notices: deps.notices,
    store: deps.store.dialect,
    models: deps.engines.models().map(({ model, engine }) => ({ id: model.id, engine: engine.name, context_length: model.contextLength ?? null })),
    engines: deps.engines.engines.map((engine) => ({ name: engine.name, ...engine.load() })),
  }));

  app.get('/ready', async (_request, reply) => {
    const checks = { models: deps.engines.models().length > 0, store: await deps.store.listConversations({ limit: 1 }).then(() => true, () => false) };
    const ready = checks.models && checks.store;
    return reply.status(ready ? 200 : 503).send({ ready, checks });
  });

  app.get('/metrics', async (_request, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));
};
