/**
 * Resumable, verified download of one GGUF file, and the terminal progress
 * display that goes with it. `model-source.ts` decides *what* to fetch and
 * where it lives; this file only knows URLs and paths.
 *
 * A download writes `<target>.part` and renames it to `<target>` only once the
 * whole body arrived and starts with the GGUF magic, so `<target>` existing
 * means "complete and plausibly a model". A `.part` left behind by a dropped
 * connection or an abort is resumed with a `Range` request next time; one
 * holding something that is not a model (an HTML error page, a 404'd resource)
 * is deleted.
 */
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { setTimeout as delay } from 'node:timers/promises';

export const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

export interface DownloadProgress {
  /** Bytes of the file on disk so far, counting a resumed prefix. */
  readonly received: number;
  /** The file's full size, when the server said. */
  readonly total: number | undefined;
}

/**
 * A download that failed, with a message fit for one line of an error
 * ("HTTP 404 from <url>", "cannot connect to <host> (connection refused)").
 */
export class DownloadError extends Error {
  /** Another attempt may succeed (the connection dropped, a 503). */
  readonly retryable: boolean;
  /** What is in the `.part` file is useless (wrong content, the resource is gone). */
  readonly discardPartial: boolean;

  constructor(message: string, flags: { retryable: boolean; discardPartial: boolean }, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DownloadError';
    this.retryable = flags.retryable;
    this.discardPartial = flags.discardPartial;
  }
}

export interface DownloadFileOptions {
  readonly url: URL;
  /** The final path; the body goes to `${target}.part` first. Its directory must exist. */
  readonly target: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Attempts in all, the first included. Default 4 (three retries). */
  readonly maxAttempts?: number;
  /** Delay before the first retry; doubles after each. Default 250 ms. */
  readonly retryDelayMs?: number;
  readonly onProgress?: (progress: DownloadProgress) => void;
}

/**
 * Downloads `url` to `target`, resuming a `.part` left by an earlier try.
 * Rejects with a {@link DownloadError}, or with `signal.reason` when aborted
 * (the `.part` then stays, to be resumed).
 */
export async function downloadFile(options: DownloadFileOptions): Promise<void> {
  const part = `${options.target}.part`;
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 4));
  const retryDelayMs = options.retryDelayMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await downloadOnce(options, part);
      break;
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const failure = error instanceof DownloadError ? error : new DownloadError(describe(error), { retryable: false, discardPartial: false }, error);
      if (failure.discardPartial) await rm(part, { force: true });
      if (!failure.retryable || attempt >= maxAttempts) throw failure;
      try {
        await delay(retryDelayMs * 2 ** (attempt - 1), undefined, options.signal ? { signal: options.signal } : {});
      } catch (delayError) {
        throw options.signal?.aborted ? options.signal.reason : delayError;
      }
    }
  }

  // The stream checked the magic when it started at byte 0, but a resumed
  // download's first bytes came from an earlier run: check the file itself.
  const head = await readHead(part);
  if (!head.equals(GGUF_MAGIC)) {
    await rm(part, { force: true });
    throw notGguf(head);
  }
  try {
    await rename(part, options.target);
  } catch (error) {
    throw new DownloadError(`cannot move ${part} into place (${describe(error)})`, { retryable: false, discardPartial: false }, error);
  }
}

/** One request: resumes from the `.part`'s size, streams the body to it, checks its length. */
async function downloadOnce(options: DownloadFileOptions, part: string): Promise<void> {
  const { url, signal, onProgress } = options;
  let offset = await sizeOf(part);
  if (offset >= GGUF_MAGIC.length && !(await readHead(part)).equals(GGUF_MAGIC)) {
    // Left by something else, or by a version of us that did not check: not worth resuming.
    await rm(part, { force: true });
    offset = 0;
  }

  const headers: Record<string, string> = {
    // undici would otherwise ask for gzip and inflate it transparently, which
    // makes Content-Length and byte ranges refer to different bytes.
    'accept-encoding': 'identity',
    ...options.headers,
  };
  if (offset > 0) headers['range'] = `bytes=${offset}-`;

  let response: Response;
  try {
    response = await fetch(url, { headers, signal: signal ?? null, redirect: 'follow' });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw connectFailure(url, error);
  }

  if (response.status === 416 && offset > 0) {
    await response.body?.cancel();
    const total = parseContentRange(response.headers.get('content-range'))?.total;
    if (total === offset) {
      // An earlier run got every byte but stopped before the rename.
      onProgress?.({ received: offset, total });
      return;
    }
    throw new DownloadError(`${url.host} refused to resume at byte ${offset}`, { retryable: true, discardPartial: true });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw httpFailure(url, response.status);
  }

  const encoded = (response.headers.get('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
  const length = encoded ? undefined : parseLength(response.headers.get('content-length'));
  let start = 0;
  let total = length;
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('content-range'));
    if (range === undefined || range.start !== offset) {
      await response.body?.cancel();
      throw new DownloadError(`${url.host} answered a different byte range than asked for`, { retryable: true, discardPartial: true });
    }
    start = offset;
    total = range.total ?? (length === undefined ? undefined : offset + length);
  }
  // Any other 2xx is the whole file: a server that ignores Range starts us over.

  let received = start;
  let head = Buffer.alloc(0);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      // Checking the magic as soon as 4 bytes are in rejects a 2 GB wrong file
      // (or an HTML page) without downloading it.
      if (start === 0 && head.length < GGUF_MAGIC.length) {
        head = Buffer.concat([head, chunk.subarray(0, GGUF_MAGIC.length - head.length)]);
        if (head.length === GGUF_MAGIC.length && !head.equals(GGUF_MAGIC)) {
          callback(notGguf(head));
          return;
        }
      }
      received += chunk.length;
      onProgress?.({ received, total });
      callback(null, chunk);
    },
  });
  onProgress?.({ received, total });

  const body = response.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  try {
    await pipeline(
      // undici's ReadableStream type and node:stream/web's are the same class with different declarations.
      Readable.fromWeb(body as NodeReadableStream<Uint8Array>),
      meter,
      createWriteStream(part, { flags: start > 0 ? 'a' : 'w' }),
      signal ? { signal } : {},
    );
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof DownloadError) throw error;
    if (isFileSystemError(error)) {
      throw new DownloadError(`cannot write ${part} (${describe(error)})`, { retryable: false, discardPartial: false }, error);
    }
    throw new DownloadError(`the connection to ${url.host} dropped after ${formatBytes(received)}${total === undefined ? '' : ` of ${formatBytes(total)}`}`, { retryable: true, discardPartial: false }, error);
  }

  if (total !== undefined && received < total) {
    throw new DownloadError(`the connection to ${url.host} closed after ${formatBytes(received)} of ${formatBytes(total)}`, { retryable: true, discardPartial: false });
  }
  if (total !== undefined && received > total) {
    throw new DownloadError(`${url.host} sent ${received} bytes but announced ${total}`, { retryable: false, discardPartial: true });
  }
}

/** The first four bytes of a file (fewer if it is shorter). */
export async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(GGUF_MAGIC.length);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** "not a GGUF file (starts with '<!DO')", readable whatever the bytes are. */
export function notGgufReason(head: Buffer): string {
  if (head.length === 0) return 'not a GGUF file (it is empty)';
  const printable = [...head].every((byte) => byte >= 0x20 && byte < 0x7f);
  const shown = printable ? `'${head.toString('latin1')}'` : `bytes ${head.toString('hex').replace(/(..)(?!$)/g, '$1 ')}`;
  return `not a GGUF file (starts with ${shown})`;
}

function notGguf(head: Buffer): DownloadError {
  return new DownloadError(notGgufReason(head), { retryable: false, discardPartial: true });
}

function httpFailure(url: URL, status: number): DownloadError {
  const transient = status === 408 || status === 429 || status >= 500;
  const hint = status === 401 || status === 403 ? ' (a gated or private repository needs HF_TOKEN)' : '';
  return new DownloadError(`HTTP ${status} from ${url.href}${hint}`, { retryable: transient, discardPartial: status === 404 || status === 410 });
}

/** Turns undici's `TypeError: fetch failed` into what happened, from the error code in its causes. */
function connectFailure(url: URL, error: unknown): DownloadError {
  const code = findErrorCode(error);
  const fail = (message: string, retryable: boolean): DownloadError => new DownloadError(message, { retryable, discardPartial: false }, error);
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return fail(`cannot resolve ${url.hostname} (offline, or DNS is not working)`, false);
    case 'ECONNREFUSED':
      return fail(`cannot connect to ${url.host} (connection refused)`, false);
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'ENETDOWN':
      return fail(`cannot connect to ${url.host} (network unreachable; offline?)`, false);
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      // Already a long wait (undici's connect timeout is 10 s): not worth repeating.
      return fail(`cannot connect to ${url.host} (timed out)`, false);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return fail(`the connection to ${url.host} was reset`, true);
    default:
      if (code !== undefined && /CERT|TLS|SSL/.test(code)) return fail(`TLS error talking to ${url.host} (${code})`, false);
      return fail(`cannot fetch ${url.href} (${describe(error)})`, false);
  }
}

/** The first `code` in an error's cause chain (and an AggregateError's members). */
function findErrorCode(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const { code } = error as { code?: unknown };
  if (typeof code === 'string') return code;
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const found = findErrorCode(inner, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return findErrorCode((error as { cause?: unknown }).cause, depth + 1);
}

/** The innermost message of an error, without a stack. */
function describe(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause: unknown = current instanceof Error ? current.cause : undefined;
    if (!(cause instanceof Error)) break;
    current = cause;
  }
  if (current instanceof Error) {
    const code = (current as { code?: unknown }).code;
    return typeof code === 'string' && !current.message.includes(code) ? `${code}: ${current.message}` : current.message;
  }
  return String(current);
}

function isFileSystemError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const syscall = (error as { syscall?: unknown }).syscall;
  return typeof syscall === 'string' && ['open', 'write', 'close', 'fsync', 'ftruncate'].includes(syscall);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function parseLength(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

/** Parses a Content-Range, `bytes 100-199/1000` or (from a 416) the same with `*` for the range. */
function parseContentRange(header: string | null): { start: number | undefined; total: number | undefined } | undefined {
  const match = header === null ? null : /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header.trim());
  if (match === null) return undefined;
  return {
    start: match[1] === undefined ? undefined : Number(match[1]),
    total: match[2] === undefined || match[2] === '*' ? undefined : Number(match[2]),
  };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 'B';
  for (const next of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = next;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`;
}

/** Where progress goes: `process.stderr`, or anything shaped like it. */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressDisplay {
  update(progress: DownloadProgress): void;
  /** The download finished: draw 100% and end the line. */
  done(): void;
  /** The download failed or was aborted: end the line so the error starts on its own. */
  fail(): void;
}

/**
 * A one-line bar redrawn in place on a terminal; on anything else (a log
 * file, a container's stdout) a line at the start, one every 10 s, and one at
 * the end, since carriage returns make a mess of logs.
 */
export function createProgressDisplay(label: string, source: string, output: ProgressOutput, now: () => number = Date.now): ProgressDisplay {
  const tty = output.isTTY === true;
  const startedAt = now();
  let last: DownloadProgress = { received: 0, total: undefined };
  let firstReceived: number | undefined;
  // Off a terminal the start line stands in for the first progress line.
  let drawnAt = tty ? Number.NEGATIVE_INFINITY : startedAt;
  let drawn = false;
  let finished = false;

  const rate = (): number | undefined => {
    const seconds = (now() - startedAt) / 1000;
    if (firstReceived === undefined || seconds < 0.5) return undefined;
    return (last.received - firstReceived) / seconds;
  };

  const line = (): string => {
    const { received, total } = last;
    const speed = rate();
    const amount = total === undefined ? formatBytes(received) : `${formatBytes(received)} / ${formatBytes(total)}`;
    const tail = `${amount}${speed === undefined ? '' : `  ${formatBytes(speed)}/s`}`;
    if (total === undefined || total === 0) return `${label}  ${tail}`;
    const fraction = Math.min(1, received / total);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const columns = output.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - label.length - tail.length - 12));
    const filled = Math.round(fraction * width);
    return `${label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${percent}  ${tail}`;
  };

  const draw = (): void => {
    drawnAt = now();
    drawn = true;
    // \x1b[K clears what a longer previous line left to the right.
    if (tty) output.write(`\r${line()}\x1b[K`);
    else output.write(`${line()}\n`);
  };

  if (!tty) output.write(`Downloading ${label} from ${source}\n`);

  return {
    update(progress) {
      if (finished) return;
      firstReceived ??= progress.received;
      last = progress;
      if (now() - drawnAt >= (tty ? 100 : 10_000)) draw();
    },
    done() {
      if (finished) return;
      finished = true;
      if (last.total !== undefined) last = { received: last.total, total: last.total };
      if (tty) {
        draw();
        output.write('\n');
      } else {
        output.write(`Downloaded ${label} (${formatBytes(last.received)})\n`);
      }
    },
    fail() {
      if (finished) return;
      finished = true;
      if (tty && drawn) output.write('\n');
    },
  };
}
