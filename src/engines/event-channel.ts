/**
 * A single-consumer queue that turns callbacks (llama.cpp's `onTextChunk`,
 * an upstream socket's data) into an async iterator. The buffer is bounded by
 * the producer (a generation has at most `maxTokens` events), so pushing never
 * waits; the consumer's pace decides how fast events leave.
 */
export class EventChannel<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private head = 0;
  private ended = false;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;

  constructor(private readonly onReturn?: () => void) {}

  push(item: T): void {
    if (this.ended) return;
    const resolve = this.waiting;
    if (resolve) {
      this.waiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.buffer.push(item);
    }
  }

  /** No more items: the consumer sees the buffered ones, then the end. */
  end(): void {
    this.ended = true;
    const resolve = this.waiting;
    if (resolve && this.head === this.buffer.length) {
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head] as T;
      this.head++;
      // Compact now and then so a long generation does not keep every event alive.
      if (this.head > 256 && this.head * 2 > this.buffer.length) {
        this.buffer.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** The consumer stopped early (`break` in `for await`): tell the producer. */
  return(): Promise<IteratorResult<T>> {
    this.ended = true;
    this.buffer.length = 0;
    this.head = 0;
    this.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
