import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Traces requests: telemetry implements it (OpenTelemetry), `main.ts` hands it over when `--otlp-endpoint` is set.
 * The HTTP layer knows only this much of it.
 */
export interface RequestTracer {
  /** Starts the span of one request; an incoming `traceparent` among the headers becomes its parent. */
  start(request: { readonly method: string; readonly route: string | undefined; readonly path: string; readonly headers: IncomingHttpHeaders }): RequestTrace;
}

export interface RequestTrace {
  /** Runs `fn` with this request's span active, so what it starts (a generation, an upstream call) is attributed to it. */
  run(fn: () => void): void;
  /** Called once, when the response is done or the client left. */
  end(outcome: { readonly status: number; readonly aborted: boolean }): void;
}

/** Gives every request a trace from its start (routing is done by then) to the end of its response, streams included. */
export function installRequestTracing(app: FastifyInstance, tracer: RequestTracer): void {
  const traces = new WeakMap<FastifyRequest, RequestTrace>();
  app.addHook('onRequest', (request, reply, done) => {
    const trace = tracer.start({ method: request.method, route: request.routeOptions.url, path: request.url.split('?')[0] ?? request.url, headers: request.headers });
    traces.set(request, trace);
    reply.raw.once('close', () => trace.end({ status: reply.raw.statusCode, aborted: !reply.raw.writableFinished }));
    done();
  });
  // The handler runs inside the hook chain's last callback: calling it within the span's context makes the
  // span the active one for everything the handler awaits.
  app.addHook('preHandler', (request, _reply, done) => {
    const trace = traces.get(request);
    if (trace) trace.run(done);
    else done();
  });
}
