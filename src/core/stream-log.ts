/**
 * The event logs of resumable streams, kept in this process: a stream that a client opted into
 * resuming records every SSE event it sends, so a client that dropped can ask for the events it missed
 * and then follow the rest live. Each event's id is its position in the log (1 for the first), so
 * `Last-Event-ID: n` means "I have events 1..n".
 *
 * Bounded twice: a log takes at most `maxBytes` (past that it refuses the event and the stream is cut),
 * and a finished log is forgotten `retentionMs` after its end.
 */

export interface StreamLogBounds {
  readonly retentionMs: number;
  readonly maxBytes: number;
}

/** One stream's events, in order, with ids framed in; followers wait on it for new ones. */
export class StreamLog {
  private readonly events: string[] = [];
  private bytes = 0;
  private finished = false;
  /** Wakes every follower waiting for the next event (or the end). */
  private wake: () => void = () => {};
  private next: Promise<void> = this.renew();

  constructor(
    /** The API key's name that started the stream; only it may resume (undefined: no keys set). */
    readonly owner: string | undefined,
    private readonly maxBytes: number,
    private readonly onEnd: () => void,
  ) {}

  private renew(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /** How many events the log holds: the highest id a client may name. */
  get length(): number {
    return this.events.length;
  }

  get ended(): boolean {
    return this.finished;
  }

  /**
   * Appends one SSE event (`data: …\n\n`) and returns it with its `id:` line, as it must go on the wire;
   * undefined when it would take the log past its byte bound (nothing is appended then).
   * `force` appends regardless: for the one error event that says the bound was reached.
   */
  append(event: string, force = false): string | undefined {
    if (this.finished) return undefined;
    const framed = `id: ${this.events.length + 1}\n${event}`;
    const size = Buffer.byteLength(framed);
    if (!force && this.bytes + size > this.maxBytes) return undefined;
    this.events.push(framed);
    this.bytes += size;
    this.signal();
    return framed;
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.signal();
    this.onEnd();
  }

  private signal(): void {
    const wake = this.wake;
    this.next = this.renew();
    wake();
  }

  /** The events after id `after`, then each new one as it comes, until the log ends or `signal` aborts. */
  async *follow(after: number, signal: AbortSignal): AsyncGenerator<string> {
    let at = after;
    const aborted = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    while (!signal.aborted) {
      while (at < this.events.length) {
        const event = this.events[at++];
        if (event !== undefined) yield event;
      }
      if (this.finished) return;
      await Promise.race([this.next, aborted]);
    }
  }
}

/** The logs of this process, by stream id. */
export class StreamLogs {
  private readonly logs = new Map<string, StreamLog>();

  constructor(private readonly bounds: StreamLogBounds) {}

  /** Starts the log of a new stream; it is forgotten `retentionMs` after it ends. */
  create(id: string, owner: string | undefined): StreamLog {
    const log = new StreamLog(owner, this.bounds.maxBytes, () => {
      // Unref'd: a retained log must not keep a stopping server alive.
      setTimeout(() => this.logs.delete(id), this.bounds.retentionMs).unref();
    });
    this.logs.set(id, log);
    return log;
  }

  /** The log, when it exists, is still retained and belongs to `owner`; another key's stream is as good as unknown. */
  find(id: string, owner: string | undefined): StreamLog | undefined {
    const log = this.logs.get(id);
    return log !== undefined && log.owner === owner ? log : undefined;
  }
}
