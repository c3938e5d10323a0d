/**
 * Shared tools of the adversarial suite: raw HTTP over a socket (for what fetch refuses to send),
 * the engine's load as /metrics reports it, and Parlance as a child process (for signals and logs).
 * Every wait here is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import { freePort } from '../fixtures/net.js';

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The body, de-chunked, as UTF-8 text. */
  readonly body: string;
  /** The socket closed before a complete status line arrived. */
  readonly incomplete: boolean;
}

/** Parses an HTTP/1.1 response read to the end of the connection (the request asked for `Connection: close`). */
export function parseRawResponse(bytes: Buffer): RawResponse {
  const split = bytes.indexOf('\r\n\r\n');
  if (split < 0) return { status: 0, headers: {}, body: bytes.toString('utf8'), incomplete: true };
  const [statusLine = '', ...lines] = bytes.subarray(0, split).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = bytes.subarray(split + 4);
  if (headers['transfer-encoding']?.includes('chunked')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (let guard = 0; guard < 1_000_000 && at < body.length; guard++) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: body.toString('utf8'), incomplete: false };
}

/** True once a whole response (by Content-Length, or the last chunk of a chunked body) has arrived. */
function responseComplete(bytes: Buffer): boolean {
  const split = bytes.indexOf('\r\n\r\n');
  if (split < 0) return false;
  const head = bytes.subarray(0, split).toString('latin1').toLowerCase();
  const length = /\r\ncontent-length:\s*(\d+)/.exec(head)?.[1];
  if (length !== undefined) return bytes.length - split - 4 >= Number(length);
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) return bytes.subarray(split).includes('\r\n0\r\n\r\n');
  return false;
}

/** Sends bytes exactly as given and reads the answer until the server closes (or `timeoutMs`). */
export function rawExchange(url: string, request: Buffer | string, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A complete response ends the exchange even when the server keeps the connection open.
      if (responseComplete(Buffer.concat(chunks))) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRawResponse(Buffer.concat(chunks)));
    });
    socket.write(request);
  });
}

/** A complete HTTP/1.1 request with `Connection: close` and an exact Content-Length. */
export function rawRequest(method: string, path: string, body: Buffer | string | undefined, headers: Readonly<Record<string, string>> = {}): Buffer {
  const payload = body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  // A `host` among the headers replaces the default one (fetch cannot send a Host of its choosing).
  const head = [`${method} ${path} HTTP/1.1`, ...(Object.keys(headers).some((name) => name.toLowerCase() === 'host') ? [] : ['Host: 127.0.0.1']), 'Connection: close'];
  for (const [name, value] of Object.entries({ 'content-type': 'application/json', ...headers })) head.push(`${name}: ${value}`);
  if (body !== undefined) head.push(`Content-Length: ${payload.length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
}

/** Opens a socket and resolves once it is connected. */
export function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface OpenAIErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Asserts an OpenAI-shaped error body and returns it. */
export function expectOpenAIError(body: unknown, code: string, param?: string | null): OpenAIErrorShape {
  expect(body).toMatchObject({ error: { code, message: expect.any(String) as unknown, type: expect.any(String) as unknown } });
  const shaped = body as OpenAIErrorShape;
  if (param !== undefined) expect(shaped.error.param).toBe(param);
  return shaped;
}

/** The value of one Prometheus sample, 0 when absent. */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (matches) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export interface EngineLoad {
  readonly busy: number;
  readonly queued: number;
}

/** Sequences in use and requests waiting, summed over every engine, as /metrics reports them. */
export async function engineLoad(url: string, headers: Readonly<Record<string, string>> = {}): Promise<EngineLoad & { metrics: string }> {
  const metrics = await (await fetch(`${url}/metrics`, { headers })).text();
  return { busy: metricValue(metrics, 'parlance_engine_busy'), queued: metricValue(metrics, 'parlance_engine_queue_depth'), metrics };
}

/**
 * The check after every scenario: no engine sequence left busy and nothing queued (polled briefly, since a
 * cancelled generation takes up to a token to stop), no SSE response left open, and /health answers.
 */
export async function expectSettled(url: string, headers: Readonly<Record<string, string>> = {}, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let load = await engineLoad(url, headers);
  while ((load.busy > 0 || load.queued > 0 || metricValue(load.metrics, 'parlance_active_streams') > 0) && Date.now() < deadline) {
    await sleep(20);
    load = await engineLoad(url, headers);
  }
  expect({ busy: load.busy, queued: load.queued, openStreams: metricValue(load.metrics, 'parlance_active_streams') }).toEqual({ busy: 0, queued: 0, openStreams: 0 });
  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(200);
}

/** Polls `probe` until `accept` holds or `timeoutMs` passes; returns the last value. */
export async function waitFor<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const jsonHeaders = { 'content-type': 'application/json' } as const;

export function postJson(url: string, body: unknown, headers: Readonly<Record<string, string>> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { ...jsonHeaders, ...headers }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
}

/** Reads a streamed response until `until(text so far)` holds; returns the text and the reader, still open. */
export async function readUntil(response: Response, until: (text: string) => boolean, timeoutMs = 10_000): Promise<{ text: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  while (!until(text)) {
    if (Date.now() > deadline) throw new Error(`stream did not reach the expected point in ${timeoutMs} ms; got: ${text.slice(-300)}`);
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { text, reader };
}

/** Reads what is left of a stream, as text. */
export async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>, text = ''): Promise<string> {
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

/** `n` words, numbered so a prefix of the echo is recognisable. */
export const words = (n: number, stem = 'word'): string => Array.from({ length: n }, (_, i) => `${stem}${i}`).join(' ');


export interface ChildServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ended, or undefined after `timeoutMs`. */
  exited(timeoutMs: number): Promise<number | string | undefined>;
}

/**
 * Starts `parlance serve` as `node --import tsx src/cli.ts …` from the repository root (or a built `cli.js`
 * given as `entry`), and waits for /ready (engines loaded).
 */
export async function startChild(args: readonly string[], env: Readonly<Record<string, string>> = {}, entry?: string): Promise<ChildServer> {
  const port = await freePort();
  const command = entry === undefined ? ['--import', 'tsx', 'src/cli.ts'] : [entry];
  const child = spawn(process.execPath, [...command, '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exit = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`Parlance did not start:\n${output}`);
    }
    await sleep(100);
  }
  return {
    child,
    url,
    output: () => output,
    exited: (timeoutMs) => Promise.race([exit, sleep(timeoutMs).then(() => undefined)]),
  };
}

export { freePort };
