import { ParlanceError } from '../../errors.js';

interface Waiter<T> {
  readonly resolve: (slot: T) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * Hands out a fixed set of slots (llama.cpp context sequences) first come,
 * first served. When all are busy, up to `queueLength` requests wait in
 * arrival order; past that, `acquire` fails at once with `queue_full` so a
 * client learns it should back off without waiting to find out.
 *
 * Among free slots, `acquire` takes the one its `affinity` scores highest (the
 * engine scores the tokens a slot's KV cache shares with the prompt), and on a
 * tie the least recently released: a conversation that has gone quiet keeps its
 * cache longest, and a new prompt overwrites the cache least likely to be asked for.
 */
export class SlotPool<T> {
  /** Free slots, least recently released first. */
  private readonly free: T[];
  private readonly waiters: Waiter<T>[] = [];
  private closed = false;

  constructor(
    slots: readonly T[],
    private readonly queueLength: number,
    /** Seconds suggested to clients in `Retry-After` when the queue is full. */
    private readonly retryAfterSeconds = 1,
  ) {
    this.free = [...slots];
    this.capacity = slots.length;
  }

  readonly capacity: number;

  get busy(): number {
    return this.capacity - this.free.length;
  }

  get queued(): number {
    return this.waiters.length;
  }

  acquire(signal: AbortSignal, affinity?: (slot: T) => number): Promise<T> {
    if (this.closed) return Promise.reject(new ParlanceError('engine_unavailable', 'the engine is shutting down'));
    if (signal.aborted) return Promise.reject(signal.reason);
    const slot = this.takeFree(affinity);
    if (slot !== undefined) return Promise.resolve(slot);
    if (this.waiters.length >= this.queueLength) {
      return Promise.reject(
        new ParlanceError('queue_full', `all ${this.capacity} sequences are busy and ${this.queueLength} requests are already waiting`, {
          retryAfterSeconds: this.retryAfterSeconds,
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private takeFree(affinity: ((slot: T) => number) | undefined): T | undefined {
    let best = 0;
    if (affinity) {
      let bestScore = Number.NEGATIVE_INFINITY;
      this.free.forEach((slot, index) => {
        const score = affinity(slot);
        // Strictly greater: on a tie the earlier (less recently released) slot stays chosen.
        if (score > bestScore) {
          bestScore = score;
          best = index;
        }
      });
    }
    return this.free.splice(best, 1)[0];
  }

  /** A waiter takes the released slot whatever its cache holds, so the queue stays first come, first served. */
  release(slot: T): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(slot);
    } else {
      this.free.push(slot);
    }
  }

  /** Rejects every waiter; later `acquire` calls fail. Slots already out stay out until released. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new ParlanceError('engine_unavailable', 'the engine is shutting down'));
    }
  }
}
