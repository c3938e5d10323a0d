import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { HttpDeps } from './deps.js';
import { installErrorHandlers } from './errors.js';
import { chatCompletionsRoute } from './routes/openai/chat-completions.js';
import { completionsRoute } from './routes/openai/completions.js';
import { conversationRoutes } from './routes/conversations/index.js';
import { modelsRoute } from './routes/openai/models.js';
import { opsRoutes } from './routes/ops.js';
import { seedRoutes } from './routes/seed.js';
import { pageRoutes } from './routes/ui/page.js';

export interface BuildAppOptions {
  /** The process logger (pino); without one the app logs nothing. */
  readonly logger?: FastifyBaseLogger;
}

/** Builds the HTTP application around its dependencies. It never listens: `main.ts` does. */
export async function buildApp(deps: HttpDeps, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: deps.config.bodyLimit,
    // Streams may legitimately run for many minutes; bounds on them live in the engines (tokens, deadlines).
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: false,
    genReqId: () => crypto.randomUUID(),
    requestIdHeader: false,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(opsRoutes, deps);
  await app.register(modelsRoute, deps);
  await app.register(chatCompletionsRoute, deps);
  await app.register(completionsRoute, deps);
  await app.register(conversationRoutes, deps);
  await app.register(seedRoutes, deps);
  await app.register(pageRoutes, deps);
  return app;
}
