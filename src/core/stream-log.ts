/**
 * The event logs of resumable streams, kept in this process: a stream that a client opted into
 * resuming records every SSE event it sends, so a client that dropped can ask for the events it missed
 * and then follow the rest live. Each event's id is its position in the log (1 for the first), so
 * `Last-Event-ID: n` means "I have events 1..n".
 *
 * Bounded twice: a log takes at most `maxBytes` (past that it refuses the event and the stream is cut),
 * and a finished log is forgotten `retentionMs` after its end.
 *
 * With a store, every log is also written there in batches (one shared timer, every `flushIntervalMs`,
 * not a write per token), so another replica can resume it: it reads the stored events and polls for more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredStream, StreamLogStore } from '../store/contract.js';

export interface StreamLogBounds {
  readonly retentionMs: number;
  readonly maxBytes: number;
}

export interface StreamLogOptions extends StreamLogBounds {
  /** Where logs are kept for other replicas; absent, resuming works on this process only. */
  readonly store?: StreamLogStore;
  /** How often new events go to the store, and how often a follower on another replica polls it. */
  readonly flushIntervalMs?: number;
  /** A stream stored as live this long after its start is abandoned (its replica died): past the deadline, no generation runs. */
  readonly abandonAfterMs: number;
  /** The event a follower on another replica gets when the stream was abandoned (no `id:`: it is not in the log). */
  readonly abandonedEvent: string;
}

/** What the resume route reads: a log in this process, or one in the store that another replica writes. */
export interface ResumableLog {
  /** True once the log holds event `id` (or ended without it: then false); a stored live log may lag by a flush. */
  reaches(id: number): Promise<boolean>;
  follow(after: number, signal: AbortSignal): AsyncGenerator<string>;
}

/** One stream's events, in order, with ids framed in; followers wait on it for new ones. */
export class StreamLog implements ResumableLog {
  readonly events: string[] = [];
  /** How many of the events the store holds. */
  persisted = 0;
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

  reaches(id: number): Promise<boolean> {
    return Promise.resolve(id <= this.events.length);
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

/** How many flush intervals a stored live log may lag behind what its replica already sent. */
const maxLagFlushes = 20;

/** A log that another replica writes, read from the store. */
class StoredLog implements ResumableLog {
  constructor(
    private readonly id: string,
    private header: StoredStream,
    private readonly store: StreamLogStore,
    private readonly options: StreamLogOptions & { readonly flushIntervalMs: number },
  ) {}

  private abandoned(now: number): boolean {
    return this.header.endedAt === null && now - this.header.createdAt > this.options.abandonAfterMs;
  }

  /** Re-reads the header; false when the stream is gone (its retention passed meanwhile). */
  private async refresh(): Promise<boolean> {
    const header = await this.store.getStream(this.id);
    if (header === undefined) return false;
    this.header = header;
    return true;
  }

  /**
   * Waits for the generating replica's flush to store `id`: a client that read the stream there may be a
   * batch or two ahead of the store. Bounded by the stream's end and by a few flushes' time (past that, the
   * id is ahead of the stream itself).
   */
  async reaches(id: number): Promise<boolean> {
    for (let polls = 0; this.header.eventCount < id; polls++) {
      if (this.header.endedAt !== null || polls >= maxLagFlushes || this.abandoned(Date.now())) return false;
      await sleep(this.options.flushIntervalMs);
      if (!(await this.refresh())) return false;
    }
    return true;
  }

  async *follow(after: number, signal: AbortSignal): AsyncGenerator<string> {
    const page = 500;
    let at = after;
    while (!signal.aborted) {
      const events = await this.store.readEvents(this.id, at, page);
      for (const event of events) {
        at++;
        yield event;
      }
      if (events.length === page) continue;
      // The count is written after its events: an ended header with nothing left unread is the whole stream.
      if (this.header.endedAt !== null && at >= this.header.eventCount) return;
      if (this.abandoned(Date.now())) {
        yield this.options.abandonedEvent;
        return;
      }
      try {
        await sleep(this.options.flushIntervalMs, undefined, { signal });
      } catch {
        return; // the follower left
      }
      if (!(await this.refresh())) return;
    }
  }
}

/** Failed batches in a row after which a log is no longer written to the store (its replica still serves it). */
const maxFailedWrites = 40;

/** A sweep of expired stored logs runs at most this often (when a stream starts). */
const sweepIntervalMs = 60_000;

/** The logs of this process, by stream id, and (with a store) everyone's. */
export class StreamLogs {
  private readonly logs = new Map<string, StreamLog>();
  private readonly options: StreamLogOptions & { readonly flushIntervalMs: number };
  /** Logs with events (or an end) not yet in the store. */
  private readonly dirty = new Map<string, StreamLog>();
  /** The store's work for each log, in order: its creation, then each batch. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private lastSweep = 0;

  constructor(options: StreamLogOptions) {
    this.options = { ...options, flushIntervalMs: options.flushIntervalMs ?? 250 };
  }

  /**
   * Starts the log of a new stream; it is forgotten `retentionMs` after it ends. With a store, resolves once
   * the stream is stored (or that failed: it is then resumable from this process only), so that every replica
   * knows the id before its client does.
   */
  async create(id: string, owner: string | undefined): Promise<StreamLog> {
    const log = new StreamLog(owner, this.options.maxBytes, () => {
      // Unref'd: a retained log must not keep a stopping server alive.
      setTimeout(() => this.logs.delete(id), this.options.retentionMs).unref();
    });
    this.logs.set(id, log);
    const store = this.options.store;
    if (store !== undefined) {
      const now = Date.now();
      const created = store.createStream(id, owner ?? null, now).catch(() => {});
      this.writes.set(id, created);
      this.dirty.set(id, log);
      this.scheduleFlush();
      if (now - this.lastSweep > sweepIntervalMs) {
        this.lastSweep = now;
        store.deleteEnded(now - this.options.retentionMs).catch(() => {});
      }
      await created;
    }
    return log;
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setInterval(() => this.flush(), this.options.flushIntervalMs);
    this.flushTimer.unref();
  }

  /** One batch per log with news; a failed batch is retried at the next tick (the events stay in memory). */
  private flush(): void {
    const store = this.options.store;
    if (store === undefined) return;
    for (const [id, log] of this.dirty) {
      const from = log.persisted;
      const events = log.events.slice(from);
      const ended = log.ended;
      if (events.length === 0 && !ended) continue;
      this.dirty.delete(id);
      const previous = this.writes.get(id) ?? Promise.resolve();
      const write = previous
        .then(() => store.appendEvents(id, from + 1, events, ended ? Date.now() : null))
        .then(
          () => {
            log.persisted = from + events.length;
            this.failures.delete(id);
            if (!ended || log.persisted < log.events.length) this.dirty.set(id, log);
            else this.writes.delete(id);
          },
          () => {
            // Retried at each tick, up to a bound: a store that stays down must not keep a timer busy for good.
            const failures = (this.failures.get(id) ?? 0) + 1;
            this.failures.set(id, failures);
            if (failures < maxFailedWrites) {
              this.dirty.set(id, log);
            } else {
              this.writes.delete(id);
              this.failures.delete(id);
            }
          },
        );
      this.writes.set(id, write);
    }
    if (this.dirty.size === 0 && this.writes.size === 0) {
      clearInterval(this.flushTimer);
      this.flushTimer = undefined;
    }
  }

  /**
   * The stream's log when it exists, is still retained and belongs to `owner` (another key's stream is as
   * good as unknown): this process's own, else the store's.
   */
  async find(id: string, owner: string | undefined): Promise<ResumableLog | undefined> {
    const log = this.logs.get(id);
    if (log !== undefined) return log.owner === owner ? log : undefined;
    const store = this.options.store;
    if (store === undefined) return undefined;
    const header = await store.getStream(id);
    if (header === undefined || header.owner !== (owner ?? null)) return undefined;
    if (header.endedAt !== null && Date.now() - header.endedAt > this.options.retentionMs) return undefined;
    return new StoredLog(id, header, store, this.options);
  }
}
