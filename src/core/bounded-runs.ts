import { ParlanceError } from '../errors.js';

/** One request's bounds: a signal of its own, aborted by the caller's, the deadline or shutdown. */
export interface BoundedRun {
  readonly signal: AbortSignal;
  /** True once the deadline aborted it. */
  readonly deadlineReached: boolean;
  /** Removes its listener and timer; safe to call more than once. */
  readonly release: () => void;
}

/**
 * The requests a core service has running, each bounded in time and tied to the server's lifetime, so that
 * shutdown can stop them all. Chat generations and embeddings share it.
 */
export class BoundedRuns {
  private stopping: ParlanceError | undefined;
  /** Each run's controller, until it is released (aborted by stopAll). */
  private readonly live = new Set<AbortController>();

  constructor(
    /** The longest a run may take; it is then aborted with `upstream_timeout`. */
    private readonly deadlineMs: number | undefined,
    private readonly deadlineMessage: string,
  ) {}

  /** Throws once {@link stopAll} was called: nothing new starts while the server stops. */
  assertOpen(): void {
    if (this.stopping) throw this.stopping;
  }

  start(signal: AbortSignal): BoundedRun {
    // One controller per run, aborted by the caller's signal, the deadline or shutdown. Not
    // AbortSignal.any([signal, shutdown, deadline]): on Node 20 every call leaves a trace behind in the
    // server-long shutdown signal that is never collected, a leak per request (~40 bytes, forever).
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort(signal.reason);
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onCallerAbort, { once: true });
    let deadlineReached = false;
    const deadline =
      this.deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            deadlineReached = true;
            controller.abort(new ParlanceError('upstream_timeout', this.deadlineMessage));
          }, this.deadlineMs);
    deadline?.unref();
    this.live.add(controller);
    let released = false;
    return {
      signal: controller.signal,
      get deadlineReached() {
        return deadlineReached;
      },
      release: () => {
        if (released) return;
        released = true;
        signal.removeEventListener('abort', onCallerAbort);
        if (deadline) clearTimeout(deadline);
        this.live.delete(controller);
      },
    };
  }

  /** Refuses new runs and aborts the running ones (and those waiting for admission). */
  stopAll(): void {
    this.stopping ??= new ParlanceError('engine_unavailable', 'the server is shutting down');
    for (const controller of [...this.live]) controller.abort(this.stopping);
  }
}
