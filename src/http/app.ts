import cors from '@fastify/cors';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { ParlanceError } from '../core/errors.js';
import { installApiKeys } from './auth.js';
import type { HttpDeps } from './deps.js';
import { installDocs } from './docs.js';
import { installErrorHandlers, sendError } from './errors.js';
import { conversationRoutes } from './routes/conversations/index.js';
import { chatCompletionsRoute } from './routes/openai/chat-completions.js';
import { completionsRoute } from './routes/openai/completions.js';
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
    // Streams may legitimately run for many minutes; their bounds are the generation deadline and the write timeout.
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    genReqId: () => crypto.randomUUID(),
    requestIdHeader: false,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app, (code) => deps.metrics.error(code));

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Counted when the response is done, streams (which bypass fastify's reply hooks) included.
    reply.raw.once('close', () => deps.metrics.request(request.routeOptions.url ?? 'unmatched', request.method, reply.raw.statusCode));
    // Compressed bodies are refused rather than inflated: no decompression bomb can get past the body limit.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      throw new ParlanceError('unsupported_media_type', `Content-Encoding '${encoding}' is not accepted; send the body uncompressed.`);
    }
  });
  if (deps.config.corsOrigins.length > 0) {
    await app.register(cors, { origin: deps.config.corsOrigins.includes('*') ? true : [...deps.config.corsOrigins], exposedHeaders: ['x-request-id', 'retry-after'] });
  }
  if (deps.config.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: deps.config.maxEventLoopDelayMs,
      retryAfter: 5,
      pressureHandler: (_request, reply) => {
        deps.metrics.error('engine_unavailable');
        void sendError(reply.header('retry-after', '5'), new ParlanceError('engine_unavailable', 'The server is overloaded; retry in a few seconds.'));
      },
      // /health must answer while loaded, or orchestrators restart a busy server.
      exposeStatusRoute: false,
    });
  }
  installApiKeys(app, deps.config.apiKeys);
  await installDocs(app);

  await app.register(opsRoutes, deps);
  await app.register(modelsRoute, deps);
  await app.register(chatCompletionsRoute, deps);
  await app.register(completionsRoute, deps);
  await app.register(conversationRoutes, deps);
  await app.register(seedRoutes, deps);
  await app.register(pageRoutes, deps);
  return app;
}
