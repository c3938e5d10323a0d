/**
 * Whether the event loop is overloaded, from how late one unref'd timer fires: every `maxDelayMs / 2` (at most
 * every 500 ms, at least every 10 ms), where `@fastify/under-pressure` samples every 10 ms. under-pressure (and prom-client's lag metric) wake the loop 100 times a
 * second, 5–10 ms of CPU per second on a server that does nothing; this costs next to nothing.
 *
 * Overloaded means the loop stayed behind: two samples in a row each more than `maxDelayMs` late. A loop kept
 * busy makes every timer late, so it is seen within two intervals; one stall, however long (a model load, a
 * collection, a moment without a core on a busy machine), makes only the timer due within it late, and is
 * not taken for overload. (Averaging two samples a second let a single start-up stall shed the first
 * requests after `/ready`.)
 *
 * The timer runs only while there is work (`busy()`: requests in flight, generations running): `arm()` starts it
 * when a request comes, and a sample taken with nothing to do stops it, so an idle server's loop never wakes for
 * it (idle CPU 0). An idle loop has nothing to shed, and a loop made late by work is seen while that work runs.
 */

export class EventLoopLag {
  private readonly intervalMs: number;
  private expectedAt = 0;
  private previousLate = false;
  private lagging = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxDelayMs: number,
    /** Whether there is work the loop owes (default: always, the timer never stops by itself). */
    private readonly busy: () => boolean = () => true,
  ) {
    this.intervalMs = Math.min(500, Math.max(10, Math.floor(maxDelayMs / 2)));
  }

  /** Starts sampling, unless it already runs; it stops by itself at the first sample with nothing busy. */
  arm(): void {
    if (this.timer) return;
    this.schedule();
  }

  /** Whether the timer is running (sampling), for tests and metrics. */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True from the second of two late samples in a row to the next sample on time. */
  get overloaded(): boolean {
    return this.lagging;
  }

  private schedule(): void {
    this.expectedAt = performance.now() + this.intervalMs;
    this.timer = setTimeout(() => {
      const late = performance.now() - this.expectedAt > this.maxDelayMs;
      this.lagging = late && this.previousLate;
      this.previousLate = late;
      if (this.lagging || this.busy()) {
        this.schedule();
        return;
      }
      // Nothing left to do: no more samples until the next request (a lateness seen now was this work's).
      this.timer = undefined;
      this.previousLate = false;
    }, this.intervalMs);
    this.timer.unref();
  }
}
