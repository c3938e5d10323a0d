/**
 * OpenTelemetry traces, through the official SDK. `main.ts` imports this module only when `--otlp-endpoint` is
 * set, so a server without it loads nothing of OpenTelemetry (start time and memory stay as they were).
 *
 * A span per HTTP request (SERVER), with the engine, model, tokens and time to first token of the generation it
 * served; a child span (CLIENT) per request the relay sends upstream, whose W3C `traceparent` the upstream
 * continues. Spans leave through the SDK's BatchSpanProcessor: a bounded queue, exported in the background, so a
 * collector that is slow or down drops spans and never delays or fails a request.
 */
import { SpanKind, SpanStatusCode, context, propagation, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { GenerationObserver } from '../core/chat-service.js';
import type { UpstreamCallTrace, UpstreamCallTracer } from '../engines/openai-compatible/flight.js';
import type { RequestTrace, RequestTracer } from '../http/request-tracing.js';

/**
 * Attribute names of OpenTelemetry's GenAI conventions, which are still incubating: copied here, as the
 * conventions package advises, rather than imported from its unstable entry point.
 */
const GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
const GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
const GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
const GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
/** The conventions' TTFT metric, in seconds, kept as an attribute of the request's span. */
const GEN_AI_TIME_TO_FIRST_TOKEN = 'gen_ai.server.time_to_first_token';
const SERVICE_INSTANCE_ID = 'service.instance.id';
/** Parlance's own: which of its engines served the request (`llama`, `upstreams`, `scripted`). */
const PARLANCE_ENGINE = 'parlance.engine';
const PARLANCE_UPSTREAM = 'parlance.upstream';
/** Why an upstream request was cut short (client, deadline, stall, …), when it was. */
const PARLANCE_UPSTREAM_ABORTED = 'parlance.upstream.aborted';
const PARLANCE_CLIENT_LEFT = 'parlance.client_left';

/** The longest one export may take (the exporter's own retries included). */
const EXPORT_TIMEOUT_MS = 5000;
/** How long shutdown waits for the last spans to reach the collector: a collector that is down must not hold a restart. */
const SHUTDOWN_WAIT_MS = 2000;

export interface TracingOptions {
  /** The collector: a base URL (`/v1/traces` is added) or the full traces URL. */
  readonly endpoint: string;
  readonly serviceVersion: string;
  /** This process among replicas (`service.instance.id`). */
  readonly instance: string;
  /** Told when spans cannot be sent: the first failure at warn, later ones at debug. */
  readonly log: { warn(message: string): void; debug(message: string): void };
}

export interface Tracing {
  readonly requests: RequestTracer;
  /** Adds each generation's engine, model, tokens and TTFT to the span of the request it serves. */
  readonly generations: GenerationObserver;
  readonly upstreamCalls: UpstreamCallTracer;
  /** Adds an embedding or rerank request's engine, model and prompt tokens to its request's span. */
  embedded(engine: string, model: string, promptTokens: number): void;
  /** Ends tracing after sending what is pending, waiting at most a few seconds for the collector. */
  shutdown(): Promise<void>;
}

/** The OTLP/HTTP traces URL for `--otlp-endpoint`: a URL without a path is the collector's base, as OTEL_EXPORTER_OTLP_ENDPOINT is. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return url.href;
}

export function startTracing(options: TracingOptions): Tracing {
  const url = tracesUrl(options.endpoint);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'parlance', [ATTR_SERVICE_VERSION]: options.serviceVersion, [SERVICE_INSTANCE_ID]: options.instance }),
    spanProcessors: [
      new BatchSpanProcessor(reportingFailures(new OTLPTraceExporter({ url, timeoutMillis: EXPORT_TIMEOUT_MS }), url, options.log), {
        // The queue bound: past it new spans are dropped, never held in memory or waited for.
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        scheduledDelayMillis: 1000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  // The context manager (AsyncLocalStorage) and the W3C propagator are process-wide; registering a second
  // provider (two servers in one process, as in tests) keeps the first ones, which are stateless.
  provider.register();
  const tracer = provider.getTracer('parlance', options.serviceVersion);
  const onActiveSpan = (attributes: Attributes): void => void trace.getActiveSpan()?.setAttributes(attributes);
  let shutdown: Promise<void> | undefined;
  return {
    requests: { start: (request) => requestTrace(tracer, request) },
    generations: {
      admitted: (engine, model) => onActiveSpan({ [PARLANCE_ENGINE]: engine, [GEN_AI_REQUEST_MODEL]: model }),
      rejected: (engine, code) => onActiveSpan({ [PARLANCE_ENGINE]: engine, [ATTR_ERROR_TYPE]: code }),
      firstToken: (_engine, seconds) => onActiveSpan({ [GEN_AI_TIME_TO_FIRST_TOKEN]: seconds }),
      interToken: () => undefined,
      finished: (engine, model, reason, usage, errorCode) =>
        onActiveSpan({
          [PARLANCE_ENGINE]: engine,
          [GEN_AI_REQUEST_MODEL]: model,
          [GEN_AI_RESPONSE_FINISH_REASONS]: [reason],
          ...(usage ? { [GEN_AI_USAGE_INPUT_TOKENS]: usage.promptTokens, [GEN_AI_USAGE_OUTPUT_TOKENS]: usage.completionTokens } : {}),
          ...(errorCode ? { [ATTR_ERROR_TYPE]: errorCode } : {}),
        }),
    },
    upstreamCalls: { start: (call) => upstreamTrace(tracer, call) },
    embedded: (engine, model, promptTokens) => onActiveSpan({ [PARLANCE_ENGINE]: engine, [GEN_AI_REQUEST_MODEL]: model, [GEN_AI_USAGE_INPUT_TOKENS]: promptTokens }),
    shutdown: () =>
      (shutdown ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_WAIT_MS)));
        await Promise.race([provider.shutdown().catch(() => undefined), timeout]);
        clearTimeout(timer);
      })()),
  };
}

function requestTrace(tracer: Tracer, request: Parameters<RequestTracer['start']>[0]): RequestTrace {
  const parent = propagation.extract(context.active(), request.headers);
  const span = tracer.startSpan(
    request.route === undefined ? request.method : `${request.method} ${request.route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_URL_PATH]: request.path, ...(request.route === undefined ? {} : { [ATTR_HTTP_ROUTE]: request.route }) },
    },
    parent,
  );
  const active = trace.setSpan(parent, span);
  return {
    run: (fn) => context.with(active, fn),
    end: ({ status, aborted }) => {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (aborted) span.setAttribute(PARLANCE_CLIENT_LEFT, true);
      // HTTP's conventions: for a server, only a 5xx is the span's error (a 4xx is the client's).
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, String(status));
      span.end();
    },
  };
}

function upstreamTrace(tracer: Tracer, call: Parameters<UpstreamCallTracer['start']>[0]): UpstreamCallTrace {
  const url = new URL(call.url);
  const span: Span = tracer.startSpan(`${call.method} ${url.pathname}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      [ATTR_HTTP_REQUEST_METHOD]: call.method,
      // The URL as configured, less any user:password.
      [ATTR_URL_FULL]: `${url.protocol}//${url.host}${url.pathname}`,
      [ATTR_SERVER_ADDRESS]: url.hostname,
      [ATTR_SERVER_PORT]: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
      [PARLANCE_UPSTREAM]: call.upstream,
      [GEN_AI_REQUEST_MODEL]: call.model,
    },
  });
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), headers);
  let ended = false;
  return {
    headers,
    end: ({ status, aborted }) => {
      if (ended) return;
      ended = true;
      if (status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (aborted !== undefined) span.setAttribute(PARLANCE_UPSTREAM_ABORTED, aborted);
      // Stopped by our side (the client left, the consumer was done, shutdown) is no failure of the upstream.
      const failed = status >= 400 || (aborted !== undefined && aborted !== 'client' && aborted !== 'consumer' && aborted !== 'closed');
      if (failed) span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, status >= 400 ? String(status) : (aborted ?? 'failed'));
      span.end();
    },
  };
}

/** The exporter, saying once (then at debug) that spans could not be sent: a collector that is down is the operator's to know. */
function reportingFailures(exporter: SpanExporter, url: string, log: TracingOptions['log']): SpanExporter {
  let warned = false;
  return {
    export: (spans: ReadableSpan[], done) =>
      exporter.export(spans, (result) => {
        // 0 is ExportResultCode.SUCCESS (of @opentelemetry/core, which Parlance does not depend on directly).
        if (result.error !== undefined || result.code !== 0) {
          const message = `cannot send ${spans.length} spans to ${url}: ${result.error?.message ?? 'export failed'}; they are dropped, and later spans still tried`;
          if (warned) log.debug(message);
          else log.warn(`${message} (further failures are logged at debug)`);
          warned = true;
        }
        done(result);
      }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
