import { createRequire } from 'node:module';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
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

  private readonly loopDelay: LoopDelayGauges;

  private readonly modelLoad = new Gauge({ name: 'parlance_model_load_seconds', help: 'How long the model took to load at start', labelNames: ['engine', 'model'], registers: [this.registry] });

  /** `loading`: whether the engines are still loading (the registry's state). */
  constructor(engines: () => readonly Engine[], options: { readonly loading?: () => boolean } = {}) {
    for (const name of defaultMetrics) (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(this.registry, { prefix });
    this.loopDelay = new LoopDelayGauges(this.registry);
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

  /** There is work (a request came): the event-loop delay is sampled until `busy()` says there is none. */
  sampleEventLoop(busy: () => boolean): void {
    this.loopDelay.arm(busy);
  }

  /** Whether the event-loop delay is being sampled (there was work within the last second or two). */
  get samplingEventLoop(): boolean {
    return this.loopDelay.sampling;
  }

  /** Stops sampling the event loop (the server closes). */
  stopSampling(): void {
    this.loopDelay.stop();
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

const prefix = 'parlance_process_';
const require = createRequire(import.meta.url);
type DefaultMetric = (registry: Registry, config: { readonly prefix: string }) => void;

/**
 * prom-client's default metrics, module by module, less `eventLoopLag`: its histogram wakes the loop at every
 * sample (every 10 ms by default) for as long as the process lives, so an idle server would never be idle.
 * {@link LoopDelayGauges} serves the same series from a histogram that samples only while there is work.
 */
const defaultMetrics = [
  'processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors',
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc',
];

/**
 * The `nodejs_eventloop_lag_*` series of prom-client's default metrics, from a `monitorEventLoopDelay` histogram
 * enabled only while there is work: a request arms it, and a check every second that finds nothing busy
 * (no request in flight, nothing generating or queued) disables it, so an idle loop is never woken for it
 * (its delay is 0 then: there is nothing to be late for). Each scrape reports what was sampled since the one
 * before, as prom-client does; `nodejs_eventloop_lag_seconds` is, as there, how late a setImmediate runs at
 * the scrape.
 */
class LoopDelayGauges {
  /** 20 ms: fine enough for a lag worth seeing, and 50 wake-ups a second only while there is work anyway. */
  private histogram: IntervalHistogram | undefined;
  private check: NodeJS.Timeout | undefined;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string, collect?: () => void): Gauge => new Gauge({ name: `${prefix}nodejs_eventloop_lag${name}_seconds`, help, registers: [registry], ...(collect ? { collect } : {}) });
    const lag = gauge('', 'Lag of event loop in seconds.', () => {
      const start = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
      const histogram = this.histogram;
      const sampled = histogram !== undefined && histogram.count > 0;
      const seconds = (read: (histogram: IntervalHistogram) => number): number => (sampled ? read(histogram) / 1e9 : 0);
      min.set(seconds((h) => h.min));
      max.set(seconds((h) => h.max));
      mean.set(seconds((h) => h.mean));
      stddev.set(seconds((h) => h.stddev));
      p50.set(seconds((h) => h.percentile(50)));
      p90.set(seconds((h) => h.percentile(90)));
      p99.set(seconds((h) => h.percentile(99)));
      histogram?.reset();
    });
    const min = gauge('_min', 'The minimum recorded event loop delay.');
    const max = gauge('_max', 'The maximum recorded event loop delay.');
    const mean = gauge('_mean', 'The mean of the recorded event loop delays.');
    const stddev = gauge('_stddev', 'The standard deviation of the recorded event loop delays.');
    const p50 = gauge('_p50', 'The 50th percentile of the recorded event loop delays.');
    const p90 = gauge('_p90', 'The 90th percentile of the recorded event loop delays.');
    const p99 = gauge('_p99', 'The 99th percentile of the recorded event loop delays.');
  }

  /** Whether the histogram is sampling, for tests. */
  get sampling(): boolean {
    return this.check !== undefined;
  }

  arm(busy: () => boolean): void {
    if (this.check) return;
    // Made at the first request: a server that is never asked anything never has one.
    this.histogram ??= monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
    this.check = setInterval(() => {
      if (busy()) return;
      this.stop();
    }, 1000);
    this.check.unref();
  }

  stop(): void {
    clearInterval(this.check);
    this.check = undefined;
    this.histogram?.disable();
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
