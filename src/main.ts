import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import { isParlanceError } from './errors.js';
import type { Config } from './config/schema.js';
import { ChatService, type GenerationObserver } from './core/chat-service.js';
import { ConversationService } from './core/conversation-service.js';
import { EmbeddingService } from './core/embedding-service.js';
import type { Engine } from './engines/contract.js';
import { BalancedEngine } from './engines/openai-compatible/balancer.js';
import { upstreamEngineOptions } from './engines/openai-compatible/config.js';
import { OpenAICompatibleEngine } from './engines/openai-compatible/engine.js';
import { EngineRegistry } from './engines/registry.js';
import { ScriptedEngine } from './engines/scripted/engine.js';
import type { ServiceNotice } from './http/deps.js';
import type { Metrics } from './http/metrics.js';
import { KeyRateLimiter } from './http/rate-limit.js';
import { chooseLogFormat, createLogger } from './logging.js';
import { packageVersion } from './package-info.js';
import { listenFailure, StartupError, storeFailure } from './startup/failures.js';
import type { ConversationStore } from './store/contract.js';
import type { Tracing } from './telemetry/tracing.js';

export interface StartOptions {
  /** A logger to use; default: pino on stdout at `config.logLevel`, pretty on a terminal and JSON otherwise. */
  readonly logger?: Logger;
  /** Draw a download progress bar on a TTY. */
  readonly progressBar?: boolean;
  /** Environment for values that are not Parlance options (HF_ENDPOINT, HF_TOKEN). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called with the URL as soon as the server listens, before the engines have loaded. */
  readonly onListening?: (url: string) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly config: Config;
  /** Stops accepting, ends open streams, releases the engines. Safe to call twice. */
  close(): Promise<void>;
}

/** One balanced engine over every configured upstream: it routes each model to the upstreams that serve it. */
async function startUpstreams(config: Config, env: Readonly<Record<string, string | undefined>>, log: Logger, tracing: Tracing | undefined): Promise<BalancedEngine> {
  const members = config.upstreams.map((upstream) => {
    try {
      return new OpenAICompatibleEngine({ ...upstreamEngineOptions(upstream, env), ...(tracing ? { tracer: tracing.upstreamCalls } : {}) });
    } catch (error) {
      throw new ConfigError((error as Error).message); // a missing key variable is the user's to fix: no stack trace
    }
  });
  const balanced = new BalancedEngine({ name: 'upstreams', engines: members });
  await balanced.discover();
  for (const member of members) {
    if (member.lastError) log.warn({ upstream: member.name }, `upstream model discovery failed: ${member.lastError.message}; retrying every minute`);
    else log.info({ upstream: member.name, models: member.models().map((model) => model.id) }, 'upstream ready');
  }
  return balanced;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The configuration as it may be logged: key values and database passwords left out. */
export function redactConfig(config: Config): Record<string, unknown> {
  return { ...config, apiKeys: config.apiKeys.map((entry) => entry.name), store: config.store === undefined ? undefined : redactStoreUrl(config.store) };
}

/** A store URL with its password left out. */
function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

/**
 * This process's identity among replicas, new at every start: the host name alone is shared by two replicas on
 * one host (or in one pod), and a restarted replica is not the one that was streaming before.
 */
export function newInstanceId(): string {
  return `${hostname()}-${randomBytes(4).toString('hex')}`;
}

/** Opens the conversation store, brings its schema up to date and fails replies a crash left streaming. */
async function openConversationStore(config: Config, log: Logger, instanceId: string): Promise<ConversationStore> {
  const url = config.store ?? `sqlite:${join(config.dataDir, 'parlance.db')}`;
  const where = { url: redactStoreUrl(url), dataDir: config.dataDir, explicit: config.store !== undefined };
  let store: ConversationStore;
  try {
    const { openStore } = await import('./store/kysely/dialects.js');
    store = await openStore(url, { baseDir: config.dataDir, instanceId, leaseMs: config.replyLeaseSeconds * 1000 });
  } catch (error) {
    // A URL of no known form says so itself; anything else is about reaching or creating the store.
    if (isParlanceError(error)) throw new StartupError(`${error.message} (--store, PARLANCE_STORE)`, { cause: error });
    throw storeFailure(error, where);
  }
  try {
    const migrations = await store.migrate();
    if (migrations.applied.length > 0) log.info({ applied: migrations.applied, current: migrations.current }, 'store migrated');
    // With PostgreSQL other replicas may be streaming right now: only replies whose lease ran out are failed
    // (their replica stopped renewing it), and, from before leases, those that have not moved for ten minutes.
    const recovered = await store.recoverInterrupted(store.dialect === 'postgres' ? { scope: 'expired', staleAfterMs: 600_000 } : {});
    if (recovered.failed.length > 0) log.warn({ messages: recovered.failed.length }, 'replies interrupted by the last shutdown were marked failed');
    log.info({ dialect: store.dialect, store: where.url }, `conversations are kept in ${where.url}`);
    return store;
  } catch (error) {
    await store.close().catch(() => undefined);
    throw storeFailure(error, where);
  }
}

/**
 * The composition root: config → embedded engine started → store → HTTP → listen → engines. The only place
 * concrete parts meet.
 *
 * The server listens before the engines load (a first start may download a model for minutes): meanwhile
 * `/health` answers, `/ready` and model requests answer 503 with `Retry-After`, and `onListening` has the URL.
 * The promise resolves once everything is loaded, or rejects (the server closed) when loading fails.
 *
 * The embedded engine starts first, before the HTTP stack and the store are even imported (they are imported
 * here, not at the top, for that): node-llama-cpp's binary check and the model's load run off the main thread
 * while the rest loads, which is most of the time to ready.
 */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.logger ?? createLogger({ level: config.logLevel, format: chooseLogFormat(process.stdout) });
  const notices: ServiceNotice[] = [];
  let demo = false;

  if (!isLoopback(config.host) && config.apiKeys.length === 0) {
    const notice: ServiceNotice = { level: 'warning', message: `Parlance listens on ${config.host}, beyond this machine, and no API key is set: anyone who can reach it can use it. Set --api-key (PARLANCE_API_KEYS).` };
    notices.push(notice);
    log.warn(notice.message);
  }
  const instance = newInstanceId();
  log.info({ version: packageVersion, instance }, `Parlance ${packageVersion}`);
  log.debug({ config: redactConfig(config) }, 'effective configuration');

  // A model may finish loading before the metrics exist: its load time is kept until they do.
  let metrics: Metrics | undefined;
  const loadTimes: Parameters<Metrics['modelLoaded']>[] = [];
  const embedded = config.embedded
    ? (await import('./startup/embedded-engine.js')).startEmbedded(config, options, log, {
        demo: () => (demo = true),
        notice: (notice) => notices.push(notice),
        loadTime: (...args) => (metrics ? metrics.modelLoaded(...args) : loadTimes.push(args)),
      })
    : undefined;
  const registry = new EngineRegistry([], { loading: true });
  let store: ConversationStore;
  let buildApp: typeof import('./http/app.js').buildApp;
  let tracing: Tracing | undefined;
  try {
    const [http, metricsModule] = await Promise.all([import('./http/app.js'), import('./http/metrics.js')]);
    buildApp = http.buildApp;
    store = await openConversationStore(config, log, instance);
    tracing = await startTracing(config, instance, log).catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    metrics = new metricsModule.Metrics(() => registry.engines, { loading: () => registry.loading });
  } catch (error) {
    await embedded?.abandon();
    throw error;
  }
  for (const args of loadTimes) metrics.modelLoaded(...args);
  const rateLimits = new KeyRateLimiter(config.apiKeys, { requestsPerMinute: config.rateLimitRequests, tokensPerMinute: config.rateLimitTokens });
  if (config.apiKeys.length === 0 && (config.rateLimitRequests > 0 || config.rateLimitTokens > 0)) {
    log.warn('rate limits are per API key, and no API key is set: they do not apply');
  }
  const observed = metrics;
  const chat = new ChatService(registry, { observer: generationObserver(observed, rateLimits, tracing), deadlineMs: config.deadlineSeconds * 1000 });
  const embeddings = new EmbeddingService(registry, {
    deadlineMs: config.deadlineSeconds * 1000,
    onUsage: (engine, usage, model) => {
      observed.promptTokens(engine, usage.promptTokens);
      rateLimits.charge(usage);
      tracing?.embedded(engine, model, usage.promptTokens);
    },
    onRejected: (engine, error) => observed.rejected(engine, error.code),
  });
  const conversations = new ConversationService(store, chat, {
    defaultModel: () => registry.defaultModel(),
    checkModel: (model) => registry.engineFor(model).models().find((info) => info.id === model),
    // The demo model's text is random and the scripted model echoes its prompt: the plain title is better for both.
    modelTitles: (model) => !demo && !(registry.engineFor(model) instanceof ScriptedEngine),
    ...(store.dialect === 'postgres' ? { leases: leaseTimes(config.replyLeaseSeconds * 1000) } : {}),
  });
  let app: FastifyInstance | undefined;
  let rediscovery: NodeJS.Timeout | undefined;
  // Once the registry holds the embedded library, closing the registry releases it.
  let embeddedAdded = false;
  try {
    app = await buildApp(
      {
        config,
        instance,
        chat,
        embeddings,
        engines: registry,
        store,
        conversations,
        metrics,
        rateLimits,
        notices,
        get demo() {
          return demo;
        },
        ...(tracing ? { tracing: tracing.requests } : {}),
      },
      { logger: log },
    );
    const listenText = (address: string): string => `listening on ${address.replace('[::1]', 'localhost')}; loading the engines`;
    const address = await app.listen({ host: config.host, port: config.port, listenTextResolver: listenText }).catch(async (error: unknown) => {
      throw await listenFailure(error, config.host, config.port);
    });
    const url = address.replace('[::1]', 'localhost');
    options.onListening?.(url);

    // The engines in order (embedded, scripted, upstreams), each handed over as soon as it is ready.
    if (embedded) {
      registry.add(await embedded.library);
      embeddedAdded = true;
    }
    if (config.scripted) registry.add(new ScriptedEngine({ tokenDelayMs: config.scriptedDelayMs }));
    if (config.upstreams.length > 0) registry.add(await startUpstreams(config, options.env ?? {}, log, tracing));
    registry.loaded();
    // An upstream that was down at start (or gained models) is picked up without a restart.
    rediscovery = setInterval(() => {
      void Promise.all(registry.engines.map((engine) => (engine instanceof BalancedEngine ? engine.discover() : isScanning(engine) ? engine.scan() : undefined))).then(() => registry.refresh());
    }, 60_000);
    rediscovery.unref();
    const served = registry.models().map(({ model }) => model.id);
    log.info({ url, models: served }, `serving ${served.join(', ') || 'no models yet'}: open ${url}`);
    return { url, app, config, close: closer(app, { conversations, chat, embeddings, registry, store, rediscovery, tracing }) };
  } catch (error) {
    clearInterval(rediscovery);
    await app?.close();
    await registry.close();
    if (!embeddedAdded) await embedded?.abandon();
    await store.close();
    await tracing?.shutdown();
    throw error;
  }
}

/** The embedded engine's model library, which reads its models directory again now and then. */
function isScanning(engine: Engine): engine is Engine & { scan(): Promise<void> } {
  return typeof (engine as { scan?: unknown }).scan === 'function';
}

/** Heartbeat every second (or a third of a short lease), sweep every third of the lease, wait up to three beats for a stop. */
function leaseTimes(leaseMs: number): { renewMs: number; sweepMs: number; stopWaitMs: number } {
  const renewMs = Math.min(1000, leaseMs / 3);
  return { renewMs, sweepMs: leaseMs / 3, stopWaitMs: renewMs * 3 + 1000 };
}

/**
 * OpenTelemetry, when `--otlp-endpoint` asks for it. Imported only then: without it nothing of the SDK is
 * loaded, so the start and the memory of a server without traces stay as they were.
 */
async function startTracing(config: Config, instance: string, log: Logger): Promise<Tracing | undefined> {
  if (config.otlpEndpoint === undefined) return undefined;
  const { startTracing: start, tracesUrl } = await import('./telemetry/tracing.js');
  const tracing = start({ endpoint: config.otlpEndpoint, serviceVersion: packageVersion, instance, log: { warn: (message) => log.warn(message), debug: (message) => log.debug(message) } });
  log.info(`sending traces to ${tracesUrl(config.otlpEndpoint)}`);
  return tracing;
}

/** The metrics, plus, when asked for, each finished generation's tokens charged to its API key and its span's attributes. */
function generationObserver(metrics: Metrics, rateLimits: KeyRateLimiter, tracing: Tracing | undefined): GenerationObserver {
  if (!rateLimits.active && !tracing) return metrics;
  const spans = tracing?.generations;
  return {
    admitted: (engine, model) => {
      metrics.admitted();
      spans?.admitted(engine, model);
    },
    rejected: (engine, code) => {
      metrics.rejected(engine, code);
      spans?.rejected(engine, code);
    },
    firstToken: (engine, seconds) => {
      metrics.firstToken(engine, seconds);
      spans?.firstToken(engine, seconds);
    },
    // Per token: metrics only (a span keeps the first token's time, not every gap).
    interToken: (engine, seconds) => metrics.interToken(engine, seconds),
    finished: (engine, model, reason, usage, errorCode) => {
      metrics.finished(engine, model, reason, usage, errorCode);
      if (rateLimits.active) rateLimits.charge(usage);
      spans?.finished(engine, model, reason, usage, errorCode);
    },
  };
}

interface ServerParts {
  readonly conversations: ConversationService;
  readonly chat: ChatService;
  readonly embeddings: EmbeddingService;
  readonly registry: EngineRegistry;
  readonly store: ConversationStore;
  readonly rediscovery: NodeJS.Timeout;
  readonly tracing: Tracing | undefined;
}

/** Graceful shutdown, once however often it is asked for. */
function closer(app: FastifyInstance, { conversations, chat, embeddings, registry, store, rediscovery, tracing }: ServerParts): () => Promise<void> {
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      clearInterval(rediscovery);
      // Replies end first (stored as stopped, their partial text kept), so every open stream gets its last event.
      const replies = conversations.stopAll();
      chat.stopAll();
      embeddings.stopAll();
      await replies;
      // Every stream has been sent its last event; a client that stopped reading cannot take it, and would
      // hold the close (which waits for connections to end) until the process is killed. Give the others
      // a moment to read theirs, then cut what is left.
      const cut = setTimeout(() => app.server.closeAllConnections(), 2000);
      cut.unref();
      await app.close();
      clearTimeout(cut);
      await registry.close();
      await store.close();
      // Last: every request's span has ended with its response.
      await tracing?.shutdown();
    })());
  return close;
}
