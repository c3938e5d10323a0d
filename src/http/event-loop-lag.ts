/**
 * How late the event loop runs, measured as `@fastify/under-pressure` does (the mean lateness of a timer over
 * each second), but from one unref'd timer that fires every `maxDelayMs / 2` (at most every 500 ms, at least
 * every 10 ms) instead of every 10 ms. under-pressure (and prom-client's lag metric) wake the loop 100 times a
 * second, 5–10 ms of CPU per second on a server that does nothing; this costs next to nothing.
 *
 * A stall of B ms makes the timer due within it fire at least B − interval ms late, so a loop that stays
 * behind by more than 1.5 × `maxDelayMs` is always seen; one short stall (a collection, a moment without a
 * core on a busy machine) is averaged with the second's other samples, as under-pressure's is.
 */
const windowMs = 1000;

export class EventLoopLag {
  private readonly intervalMs: number;
  private expectedAt = 0;
  private windowStart = 0;
  private lagSumMs = 0;
  private samples = 0;
  private lagging = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly maxDelayMs: number) {
    this.intervalMs = Math.min(500, Math.max(10, Math.floor(maxDelayMs / 2)));
  }

  start(): void {
    if (this.timer) return;
    this.windowStart = performance.now();
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True from the end of a second whose mean lateness passed `maxDelayMs` to the end of the next calm one. */
  get overloaded(): boolean {
    return this.lagging;
  }

  private schedule(): void {
    this.expectedAt = performance.now() + this.intervalMs;
    this.timer = setTimeout(() => {
      const now = performance.now();
      this.lagSumMs += Math.max(0, now - this.expectedAt);
      this.samples++;
      if (now - this.windowStart >= windowMs) {
        this.lagging = this.lagSumMs / this.samples > this.maxDelayMs;
        this.windowStart = now;
        this.lagSumMs = 0;
        this.samples = 0;
      }
      this.schedule();
    }, this.intervalMs);
    this.timer.unref();
  }
}
