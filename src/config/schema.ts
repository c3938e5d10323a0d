import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseUpstreamFlag, upstreamConfigSchema } from '../engines/openai-compatible/config.js';

const cacheHome = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
const dataHome = process.env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share');
/** A per-minute rate (requests or tokens); 0 means no limit. */
const perMinute = z.coerce.number().int().min(0).max(1_000_000_000);

/**
 * Every option Parlance has, declared once. Each one is settable from the
 * config file (by its key), from the environment (`env`) and from the command
 * line (`flag`); the later source wins. `cli.ts` builds `--help` from this
 * table, so the help, the env names and the defaults cannot drift apart.
 */
export const optionTable = {
  host: { flag: '--host <address>', env: 'PARLANCE_HOST', description: 'address to listen on', schema: z.string().min(1).default('127.0.0.1') },
  port: { flag: '--port <number>', env: 'PARLANCE_PORT', description: 'port to listen on (0 picks a free one)', schema: z.coerce.number().int().min(0).max(65535).default(8000) },
  model: {
    flag: '--model <ref>',
    env: 'PARLANCE_MODEL',
    description: 'model for the embedded engine: a GGUF path, an hf:user/repo/file.gguf reference or an http(s) URL (default: a small instruct model, downloaded once)',
    schema: z.string().min(1).optional(),
  },
  modelAlias: { flag: '--model-alias <id>', env: 'PARLANCE_MODEL_ALIAS', description: 'the id clients use for the embedded model (default: the file name without .gguf)', schema: z.string().min(1).optional() },
  modelsDir: { flag: '--models-dir <path>', env: 'PARLANCE_MODELS_DIR', description: 'where downloaded models are cached', schema: z.string().min(1).default(join(cacheHome, 'parlance', 'models')) },
  dataDir: { flag: '--data-dir <path>', env: 'PARLANCE_DATA_DIR', description: 'where conversations are kept (the SQLite file)', schema: z.string().min(1).default(join(dataHome, 'parlance')) },
  store: {
    flag: '--store <url>',
    env: 'PARLANCE_STORE',
    description: 'conversation store: sqlite:PATH (default: parlance.db in the data directory) or postgres://user:pass@host/db to share history between replicas',
    schema: z.string().min(1).optional(),
  },
  demo: { flag: '--demo', env: 'PARLANCE_DEMO', description: 'serve the tiny built-in test model (random output) instead of a real one', schema: z.stringbool().or(z.boolean()).default(false) },
  embedded: { flag: '--no-embedded', env: 'PARLANCE_EMBEDDED', description: 'do not load the embedded llama.cpp engine (serve upstreams only)', schema: z.stringbool().or(z.boolean()).default(true) },
  scripted: { flag: '--scripted', env: 'PARLANCE_SCRIPTED', description: "also serve 'parlance-scripted', a deterministic echo model for tests and benchmarks", schema: z.stringbool().or(z.boolean()).default(false) },
  scriptedDelayMs: { flag: '--scripted-delay <ms>', env: 'PARLANCE_SCRIPTED_DELAY_MS', description: 'delay before each token of the scripted model', schema: z.coerce.number().min(0).max(60_000).default(0) },
  upstreams: {
    flag: '--upstream <[name=]url>',
    env: 'PARLANCE_UPSTREAMS',
    description: "an OpenAI-compatible engine to front (vLLM, llama-server, Ollama, a hosted API), e.g. vllm=http://host:8000/v1; repeatable (env: comma-separated). Keys come from env vars named in the config file's apiKeyEnv",
    repeatable: true,
    schema: z
      .preprocess(
        (value) => (typeof value === 'string' ? value.split(',').map((item) => item.trim()).filter(Boolean) : value),
        z.array(z.union([z.string().transform((flag, ctx) => {
          try {
            return parseUpstreamFlag(flag);
          } catch (error) {
            ctx.addIssue({ code: 'custom', message: (error as Error).message });
            return z.NEVER;
          }
        }), upstreamConfigSchema])),
      )
      .default([]),
  },
  gpu: { flag: '--gpu <kind>', env: 'PARLANCE_GPU', description: "llama.cpp backend: auto, cuda, vulkan, metal or off", schema: z.enum(['auto', 'cuda', 'vulkan', 'metal', 'off']).default('auto') },
  threads: { flag: '--threads <n>', env: 'PARLANCE_THREADS', description: 'llama.cpp decode threads (1 measured fastest on 2 cores; see docs/decisions)', schema: z.coerce.number().int().min(0).max(256).default(1) },
  sequences: { flag: '--sequences <n>', env: 'PARLANCE_SEQUENCES', description: 'chats generated at once by the embedded engine (batched together)', schema: z.coerce.number().int().min(1).max(64).default(4) },
  contextSize: { flag: '--context-size <tokens>', env: 'PARLANCE_CONTEXT_SIZE', description: 'context window per sequence, in tokens', schema: z.coerce.number().int().min(64).max(1_048_576).default(4096) },
  maxTokens: { flag: '--max-tokens <n>', env: 'PARLANCE_MAX_TOKENS', description: 'tokens a reply may generate when the request sets no limit (always capped by the context)', schema: z.coerce.number().int().min(1).max(1_048_576).default(2048) },
  queueLength: { flag: '--queue-length <n>', env: 'PARLANCE_QUEUE_LENGTH', description: 'requests that may wait for a free sequence before new ones get 429', schema: z.coerce.number().int().min(0).max(100_000).default(64) },
  modelsMax: { flag: '--models-max <n>', env: 'PARLANCE_MODELS_MAX', description: 'GGUF models of the models directory held in memory at once; a request for another unloads the least recently used idle one', schema: z.coerce.number().int().min(1).max(64).default(1) },
  modelsMemoryMb: { flag: '--models-memory <MB>', env: 'PARLANCE_MODELS_MEMORY', description: "memory the models held at once may take, weights and context, as estimated from each GGUF's header: a load that would pass it unloads least recently used idle models first, and a model that cannot fit alone is refused (0: no budget)", schema: z.coerce.number().min(0).max(1e9).default(0) },
  modelKeepAliveSeconds: { flag: '--model-keep-alive <seconds>', env: 'PARLANCE_MODEL_KEEP_ALIVE', description: 'a loaded model nobody used for this long is unloaded (0: kept until another needs the room)', schema: z.coerce.number().min(0).max(31_536_000).default(0) },
  keepAliveSeconds: { flag: '--keep-alive <seconds>', env: 'PARLANCE_KEEP_ALIVE', description: 'interval of SSE keep-alive comments', schema: z.coerce.number().positive().max(3600).default(15) },
  bodyLimit: { flag: '--body-limit <bytes>', env: 'PARLANCE_BODY_LIMIT', description: 'largest request body accepted', schema: z.coerce.number().int().min(1024).max(1 << 30).default(1 << 20) },
  apiKeys: {
    flag: '--api-key <[name=]key>',
    env: 'PARLANCE_API_KEYS',
    description: 'an API key clients must send (Authorization: Bearer or x-api-key) on /v1 and /api routes; repeatable (env: comma-separated). None set: no key needed',
    repeatable: true,
    secret: true,
    schema: z
      .preprocess(
        (value) => (typeof value === 'string' ? value.split(',').map((item) => item.trim()).filter(Boolean) : value),
        z.array(
          z.union([
            z.string().min(1).transform((entry) => {
              const equals = entry.indexOf('=');
              // An unnamed key is named by a fingerprint, so logs can tell keys apart without showing any of one.
              return equals > 0 ? { name: entry.slice(0, equals), key: entry.slice(equals + 1) } : { name: `key-${createHash('sha256').update(entry).digest('hex').slice(0, 8)}`, key: entry };
            }),
            // The config file's form may give the key its own limits, overriding --rate-limit-requests/-tokens.
            z.object({ name: z.string().min(1).max(100), key: z.string(), requestsPerMinute: perMinute.optional(), tokensPerMinute: perMinute.optional() }).strict(),
          ]).pipe(z.object({ name: z.string(), key: z.string().min(16, { error: 'API keys must be at least 16 characters' }), requestsPerMinute: perMinute.optional(), tokensPerMinute: perMinute.optional() })),
        ),
      )
      .default([]),
  },
  rateLimitRequests: {
    flag: '--rate-limit-requests <n>',
    env: 'PARLANCE_RATE_LIMIT_REQUESTS',
    description: 'generation requests each API key may make per minute, then 429 with Retry-After (0: no limit; a key in the config file may set its own requestsPerMinute)',
    schema: perMinute.default(0),
  },
  rateLimitTokens: {
    flag: '--rate-limit-tokens <n>',
    env: 'PARLANCE_RATE_LIMIT_TOKENS',
    description: 'tokens (prompt + completion) each API key may use per minute, then 429 with Retry-After (0: no limit; a key in the config file may set its own tokensPerMinute)',
    schema: perMinute.default(0),
  },
  corsOrigins: {
    flag: '--cors-origin <origin>',
    env: 'PARLANCE_CORS_ORIGINS',
    description: "an origin allowed to call the API from a browser (e.g. https://app.example.com, or * for any); repeatable (env: comma-separated). Default: none (CORS off)",
    repeatable: true,
    schema: z.preprocess((value) => (typeof value === 'string' ? value.split(',').map((item) => item.trim()).filter(Boolean) : value), z.array(z.string().min(1))).default([]),
  },
  allowedHosts: {
    flag: '--allowed-hosts <names>',
    env: 'PARLANCE_ALLOWED_HOSTS',
    description:
      "host names a browser may reach this server under, besides loopback names, IP addresses and --host (a request whose Host header names another gets 403, which stops DNS rebinding); comma-separated or repeatable, .example.com for a domain and its subdomains, * for any",
    repeatable: true,
    schema: z
      .preprocess(
        (value) => (typeof value === 'string' ? [value] : value),
        z.array(z.string()).transform((entries) => entries.flatMap((entry) => entry.split(',')).map((name) => name.trim().toLowerCase().replace(/\.$/, '')).filter(Boolean)),
      )
      .default([]),
  },
  deadlineSeconds: { flag: '--deadline <seconds>', env: 'PARLANCE_DEADLINE', description: 'the longest any one generation may run', schema: z.coerce.number().positive().max(86_400).default(600) },
  resumableStreams: { flag: '--resumable-streams', env: 'PARLANCE_RESUMABLE_STREAMS', description: 'make /v1/chat/completions streams resumable unless the request says `X-Parlance-Resumable: false` (they then outlive a dropped client)', schema: z.stringbool().or(z.boolean()).default(false) },
  resumableStreamRetentionSeconds: { flag: '--resumable-stream-retention <seconds>', env: 'PARLANCE_RESUMABLE_STREAM_RETENTION', description: 'how long a finished resumable stream can still be resumed', schema: z.coerce.number().positive().max(86_400).default(300) },
  resumableStreamMaxBytes: { flag: '--resumable-stream-max-bytes <bytes>', env: 'PARLANCE_RESUMABLE_STREAM_MAX_BYTES', description: 'largest event log one resumable stream may keep; past it the stream ends with a stream_too_large error', schema: z.coerce.number().int().min(1024).max(1 << 30).default(8 << 20) },
  writeTimeoutSeconds: {
    flag: '--write-timeout <seconds>',
    env: 'PARLANCE_WRITE_TIMEOUT',
    description: "how long a stream waits for a client that stopped reading before dropping it and stopping its generation",
    schema: z.coerce.number().positive().max(3600).default(30),
  },
  maxEventLoopDelayMs: {
    flag: '--max-event-loop-delay <ms>',
    env: 'PARLANCE_MAX_EVENT_LOOP_DELAY',
    description: 'event-loop delay above which new requests are shed with 503 (0: never)',
    schema: z.coerce.number().int().min(0).max(60_000).default(1000),
  },
  replyLeaseSeconds: {
    flag: '--reply-lease <seconds>',
    env: 'PARLANCE_REPLY_LEASE',
    description:
      'replicas on PostgreSQL: how long a reply stays leased to the replica generating it without a heartbeat (renewed every second); once it runs out any replica marks the reply failed with its partial text, so a killed replica leaves no reply streaming',
    schema: z.coerce.number().min(0.5).max(3600).default(15),
  },
  otlpEndpoint: {
    flag: '--otlp-endpoint <url>',
    env: 'PARLANCE_OTLP_ENDPOINT',
    description:
      'send OpenTelemetry traces over OTLP/HTTP (JSON) to this collector, e.g. http://localhost:4318 (/v1/traces is added when the URL has no path): a span per request with the engine, model, tokens and time to first token, the upstream call as its child, an incoming traceparent honoured. Default: off (the SDK is not loaded)',
    schema: z.url({ protocol: /^https?$/ }).optional(),
  },
  logLevel: { flag: '--log-level <level>', env: 'PARLANCE_LOG_LEVEL', description: 'fatal, error, warn, info, debug, trace or silent', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') },
} as const;

export type OptionKey = keyof typeof optionTable;

type Schemas = { [K in OptionKey]: (typeof optionTable)[K]['schema'] };
const shape = Object.fromEntries(Object.entries(optionTable).map(([key, option]) => [key, option.schema])) as unknown as Schemas;

export const configSchema = z.object(shape).strict();

export type Config = Readonly<z.output<typeof configSchema>>;
