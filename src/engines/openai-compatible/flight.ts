import type { ClientRequest, IncomingMessage } from 'node:http';

/** Why a flight's upstream request was aborted; the first cause wins. */
export type AbortCause = 'client' | 'closed' | 'consumer' | 'connect' | 'stall' | 'deadline';

/**
 * Watches each request the engine sends upstream; telemetry implements it (a child span of the request being
 * served, and the W3C trace context the upstream continues). The engine knows nothing of how it is traced.
 */
export interface UpstreamCallTracer {
  /** Called as the request starts, in the caller's async context: returns the headers to add and the call's end. */
  start(call: { readonly upstream: string; readonly method: string; readonly url: string; readonly model: string }): UpstreamCallTrace;
}

export interface UpstreamCallTrace {
  readonly headers: Readonly<Record<string, string>>;
  /** Called once: the response status (0 when none came) and, if the request was cut short, why. */
  end(outcome: { readonly status: number; readonly aborted?: AbortCause | 'failed' }): void;
}

/**
 * One upstream request's lifetime: its AbortController, its timers and its
 * place in the engine's in-flight set. Every way a request can end funnels
 * through `abort()` and `release()`, both idempotent.
 */
export class Flight {
  cause: AbortCause | undefined;
  /** When the stream last produced text; read by the stall timer, written once per network read. */
  lastProgressAt = 0;
  /** True while the relay waits on the socket; otherwise the consumer is holding us up, which is not the upstream stalling. */
  reading = false;
  private released = false;
  /** The upstream request, then its response: whatever must be destroyed to drop the connection. */
  private connection: ClientRequest | IncomingMessage | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly totalTimer: NodeJS.Timeout;
  stallTimeoutMs = 0;
  /** The upstream's response status, once its headers are in. */
  status = 0;
  private readonly onClientAbort = (): void => this.abort('client');

  constructor(
    private readonly flights: Set<Flight>,
    private readonly signal: AbortSignal,
    connectTimeoutMs: number,
    totalTimeoutMs: number,
    /** Ended when the flight is released, however it ends. */
    private readonly trace?: UpstreamCallTrace,
  ) {
    flights.add(this);
    signal.addEventListener('abort', this.onClientAbort, { once: true });
    this.connectTimer = setTimeout(() => this.abort('connect'), connectTimeoutMs);
    this.totalTimer = setTimeout(() => this.abort('deadline'), totalTimeoutMs);
  }

  attach(request: ClientRequest): void {
    this.connection = request;
    if (this.cause !== undefined) request.destroy();
  }

  /** Headers are in: from now on only a lack of generated text counts as a stall. */
  streaming(stallTimeoutMs: number, response: IncomingMessage): void {
    this.connection = response;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.stallTimeoutMs = stallTimeoutMs;
    this.lastProgressAt = Date.now();
    this.stallTimer = setTimeout(this.checkStall, stallTimeoutMs);
  }

  // Re-arming for the remaining time, rather than resetting a timer on every chunk, keeps per-token work to one Date.now().
  private readonly checkStall = (): void => {
    if (this.released) return;
    if (!this.reading) {
      // A slow client (backpressure) keeps us from reading; restart the clock rather than blame the upstream.
      this.lastProgressAt = Date.now();
      this.stallTimer = setTimeout(this.checkStall, this.stallTimeoutMs);
      return;
    }
    const idle = Date.now() - this.lastProgressAt;
    if (idle >= this.stallTimeoutMs) this.abort('stall');
    else if (!this.released) this.stallTimer = setTimeout(this.checkStall, this.stallTimeoutMs - idle);
  };

  abort(cause: AbortCause): void {
    if (this.cause !== undefined) return;
    this.cause = cause;
    this.drop();
    // The socket is gone with the abort, so the slot is free even if nobody ever iterates the generation.
    this.release();
  }

  /** Closes the upstream connection, whatever state the request is in. */
  drop(): void {
    this.connection?.destroy();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.flights.delete(this);
    this.signal.removeEventListener('abort', this.onClientAbort);
    clearTimeout(this.connectTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.totalTimer);
    this.trace?.end({ status: this.status, ...(this.cause !== undefined ? { aborted: this.cause } : this.status === 0 ? { aborted: 'failed' as const } : {}) });
  }
}
