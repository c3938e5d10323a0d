import type { FastifyReply } from 'fastify';
import type { Config } from '../config/schema.js';
import type { ChatService } from '../core/chat-service.js';
import type { ConversationService } from '../core/conversation-service.js';
import type { EmbeddingService } from '../core/embedding-service.js';
import type { ConversationStore } from '../store/contract.js';
import type { Metrics } from './metrics.js';
import type { KeyRateLimiter } from './rate-limit.js';
import type { RequestTracer } from './request-tracing.js';
import { SseStream, type SseOptions } from './sse.js';
import type { Engine } from '../engines/contract.js';
import type { EngineRegistry } from '../engines/registry.js';

/** A notice shown in the log, `/health` and the page, e.g. when the demo model serves random text. */
export interface ServiceNotice {
  readonly level: 'warning';
  readonly message: string;
}

/** Everything the HTTP layer is given by `main.ts`; routes never build their own dependencies. */
export interface HttpDeps {
  readonly config: Config;
  /** This process's identity among replicas, new at every start (in logs and `/health`). */
  readonly instance: string;
  readonly chat: ChatService;
  /** Embeddings and rerank, for every dialect that serves them. */
  readonly embeddings: EmbeddingService;
  readonly engines: EngineRegistry;
  readonly store: ConversationStore;
  readonly conversations: ConversationService;
  readonly metrics: Metrics;
  /** Per-API-key requests and tokens per minute (inactive when no key has a limit). */
  readonly rateLimits: KeyRateLimiter;
  readonly notices: readonly ServiceNotice[];
  /** True when the embedded engine serves the tiny random-weight model. */
  readonly demo: boolean;
  /** A span per request (OpenTelemetry), when `--otlp-endpoint` is set. */
  readonly tracing?: RequestTracer;
}

/**
 * Opens an SSE response with the server's keep-alive and frozen-client bounds, counted in the open-streams gauge.
 * `source` is the engine whose events the stream carries: its `streamCoalesceMs` decides whether frames may
 * be held to share a write (absent: each tick's frames go out at the end of the tick). `format` is for dialects whose
 * stream is not plain SSE (Anthropic's `ping` events, Ollama's NDJSON).
 */
export function openSse(deps: HttpDeps, reply: FastifyReply, source?: Pick<Engine, 'streamCoalesceMs'>, format: Pick<SseOptions, 'contentType' | 'keepAliveFrame'> = {}): SseStream {
  const coalesceMs = source?.streamCoalesceMs;
  return new SseStream(reply, {
    ...format,
    keepAliveMs: deps.config.keepAliveSeconds * 1000,
    writeTimeoutMs: deps.config.writeTimeoutSeconds * 1000,
    onOpen: () => deps.metrics.activeStreams.inc(),
    onClose: () => deps.metrics.activeStreams.dec(),
    ...(coalesceMs === undefined ? {} : { coalesceMs }),
  });
}
