import cors from '@fastify/cors';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { ParlanceError } from '../errors.js';
import { trackAllowedMethods } from './allowed-methods.js';
import { installApiKeys } from './auth.js';
import { installBrowserGuard } from './browser-guard.js';
import type { HttpDeps } from './deps.js';
import { installDocs } from './docs.js';
import { installJsonParser } from './json-body.js';
import { validatorCompiler } from './validation.js';
import { installErrorHandlers, openAIErrorBody, sendError, toParlanceError } from './errors.js';
import { EventLoopLag } from './event-loop-lag.js';
import { installRateLimits } from './rate-limit.js';
import { installRequestTracing } from './request-tracing.js';
import { anthropicRoutes } from './routes/anthropic/index.js';
import { conversationRoutes } from './routes/conversations/index.js';
import { chatCompletionsRoute } from './routes/openai/chat-completions.js';
import { completionsRoute } from './routes/openai/completions.js';
import { embeddingsRoute } from './routes/openai/embeddings.js';
import { responsesRoutes } from './routes/openai-responses/index.js';
import { modelsRoute } from './routes/openai/models.js';
import { modelsAndTokensRoutes } from './routes/models-and-tokens/index.js';
import { ollamaRoutes } from './routes/ollama/index.js';
import { opsRoutes } from './routes/ops.js';
import { seedRoutes } from './routes/seed.js';
import { settingsRoutes } from './routes/settings/index.js';
import { rerankRoutes } from './routes/rerank/index.js';
import { pageRoutes } from './routes/ui/page.js';

/** Where Parlance's own API (conversations, messages) lives, apart from the `/api` that Ollama's API owns. */
export const PARLANCE_API_PREFIX = '/parlance';

declare module 'fastify' {
  interface FastifyInstance {
    /** True while the event loop lags more than `--max-event-loop-delay` (never when that is 0). */
    isUnderPressure(): boolean;
  }
}

export interface BuildAppOptions {
  /** The process logger (pino); without one the app logs nothing. */
  readonly logger?: FastifyBaseLogger;
}

/**
 * What Node's parser refused before a request existed (headers over 16 KiB, a malformed request line, a
 * request not received within `requestTimeout`), answered in OpenAI's error shape, then the socket closed.
 */
function answerClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request headers are larger than the 16 KiB this server accepts.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request was not received in time.']
        : [400, 'The request is not valid HTTP.'];
  this.log.debug({ err: error }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify(openAIErrorBody(new ParlanceError('invalid_request', message, { status })));
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** Probes and scrapes come every few seconds: their lines would bury the requests people make. */
const quietRoutes = new Set(['/health', '/ready', '/metrics']);

/** The request's one log line: method, path (never the query), status, duration, and whether the client left first. */
function logRequest(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? request.url;
  const status = reply.raw.statusCode;
  const ms = Math.round(reply.elapsedTime);
  const aborted = !reply.raw.writableFinished;
  const level = quietRoutes.has(request.routeOptions.url ?? '') ? 'debug' : 'info';
  request.log[level]({ method: request.method, path, status, ms, ...(aborted ? { aborted } : {}) }, `${request.method} ${path} ${status} ${ms} ms${aborted ? ' (client left)' : ''}`);
}

/** Builds the HTTP application around its dependencies. It never listens: `main.ts` does. */
export async function buildApp(deps: HttpDeps, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: deps.config.bodyLimit,
    // The time a client has to send its whole request (headers and body), so a client that trickles a body
    // cannot hold a connection forever. It does not bound responses: streams are bounded by the generation
    // deadline and the write timeout. (Node requires it to be at least the 60 s headers timeout.)
    requestTimeout: 120_000,
    // Requests that arrive while closing get a 503 from the hook below, in the OpenAI error shape.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    genReqId: () => crypto.randomUUID(),
    // One line per request, when it is done (below), instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // Errors Node or the router raise before a route runs get the same OpenAI-shaped bodies as the rest.
    clientErrorHandler: answerClientError,
    frameworkErrors: (error, _request, reply) => sendError(reply, toParlanceError(error)),
  });
  installJsonParser(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const routes = trackAllowedMethods(app);
  const allowedMethods = (url: string): readonly string[] => routes.allowedMethods(url);
  installErrorHandlers(app, { onError: (code) => deps.metrics.error(code), allowedMethods });
  if (deps.tracing) installRequestTracing(app, deps.tracing);

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // The overload check samples only while there is work: requests in flight, or generations (a conversation's
  // reply runs on after its request) running or queued in an engine.
  let inFlight = 0;
  const busy = (): boolean => inFlight > 0 || deps.engines.engines.some((engine) => {
    const load = engine.load();
    return load.active + load.queued > 0;
  });
  const lag = deps.config.maxEventLoopDelayMs > 0 ? new EventLoopLag(deps.config.maxEventLoopDelayMs, busy) : undefined;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    lag?.arm();
    deps.metrics.sampleEventLoop(busy);
    if (closing) {
      // The connection closes after this answer (fastify marks it so): the client retries elsewhere.
      throw new ParlanceError('engine_unavailable', 'The server is shutting down; retry on another instance or in a moment.', { retryAfterSeconds: 1 });
    }
    // Counted and logged when the response is done, streams (which bypass fastify's reply hooks) included.
    reply.raw.once('close', () => {
      deps.metrics.request(request.routeOptions.url ?? 'unmatched', request.method, reply.raw.statusCode);
      logRequest(request, reply);
    });
    // Compressed bodies are refused rather than inflated: no decompression bomb can get past the body limit.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      throw new ParlanceError('unsupported_media_type', `Content-Encoding '${encoding}' is not accepted; send the body uncompressed.`);
    }
  });
  installBrowserGuard(app, { boundHost: deps.config.host, allowedHosts: deps.config.allowedHosts, corsOrigins: deps.config.corsOrigins });
  if (deps.config.corsOrigins.length > 0) {
    await app.register(cors, { origin: deps.config.corsOrigins.includes('*') ? true : [...deps.config.corsOrigins], exposedHeaders: ['x-request-id', 'retry-after'] });
  }
  app.addHook('onClose', async () => deps.metrics.stopSampling());
  app.decorate('isUnderPressure', () => lag?.overloaded ?? false);
  if (lag) {
    app.addHook('onClose', async () => lag.stop());
    app.addHook('onRequest', async (request) => {
      // /health must answer while loaded, or orchestrators restart a busy server; /metrics is how one sees the load.
      if (request.routeOptions.url === '/health' || request.routeOptions.url === '/metrics' || !app.isUnderPressure()) return;
      throw new ParlanceError('engine_unavailable', 'The server is overloaded; retry in a few seconds.', { retryAfterSeconds: 5 });
    });
  }
  installApiKeys(app, deps.config.apiKeys, routes.patternOf);
  installRateLimits(app, deps.rateLimits);
  await installDocs(app);

  await app.register(opsRoutes, deps);
  await app.register(modelsRoute, deps);
  await app.register(chatCompletionsRoute, deps);
  await app.register(completionsRoute, deps);
  await app.register(responsesRoutes, deps);
  await app.register(embeddingsRoute, deps);
  await app.register(rerankRoutes, deps);
  await app.register(anthropicRoutes, deps);
  // Ollama's API owns /api (its not-found answers too); Parlance's own API lives under /parlance/api, and its old
  // /api paths stay as aliases, hidden from /docs (docs/decisions/api-prefix.md).
  await app.register(ollamaRoutes, { prefix: '/api', deps, allowedMethods });
  await app.register(
    async (own) => {
      await own.register(conversationRoutes, deps);
      // New routes of Parlance's own API live under its prefix only (no /api alias).
      await own.register(modelsAndTokensRoutes, deps);
      await own.register(settingsRoutes, deps);
    },
    { prefix: PARLANCE_API_PREFIX },
  );
  await app.register(async (alias) => {
    alias.addHook('onRoute', (route) => {
      route.schema = { ...route.schema, hide: true };
    });
    await alias.register(conversationRoutes, deps);
  });
  await app.register(seedRoutes, deps);
  await app.register(pageRoutes, deps);
  return app;
}
