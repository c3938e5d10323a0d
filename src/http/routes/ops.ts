import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../deps.js';

/** `/health`: liveness plus what an operator (or the page's banner) needs to know at a glance. */
export const opsRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.get('/health', async () => ({
    status: 'ok',
    demo: deps.demo,
    notices: deps.notices,
    models: deps.engines.models().map(({ model, engine }) => ({ id: model.id, engine: engine.name, context_length: model.contextLength ?? null })),
    engines: deps.engines.engines.map((engine) => ({ name: engine.name, ...engine.load() })),
  }));
};
