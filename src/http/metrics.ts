import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GenerationObserver } from '../core/chat-service.js';
import type { ErrorCode } from '../errors.js';
import type { Engine, FinishReason, TokenUsage } from '../engines/contract.js';

/**
 * The Prometheus metrics of one server, on a registry of its own (so two
 * servers in one process, as in tests, do not mix their figures). Served at
 * `/metrics`.
 */
export class Metrics implements GenerationObserver {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'parlance_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  private readonly errors = new Counter({ name: 'parlance_errors_total', help: 'Errors answered or sent in-stream, by code', labelNames: ['code'], registers: [this.registry] });
  // Kept apart from the errors above: a refused admission is also answered (and counted there) by the HTTP layer,
  // or, for a conversation reply, stored as the reply's failure.
  private readonly rejections = new Counter({ name: 'parlance_engine_rejections_total', help: 'Requests an engine refused before generating, by engine and code', labelNames: ['engine', 'code'], registers: [this.registry] });
  readonly activeStreams = new Gauge({ name: 'parlance_active_streams', help: 'Open SSE responses', registers: [this.registry] });
  private readonly generations = new Counter({ name: 'parlance_generations_total', help: 'Generations by engine, model and finish reason', labelNames: ['engine', 'model', 'reason'], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'parlance_tokens_total', help: 'Tokens in (prompt) and out (completion)', labelNames: ['engine', 'direction'], registers: [this.registry] });
  private readonly ttft = new Histogram({
    name: 'parlance_time_to_first_token_seconds',
    help: 'From admission by the engine to the first text',
    labelNames: ['engine'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly itl = new Histogram({
    name: 'parlance_inter_token_latency_seconds',
    help: 'Between consecutive pieces of text',
    labelNames: ['engine'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  private readonly modelLoad = new Gauge({ name: 'parlance_model_load_seconds', help: 'How long the model took to load at start', labelNames: ['engine', 'model'], registers: [this.registry] });

  /** `loading`: whether the engines are still loading (the registry's state). */
  constructor(engines: () => readonly Engine[], options: { readonly loading?: () => boolean } = {}) {
    // The lag histogram samples at 10 ms unless told otherwise: 100 wake-ups a second on an idle server.
    collectDefaultMetrics({ register: this.registry, prefix: 'parlance_process_', eventLoopMonitoringPrecision: 500 });
    const loading = options.loading ?? (() => false);
    // A gauge read from the engines at each scrape: `fill` sets every series there is, the rest are dropped.
    const collected = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void): void =>
      void new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect(this: Gauge<L>) {
          this.reset();
          fill((labels, value) => this.set(labels, value));
        },
      });
    collected('parlance_loading', '1 while the engines load (the server listens, /ready answers 503), then 0', [], (set) => set({}, loading() ? 1 : 0));
    collected('parlance_models_served', 'Models each engine serves (1 per model)', ['engine', 'model'], (set) => {
      for (const engine of engines()) for (const model of engine.models()) set({ engine: engine.name, model: model.id }, 1);
    });
    const upstreams = (): { engine: string; upstream: UpstreamHealthLike }[] =>
      engines().flatMap((engine) => (hasHealth(engine) ? engine.health().map((upstream) => ({ engine: engine.name, upstream })) : []));
    collected('parlance_upstream_cooling_down', '1 while an upstream is passed over after a failure (the cool-down), else 0', ['engine', 'upstream'], (set) => {
      for (const { engine, upstream } of upstreams()) set({ engine, upstream: upstream.name }, upstream.coolingDown ? 1 : 0);
    });
    collected('parlance_upstream_failures', 'Requests an upstream failed before its first byte (5xx, refused, timed out), since start', ['engine', 'upstream'], (set) => {
      for (const { engine, upstream } of upstreams()) set({ engine, upstream: upstream.name }, upstream.failures);
    });
    const load = (field: 'active' | 'queued') =>
      function collect(this: Gauge<'engine'>): void {
        this.reset();
        for (const engine of engines()) this.set({ engine: engine.name }, engine.load()[field]);
      };
    new Gauge({ name: 'parlance_engine_queue_depth', help: 'Requests waiting for the engine', labelNames: ['engine'], registers: [this.registry], collect: load('queued') });
    new Gauge({ name: 'parlance_engine_busy', help: 'Generations running (for the embedded engine: context sequences in use)', labelNames: ['engine'], registers: [this.registry], collect: load('active') });
  }

  /** The embedded engine loaded `model` in `seconds`. */
  modelLoaded(engine: string, model: string, seconds: number): void {
    this.modelLoad.set({ engine, model }, seconds);
  }

  request(route: string, method: string, status: number): void {
    this.requests.inc({ route, method, status });
  }

  error(code: string): void {
    this.errors.inc({ code });
  }

  admitted(): void {}

  rejected(engine: string, code: ErrorCode): void {
    this.rejections.inc({ engine, code });
  }

  firstToken(engine: string, seconds: number): void {
    this.ttft.observe({ engine }, seconds);
  }

  interToken(engine: string, seconds: number): void {
    this.itl.observe({ engine }, seconds);
  }

  /** Tokens read by a request that generates none (embeddings, rerank). */
  promptTokens(engine: string, tokens: number): void {
    this.tokens.inc({ engine, direction: 'in' }, tokens);
  }

  finished(engine: string, model: string, reason: FinishReason, usage: TokenUsage | undefined, errorCode: ErrorCode | undefined): void {
    this.generations.inc({ engine, model, reason });
    if (usage) {
      this.tokens.inc({ engine, direction: 'in' }, usage.promptTokens);
      this.tokens.inc({ engine, direction: 'out' }, usage.completionTokens);
    }
    if (errorCode) this.errors.inc({ code: errorCode });
  }
}

/** What a balancing engine reports of each upstream (see the OpenAI-compatible balancer). */
interface UpstreamHealthLike {
  readonly name: string;
  readonly coolingDown: boolean;
  readonly failures: number;
}

function hasHealth(engine: Engine): engine is Engine & { health(): readonly UpstreamHealthLike[] } {
  return typeof (engine as { health?: unknown }).health === 'function';
}
