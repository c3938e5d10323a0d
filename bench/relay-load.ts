/**
 * The load generator of bench/relay.ts: SSE streams over keep-alive HTTP/1.1
 * connections, with per-stream timings taken where a user would see them.
 *
 * Two dialects are spoken:
 * - `openai`: `POST` JSON `{model, messages, stream: true, max_tokens}`; a token
 *   is a `data:` chunk whose `delta.content` is a non-empty string, and a
 *   complete stream ends with `data: [DONE]`.
 * - `seed`: `POST` a form `prompt=…` to the seed's `/completion`; every `data:`
 *   event is a token and the stream simply ends.
 *
 * Per stream it records TTFT (request start → first token), total time
 * (request start → end of the response), tokens received, and the longest gap
 * between two consecutive tokens. A stream is an error when the status is not
 * 200, the connection fails, an error chunk arrives, the stream stops short of
 * the tokens asked for, or (openai) it ends without `[DONE]`.
 *
 * The parsing is deliberately cheap (string search over `\n\n`-framed events)
 * so that a thousand streams at 50 events/s each do not make the client the
 * bottleneck; the servers measured here all frame events with `\n\n`.
 */
import http from 'node:http';

export type Dialect = 'openai' | 'seed';

export interface LoadTarget {
  readonly url: URL;
  readonly dialect: Dialect;
  /** Tokens each stream must deliver to count as complete. */
  readonly tokens: number;
  /** The `model` field of openai requests. */
  readonly model?: string;
}

export interface StreamResult {
  /** Undefined when the stream was complete and clean. */
  readonly error: string | undefined;
  readonly ttftMs: number;
  readonly totalMs: number;
  readonly tokens: number;
  /** Longest wait between two consecutive tokens (0 with fewer than two). */
  readonly maxGapMs: number;
}

export interface Summary {
  readonly streams: number;
  readonly tokens: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCount: number;
  readonly ttft: Percentiles;
  readonly total: Percentiles;
  readonly maxGap: Percentiles & { readonly max: number };
  readonly wallMs: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

const CONTENT = '"content":"';
const DONE = 'data: [DONE]';

/** One request body per target, built once: every stream of a run sends the same bytes. */
function requestOf(target: LoadTarget): { body: Buffer; headers: http.OutgoingHttpHeaders } {
  const text =
    target.dialect === 'seed'
      ? 'prompt=hello+there'
      : JSON.stringify({ model: target.model ?? 'fake', stream: true, max_tokens: target.tokens, messages: [{ role: 'user', content: 'hello there' }] });
  const body = Buffer.from(text);
  return {
    body,
    headers: {
      'content-type': target.dialect === 'seed' ? 'application/x-www-form-urlencoded' : 'application/json',
      'content-length': body.length,
      accept: 'text/event-stream',
    },
  };
}

export class LoadClient {
  /** Streams whose response headers arrived and whose body has not ended. */
  open = 0;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 2048 });
  private readonly request: { body: Buffer; headers: http.OutgoingHttpHeaders };

  constructor(readonly target: LoadTarget) {
    this.request = requestOf(target);
  }

  /** Runs one stream to its end; never rejects. */
  stream(): Promise<StreamResult> {
    const target = this.target;
    const openai = target.dialect === 'openai';
    return new Promise((resolve) => {
      const t0 = performance.now();
      let first = 0;
      let last = 0;
      let maxGap = 0;
      let tokens = 0;
      let done = false;
      let failure: string | undefined;
      let counted = false;
      let settled = false;
      const finish = (error: string | undefined): void => {
        if (settled) return;
        settled = true;
        if (counted) this.open--;
        const end = performance.now();
        let verdict = error ?? failure;
        if (verdict === undefined && tokens < target.tokens) verdict = `short stream (${tokens} of ${target.tokens} tokens)`;
        if (verdict === undefined && openai && !done) verdict = 'no [DONE]';
        resolve({ error: verdict, ttftMs: first === 0 ? end - t0 : first - t0, totalMs: end - t0, tokens, maxGapMs: maxGap });
      };
      const req = http.request(
        { host: target.url.hostname, port: target.url.port, path: target.url.pathname, method: 'POST', headers: this.request.headers, agent: this.agent },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            finish(`HTTP ${res.statusCode ?? '?'}`);
            return;
          }
          counted = true;
          this.open++;
          res.setEncoding('utf8');
          let buffer = '';
          res.on('data', (chunk: string) => {
            const now = performance.now();
            buffer = buffer === '' ? chunk : buffer + chunk;
            let start = 0;
            for (;;) {
              const end = buffer.indexOf('\n\n', start);
              if (end < 0) break;
              // One event: buffer[start, end). Comments (`: keep-alive`) and other fields carry no token.
              let token = false;
              if (buffer.startsWith('data: ', start)) {
                if (!openai) token = true;
                else {
                  const at = buffer.indexOf(CONTENT, start);
                  if (at >= 0 && at < end) token = buffer.charCodeAt(at + CONTENT.length) !== 34; // not `""`
                  else if (buffer.startsWith(DONE, start)) done = true;
                  else if (buffer.startsWith('data: {"error"', start)) failure ??= `error chunk: ${buffer.slice(start + 6, Math.min(end, start + 200))}`;
                }
              }
              if (token) {
                if (tokens === 0) first = now;
                else if (now - last > maxGap) maxGap = now - last;
                last = now;
                tokens++;
              }
              start = end + 2;
            }
            if (start !== 0) buffer = buffer.slice(start);
          });
          res.on('end', () => finish(undefined));
          res.on('error', (error) => finish(error.message));
          res.on('close', () => finish(res.complete ? undefined : 'connection closed mid-stream'));
        },
      );
      req.on('error', (error) => finish(error.message));
      req.end(this.request.body);
    });
  }

  /** `concurrency` streams at a time, back to back, until `total` have run. */
  async closedLoop(concurrency: number, total: number): Promise<Summary> {
    const results: StreamResult[] = [];
    let started = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (started < total) {
          started++;
          results.push(await this.stream());
        }
      }),
    );
    return summarise(results, performance.now() - t0);
  }

  /**
   * Opens `count` streams, `perTick` at a time every `tickMs` (a thundering
   * herd of connects would only measure the listen backlog), and waits for all
   * of them to end; `open` counts the streams under way.
   */
  async ramp(count: number, perTick: number, tickMs: number): Promise<Summary> {
    const t0 = performance.now();
    const pending: Promise<StreamResult>[] = [];
    for (let i = 0; i < count; i += perTick) {
      for (let j = i; j < Math.min(count, i + perTick); j++) pending.push(this.stream());
      if (i + perTick < count) await new Promise((resolve) => setTimeout(resolve, tickMs));
    }
    const results = await Promise.all(pending);
    return summarise(results, performance.now() - t0);
  }

  close(): void {
    this.agent.destroy();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function percentiles(values: number[]): Percentiles {
  const sorted = values.sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99) };
}

export function summarise(results: readonly StreamResult[], wallMs: number): Summary {
  const errors: Record<string, number> = {};
  let errorCount = 0;
  let tokens = 0;
  let worstGap = 0;
  for (const result of results) {
    tokens += result.tokens;
    if (result.maxGapMs > worstGap) worstGap = result.maxGapMs;
    if (result.error !== undefined) {
      errorCount++;
      errors[result.error] = (errors[result.error] ?? 0) + 1;
    }
  }
  return {
    streams: results.length,
    tokens,
    errors,
    errorCount,
    ttft: percentiles(results.map((result) => result.ttftMs)),
    total: percentiles(results.map((result) => result.totalMs)),
    maxGap: { ...percentiles(results.map((result) => result.maxGapMs)), max: worstGap },
    wallMs,
  };
}
