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
 */

export class EventLoopLag {
  private readonly intervalMs: number;
  private expectedAt = 0;
  private previousLate = false;
  private lagging = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly maxDelayMs: number) {
    this.intervalMs = Math.min(500, Math.max(10, Math.floor(maxDelayMs / 2)));
  }

  start(): void {
    if (this.timer) return;
    this.schedule();
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
      this.schedule();
    }, this.intervalMs);
    this.timer.unref();
  }
}
