import type { FastifyPluginAsync } from 'fastify';
import { LOADING_RETRY_SECONDS } from '../../engines/registry.js';
import type { HttpDeps, ServiceNotice } from '../deps.js';

const loadingNotice: ServiceNotice = { level: 'warning', message: 'Parlance is still loading its model; replies will be possible in a moment.' };

/** `/health` (alive, plus what an operator or the page's banner needs), `/ready` (can serve) and `/metrics`. */
export const opsRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.get('/health', async () => ({
    status: 'ok',
    instance: deps.instance,
    loading: deps.engines.loading,
    demo: deps.demo,
    auth: { required: deps.config.apiKeys.length > 0 },
    notices: deps.engines.loading ? [loadingNotice, ...deps.notices] : deps.notices,
    store: deps.store.dialect,
    models: deps.engines.models().map(({ model, engine }) => {
      const load = engine.modelLoad?.(model.id);
      return {
        id: model.id,
        engine: engine.name,
        context_length: model.contextLength ?? null,
        ...(model.state === undefined ? {} : { state: model.state, size_bytes: model.sizeBytes ?? null }),
        ...(model.loadError === undefined ? {} : { load_error: model.loadError }),
        ...(model.loadProgress === undefined ? {} : { load_progress: model.loadProgress }),
        ...(load === undefined ? {} : { sequences: load }),
      };
    }),
    engines: deps.engines.engines.map((engine) => {
      const runtime = engine.runtime?.();
      return {
        name: engine.name,
        ...engine.load(),
        // Which llama.cpp binary the embedded engine loaded: a build for this machine or the prebuilt one.
        ...(runtime === undefined ? {} : { llama_cpp: { binary: runtime.binary, gpu: runtime.gpu, release: runtime.release, dispatch_loop: runtime.dispatchLoop } }),
      };
    }),
  }));

  // 503 until the engines have loaded and while the store cannot be read: a load balancer sends no traffic here.
  app.get('/ready', async (_request, reply) => {
    const checks = {
      loaded: !deps.engines.loading,
      models: deps.engines.models().length > 0,
      store: await deps.store.listConversations({ limit: 1 }).then(() => true, () => false),
    };
    const ready = checks.loaded && checks.models && checks.store;
    if (!ready) reply.header('retry-after', String(LOADING_RETRY_SECONDS));
    return reply.status(ready ? 200 : 503).send({ ready, checks });
  });

  app.get('/metrics', async (_request, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));
};
